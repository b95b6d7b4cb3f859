/**
 * The SQL facts the engine needs of a tier file — its statements, exactly
 * where PostgreSQL splits them, and the relations it touches — read with the
 * real PostgreSQL parser (`libpg-query`, the PostgreSQL 18 grammar; PL/pgSQL
 * bodies of DO blocks with PostgreSQL's own PL/pgSQL grammar), and kept in
 * tiergate's cache.
 *
 * The parser is a ~1 MB WASM module: it is imported lazily, on first use, so
 * that `tiergate --help` never pays for it. This module is the only one that
 * loads it; the others import its types only and take it as an argument:
 * `parse-script.ts` (statements), `analyze-statement.ts` (what a statement
 * does), `touched-relations.ts`, `lint-tier.ts` (the rules), `source-text.ts`
 * (offsets).
 */
import { codeStamp, readCache, writeCache } from '../cache.js';
import { sha256 } from './plan.js';
import { parseScript, type PgQuery, type SqlStatement } from './parse-script.js';
import { skipTrivia } from './source-text.js';
import { relationsNamed, type NamedRelation } from './read-relations.js';
import { touchedInParsed, type TouchedRelations } from './touched-relations.js';

export { SqlSyntaxError, type SqlStatement } from './parse-script.js';
export type { TouchedRelations } from './touched-relations.js';

let pgQueryLoaded: Promise<PgQuery> | undefined;

/** The PostgreSQL parser, loaded once, on first use. */
export function loadParser(): Promise<PgQuery> {
  pgQueryLoaded ??= import('libpg-query').then(async (m) => {
    await m.loadModule();
    return m;
  });
  return pgQueryLoaded;
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
export async function splitStatements(sql: string): Promise<readonly SqlStatement[]> {
  return (await factsOf(sql)).statements;
}

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
 * // { writes: ['axis.ownership', 'log'], creates: [], drops: [], alters: [], calls: [], incomplete: [], settings: [] }
 */
export async function touchedRelations(sql: string): Promise<TouchedRelations> {
  const { touched } = await factsOf(sql);
  if (touched instanceof Error) throw touched;
  return touched;
}

/**
 * The relations a query names (see `relationsNamed`), from the same parse
 * as its statements: every one must exist for it to run. Null when that
 * cannot be told (a cross-database name).
 *
 * @example await relationsRead('with n as (select 1) select count(*) from axis.v_governed_collection, n') // [{ schema: 'axis', name: 'v_governed_collection' }]
 */
export async function relationsRead(sql: string): Promise<NamedRelation[] | null> {
  return relationsNamed((await factsOf(sql)).statements.map((s) => s.ast));
}

/** What the engine needs of a script: its statements and the relations it touches (or why they could not be read). */
interface ScriptFacts {
  statements: readonly SqlStatement[];
  touched: TouchedRelations | Error;
}

/*
 * One run reads each tier file up to three times (the one-transaction check
 * before the lock, the relations to watch, the statements to send), and a CLI
 * run would pay for loading the WASM parser (~0.1 s) and parsing the plan
 * (~0.1 s) every time: the facts of a script are kept in memory per script
 * text (a few, the latest) and on disk (tiergate's cache, keyed by the text's
 * sha256 and the code that reads it). Callers only read them.
 */
const REMEMBERED = 32;
const remembered = new Map<string, Promise<ScriptFacts>>();

function factsOf(sql: string): Promise<ScriptFacts> {
  let hit = remembered.get(sql);
  if (!hit) {
    hit = computeFacts(sql);
    // a script that does not parse is parsed again next time (and fails again, with its error)
    hit.catch(() => remembered.delete(sql));
    if (remembered.size >= REMEMBERED) remembered.delete(remembered.keys().next().value!);
    remembered.set(sql, hit);
  }
  return hit;
}

/** The parser's error for `sql` (`syntax error at or near "selec"`), null when it parses. */
export async function parseError(sql: string): Promise<string | null> {
  try {
    await factsOf(sql);
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/** Forgets the scripts read in this process (the disk cache stays): for tests. */
export function forgetScripts(): void {
  remembered.clear();
  notAReadQuery.clear();
}

/** On disk, a statement without its text: the text is the script's, cut at `start`–`end`. */
type StoredFacts = { statements: Omit<SqlStatement, 'sql' | 'line'>[]; touched: TouchedRelations };

let parseStamp: string | null | undefined;

async function computeFacts(sql: string): Promise<ScriptFacts> {
  if (parseStamp === undefined) parseStamp = codeStamp(import.meta.url, PARSE_MODULES, ['libpg-query']);
  const key = parseStamp === null ? null : `${parseStamp}:${sha256(sql)}`;
  const stored = key === null ? undefined : readCache<StoredFacts>('parse', key);
  const restored = stored && restoreFacts(sql, stored);
  if (restored) return restored;
  const pg = await loadParser();
  const parsed = parseScript(pg, sql);
  let touched: TouchedRelations | Error;
  try {
    touched = touchedInParsed(pg, parsed);
  } catch (e) {
    // the statements stand on their own: a failure to read what they touch must not cost the split
    touched = e instanceof Error ? e : new Error(String(e));
  }
  if (key !== null && !(touched instanceof Error)) {
    writeCache('parse', key, { statements: parsed.statements.map(({ start, end, ast }) => ({ start, end, ast })), touched } satisfies StoredFacts);
  }
  return { statements: parsed.statements, touched };
}

/** The modules whose code decides a script's facts (a change to one is a new cache key). */
const PARSE_MODULES = ['sql-facts', 'parse-script', 'analyze-statement', 'touched-relations', 'statement-label', 'source-text'];

/**
 * A stored entry made whole again, or null when it does not describe `sql`:
 * the statements must lie in order inside the text with nothing but blanks,
 * comments and semicolons between them, so that what is sent is always the
 * whole file, cut where the parser cut it.
 */
function restoreFacts(sql: string, stored: StoredFacts): ScriptFacts | null {
  if (!Array.isArray(stored.statements) || !stored.touched || !Array.isArray(stored.touched.writes)) return null;
  const statements: SqlStatement[] = [];
  let at = 0;
  let line = 1;
  let counted = 0;
  for (const s of stored.statements) {
    if (!Number.isInteger(s.start) || !Number.isInteger(s.end) || s.end <= s.start || s.end > sql.length) return null;
    if (skipSeparators(sql, at) !== s.start) return null;
    for (; counted < s.start; counted++) if (sql.charCodeAt(counted) === 10) line++;
    statements.push({ sql: sql.slice(s.start, s.end), start: s.start, end: s.end, line, ast: s.ast });
    at = s.end;
  }
  if (skipSeparators(sql, at) !== sql.length) return null;
  return { statements, touched: stored.touched };
}

function skipSeparators(sql: string, i: number): number {
  for (;;) {
    i = skipTrivia(sql, i);
    if (sql[i] !== ';') return i;
    i++;
  }
}


/**
 * Why a query of the plan's (a metric, a figure, the gate's queries) is not
 * one query that only reads: it holds several statements, or the parser
 * sees it write, create, drop or alter a relation; null when it is one (or
 * the parser cannot tell: the server judges it). The engine refuses such a
 * query before it is sent (src/probe/metrics.ts), and lint before anything
 * connects.
 */
export function whyNotAReadQuery(sql: string): Promise<string | null> {
  // what each was found to be, once per process: lint before the run and every read after it ask the same
  let why = notAReadQuery.get(sql);
  if (why === undefined) {
    why = findWhyNotAReadQuery(sql);
    notAReadQuery.set(sql, why);
  }
  return why;
}

/** What each plan query was found to be: null, a query that only reads; else why not. */
const notAReadQuery = new Map<string, Promise<string | null>>();

async function findWhyNotAReadQuery(sql: string): Promise<string | null> {
  let count: number;
  try {
    count = (await splitStatements(sql)).length;
  } catch {
    return null;
  }
  if (count > 1) return `it holds ${count} statements, and a metric or gate is one query`;
  const touched = await touchedRelations(sql).catch(() => null);
  const changed = touched ? [...new Set([...touched.writes, ...touched.creates, ...touched.drops, ...touched.alters])] : [];
  // a sequence is written by a call, not a statement: nextval() and setval() move it (outside any transaction's rollback)
  if (touched?.sequences.length) changed.push(`a sequence (${touched.sequences.join(', ')})`);
  if (touched?.nonTransactional.length) changed.push(`what no transaction undoes (${touched.nonTransactional.join(', ')})`);
  return changed.length ? `it changes ${changed.join(', ')}, and a metric or gate only reads` : null;
}
