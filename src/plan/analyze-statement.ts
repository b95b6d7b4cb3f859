/**
 * What a statement does, read from its parse tree: the relations it writes,
 * creates, drops or alters, its DDL, transaction control, locks, calls, and
 * what cannot be known statically. DO blocks are read too, with PostgreSQL's
 * own PL/pgSQL grammar, and the SQL embedded in them with the SQL grammar.
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
import { isObject, type PgQuery, type SqlStatement } from './parse-script.js';
import { skipTrivia, type SourceText } from './source-text.js';
import { ddlLabel, objectLabel, transactionLabel } from './statement-label.js';

/** A relation as the script names it. */
export interface RelName {
  schema: string | undefined;
  name: string;
  /** `schema.table` or `table`, quoted only when needed */
  text: string;
  /** declared or known temporary (CREATE TEMP …, pg_temp.x) */
  temp: boolean;
}

/** What one statement does, each with the string index it was found at. */
export type Effect =
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
  /** `SET` / `SET LOCAL` / `RESET` / `SET ROLE` …, `DISCARD`, `set_config()`: changes the session's settings */
  | { type: 'setting'; what: string; at: number }
  | { type: 'opaque'; why: string; at: number }
  | { type: 'invalid'; message: string; at: number };

/** What a DO block's PL/pgSQL body does, for the guard and assertion rules. */
export interface DoBlock {
  at: number;
  language: string;
  raisesException: boolean;
  /** the SQLSTATE of each RAISE EXCEPTION of the body, in order: null where it cannot be read (a condition name, an expression, a re-raise) */
  raised: (string | null)[];
  asserts: boolean;
  locks: boolean;
  /** the body does not parse */
  invalid: boolean;
}

export interface Analysis {
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

export function analyzeStatement(pg: PgQuery, src: SourceText, stmt: SqlStatement): Analysis {
  const ctx = topLevelCtx(pg, src, stmt);
  walk(stmt.ast, ctx);
  return { effects: ctx.effects, block: ctx.block };
}

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
      if (c.is_program) {
        const what = `COPY ${c.is_from ? 'FROM' : 'TO'} PROGRAM`;
        nonTransactional(ctx, what, 'error', `${what} runs a program on the database server: what the program does is not undone when the tier rolls back`);
      } else if (!c.is_from && c.filename) {
        nonTransactional(ctx, 'COPY … TO a file', 'error', "COPY … TO a file writes a file on the database server: it is not undone when the tier rolls back");
      }
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
    case 'VariableSetStmt': {
      const v = n as { kind?: string; name?: string };
      ctx.effects.push({ type: 'setting', what: `${v.kind === 'VAR_RESET' || v.kind === 'VAR_RESET_ALL' ? 'RESET' : 'SET'} ${v.name ?? 'ALL'}`, at: ctx.at() });
      if (v.name === 'session_authorization' && v.kind !== 'VAR_RESET') {
        nonTransactional(ctx, 'SET SESSION AUTHORIZATION', 'warning',
          "SET SESSION AUTHORIZATION outlasts the tier (tiergate gives back every other setting after a file): the ledger's row and the tiers after it would run as that user (SET ROLE is given back)");
      }
      return false;
    }
    case 'DiscardStmt':
      ctx.effects.push({ type: 'setting', what: 'DISCARD', at: ctx.at() });
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
  if (builtin && name === 'set_config') ctx.effects.push({ type: 'setting', what: 'set_config()', at: ctx.at(fc.location) });
  if (builtin && name === 'lo_export') {
    nonTransactional(ctx, 'lo_export()', 'error', "lo_export() writes a file on the database server: it is not undone when the tier rolls back");
  }
  if (builtin && name === 'pg_advisory_unlock_all') {
    nonTransactional(ctx, 'pg_advisory_unlock_all()', 'error',
      "pg_advisory_unlock_all() releases every session advisory lock, tiergate's rollout lock too: another run could start while this one runs (a lock of the file's own: pg_advisory_xact_lock, which ends with the tier)");
  }
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
  const what = ddlLabel(key);
  push(what);
  if (NON_TRANSACTIONAL_DDL.has(key)) nonTransactional(ctx, what);
}

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
  const block: DoBlock = { at, language, raisesException: false, raised: [], asserts: false, locks: false, invalid: false };
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

/** A RAISE's options (`USING ERRCODE = …, MESSAGE = …`), as PL/pgSQL's parse tree gives them. */
function raiseOptions(raise: Record<string, unknown>): Record<string, unknown>[] {
  return (Array.isArray(raise.options) ? raise.options : []).flatMap((o) => (isObject(o) && isObject(o.PLpgSQL_raise_option) ? [o.PLpgSQL_raise_option] : []));
}

/**
 * A RAISE's ERRCODE option: the five characters of a literal
 * (`ERRCODE = 'TG001'`, in whatever case it is written), null for any other
 * expression, undefined when the RAISE gives none.
 */
function errcodeLiteral(raise: Record<string, unknown>): string | null | undefined {
  const errcode = raiseOptions(raise).find((o) => o.opt_type === RAISE_OPTION_ERRCODE);
  if (!errcode) return undefined;
  const query = isObject(errcode.expr) && isObject(errcode.expr.PLpgSQL_expr) ? errcode.expr.PLpgSQL_expr.query : null;
  return (typeof query === 'string' ? /^\s*'([0-9A-Za-z]{5})'\s*$/.exec(query)?.[1] : undefined) ?? null;
}

/**
 * The SQLSTATE a RAISE EXCEPTION raises, from its parse tree: `RAISE
 * SQLSTATE 'TG001'`, `USING ERRCODE = 'TG001'` (a literal code), P0001 when
 * it names none. Null where it cannot be told without running it: a
 * condition name (`RAISE division_by_zero`), an ERRCODE that is an
 * expression or a name, a bare `RAISE` (re-raising what was caught).
 */
function raisedSqlstate(raise: Record<string, unknown>): string | null {
  const code = (text: string | null) => (text !== null && /^[0-9A-Z]{5}$/.test(text) ? text : null);
  if (typeof raise.condname === 'string') return code(raise.condname);
  const errcode = errcodeLiteral(raise);
  if (errcode !== undefined) return code(errcode);
  // a RAISE with neither a message nor options re-raises the caught error (only valid in a handler)
  return raise.message === undefined && !raiseOptions(raise).length ? null : 'P0001';
}

/**
 * A RAISE's ERRCODE written as a SQLSTATE in lower case (`'tg001'`): not
 * one to the server, which then looks for a condition of that name (none
 * has digits) and refuses the RAISE when it runs. Null for anything else.
 */
function lowerCaseErrcode(raise: Record<string, unknown>): string | null {
  const literal = errcodeLiteral(raise);
  return literal && /[a-z]/.test(literal) && /[0-9]/.test(literal) ? literal : null;
}

/** PL/pgSQL's PLPGSQL_RAISEOPTION_ERRCODE (the first of its raise options). */
const RAISE_OPTION_ERRCODE = 0;

/** PL/pgSQL's raise options (PLpgSQL_raise_option_type), by number, as RAISE … USING names them. */
const RAISE_OPTIONS = ['ERRCODE', 'MESSAGE', 'DETAIL', 'HINT', 'COLUMN', 'CONSTRAINT', 'DATATYPE', 'TABLE', 'SCHEMA'];

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
      case 'PLpgSQL_stmt_raise': {
        if (v.elog_level === ELOG_ERROR) {
          block.raisesException = true;
          block.raised.push(raisedSqlstate(v));
        }
        // an option given twice (USING ERRCODE = …, ERRCODE = …): the parser takes it, the server refuses the block when it runs
        const kinds = raiseOptions(v).map((o) => o.opt_type);
        const twice = kinds.find((k, i) => typeof k === 'number' && kinds.indexOf(k) !== i);
        const lowered = lowerCaseErrcode(v);
        const at = lineAt(typeof v.lineno === 'number' ? v.lineno : lineno);
        if (lowered) {
          ctx.effects.push({
            type: 'invalid',
            message: `ERRCODE '${lowered}' is no SQLSTATE (five digits or capital letters): PostgreSQL looks it up as a condition name, finds none, and refuses the RAISE; write '${lowered.toUpperCase()}'`,
            at,
          });
        }
        if (typeof twice === 'number') ctx.effects.push({ type: 'invalid', message: `RAISE option already specified: ${RAISE_OPTIONS[twice] ?? 'an option'}`, at });
        break;
      }
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
