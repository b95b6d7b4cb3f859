import type { QueryResult, Queryable } from '../db/port.js';
import { DbError, DbStepError } from '../errors.js';
import { relationKey, type NamedRelation } from '../plan/read-relations.js';
import { relationsRead, whyNotAReadQuery } from '../plan/sql-facts.js';
import { IDENT, identifierParts, statementName, textLiteral } from './identifiers.js';
import { takeJitOff, TURN_OFF_LOCAL, withoutJitFolded } from './jit.js';

/**
 * The one policy for reading the plan's numbers (metrics, the gate, figures),
 * inside a tier and outside it: a query whose objects do not exist yet reads
 * as `null` ("n/a"); any other error — a lock or statement timeout, a lost
 * connection, a division by zero — is thrown as a {@link MetricReadError}
 * naming the metric, never read as n/a (a gate read under a lock must not
 * look like a closed gate). Each read runs in its own savepoint, so a missing
 * object does not poison the surrounding transaction.
 *
 * A metric is evaluated before and after every tier, always on the same
 * session, and the plan's metrics are queries over views: on a small
 * database planning them costs more than running them (the sample at scale
 * 1: ~100 ms per set planned each time, ~35 ms prepared; see bench/). So
 * each metric is a server-side prepared statement of its session, planned
 * once; PostgreSQL re-plans it by itself when an object it uses changes
 * (docs: PREPARE, "Notes"). A metric the server will not prepare is sent
 * as it is.
 */

/** SQLSTATEs of "the object does not exist (yet)": the only errors that read as n/a. */
export const MISSING_OBJECT = new Set(['42P01', '42883', '42703', '3F000', '42704']);

/** A metric (or the gate, or a figure) could not be read: the error PostgreSQL gave, with the metric's name. */
export class MetricReadError extends DbStepError {
  constructor(
    readonly metric: string,
    cause: DbError,
  ) {
    super(`reading ${metric}`, cause);
  }
}

/**
 * Reads every metric (name → SQL returning one number) inside the caller's
 * transaction; throws at the first that fails for any reason but a missing object.
 *
 * @example await db.transaction((tx) => readMetrics(tx, plan.metrics)) // { owner_gap: 210, critical: null, … }
 */
export async function readMetrics(tx: Queryable, metrics: Record<string, string>, kind = 'metric'): Promise<Record<string, number | null>> {
  const out: Record<string, number | null> = {};
  const entries = Object.entries(metrics);
  if (entries.length === 0) return out;
  for (const [name, sql] of entries) await assertOneQuery(`${kind} '${name}'`, sql);
  // JIT off: compiling the metrics' plans costs more than it saves (src/probe/jit.ts)
  return withoutJitFolded(tx, async () => {
    const together = entries.length > 1 ? await readTogether(tx, entries, kind) : null;
    if (together) return together;
    const absent = entries.length > 1 ? await withoutRelations(tx, entries) : new Set<string>();
    const rest = entries.filter(([name]) => !absent.has(name));
    const some = absent.size > 0 && rest.length > 1 ? await readTogether(tx, rest, kind) : null;
    for (const [name, sql] of entries) {
      out[name] = absent.has(name) ? null : some ? some[name]! : await readPrepared(tx, `${kind} '${name}'`, sql);
    }
    return out;
  });
}

/**
 * The metrics of a set that name a relation that does not exist (yet): each
 * reads as null, as it would alone (PostgreSQL resolves every relation a
 * query names before it runs any of it), without being sent. A set fails
 * whole when one metric's objects are missing — before tier 1 every metric
 * of the bundled plan, after it those over tier 6's views — and was then
 * read metric by metric: three round trips each, and the metrics over one
 * view (the three gaps over axis.v_governed_collection) a pass each
 * instead of one (~35 ms a pass at 6,500 collections). With them set
 * aside, the others are read together again. One round trip: the names
 * (from the parser, `relationsRead`) looked up with `to_regclass`, in
 * the transaction's own search_path. Empty when that cannot be told (a
 * query the parser refuses, a name across databases, a failed lookup):
 * then each is read on its own, as before.
 */
async function withoutRelations(tx: Queryable, entries: [string, string][]): Promise<Set<string>> {
  const named = await Promise.all(entries.map(async ([name, sql]) => [name, await relationsRead(sql).catch(() => null)] as const));
  const relations = new Map<string, NamedRelation>();
  for (const [, list] of named) for (const r of list ?? []) relations.set(relationKey(r), r);
  if (relations.size === 0) return new Set();
  const rows = [...relations.values()].map((r, i) => `(${i}, ${r.schema === null ? 'null::text' : textLiteral(r.schema)}, ${textLiteral(r.name)})`);
  let present: boolean[];
  try {
    const r = await inSavepoint<{ ok: boolean }>(
      tx,
      `select to_regclass(case when s is null then format('%I', n) else format('%I.%I', s, n) end) is not null as ok from (values ${rows.join(', ')}) v(i, s, n) order by i`,
    );
    present = r.rows.map((x) => x.ok === true);
  } catch {
    await rollbackMetric(tx).catch(() => undefined);
    return new Set();
  }
  if (present.length !== relations.size) return new Set();
  const exists = new Map([...relations.keys()].map((k, i) => [k, present[i]]));
  return new Set(named.filter(([, list]) => list?.some((r) => !exists.get(relationKey(r)))).map(([name]) => name));
}

/**
 * Every metric of a set in ONE prepared statement (`select (m1) as m0,
 * (m2) as m1, …`): a set is read before and after every tier, and one
 * statement per metric, each in its own savepoint, was three round trips a
 * metric — 270 of an apply's ~600 at scale 10, where a busy machine makes
 * each round trip cost as much as a small query. The values are the same:
 * each metric is a scalar subquery of its own, planned and run as it would
 * be alone (the statement's snapshot is one instead of one per metric).
 *
 * Null when the statement cannot tell each metric's own outcome: a metric
 * whose objects do not exist yet, one that fails, returns more than one row
 * or column, or is not a query (SHOW) makes the whole statement fail, and
 * the caller then reads metric by metric, under the policy above. A lock or
 * statement timeout is not read twice (the wait is bounded once): it is
 * thrown, naming every metric of the set.
 */
async function readTogether(tx: Queryable, entries: [string, string][], kind: string): Promise<Record<string, number | null> | null> {
  const sql = setStatement(entries.map(([, s]) => s));
  if (unpreparable.has(sql)) return null;
  const name = statementName('tiergate_metrics_', sql);
  const run = await executePrepared(tx, name, sql);
  if ('row' in run) return Object.fromEntries(entries.map(([metric], i) => [metric, toNumber(run.row[`m${i}`])]));
  const { stage, error: e } = run;
  const state = e instanceof DbError ? e.sqlstate : null;
  // a doomed transaction (lost connection) cannot roll back to the savepoint: the read one by one says so, naming the metric
  await rollbackMetric(tx).catch(() => undefined);
  // a set with a metric that is no query (SHOW) or no single column never reads together: not tried again
  if (stage === 'prepare' && state !== null && NOT_PREPARABLE.has(state)) unpreparable.add(sql);
  if (stage === 'execute' && state !== null && PREPARE_AGAIN.has(state)) {
    preparedSet(tx).delete(name);
    await deallocate(tx, name).catch(() => undefined);
  }
  if (state === '55P03' || state === '57014') {
    const names = entries.map(([metric]) => `'${metric}'`).join(', ');
    throw new MetricReadError(`${kind}s ${names}`, e as DbError);
  }
  return null;
}

/**
 * The statement that reads a set of metrics at once: `select (m1) as m0,
 * (m2) as m1, …`, except that metrics which aggregate rows of the same
 * relation (`select A from R [where C]`, R one table or view, A one of
 * `count(*)`, `count([distinct] col)`, `sum(col)`, `coalesce(sum(col), 0)`,
 * nothing else) read them in one pass: `select g0.c0 as m5, g0.c1 as m6, …
 * from (select count(*) filter (where C5) as c0, coalesce(sum(x) filter
 * (where C6), 0) as c1 from R) as g0`. Over one relation a FILTER
 * aggregates exactly the rows the WHERE would; a view of a whole database
 * read once instead of once per metric (the bundled plan's `critical` and
 * `emittable` both count axis.v_governance_finding: 150 → 80 ms a set at
 * scale 100; its three gaps read axis.v_governed_collection: 150 → 105 ms).
 * A condition that does not fit there (not one expression) makes the
 * statement fail, and the caller reads metric by metric, as for any
 * failure of a set.
 */
export function setStatement(sqls: string[]): string {
  const counts = sqls.map(aggregateOfOneRelation);
  const groups = new Map<string, number[]>();
  counts.forEach((c, i) => {
    if (c) groups.set(c.key, [...(groups.get(c.key) ?? []), i]);
  });
  const shared = [...groups.values()].filter((g) => g.length > 1);
  const inGroup = new Map(shared.flatMap((g, gi) => g.map((i, ci) => [i, `g${gi}.c${ci}`] as const)));
  const columns = sqls.map((s, i) => `${inGroup.get(i) ?? `(\n${s}\n)`} as m${i}`);
  const from = shared.map(
    (g, gi) =>
      `(select ${g.map((i, ci) => `${counts[i]!.filtered(counts[i]!.where === null ? 'true' : `(\n${counts[i]!.where}\n)`)} as c${ci}`).join(', ')} from ${counts[g[0]!]!.relation}) as g${gi}`,
  );
  return `select ${columns.join(',\n')}${from.length ? `\nfrom ${from.join(', ')}` : ''}`;
}

/**
 * The aggregates a metric of one relation may be (group 1: `count(*)`,
 * `count([distinct] col)`, `sum(col)`; group 2: the same inside
 * `coalesce(…, 0)`), then the relation (3) and the condition (4).
 */
const AGGREGATE = String.raw`(count\(\s*\*\s*\)|count\(\s*(?:distinct\s+)?${IDENT}\s*\)|sum\(\s*${IDENT}\s*\))`;
const AGGREGATE_OF_ONE = new RegExp(
  String.raw`^\s*select\s+(?:${AGGREGATE}|coalesce\(\s*${AGGREGATE}\s*,\s*0\s*\))\s+from\s+(${IDENT}(?:\s*\.\s*${IDENT}){0,2})(?:\s+where\s+([\s\S]+?))?\s*;?\s*$`,
  'i',
);

/**
 * `select A from R [where C]` with A one aggregate (AGGREGATE_OF_ONE): R as
 * written, a key that names it whatever its spelling, C, and A with a
 * FILTER of a given condition; null for anything else.
 */
function aggregateOfOneRelation(sql: string): { relation: string; key: string; where: string | null; filtered: (condition: string) => string } | null {
  const m = AGGREGATE_OF_ONE.exec(sql);
  // a condition that is not one parenthesised whole (`a) or (b`) is left as it is: a statement that would not parse alone must not parse merged
  if (!m || (m[4] !== undefined && !balanced(m[4]))) return null;
  const relation = m[3]!;
  const key = identifierParts(relation).join('.');
  const written = m[1] ?? m[2]!;
  const aggregate = /^count\(\s*\*\s*\)$/i.test(written) ? 'count(*)' : written;
  const filtered = (condition: string) => (m[1] !== undefined ? `${aggregate} filter (where ${condition})` : `coalesce(${aggregate} filter (where ${condition}), 0)`);
  return { relation, key, where: m[4] ?? null, filtered };
}

/** Whether no `)` closes more than was opened, and all are closed (quotes not read: a parenthesis in a literal just declines the merge). */
function balanced(text: string): boolean {
  let depth = 0;
  for (const ch of text) {
    if (ch === '(') depth++;
    else if (ch === ')' && --depth < 0) return false;
  }
  return depth === 0;
}

/**
 * One number from `sql` in a savepoint: null when its objects do not exist or
 * it returns no row / a non-number; any other error is thrown, named `what`.
 */
export async function readNumber(tx: Queryable, what: string, sql: string): Promise<number | null> {
  return (await readNumberSaying(tx, what, sql)).value;
}

/**
 * {@link readNumber}, and when it reads no number, why: the server's error
 * for the object that does not exist here (with its SQLSTATE), or what the
 * query returned instead.
 */
export async function readNumberSaying(tx: Queryable, what: string, sql: string): Promise<{ value: number | null; why: string | null }> {
  await assertOneQuery(what, sql);
  let row: Record<string, unknown> | undefined;
  try {
    row = (await inSavepoint(tx, sql)).rows[0];
  } catch (e) {
    await readFailed(tx, what, e);
    const err = e as DbError;
    return { value: null, why: `its query fails here: ${err.message}${err.sqlstate ? ` (SQLSTATE ${err.sqlstate})` : ''}` };
  }
  const value = firstNumber(row);
  if (value !== null) return { value, why: null };
  const first = row ? Object.values(row)[0] : undefined;
  return { value, why: row === undefined ? 'its query returned no row' : first === null || first === undefined ? 'its query returned null' : `its query returned ${JSON.stringify(first)}, not a number` };
}

/** The rows of `sql` (the gate's approvals), under the same policy as {@link readNumber}: none when its objects do not exist. */
export async function readRows<R>(tx: Queryable, what: string, sql: string): Promise<R[]> {
  await assertOneQuery(what, sql);
  try {
    return (await inSavepoint<R>(tx, sql)).rows;
  } catch (e) {
    await readFailed(tx, what, e);
    return [];
  }
}

/** One text (the gate's subject) from `sql`, under the same policy as {@link readNumber}. */
export async function readText(tx: Queryable, what: string, sql: string): Promise<string | null> {
  await assertOneQuery(what, sql);
  try {
    const r = await inSavepoint(tx, sql);
    const v = r.rows[0] ? Object.values(r.rows[0])[0] : null;
    return v === null || v === undefined ? null : String(v).trim();
  } catch (e) {
    return readFailed(tx, what, e);
  }
}

/**
 * `sql` (one statement) inside savepoint `tiergate_metric`, in one round
 * trip: the savepoint, the statement and the release sent as one script —
 * three round trips a read were a third of an apply's statements. A
 * failure stops the script after the savepoint (a missing object is found
 * when the statement is analysed, after the savepoint ran) and leaves it
 * for the caller to roll back to; a statement the server cannot even parse
 * fails the whole script before the savepoint, and is thrown all the same
 * (readFailed: it is no missing object). Each on its own line: a statement
 * that ends in a `--` comment still ends before the release.
 */
async function inSavepoint<R = Record<string, unknown>>(tx: Queryable, sql: string): Promise<QueryResult<R>> {
  const first = takeJitOff(tx);
  const results = await tx.exec<R>(`${first}savepoint tiergate_metric;\n${sql}\n;release savepoint tiergate_metric`);
  return results[first ? 2 : 1] ?? { rows: [], rowCount: 0 };
}

/** A script inSavepoint sends: the JIT statement perhaps (takeJitOff), the savepoint, the query, the release. */
const IN_SAVEPOINT = new RegExp(
  `^(?:${TURN_OFF_LOCAL.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')};\n)?savepoint tiergate_metric;\n([\\s\\S]*)\n;release savepoint tiergate_metric$`,
);

/**
 * The query a script of inSavepoint read, without what is sent around it;
 * null for any other text. For what watches the statements sent (the
 * benchmark's tracer, tests that count reads).
 */
export function queryInSavepoint(script: string): string | null {
  return IN_SAVEPOINT.exec(script)?.[1] ?? null;
}

/**
 * A plan's query — a metric, a figure, the gate's count, subject,
 * approvals and lock — is read as it is written, and a text of several statements
 * sent that way runs them all (`select count(*) from t; delete from t`
 * would count, then delete, in the tier's transaction, gate or no gate). So
 * each is first read with PostgreSQL's parser (tiergate's cache keeps what
 * it found): more than one statement, or one that writes (DML, CREATE,
 * DROP, ALTER, also inside a DO block), is refused, named, before anything
 * is sent. A text the parser cannot read is left to the server, which
 * parses the whole of it before running any of it.
 */
export async function assertOneQuery(what: string, sql: string): Promise<void> {
  const reason = await whyNotAReadQuery(sql);
  if (reason) {
    throw new MetricReadError(
      what,
      new DbError(`refused before it was sent: ${reason}`, '42601', null, `write ${what} in tiergate.yaml as one query that only reads (a SELECT)`, null, null),
    );
  }
}

/** After a failed read: n/a for a missing object, the error (named) for anything else. */
async function readFailed(tx: Queryable, what: string, e: unknown): Promise<null> {
  const err = e instanceof DbError ? e : new DbError(e instanceof Error ? e.message : String(e), null, null, null, null, null);
  // a doomed transaction (lost connection) cannot roll back to the savepoint: the read's own error says more
  await rollbackMetric(tx).catch(() => undefined);
  if (err.sqlstate !== null && MISSING_OBJECT.has(err.sqlstate)) return null;
  throw err instanceof MetricReadError ? err : new MetricReadError(what, err);
}

/** Statement names prepared on a session (keyed by the connection object the engine passes around). */
const preparedOn = new WeakMap<Queryable, Set<string>>();
/** Metrics (and sets of them) the server refused to PREPARE for what they are (SHOW …): sent as they are (one by one). */
const unpreparable = new Set<string>();

/** SQLSTATEs after which a prepared metric is prepared again once: gone (26000), result type changed (0A000). */
const PREPARE_AGAIN = new Set(['26000', '0A000']);
/** PREPARE refused for what the statement is, not for what it reads (SHOW, a utility statement): sent as it is. */
const NOT_PREPARABLE = new Set(['42601', '0A000']);

/** The statements prepared on the session `tx` belongs to. */
function preparedSet(tx: Queryable): Set<string> {
  let prepared = preparedOn.get(tx);
  if (!prepared) preparedOn.set(tx, (prepared = new Set()));
  return prepared;
}

/**
 * EXECUTE prepared statement `name` (PREPAREd from `sql` once per session)
 * inside savepoint `tiergate_metric`, released on success. On failure the
 * savepoint is left for the caller to roll back, with the step that failed.
 */
async function executePrepared(
  tx: Queryable,
  name: string,
  sql: string,
): Promise<{ row: Record<string, unknown> } | { stage: 'prepare' | 'execute'; error: unknown }> {
  const prepared = preparedSet(tx);
  try {
    if (prepared.has(name)) return { row: (await inSavepoint(tx, `execute ${name}`)).rows[0] ?? {} };
  } catch (error) {
    return { stage: 'execute', error };
  }
  // the first read on this session: PREPARE in the savepoint on its own (its failure is told apart from the execution's), then EXECUTE and release
  await tx.exec(`${takeJitOff(tx)}savepoint tiergate_metric`);
  try {
    await prepareOnce(tx, name, sql);
    prepared.add(name);
  } catch (error) {
    return { stage: 'prepare', error };
  }
  try {
    const [r] = await tx.exec(`execute ${name};\nrelease savepoint tiergate_metric`);
    return { row: r?.rows[0] ?? {} };
  } catch (error) {
    return { stage: 'execute', error };
  }
}

/** PREPARE `name`, inside the caller's savepoint `tiergate_metric`. */
async function prepareOnce(tx: Queryable, name: string, sql: string): Promise<void> {
  try {
    await tx.exec(`prepare ${name} as ${sql}`);
  } catch (e) {
    // prepared earlier on this session under another connection object (statements outlive transactions)
    if (!(e instanceof DbError && e.sqlstate === '42P05')) throw e;
    await rollbackMetric(tx, false);
  }
}

async function readPrepared(tx: Queryable, what: string, sql: string, retry = true): Promise<number | null> {
  if (unpreparable.has(sql)) return readNumber(tx, what, sql);
  const name = statementName('tiergate_metric_', sql);
  const run = await executePrepared(tx, name, sql);
  if ('row' in run) return firstNumber(run.row);
  const { stage, error: e } = run;
  const state = e instanceof DbError ? e.sqlstate : null;
  if (stage === 'prepare' && state !== null && NOT_PREPARABLE.has(state)) {
    await rollbackMetric(tx);
    unpreparable.add(sql);
    return readNumber(tx, what, sql);
  }
  if (stage === 'execute' && retry && state !== null && PREPARE_AGAIN.has(state)) {
    await rollbackMetric(tx);
    preparedSet(tx).delete(name);
    await deallocate(tx, name);
    return readPrepared(tx, what, sql, false);
  }
  return readFailed(tx, what, e);
}

async function rollbackMetric(tx: Queryable, release = true): Promise<void> {
  await tx.exec(release ? 'rollback to savepoint tiergate_metric; release savepoint tiergate_metric' : 'rollback to savepoint tiergate_metric');
}

async function deallocate(tx: Queryable, name: string): Promise<void> {
  try {
    await inSavepoint(tx, `deallocate ${name}`);
  } catch {
    await rollbackMetric(tx);
  }
}

function firstNumber(row: Record<string, unknown> | undefined): number | null {
  return row ? toNumber(Object.values(row)[0]) : null;
}

function toNumber(v: unknown): number | null {
  if (v === null || v === undefined) return null;
  const n = typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : typeof v === 'boolean' ? Number(v) : Number(String(v));
  return Number.isFinite(n) ? n : null;
}
