import { createHash } from 'node:crypto';
import type { Db } from '../db/port.js';
import { LockHeldError } from '../errors.js';

/** tiergate's advisory-lock namespace (first key of the two-int form): 'tg' + 1. */
const LOCK_CLASS = 0x7467_0001;

/** A stable positive int4 per plan name: the second key. */
export function planLockKey(plan: string): number {
  return createHash('sha256').update(plan).digest().readUInt32BE(0) & 0x7fff_ffff;
}

/**
 * One rollout at a time per target and plan: a session advisory lock, taken
 * without waiting — or, with `waitMs`, retried until that much time has
 * passed (`--wait`), never longer. The ledger must be read only after it is
 * held. Released on every path (and by the server if the process dies).
 */
export async function withRolloutLock<T>(db: Db, plan: string, fn: () => Promise<T>, options: { waitMs?: number; signal?: AbortSignal } = {}): Promise<T> {
  const key = planLockKey(plan);
  const deadline = performance.now() + (options.waitMs ?? 0);
  for (let pause = 100; ; pause = Math.min(pause * 2, 2000)) {
    const got = await db.query<{ ok: boolean }>('select pg_try_advisory_lock($1, $2) as ok', [LOCK_CLASS, key]);
    if (got.rows[0]?.ok) break;
    const left = deadline - performance.now();
    if (left <= 0 || options.signal?.aborted) {
      const waited = options.waitMs ? ` (waited ${Math.round((options.waitMs ?? 0) / 1000)} s)` : '';
      throw new LockHeldError(`the rollout lock of plan '${plan}' on ${db.displayUrl}${waited}`, await describeHolder(db, key));
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(pause, left)));
  }
  const plans = held.get(db) ?? new Set<string>();
  held.set(db, plans.add(plan));
  try {
    return await fn();
  } finally {
    plans.delete(plan);
    if (db.alive()) await db.query('select pg_advisory_unlock($1, $2)', [LOCK_CLASS, key]).catch(() => undefined);
  }
}

/** The plans whose rollout lock each session holds (withRolloutLock). */
const held = new WeakMap<Db, Set<string>>();

/**
 * The rollout lock of `plan` this session holds (null: none): a tier's
 * ledger row is written only while the server says it still does (a file
 * may release it: src/engine/ledger.ts).
 */
export function heldRolloutLock(db: Db, plan: string): { classid: number; objid: number } | null {
  return held.get(db)?.has(plan) ? { classid: LOCK_CLASS, objid: planLockKey(plan) } : null;
}

async function describeHolder(db: Db, key: number): Promise<string> {
  try {
    const r = await db.query<{ pid: number; app: string | null; usename: string | null; addr: string | null; since: Date | null }>(
      `select a.pid, a.application_name as app, a.usename::text as usename, a.client_addr::text as addr, a.backend_start as since
         from pg_locks l join pg_stat_activity a on a.pid = l.pid
        where l.locktype = 'advisory' and l.granted and l.classid = $1::bigint::oid and l.objid = $2::bigint::oid and l.objsubid = 2
          -- an advisory lock belongs to its database: the same plan's lock held on another database of the server is not this one
          and l.database = (select oid from pg_database where datname = current_database())`,
      [LOCK_CLASS, key],
    );
    const h = r.rows[0];
    if (!h) return 'holder not visible to this user';
    return [`backend pid ${h.pid}`, h.app ? `'${h.app}'` : null, h.usename ? `user ${h.usename}` : null, h.addr ? `from ${h.addr}` : null, h.since ? `connected since ${new Date(h.since).toISOString()}` : null]
      .filter(Boolean)
      .join(', ');
  } catch {
    return 'holder unknown';
  }
}

/** Who holds the rollout lock of `plan` now (null: nobody), without taking it. */
export async function rolloutLockHolder(db: Db, plan: string): Promise<string | null> {
  const key = planLockKey(plan);
  const got = await db.query<{ ok: boolean }>('select pg_try_advisory_lock($1, $2) as ok', [LOCK_CLASS, key]);
  if (got.rows[0]?.ok) {
    await db.query('select pg_advisory_unlock($1, $2)', [LOCK_CLASS, key]);
    return null;
  }
  return describeHolder(db, key);
}
