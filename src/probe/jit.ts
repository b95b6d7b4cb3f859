import type { Queryable } from '../db/port.js';

/**
 * Runs tiergate's own reads — catalog snapshots, the fingerprint's catalog
 * side, the plan's metrics — with JIT compilation off, then gives the
 * session its setting back. On a large database the planner's cost estimate
 * of these reads passes `jit_above_cost` while compiling costs more than it
 * saves: at scale 100 (6,500 tables, each with tiergate's change-log trigger
 * on a clone) a tier's catalog snapshot took 200–250 ms with JIT and 7 ms
 * without, twice a tier; one `critical` metric read 1.45 s with JIT, 1.14 s
 * without. A tier file runs with the server's setting.
 *
 * Set for the session, not the transaction, so that it also holds outside
 * one; in a transaction the read aborted, the restore fails and the rollback
 * restores the setting. A server without the setting is left as it is.
 */
export async function withoutJit<T>(q: Queryable, read: () => Promise<T>): Promise<T> {
  // inside another withoutJit on the same session: already off, and given back by the outer one
  if (inside.has(q)) return read();
  inside.add(q);
  try {
    return await offDuring(q, read);
  } finally {
    inside.delete(q);
  }
}

/** Sessions (the connection objects the engine passes around) in a withoutJit: several reads in a row toggle once. */
const inside = new WeakSet<Queryable>();

async function offDuring<T>(q: Queryable, read: () => Promise<T>): Promise<T> {
  const was = (
    await q.query<{ jit: string | null }>(
      `select current_setting('jit', true) as jit, case when current_setting('jit', true) = 'on' then set_config('jit', 'off', false) end`,
    )
  ).rows[0]?.jit;
  if (was !== 'on') return read();
  try {
    return await read();
  } finally {
    await q.query(`select set_config('jit', 'on', false)`).catch(() => undefined);
  }
}
