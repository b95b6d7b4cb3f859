/**
 * Static checks of a plan's tier files, and the SQL facts the engine needs
 * (statement boundaries, the relations a script touches), all read with the
 * real PostgreSQL parser (`libpg-query`, the PostgreSQL 18 grammar; PL/pgSQL
 * bodies of DO blocks with PostgreSQL's own PL/pgSQL grammar).
 *
 * The parser is a ~1 MB WASM module: it is imported lazily, on first use, so
 * that `tiergate --help` never pays for it.
 *
 * Offsets: the parser reports node locations as UTF-8 BYTE offsets and syntax
 * errors as CHARACTER offsets (PostgreSQL's `errposition`); everything this
 * module returns is a JavaScript string index (`start`, `end`) or a 1-based
 * line and column, the column counted in characters (code points), as
 * PostgreSQL counts an error's position.
 */
import type {
  AlterDatabaseStmt,
  AlterEnumStmt,
  AlterObjectSchemaStmt,
  AlterTableStmt,
  ClusterStmt,
  CopyStmt,
  CreateFunctionStmt,
  CreateSchemaStmt,
  CreateSeqStmt,
  CreateStmt,
  CreateTableAsStmt,
  DefElem,
  DefineStmt,
  DoStmt,
  DropStmt,
  ExplainStmt,
  FuncCall,
  GrantStmt,
  IndexStmt,
  InsertStmt,
  Node,
  RangeVar,
  RefreshMatViewStmt,
  ReindexStmt,
  RenameStmt,
  SelectStmt,
  TransactionStmt,
  TruncateStmt,
  VacuumStmt,
  ViewStmt,
} from 'libpg-query';
import type { Plan, Tier } from './load-plan.js';

// ───────────────────────────── public types ─────────────────────────────

/** One problem found by `lintPlan`, located in a tier file. */
export interface LintFinding {
  severity: 'error' | 'warning';
  tier: number;
  /** plan-relative file */
  file: string;
  /** 1-based */
  line: number;
  /** 1-based, in characters */
  column: number;
  rule: LintRule;
  message: string;
}

export type LintRule =
  | 'parse'
  | 'dml-in-structure'
  | 'ddl-in-data'
  | 'gated-without-guard'
  | 'guard-without-lock'
  | 'data-without-assertion'
  | 'non-transactional'
  | 'write-in-readonly'
  | 'no-header';

/** One top-level statement of a script, as `psql -f` would send it. */
export interface SqlStatement {
  /** the statement's text, from its first token to its last (no trailing `;`) */
  sql: string;
  /** string index of the first token (leading comments and blanks skipped) */
  start: number;
  /** string index just after the last token */
  end: number;
  /** 1-based line of `start` */
  line: number;
  /** the parse node, e.g. `{ InsertStmt: { … } }` */
  ast: unknown;
}

/** The relations a script changes, as written (`schema.table` or `table`, quoted only when needed). */
export interface TouchedRelations {
  /** INSERT / UPDATE / DELETE / MERGE / TRUNCATE / COPY FROM targets and REFRESH MATERIALIZED VIEW */
  writes: string[];
  /** CREATE TABLE, CREATE TABLE AS, CREATE MATERIALIZED VIEW, SELECT INTO */
  creates: string[];
  /** DROP TABLE, DROP MATERIALIZED VIEW */
  drops: string[];
  /** ALTER TABLE (including RENAME and SET SCHEMA): their rows may change (a new column with a default) */
  alters: string[];
  /** functions and procedures the script calls, as written: they may write anything (builtins included) */
  calls: string[];
  /** why the lists above may be incomplete (`line 12: EXECUTE of a string built at run time`); empty when they are exact */
  incomplete: string[];
}

/** A script that PostgreSQL's parser rejects. */
export class SqlSyntaxError extends Error {
  constructor(
    /** the parser's message, e.g. `syntax error at or near ","` */
    readonly parserMessage: string,
    /** string index of the parser's cursor */
    readonly position: number,
    readonly line: number,
    readonly column: number,
  ) {
    super(`${parserMessage} (line ${line}, column ${column})`);
    this.name = 'SqlSyntaxError';
  }
}

// ───────────────────────────── the parser, lazily ─────────────────────────────

type PgQuery = typeof import('libpg-query');
let pgQueryLoaded: Promise<PgQuery> | undefined;

function loadParser(): Promise<PgQuery> {
  pgQueryLoaded ??= import('libpg-query').then(async (m) => {
    await m.loadModule();
    return m;
  });
  return pgQueryLoaded;
}

// ───────────────────────────── offsets ─────────────────────────────

/** Maps the parser's UTF-8 byte and code-point offsets to string indexes, and indexes to line/column. */
class SourceText {
  /** byte offset / code-point offset of each string index (only for non-ASCII text) */
  private readonly byteAt: Uint32Array | undefined;
  private readonly cpAt: Uint32Array | undefined;
  private readonly lineStarts: number[] = [0];

  constructor(readonly text: string) {
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) this.lineStarts.push(i + 1);
    // eslint-disable-next-line no-control-regex
    if (/^[\x00-\x7f]*$/.test(text)) return;
    const byteAt = new Uint32Array(text.length + 1);
    const cpAt = new Uint32Array(text.length + 1);
    let bytes = 0;
    let cps = 0;
    for (let i = 0; i < text.length; ) {
      const c = text.codePointAt(i)!;
      const units = c > 0xffff ? 2 : 1;
      for (let u = 0; u < units; u++) {
        byteAt[i + u] = bytes;
        cpAt[i + u] = cps;
      }
      bytes += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
      cps += 1;
      i += units;
    }
    byteAt[text.length] = bytes;
    cpAt[text.length] = cps;
    this.byteAt = byteAt;
    this.cpAt = cpAt;
  }

  /** string index of a UTF-8 byte offset (as in the parser's `location`, `stmt_location`) */
  fromByte(byte: number): number {
    return this.byteAt ? lowerBound(this.byteAt, byte) : Math.min(byte, this.text.length);
  }

  /** string index of a code-point offset (as in the parser's error cursor) */
  fromCodePoint(cp: number): number {
    return this.cpAt ? lowerBound(this.cpAt, cp) : Math.min(cp, this.text.length);
  }

  /** 1-based line and column (in characters) of a string index */
  position(index: number): { line: number; column: number } {
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid]! <= index) lo = mid;
      else hi = mid - 1;
    }
    const start = this.lineStarts[lo]!;
    const column = this.cpAt ? this.cpAt[index]! - this.cpAt[start]! : index - start;
    return { line: lo + 1, column: column + 1 };
  }

  /** string index of the first non-blank character of a 1-based line (clamped to the text) */
  lineIndex(line: number): number {
    const i = this.lineStarts[Math.min(Math.max(line, 1), this.lineStarts.length) - 1]!;
    const m = /^[ \t]*/.exec(this.text.slice(i, i + 200));
    return i + (m ? m[0].length : 0);
  }
}

function lowerBound(a: Uint32Array, value: number): number {
  let lo = 0;
  let hi = a.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Skips blanks, `-- …` and (nested) `/* … *\/` comments from `i`. */
function skipTrivia(text: string, i: number): number {
  for (;;) {
    while (i < text.length && /\s/.test(text[i]!)) i++;
    if (text.startsWith('--', i)) {
      const nl = text.indexOf('\n', i);
      i = nl < 0 ? text.length : nl + 1;
    } else if (text.startsWith('/*', i)) {
      let depth = 0;
      while (i < text.length) {
        if (text.startsWith('/*', i)) (depth++, (i += 2));
        else if (text.startsWith('*/', i)) {
          i += 2;
          if (--depth === 0) break;
        } else i++;
      }
    } else return i;
  }
}

// ───────────────────────────── statements ─────────────────────────────

interface Parsed {
  src: SourceText;
  statements: SqlStatement[];
}

async function parseScript(sql: string): Promise<Parsed> {
  const pg = await loadParser();
  const src = new SourceText(sql);
  if (skipTrivia(sql, 0) >= sql.length) return { src, statements: [] };
  let tree;
  try {
    tree = pg.parseSync(sql);
  } catch (e) {
    const details = (e as { sqlDetails?: { cursorPosition?: number } }).sqlDetails;
    const position = src.fromCodePoint(details?.cursorPosition ?? 0);
    const { line, column } = src.position(position);
    throw new SqlSyntaxError((e as Error).message, position, line, column);
  }
  const statements = (tree.stmts ?? []).map((raw): SqlStatement => {
    const location = raw.stmt_location ?? 0;
    const start = skipTrivia(sql, src.fromByte(location));
    // stmt_len 0: the last statement, without a `;`: it runs to the end of the text, trailing comments included.
    const end = raw.stmt_len ? src.fromByte(location + raw.stmt_len) : lastTokenEnd(pg, sql, start);
    return { sql: sql.slice(start, end), start, end, line: src.position(start).line, ast: raw.stmt };
  });
  return { src, statements };
}

/** String index just after the last token of `sql` from `start` that is not a comment. */
function lastTokenEnd(pg: PgQuery, sql: string, start: number): number {
  const tail = sql.slice(start);
  const tokens = pg.scanSync(tail).tokens.filter((t) => t.tokenName !== 'SQL_COMMENT' && t.tokenName !== 'C_COMMENT');
  const last = tokens[tokens.length - 1];
  if (!last) return sql.trimEnd().length;
  return start + Buffer.from(tail, 'utf8').subarray(0, last.end).toString('utf8').length;
}

/**
 * Splits a script into its top-level statements, exactly where PostgreSQL's
 * parser (and so `psql -f`) splits it: semicolons inside strings, dollar
 * quotes, comments and DO bodies do not split. Comment-only and empty
 * statements are dropped. Throws `SqlSyntaxError` when the script does not
 * parse (psql meta-commands such as `\set` are not SQL).
 *
 * @example
 * const [create, insert] = await splitStatements('CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);');
 * insert.sql; // 'INSERT INTO t VALUES (1)'
 * insert.line; // 2
 */
export async function splitStatements(sql: string): Promise<SqlStatement[]> {
  return (await parseScript(sql)).statements;
}

// ───────────────────────────── effects ─────────────────────────────

interface RelName {
  schema: string | undefined;
  name: string;
  /** `schema.table` or `table`, quoted only when needed */
  text: string;
  /** declared or known temporary (CREATE TEMP …, pg_temp.x) */
  temp: boolean;
}

/** What one statement does, each with the string index it was found at. */
type Effect =
  | { type: 'write'; op: string; rel: RelName; at: number }
  | { type: 'create'; rel: RelName; at: number }
  | { type: 'drop'; rel: RelName; at: number }
  | { type: 'alter'; rel: RelName; at: number }
  | { type: 'ddl'; what: string; temp: boolean; at: number }
  | { type: 'transaction'; what: string; at: number }
  | { type: 'non-transactional'; what: string; severity: 'error' | 'warning'; why: string; at: number }
  /** a row lock (`SELECT … FOR SHARE`) or `LOCK TABLE` */
  | { type: 'lock'; rowLock: string | undefined; at: number }
  /** `nextval()` / `setval()`: writes a sequence */
  | { type: 'sequence'; what: string; at: number }
  | { type: 'call'; name: string; at: number }
  | { type: 'opaque'; why: string; at: number }
  | { type: 'invalid'; message: string; at: number };

/** What a DO block's PL/pgSQL body does, for the guard and assertion rules. */
interface DoBlock {
  at: number;
  language: string;
  raisesException: boolean;
  asserts: boolean;
  locks: boolean;
  /** the body does not parse */
  invalid: boolean;
}

interface Analysis {
  effects: Effect[];
  /** the statement's DO block, when it is one */
  block: DoBlock | undefined;
}

interface Ctx {
  pg: PgQuery;
  effects: Effect[];
  /** string index of a parser byte location (or of the statement, when the node has none) */
  at(byte?: number): number;
  /** string index of line `lineno` of a DO body whose string literal starts at byte `bodyByte` */
  bodyLine(bodyByte: number | undefined, lineno: number): number;
  /** the DO block found at this level */
  block?: DoBlock;
}

function topLevelCtx(pg: PgQuery, src: SourceText, stmt: SqlStatement): Ctx {
  return {
    pg,
    effects: [],
    at: (byte) => (byte === undefined || byte < 0 ? stmt.start : src.fromByte(byte)),
    bodyLine: (bodyByte, lineno) => {
      if (bodyByte === undefined) return stmt.start;
      // the body begins after the literal's opening quote: `$tag$` or `'` (or `E'`)
      const i = src.fromByte(bodyByte);
      const text = src.text;
      const open = text[i] === '$' ? text.indexOf('$', i + 1) + 1 : /^[eE]'/.test(text.slice(i, i + 2)) ? i + 2 : i + 1;
      if (lineno <= 1) return skipTrivia(text, open);
      return src.lineIndex(src.position(open).line + lineno - 1);
    },
  };
}

/** A context for SQL embedded in PL/pgSQL: everything is located at the PL/pgSQL statement's line. */
function nestedCtx(parent: Ctx, at: number): Ctx {
  return { pg: parent.pg, effects: parent.effects, at: () => at, bodyLine: () => at };
}

function analyzeStatement(pg: PgQuery, src: SourceText, stmt: SqlStatement): Analysis {
  const ctx = topLevelCtx(pg, src, stmt);
  walk(stmt.ast, ctx);
  return { effects: ctx.effects, block: ctx.block };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Statements that are not DDL: queries, DML, session and maintenance commands. */
const NOT_DDL = new Set([
  'SelectStmt', 'InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt', 'TruncateStmt', 'CopyStmt', 'DoStmt', 'CallStmt',
  'VariableSetStmt', 'VariableShowStmt', 'ExplainStmt', 'LockStmt', 'NotifyStmt', 'ListenStmt', 'UnlistenStmt',
  'PrepareStmt', 'ExecuteStmt', 'DeallocateStmt', 'DeclareCursorStmt', 'FetchStmt', 'ClosePortalStmt', 'CheckPointStmt',
  'DiscardStmt', 'ConstraintsSetStmt', 'LoadStmt', 'TransactionStmt', 'VacuumStmt', 'RefreshMatViewStmt', 'ClusterStmt',
  'ReindexStmt', 'PLAssignStmt', 'ReturnStmt', 'SetOperationStmt', 'RawStmt',
]);

/** Walks a parse tree; node objects are `{ NodeType: { …fields } }`, struct fields are inlined. */
function walk(node: unknown, ctx: Ctx): void {
  if (Array.isArray(node)) {
    for (const n of node) walk(n, ctx);
    return;
  }
  if (!isObject(node)) return;
  for (const [key, value] of Object.entries(node)) {
    if (/^[A-Z]/.test(key) && isObject(value) && visit(key, value, ctx)) continue;
    walk(value, ctx);
  }
}

/** Records what node `key` does; returns true when its children need no generic walk. */
function visit(key: string, n: Record<string, unknown>, ctx: Ctx): boolean {
  switch (key) {
    case 'InsertStmt':
    case 'UpdateStmt':
    case 'DeleteStmt':
    case 'MergeStmt': {
      const rel = (n as InsertStmt).relation;
      if (rel) write(ctx, key.replace(/Stmt$/, '').toUpperCase(), rel);
      return false; // CTEs may write too
    }
    case 'TruncateStmt':
      for (const r of (n as TruncateStmt).relations ?? []) if ('RangeVar' in r) write(ctx, 'TRUNCATE', r.RangeVar);
      return true;
    case 'CopyStmt': {
      const c = n as CopyStmt;
      if (c.is_from && c.relation) write(ctx, 'COPY', c.relation);
      return false;
    }
    case 'RefreshMatViewStmt': {
      const rel = (n as RefreshMatViewStmt).relation;
      if (rel) write(ctx, 'REFRESH MATERIALIZED VIEW', rel);
      return true;
    }
    case 'SelectStmt': {
      const s = n as SelectStmt;
      if (s.intoClause?.rel) {
        const rel = relName(s.intoClause.rel);
        ctx.effects.push({ type: 'ddl', what: 'SELECT INTO', temp: rel.temp, at: ctx.at(s.intoClause.rel.location) });
        ctx.effects.push({ type: 'create', rel, at: ctx.at(s.intoClause.rel.location) });
      }
      for (const l of s.lockingClause ?? []) {
        const strength = 'LockingClause' in l ? l.LockingClause.strength : undefined;
        ctx.effects.push({ type: 'lock', rowLock: ROW_LOCKS[strength ?? ''] ?? 'FOR UPDATE', at: ctx.at() });
      }
      return false;
    }
    case 'LockStmt':
      ctx.effects.push({ type: 'lock', rowLock: undefined, at: ctx.at() });
      return true;
    case 'FuncCall':
      call(ctx, n as FuncCall);
      return false;
    case 'CallStmt': {
      const fc = (n as { funccall?: FuncCall }).funccall;
      if (fc) call(ctx, fc);
      return false;
    }
    case 'DoStmt':
      doBlock(ctx, n as DoStmt);
      return true;
    case 'ExplainStmt': {
      // EXPLAIN runs its statement only with ANALYZE
      const e = n as ExplainStmt;
      const analyze = (e.options ?? []).some((o) => 'DefElem' in o && o.DefElem.defname === 'analyze' && defBool(o.DefElem));
      return !analyze;
    }
    case 'TransactionStmt':
      ctx.effects.push({ type: 'transaction', what: transactionLabel(n as TransactionStmt), at: ctx.at() });
      return true;
    case 'VacuumStmt':
      if ((n as VacuumStmt).is_vacuumcmd) nonTransactional(ctx, 'VACUUM');
      return true;
    case 'ReindexStmt': {
      const r = n as ReindexStmt;
      if ((r.params ?? []).some((p) => 'DefElem' in p && p.DefElem.defname === 'concurrently' && defBool(p.DefElem)))
        nonTransactional(ctx, 'REINDEX CONCURRENTLY');
      else if (r.kind === 'REINDEX_OBJECT_SYSTEM' || r.kind === 'REINDEX_OBJECT_DATABASE')
        nonTransactional(ctx, r.kind === 'REINDEX_OBJECT_SYSTEM' ? 'REINDEX SYSTEM' : 'REINDEX DATABASE');
      return true;
    }
    case 'ClusterStmt':
      if (!(n as ClusterStmt).relation) nonTransactional(ctx, 'CLUSTER without a table');
      return true;
  }
  if (!key.endsWith('Stmt') || NOT_DDL.has(key)) return false;
  ddl(key, n, ctx);
  return true;
}

function write(ctx: Ctx, op: string, rv: RangeVar): void {
  ctx.effects.push({ type: 'write', op, rel: relName(rv), at: ctx.at(rv.location) });
}

function nonTransactional(ctx: Ctx, what: string, severity: 'error' | 'warning' = 'error', why?: string): void {
  ctx.effects.push({
    type: 'non-transactional',
    what,
    severity,
    why: why ?? `${what} cannot run inside a transaction block, and tiergate runs every tier in one transaction`,
    at: ctx.at(),
  });
}

const ROW_LOCKS: Record<string, string> = {
  LCS_FORKEYSHARE: 'FOR KEY SHARE',
  LCS_FORSHARE: 'FOR SHARE',
  LCS_FORNOKEYUPDATE: 'FOR NO KEY UPDATE',
  LCS_FORUPDATE: 'FOR UPDATE',
};

function call(ctx: Ctx, fc: FuncCall): void {
  const parts = (fc.funcname ?? []).map((p) => ('String' in p ? (p.String.sval ?? '') : ''));
  const name = parts[parts.length - 1];
  const builtin = parts.length === 1 || parts[0] === 'pg_catalog';
  if (builtin && (name === 'nextval' || name === 'setval')) ctx.effects.push({ type: 'sequence', what: `${name}()`, at: ctx.at(fc.location) });
  if (parts[0] === 'pg_catalog') return;
  ctx.effects.push({ type: 'call', name: parts.map(quoteIdent).join('.'), at: ctx.at(fc.location) });
}

/** DDL: one `ddl` effect, plus the relations it creates, drops or alters. */
function ddl(key: string, n: Record<string, unknown>, ctx: Ctx): void {
  const at = ctx.at();
  const push = (what: string, temp = false) => ctx.effects.push({ type: 'ddl', what, temp, at });
  switch (key) {
    case 'CreateStmt': {
      const rv = (n as CreateStmt).relation;
      const rel = rv ? relName(rv) : undefined;
      push('CREATE TABLE', rel?.temp);
      if (rel) ctx.effects.push({ type: 'create', rel, at: ctx.at(rv?.location) });
      return;
    }
    case 'CreateTableAsStmt': {
      const c = n as CreateTableAsStmt;
      const rv = c.into?.rel;
      const rel = rv ? relName(rv) : undefined;
      push(c.objtype === 'OBJECT_MATVIEW' ? 'CREATE MATERIALIZED VIEW' : 'CREATE TABLE AS', rel?.temp);
      if (rel) ctx.effects.push({ type: 'create', rel, at: ctx.at(rv?.location) });
      walk(c.query, ctx); // the query runs
      return;
    }
    case 'CreateSchemaStmt':
      push('CREATE SCHEMA');
      walk((n as CreateSchemaStmt).schemaElts, ctx); // CREATE SCHEMA s CREATE TABLE t …
      return;
    case 'DropStmt': {
      const d = n as DropStmt;
      const type = objectLabel(d.removeType);
      push(`DROP ${type}`);
      if (d.concurrent) nonTransactional(ctx, `DROP ${type} CONCURRENTLY`);
      if (d.removeType === 'OBJECT_TABLE' || d.removeType === 'OBJECT_MATVIEW') {
        for (const o of d.objects ?? []) {
          const parts = 'List' in o ? (o.List.items ?? []).map((i) => ('String' in i ? (i.String.sval ?? '') : '')) : [];
          const name = parts.pop();
          if (name) ctx.effects.push({ type: 'drop', rel: makeRel(parts[parts.length - 1], name, false), at });
        }
      }
      if (d.removeType === 'OBJECT_SCHEMA' && d.behavior === 'DROP_CASCADE') {
        const names = (d.objects ?? []).map((o) => ('String' in o ? o.String.sval : '?')).join(', ');
        ctx.effects.push({ type: 'opaque', why: `DROP SCHEMA ${names} CASCADE drops tables the script does not name`, at });
      }
      return;
    }
    case 'AlterTableStmt': {
      const a = n as AlterTableStmt;
      push(`ALTER ${objectLabel(a.objtype ?? 'OBJECT_TABLE')}`);
      if (a.relation && (a.objtype === 'OBJECT_TABLE' || a.objtype === 'OBJECT_MATVIEW' || a.objtype === undefined))
        ctx.effects.push({ type: 'alter', rel: relName(a.relation), at: ctx.at(a.relation.location) });
      return;
    }
    case 'RenameStmt':
    case 'AlterObjectSchemaStmt': {
      const r = n as RenameStmt & AlterObjectSchemaStmt;
      const type = r.renameType ?? r.objectType;
      push(`ALTER ${objectLabel(type)} ${key === 'RenameStmt' ? 'RENAME' : 'SET SCHEMA'}`);
      const onTable = type === 'OBJECT_TABLE' || r.relationType === 'OBJECT_TABLE';
      if (r.relation && onTable) ctx.effects.push({ type: 'alter', rel: relName(r.relation), at: ctx.at(r.relation.location) });
      return;
    }
    case 'IndexStmt':
      push('CREATE INDEX');
      if ((n as IndexStmt).concurrent) nonTransactional(ctx, 'CREATE INDEX CONCURRENTLY');
      return;
    case 'ViewStmt':
      push('CREATE VIEW', (n as ViewStmt).view?.relpersistence === 't');
      return;
    case 'CreateSeqStmt':
      push('CREATE SEQUENCE', (n as CreateSeqStmt).sequence?.relpersistence === 't');
      return;
    case 'CreateFunctionStmt':
      push((n as CreateFunctionStmt).is_procedure ? 'CREATE PROCEDURE' : 'CREATE FUNCTION');
      return;
    case 'DefineStmt':
      push(`CREATE ${objectLabel((n as DefineStmt).kind)}`);
      return;
    case 'GrantStmt':
      push((n as GrantStmt).is_grant ? 'GRANT' : 'REVOKE');
      return;
    case 'AlterEnumStmt':
      push('ALTER TYPE');
      if ((n as AlterEnumStmt).newVal !== undefined)
        nonTransactional(
          ctx,
          'ALTER TYPE … ADD VALUE',
          'warning',
          'ALTER TYPE … ADD VALUE cannot run inside a transaction block before PostgreSQL 12, and from 12 on the new value cannot be used before the transaction commits',
        );
      return;
    case 'AlterDatabaseStmt':
      push('ALTER DATABASE');
      if (((n as AlterDatabaseStmt).options ?? []).some((o) => 'DefElem' in o && o.DefElem.defname === 'tablespace'))
        nonTransactional(ctx, 'ALTER DATABASE … SET TABLESPACE');
      return;
  }
  const what = DDL_LABELS[key] ?? key.replace(/Stmt$/, '').replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase();
  push(what);
  if (NON_TRANSACTIONAL_DDL.has(key)) nonTransactional(ctx, what);
}

const DDL_LABELS: Record<string, string> = {
  CreatedbStmt: 'CREATE DATABASE',
  DropdbStmt: 'DROP DATABASE',
  CreateTableSpaceStmt: 'CREATE TABLESPACE',
  DropTableSpaceStmt: 'DROP TABLESPACE',
  AlterSystemStmt: 'ALTER SYSTEM',
  CreateSubscriptionStmt: 'CREATE SUBSCRIPTION',
  DropSubscriptionStmt: 'DROP SUBSCRIPTION',
  CommentStmt: 'COMMENT',
  CreateTrigStmt: 'CREATE TRIGGER',
  CreateEnumStmt: 'CREATE TYPE … AS ENUM',
  CompositeTypeStmt: 'CREATE TYPE',
  CreateRangeStmt: 'CREATE TYPE … AS RANGE',
  RuleStmt: 'CREATE RULE',
  CreatePLangStmt: 'CREATE LANGUAGE',
  SecLabelStmt: 'SECURITY LABEL',
  AlterOwnerStmt: 'ALTER … OWNER TO',
  CreateForeignTableStmt: 'CREATE FOREIGN TABLE',
  CreateStatsStmt: 'CREATE STATISTICS',
  AlterStatsStmt: 'ALTER STATISTICS',
  CreateEventTrigStmt: 'CREATE EVENT TRIGGER',
  AlterEventTrigStmt: 'ALTER EVENT TRIGGER',
  GrantRoleStmt: 'GRANT role',
  AlterDefaultPrivilegesStmt: 'ALTER DEFAULT PRIVILEGES',
};

/**
 * Statements PostgreSQL refuses inside a transaction block (PreventInTransactionBlock).
 * CREATE / DROP SUBSCRIPTION only when they create or drop a replication slot, which is the default.
 */
const NON_TRANSACTIONAL_DDL = new Set([
  'CreatedbStmt',
  'DropdbStmt',
  'CreateTableSpaceStmt',
  'DropTableSpaceStmt',
  'AlterSystemStmt',
  'CreateSubscriptionStmt',
  'DropSubscriptionStmt',
]);

function objectLabel(t: string | undefined): string {
  if (!t) return 'OBJECT';
  if (t === 'OBJECT_MATVIEW') return 'MATERIALIZED VIEW';
  if (t === 'OBJECT_TABCONSTRAINT') return 'TABLE … CONSTRAINT';
  return t.replace(/^OBJECT_/, '').replace(/_/g, ' ');
}

function transactionLabel(t: TransactionStmt): string {
  const labels: Record<string, string> = {
    TRANS_STMT_BEGIN: 'BEGIN',
    TRANS_STMT_START: 'START TRANSACTION',
    TRANS_STMT_COMMIT: 'COMMIT',
    TRANS_STMT_ROLLBACK: 'ROLLBACK',
    TRANS_STMT_SAVEPOINT: 'SAVEPOINT',
    TRANS_STMT_RELEASE: 'RELEASE SAVEPOINT',
    TRANS_STMT_ROLLBACK_TO: 'ROLLBACK TO SAVEPOINT',
    TRANS_STMT_PREPARE: 'PREPARE TRANSACTION',
    TRANS_STMT_COMMIT_PREPARED: 'COMMIT PREPARED',
    TRANS_STMT_ROLLBACK_PREPARED: 'ROLLBACK PREPARED',
  };
  return labels[t.kind ?? ''] ?? 'transaction control';
}

/** `(ANALYZE)` and `(CONCURRENTLY true)` are on; `(ANALYZE false)` is off. */
function defBool(d: DefElem): boolean {
  const arg = d.arg as Node | undefined;
  if (!arg) return true;
  if ('Boolean' in arg) return arg.Boolean.boolval === true;
  if ('String' in arg) return !/^(false|off|0|no)$/i.test(arg.String.sval ?? '');
  if ('Integer' in arg) return arg.Integer.ival !== 0 && arg.Integer.ival !== undefined;
  return true;
}

function relName(rv: RangeVar): RelName {
  return makeRel(rv.schemaname, rv.relname ?? '', rv.relpersistence === 't');
}

function makeRel(schema: string | undefined, name: string, temp: boolean): RelName {
  const text = schema ? `${quoteIdent(schema)}.${quoteIdent(name)}` : quoteIdent(name);
  return { schema, name, text, temp: temp || schema === 'pg_temp' };
}

/** Quotes a name only when it needs it (upper case, spaces, …), so that `to_regclass(name)` reads it back. */
function quoteIdent(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

// ───────────────────────────── DO blocks (PL/pgSQL) ─────────────────────────────

/** elog.h's ERROR level: what `RAISE EXCEPTION` (and a bare `RAISE`) raises. */
const ELOG_ERROR = 21;

function doBlock(ctx: Ctx, n: DoStmt): void {
  let language = 'plpgsql';
  let body: string | undefined;
  let bodyByte: number | undefined;
  for (const a of n.args ?? []) {
    if (!('DefElem' in a)) continue;
    const d = a.DefElem;
    const value = d.arg && 'String' in d.arg ? d.arg.String.sval : undefined;
    if (d.defname === 'language' && value) language = value.toLowerCase();
    if (d.defname === 'as') {
      body = value ?? '';
      bodyByte = d.location;
    }
  }
  const at = ctx.at();
  const block: DoBlock = { at, language, raisesException: false, asserts: false, locks: false, invalid: false };
  ctx.block ??= block;
  if (language !== 'plpgsql') {
    ctx.effects.push({ type: 'opaque', why: `DO block in language ${language} is not analysed`, at });
    return;
  }
  let tag = '$tiergate$';
  while (body?.includes(tag)) tag = `$tiergate${tag.length}$`;
  let fn: unknown;
  try {
    fn = ctx.pg.parsePlPgSQLSync(`DO ${tag}${body ?? ''}${tag}`);
  } catch (e) {
    block.invalid = true;
    ctx.effects.push({ type: 'invalid', message: `the DO block's PL/pgSQL does not parse (${(e as Error).message})`, at });
    return;
  }
  const before = ctx.effects.length;
  walkPlpgsql(fn, 1, ctx, block, (lineno) => ctx.bodyLine(bodyByte, lineno));
  if (ctx.effects.slice(before).some((e) => e.type === 'lock')) block.locks = true;
}

/** Walks PL/pgSQL's JSON tree, parsing the SQL embedded in its statements. */
function walkPlpgsql(node: unknown, lineno: number, ctx: Ctx, block: DoBlock, lineAt: (lineno: number) => number): void {
  if (Array.isArray(node)) {
    for (const n of node) walkPlpgsql(n, lineno, ctx, block, lineAt);
    return;
  }
  if (!isObject(node)) return;
  if (typeof node.lineno === 'number' && node.lineno > 0) lineno = node.lineno;
  for (const [key, value] of Object.entries(node)) {
    const v = isObject(value) ? value : {};
    switch (key) {
      case 'PLpgSQL_stmt_raise':
        if (v.elog_level === ELOG_ERROR) block.raisesException = true;
        break;
      case 'PLpgSQL_stmt_assert':
        block.asserts = true;
        break;
      case 'PLpgSQL_stmt_commit':
      case 'PLpgSQL_stmt_rollback':
        ctx.effects.push({
          type: 'transaction',
          what: `${key === 'PLpgSQL_stmt_commit' ? 'COMMIT' : 'ROLLBACK'} in a DO block`,
          at: lineAt(typeof v.lineno === 'number' ? v.lineno : lineno),
        });
        continue;
      case 'PLpgSQL_stmt_dynexecute':
      case 'PLpgSQL_stmt_dynfors': {
        const line = typeof v.lineno === 'number' ? v.lineno : lineno;
        dynamicSql(v.query, ctx, lineAt(line));
        const { query: _query, ...rest } = v;
        walkPlpgsql(rest, line, ctx, block, lineAt);
        continue;
      }
      case 'dynquery':
        dynamicSql(value, ctx, lineAt(lineno));
        continue;
      case 'PLpgSQL_expr':
        embeddedSql(String(v.query ?? ''), Number(v.parseMode ?? 0), ctx, lineAt(lineno));
        continue;
    }
    walkPlpgsql(value, lineno, ctx, block, lineAt);
  }
}

/** SQL in a PL/pgSQL statement: a whole statement (parseMode 0), an expression (2) or an assignment (3–5). */
function embeddedSql(query: string, parseMode: number, parent: Ctx, at: number): void {
  let sql = query;
  if (parseMode === 2) sql = `SELECT ${query}`;
  else if (parseMode >= 3) {
    const m = /:=|=/.exec(query); // `target := expression`
    if (!m) return;
    sql = `SELECT ${query.slice(m.index + m[0].length)}`;
  }
  let tree;
  try {
    tree = parent.pg.parseSync(sql);
  } catch (e) {
    if (parseMode === 0) parent.effects.push({ type: 'invalid', message: `SQL in the DO block does not parse (${(e as Error).message})`, at });
    return;
  }
  const ctx = nestedCtx(parent, at);
  for (const raw of tree.stmts ?? []) walk(raw.stmt, ctx);
}

/** `EXECUTE 'DELETE FROM t'` is read like the statement it runs; a string built at run time cannot be. */
function dynamicSql(expr: unknown, ctx: Ctx, at: number): void {
  const query = isObject(expr) && isObject(expr.PLpgSQL_expr) ? String(expr.PLpgSQL_expr.query ?? '') : '';
  let literal: string | undefined;
  let target: Node | undefined;
  try {
    target = ctx.pg.parseSync(`SELECT ${query}`).stmts?.[0]?.stmt;
    const targets = target && 'SelectStmt' in target ? (target.SelectStmt.targetList ?? []) : [];
    const v = targets.length === 1 && targets[0] && 'ResTarget' in targets[0] ? targets[0].ResTarget.val : undefined;
    if (v && 'A_Const' in v && v.A_Const.sval) literal = v.A_Const.sval.sval;
  } catch {
    // not an expression we can read: dynamic
  }
  if (literal !== undefined) {
    embeddedSql(literal, 0, ctx, at);
    return;
  }
  ctx.effects.push({ type: 'opaque', why: 'EXECUTE of a string built at run time', at });
  walk(target, nestedCtx(ctx, at)); // the functions that build the string do run
}

// ───────────────────────────── touched relations ─────────────────────────────

/**
 * The relations a script changes, read with PostgreSQL's parser: DML targets
 * (also inside CTEs, EXPLAIN ANALYZE, and DO blocks, whose PL/pgSQL is parsed
 * too, constant `EXECUTE '…'` strings included), created, dropped and altered
 * tables. Function bodies created by the script are not run, so not read.
 * What cannot be known statically (a called function's writes, dynamic SQL,
 * `DROP SCHEMA … CASCADE`) is listed in `calls` and `incomplete`.
 *
 * @example
 * await touchedRelations('WITH d AS (DELETE FROM axis.ownership RETURNING *) INSERT INTO log SELECT * FROM d');
 * // { writes: ['axis.ownership', 'log'], creates: [], drops: [], alters: [], calls: [], incomplete: [] }
 */
export async function touchedRelations(sql: string): Promise<TouchedRelations> {
  const pg = await loadParser();
  const { src, statements } = await parseScript(sql);
  const sets = { writes: new Set<string>(), creates: new Set<string>(), drops: new Set<string>(), alters: new Set<string>(), calls: new Set<string>() };
  const incomplete: string[] = [];
  for (const stmt of statements) {
    for (const e of analyzeStatement(pg, src, stmt).effects) {
      if (e.type === 'write') sets.writes.add(e.rel.text);
      else if (e.type === 'create') sets.creates.add(e.rel.text);
      else if (e.type === 'drop') sets.drops.add(e.rel.text);
      else if (e.type === 'alter') sets.alters.add(e.rel.text);
      else if (e.type === 'call') sets.calls.add(e.name);
      else if (e.type === 'opaque' || e.type === 'invalid') incomplete.push(`line ${src.position(e.at).line}: ${e.type === 'opaque' ? e.why : e.message}`);
    }
  }
  return {
    writes: [...sets.writes],
    creates: [...sets.creates],
    drops: [...sets.drops],
    alters: [...sets.alters],
    calls: [...sets.calls],
    incomplete,
  };
}

// ───────────────────────────── lint ─────────────────────────────

/**
 * Static checks of every tier file of a plan, with PostgreSQL's own parser.
 * Returns the findings in plan order, then by position; an empty array means
 * the plan is clean. Errors break a guarantee (a gated file without its
 * guard, DML in a structure tier, a statement that cannot run in the tier's
 * transaction); warnings are advice.
 *
 * @example
 * for (const f of await lintPlan(loadPlan('plans/axis-governance')))
 *   console.log(`${f.file}:${f.line}:${f.column} ${f.severity} ${f.message} [${f.rule}]`);
 */
export async function lintPlan(plan: Plan): Promise<LintFinding[]> {
  const pg = await loadParser();
  const findings: LintFinding[] = [];
  for (const tier of plan.tiers) {
    const tierFindings = await lintTier(pg, plan, tier);
    tierFindings.sort((a, b) => a.line - b.line || a.column - b.column);
    findings.push(...tierFindings);
  }
  return findings;
}

async function lintTier(pg: PgQuery, plan: Plan, tier: Tier): Promise<LintFinding[]> {
  const findings: LintFinding[] = [];
  const src = new SourceText(tier.sql);
  const report = (severity: LintFinding['severity'], rule: LintRule, at: number, message: string) => {
    const { line, column } = src.position(at);
    findings.push({ severity, tier: tier.id, file: tier.file, line, column, rule, message });
  };
  const name = `${tier.kind} tier ${tier.id}`;

  const first = skipTrivia(tier.sql, 0);
  if (!/^\s*(--|\/\*)/.test(tier.sql.replace(/^\uFEFF/, ''))) {
    const also = [tier.gated && 'its gate', tier.kind === 'data' && 'its post-condition', tier.kind !== 'preflight' && tier.kind !== 'verify' && 'how it is reverted'].filter(Boolean);
    report('warning', 'no-header', Math.min(first, tier.sql.length),
      `${tier.file} does not open with a comment: say what ${name} does${also.length ? ` (${also.join(', ')})` : ''}, so that the file reads on its own`);
  }

  let statements: SqlStatement[];
  try {
    statements = (await parseScript(tier.sql)).statements;
  } catch (e) {
    if (!(e instanceof SqlSyntaxError)) throw e;
    report('error', 'parse', e.position, `${e.parserMessage}: PostgreSQL would refuse this file`);
    return findings;
  }
  const analyses = statements.map((s) => analyzeStatement(pg, src, s));
  const label = (s: SqlStatement | undefined) => (s ? statementLabel(s.ast) : 'nothing');

  // gated tiers open with their own guard; data tiers end with their assertion
  if (tier.gated) {
    const guard = analyses[0]?.block;
    if (!guard || !isDo(statements[0]?.ast)) {
      report('error', 'gated-without-guard', statements[0]?.start ?? first,
        `gated ${name} opens with ${label(statements[0])}, not with a DO block: open it with DO $$ … RAISE EXCEPTION … $$ that stops the file when the gate${plan.gate ? ` '${plan.gate.name}'` : ''} is closed, so that it is safe even when run by hand (psql -1 -f)`);
    } else if (!guard.invalid && !guard.raisesException) {
      report('warning', 'gated-without-guard', guard.at,
        `the guard of gated ${name} (its first DO block) never RAISEs EXCEPTION: it cannot stop the file when the gate is closed`);
    } else if (!guard.invalid && !guard.locks) {
      report('warning', 'guard-without-lock', guard.at,
        `the guard of gated ${name} reads the gate without locking it: an approval revoked meanwhile is not seen; read it with SELECT … FOR SHARE`);
    }
  }
  if (tier.kind === 'data') {
    const lastStmt = statements[statements.length - 1];
    const last = analyses[analyses.length - 1]?.block;
    if (!lastStmt || !isDo(lastStmt.ast) || statements.length < (tier.gated ? 2 : 1)) {
      report('error', 'data-without-assertion', lastStmt?.start ?? first,
        `${name} ends with ${statements.length < 2 && tier.gated ? 'its guard' : label(lastStmt)}, not with a DO block asserting its post-condition: end it with DO $$ … RAISE EXCEPTION … $$ checking the result${tier.post.length ? ` (${tier.post.map((p) => p.expr).join(', ')})` : ''}, so that a wrong result rolls the tier back`);
    } else if (last && !last.invalid && !last.raisesException && !last.asserts) {
      report('warning', 'data-without-assertion', last.at, `the last DO block of ${name} never RAISEs EXCEPTION nor ASSERTs: it cannot roll a wrong result back`);
    }
  }

  const created: RelName[] = [];
  const createdHere = (rel: RelName) => created.find((c) => c.name === rel.name && (c.schema === rel.schema || !c.schema || !rel.schema));
  const readOnly = tier.kind === 'preflight' || tier.kind === 'verify';
  const readOnlyWhy = `${tier.kind} tiers are read-only (they run in a read-only transaction${tier.kind === 'preflight' ? ', on the rehearsal\'s source too' : ''})`;
  for (const { effects } of analyses) {
    for (const e of effects) {
      switch (e.type) {
        case 'invalid':
          report('error', 'parse', e.at, `${e.message}: PostgreSQL would refuse the DO block when it runs`);
          break;
        case 'transaction':
          report('error', 'non-transactional', e.at,
            `${e.what} inside a tier file breaks the tier's one transaction (tiergate begins and commits it, with the gate check, post-conditions and ledger row): remove it`);
          break;
        case 'non-transactional':
          report(e.severity, 'non-transactional', e.at, `${e.why}: ${e.severity === 'error' ? 'remove it from the tier or use a form that runs in a transaction' : 'do not use the new value in the same tier'}`);
          break;
        case 'create':
          created.push(e.rel);
          break;
        case 'write': {
          const mine = createdHere(e.rel);
          if (tier.kind === 'structure' && !mine && e.op !== 'REFRESH MATERIALIZED VIEW') {
            report('error', 'dml-in-structure', e.at,
              `${e.op} on '${e.rel.text}' in ${name}: structure tiers change the schema only (they are never gated); move the data change to a gated data tier (DML into a table this file creates is fine)`);
          }
          if (readOnly && !e.rel.temp && !mine?.temp) {
            report('error', 'write-in-readonly', e.at, `${e.op} on '${e.rel.text}' in ${name}: ${readOnlyWhy}; move the change to a structure or data tier`);
          }
          break;
        }
        case 'ddl':
          if (tier.kind === 'data' && !e.temp) {
            report('error', 'ddl-in-data', e.at, `${e.what} in ${name}: data tiers change rows only; move the DDL to a structure tier (temporary tables are fine)`);
          }
          if (readOnly) report('error', 'write-in-readonly', e.at, `${e.what} in ${name}: ${readOnlyWhy}; move it to a structure tier${e.temp ? ' (PostgreSQL refuses even temporary tables there)' : ''}`);
          break;
        case 'lock':
          if (readOnly && e.rowLock) report('error', 'write-in-readonly', e.at, `SELECT … ${e.rowLock} in ${name}: ${readOnlyWhy}, where PostgreSQL refuses row locks; read without ${e.rowLock}`);
          break;
        case 'sequence':
          if (readOnly) report('error', 'write-in-readonly', e.at, `${e.what} in ${name}: ${readOnlyWhy}, where PostgreSQL refuses ${e.what}; read the sequence's last_value instead`);
          break;
      }
    }
  }
  return findings;
}

function isDo(ast: unknown): boolean {
  return isObject(ast) && 'DoStmt' in ast;
}

/** `INSERT`, `CREATE TABLE`, `a DO block`: what a statement is, for messages. */
function statementLabel(ast: unknown): string {
  const key = isObject(ast) ? Object.keys(ast)[0] : undefined;
  if (!key) return 'a statement';
  return STATEMENT_LABELS[key] ?? DDL_LABELS[key] ?? key.replace(/Stmt$/, '').replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase();
}

const STATEMENT_LABELS: Record<string, string> = {
  DoStmt: 'a DO block',
  CreateStmt: 'CREATE TABLE',
  IndexStmt: 'CREATE INDEX',
  ViewStmt: 'CREATE VIEW',
  DropStmt: 'DROP',
  VariableSetStmt: 'SET',
  VariableShowStmt: 'SHOW',
  TransactionStmt: 'a transaction command',
  CreateTableAsStmt: 'CREATE TABLE AS',
  DefineStmt: 'CREATE',
};
