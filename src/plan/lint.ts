/**
 * Static checks of a plan's tier files, and the SQL facts the engine needs
 * (statement boundaries, the relations a script touches), all read with the
 * real PostgreSQL parser (`libpg-query`, the PostgreSQL 18 grammar; PL/pgSQL
 * bodies of DO blocks with PostgreSQL's own PL/pgSQL grammar).
 *
 * The parser is a ~1 MB WASM module: it is imported lazily, on first use, so
 * that `tiergate --help` never pays for it. This module is the only one that
 * loads it; the others import its types only and take it as an argument:
 * `parse-script.ts` (statements), `analyze-statement.ts` (what a statement
 * does), `touched-relations.ts`, `lint-tier.ts` (the rules), `source-text.ts`
 * (offsets).
 */
import type { Plan } from './load-plan.js';
import { lintTier, type LintFinding } from './lint-tier.js';
import { parseScript, type PgQuery, type SqlStatement } from './parse-script.js';
import { findTouchedRelations, type TouchedRelations } from './touched-relations.js';

export type { LintFinding, LintRule } from './lint-tier.js';
export { SqlSyntaxError, type SqlStatement } from './parse-script.js';
export type { TouchedRelations } from './touched-relations.js';

let pgQueryLoaded: Promise<PgQuery> | undefined;

function loadParser(): Promise<PgQuery> {
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
  return remember(statementsOf, sql, async () => parseScript(await loadParser(), sql).statements);
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
 * // { writes: ['axis.ownership', 'log'], creates: [], drops: [], alters: [], calls: [], incomplete: [] }
 */
export async function touchedRelations(sql: string): Promise<TouchedRelations> {
  return remember(touchedBy, sql, async () => findTouchedRelations(await loadParser(), sql));
}

/*
 * One run reads each tier file up to three times (the one-transaction check
 * before the lock, the relations to watch, the statements to send): parsing
 * through the WASM parser is a good part of a CLI run's own time on a small
 * database, so results are kept per script text (a few, the latest) and
 * shared — callers only read them.
 */
const REMEMBERED = 32;
const statementsOf = new Map<string, Promise<readonly SqlStatement[]>>();
const touchedBy = new Map<string, Promise<TouchedRelations>>();

function remember<T>(cache: Map<string, Promise<T>>, sql: string, compute: () => Promise<T>): Promise<T> {
  let hit = cache.get(sql);
  if (!hit) {
    hit = compute();
    // a script that does not parse is parsed again next time (and fails again, with its error)
    hit.catch(() => cache.delete(sql));
    if (cache.size >= REMEMBERED) cache.delete(cache.keys().next().value!);
    cache.set(sql, hit);
  }
  return hit;
}

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
    const tierFindings = lintTier(pg, plan, tier);
    tierFindings.sort((a, b) => a.line - b.line || a.column - b.column);
    findings.push(...tierFindings);
  }
  return findings;
}
