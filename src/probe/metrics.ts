import { createHash } from 'node:crypto';
import type { Queryable } from '../db/port.js';
import { DbError } from '../errors.js';

/**
 * Evaluates each metric (SQL returning one number) inside its own savepoint:
 * an error — typically an object that does not exist yet — gives `null` and
 * does not poison the surrounding transaction. Must be called inside a
 * transaction.
 *
 * A metric is evaluated before and after every tier, always on the same
 * session, and the plan's metrics are queries over views: on a small
 * database planning them costs more than running them (the sample at scale
 * 1: ~100 ms per set planned each time, ~35 ms prepared; see bench/). So
 * each metric is a server-side prepared statement of its session, planned
 * once; PostgreSQL re-plans it by itself when an object it uses changes
 * (docs: PREPARE, "Notes"). A metric the server will not prepare is sent
 * as it is, as before.
 */
export async function readMetrics(tx: Queryable, metrics: Record<string, string>): Promise<Record<string, number | null>> {
  const out: Record<string, number | null> = {};
  if (Object.keys(metrics).length === 0) return out;
  const jit = await jitOff(tx);
  try {
    for (const [name, sql] of Object.entries(metrics)) out[name] = await readPrepared(tx, sql);
  } finally {
    await restoreJit(tx, jit);
  }
  return out;
}

/**
 * JIT compilation off while the metrics are planned and run, then back to
 * what it was (transaction-local either way). Metrics are aggregates over
 * views whose estimated cost passes jit_above_cost on a large database,
 * while compiling them costs more than it saves: at scale 100 one
 * `critical` read took 1.45 s with JIT, 1.14 s without (EXPLAIN ANALYZE).
 * The tier's own SQL runs with the server's settings.
 */
async function jitOff(tx: Queryable): Promise<string | null> {
  const r = await tx.query<{ prev: string | null }>(`select current_setting('jit', true) as prev, set_config('jit', 'off', true)`);
  return r.rows[0]?.prev ?? null;
}

async function restoreJit(tx: Queryable, prev: string | null): Promise<void> {
  if (prev !== null && prev !== 'off') await tx.query(`select set_config('jit', $1, true)`, [prev]);
}

/** One number from `sql` in a savepoint; null when it fails or returns no row / a non-number. */
export async function readNumber(tx: Queryable, sql: string): Promise<number | null> {
  await tx.exec('savepoint tiergate_metric');
  try {
    const r = await tx.query(sql);
    await tx.exec('release savepoint tiergate_metric');
    return firstNumber(r.rows[0]);
  } catch {
    await rollbackMetric(tx);
    return null;
  }
}

/** Statement names prepared on a session (keyed by the connection object the engine passes around). */
const preparedOn = new WeakMap<Queryable, Set<string>>();
/** Metrics the server refused to PREPARE for a reason other than a missing object: sent as they are. */
const unpreparable = new Set<string>();

/** SQLSTATEs after which a prepared metric is prepared again once: gone (26000), result type changed (0A000). */
const PREPARE_AGAIN = new Set(['26000', '0A000']);
/** PREPARE failed because an object does not exist yet: the metric is n/a, as the plain query would be. */
const MISSING_OBJECT = new Set(['42P01', '42883', '42703', '3F000', '42704']);

async function readPrepared(tx: Queryable, sql: string, retry = true): Promise<number | null> {
  if (unpreparable.has(sql)) return readNumber(tx, sql);
  const name = `tiergate_metric_${createHash('sha256').update(sql).digest('hex').slice(0, 16)}`;
  let prepared = preparedOn.get(tx);
  if (!prepared) preparedOn.set(tx, (prepared = new Set()));
  await tx.exec('savepoint tiergate_metric');
  let stage: 'prepare' | 'execute' = 'prepare';
  try {
    if (!prepared.has(name)) {
      try {
        await tx.exec(`prepare ${name} as ${sql}`);
      } catch (e) {
        // prepared earlier on this session under another connection object (statements outlive transactions)
        if (!(e instanceof DbError && e.sqlstate === '42P05')) throw e;
        await rollbackMetric(tx, false);
      }
      prepared.add(name);
    }
    stage = 'execute';
    const r = await tx.query(`execute ${name}`);
    await tx.exec('release savepoint tiergate_metric');
    return firstNumber(r.rows[0]);
  } catch (e) {
    await rollbackMetric(tx);
    const state = e instanceof DbError ? e.sqlstate : null;
    if (stage === 'prepare') {
      if (state !== null && MISSING_OBJECT.has(state)) return null;
      unpreparable.add(sql);
      return readNumber(tx, sql);
    }
    if (retry && state !== null && PREPARE_AGAIN.has(state)) {
      prepared.delete(name);
      await deallocate(tx, name);
      return readPrepared(tx, sql, false);
    }
    return null;
  }
}

async function rollbackMetric(tx: Queryable, release = true): Promise<void> {
  await tx.exec('rollback to savepoint tiergate_metric');
  if (release) await tx.exec('release savepoint tiergate_metric');
}

async function deallocate(tx: Queryable, name: string): Promise<void> {
  await tx.exec('savepoint tiergate_metric');
  try {
    await tx.exec(`deallocate ${name}`);
    await tx.exec('release savepoint tiergate_metric');
  } catch {
    await rollbackMetric(tx);
  }
}

function firstNumber(row: Record<string, unknown> | undefined): number | null {
  if (!row) return null;
  const v = Object.values(row)[0];
  if (v === null || v === undefined) return null;
  const n = typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : typeof v === 'boolean' ? Number(v) : Number(String(v));
  return Number.isFinite(n) ? n : null;
}
