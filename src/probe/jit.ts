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
  const scope = scopes.get(q);
  if (!scope) return jitScope(q, () => withoutJit(q, read));
  scope.off ??= turnOff(q, scope.local === true);
  await scope.off;
  return read();
}

/**
 * withoutJit for a read sent as scripts (the plan's metrics): in a scope that
 * ends with the transaction (jitUntilTransactionEnd) where JIT is not off
 * yet, the read's first script turns it off (takeJitOff) — no round trip of
 * its own. Elsewhere as withoutJit.
 */
export async function withoutJitFolded<T>(q: Queryable, read: () => Promise<T>): Promise<T> {
  const scope = scopes.get(q);
  if (scope?.local && !scope.off) return read();
  return withoutJit(q, read);
}

/**
 * The statement that turns JIT off, for the start of a script, once: in a
 * scope that ends with the transaction where it is not off yet; else ''.
 * A script that fails before it ran leaves JIT on: slower reads, the same
 * values.
 */
export function takeJitOff(q: Queryable): string {
  const scope = scopes.get(q);
  if (!scope?.local || scope.off) return '';
  scope.off = Promise.resolve(null);
  return `${TURN_OFF_LOCAL};\n`;
}

/**
 * A scope that ends with the caller's transaction: JIT is turned off for the
 * transaction (set_config(…, true), as SET LOCAL) and COMMIT or ROLLBACK
 * gives it back — no round trip to restore it. For tiergate's reads after a
 * tier's file, which only the ledger and COMMIT follow; the file itself
 * runs before, with the server's setting.
 */
export async function jitUntilTransactionEnd<T>(tx: Queryable, body: () => Promise<T>): Promise<T> {
  if (scopes.has(tx)) return body();
  scopes.set(tx, { local: true });
  try {
    return await body();
  } finally {
    scopes.delete(tx);
  }
}

/**
 * Several of tiergate's reads in a row on one session: JIT is turned off at
 * the first withoutJit inside `body` (not at all when none runs) and given
 * back once at the end — two round trips for the group, not two a read.
 * Nested scopes on the same session are one.
 */
export async function jitScope<T>(q: Queryable, body: () => Promise<T>): Promise<T> {
  if (scopes.has(q)) return body();
  const scope: Scope = {};
  scopes.set(q, scope);
  try {
    return await body();
  } finally {
    scopes.delete(q);
    // turned off by this scope (it was on): given back; a failed restore inside a transaction is the rollback's
    if (scope.off && (await scope.off.catch(() => null)) === 'on') await q.query(`select set_config('jit', 'on', false)`).catch(() => undefined);
  }
}

/**
 * A connection of tiergate's own that runs none of the plan's SQL (a
 * fingerprint's second connection): JIT off for its lifetime, at its first
 * read, never given back — a fingerprint's reads on it toggled it twice
 * each (two dozen round trips a rehearsal). Its reads' scopes are this one.
 */
export function keepJitOff(q: Queryable): void {
  if (!scopes.has(q)) scopes.set(q, {});
}

/** The setting found when the scope turned JIT off (once, however many reads ask at the same time). */
interface Scope {
  off?: Promise<string | null | undefined>;
  /** turned off for the transaction, given back by its end (jitUntilTransactionEnd) */
  local?: boolean;
}

/** Open scopes by session (the connection object the engine passes around). */
const scopes = new WeakMap<Queryable, Scope>();

async function turnOff(q: Queryable, local: boolean): Promise<string | null | undefined> {
  if (local) {
    await q.exec(TURN_OFF_LOCAL);
    return null;
  }
  const r = await q.query<{ jit: string | null }>(
    `select current_setting('jit', true) as jit, case when current_setting('jit', true) = 'on' then set_config('jit', 'off', false) end`,
  );
  return r.rows[0]?.jit;
}

/** JIT off until the transaction ends (a server without the setting is left as it is). */
export const TURN_OFF_LOCAL = `select case when current_setting('jit', true) = 'on' then set_config('jit', 'off', true) end`;
