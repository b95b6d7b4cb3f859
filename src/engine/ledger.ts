import type { Db, Queryable } from '../db/port.js';
import type { SqlFailure } from '../errors.js';
import type { Tier } from '../plan/plan.js';
import { tiergateVersion } from '../version.js';
import type { Delta } from './result.js';

/**
 * tiergate's own bookkeeping in the target: `tiergate.ledger` (one row per
 * applied or reverted tier, append-only: a tier's state is its latest row)
 * and `tiergate.attempt` (failures, written in their own transaction).
 * Created on first use, after the rollout lock is held.
 */
const LEDGER_DDL = `
create schema if not exists tiergate;
create table if not exists tiergate.ledger (
  id bigserial primary key,
  plan text not null,
  tier_id integer not null,
  tier_name text not null,
  kind text not null,
  file text not null,
  sha256 char(64) not null,
  status text not null check (status in ('applied', 'reverted')),
  applied_at timestamptz not null default clock_timestamp(),
  duration_ms integer not null,
  delta jsonb,
  tiergate_version text not null,
  applied_by text not null default current_user
);
create index if not exists ledger_plan_tier on tiergate.ledger (plan, tier_id, id);
create table if not exists tiergate.attempt (
  id bigserial primary key,
  plan text not null,
  tier_id integer not null,
  tier_name text not null,
  sha256 char(64) not null,
  at timestamptz not null default clock_timestamp(),
  sqlstate text,
  message text not null,
  detail text,
  hint text,
  file text,
  line integer,
  tiergate_version text not null
);
`;

export interface LedgerEntry {
  tierId: number;
  name: string;
  kind: string;
  file: string;
  sha256: string;
  status: 'applied' | 'reverted';
  appliedAt: string;
  durationMs: number;
}

export async function ensureLedger(db: Queryable): Promise<void> {
  const r = await db.query<{ ok: boolean }>(
    `select to_regclass('tiergate.ledger') is not null and to_regclass('tiergate.attempt') is not null as ok`,
  );
  if (!r.rows[0]?.ok) await db.exec(LEDGER_DDL);
}

/** The latest ledger row of every tier of the plan (read-only; empty when tiergate never ran here). */
export async function readLedger(db: Queryable, plan: string): Promise<Map<number, LedgerEntry>> {
  const exists = await db.query<{ ok: boolean }>(`select to_regclass('tiergate.ledger') is not null as ok`);
  const out = new Map<number, LedgerEntry>();
  if (!exists.rows[0]?.ok) return out;
  const r = await db.query<{
    tier_id: number;
    tier_name: string;
    kind: string;
    file: string;
    sha256: string;
    status: 'applied' | 'reverted';
    applied_at: Date | string;
    duration_ms: number;
  }>(
    `select distinct on (tier_id) tier_id, tier_name, kind, file, sha256, status, applied_at, duration_ms
       from tiergate.ledger where plan = $1 order by tier_id, id desc`,
    [plan],
  );
  for (const row of r.rows) {
    out.set(row.tier_id, {
      tierId: row.tier_id,
      name: row.tier_name,
      kind: row.kind,
      file: row.file,
      sha256: row.sha256,
      status: row.status,
      appliedAt: new Date(row.applied_at).toISOString(),
      durationMs: row.duration_ms,
    });
  }
  return out;
}

export async function recordLedger(
  tx: Queryable,
  plan: string,
  tier: Tier,
  status: 'applied' | 'reverted',
  durationMs: number,
  delta: Delta | null,
): Promise<number> {
  const r = await tx.query<{ id: number }>(
    `insert into tiergate.ledger (plan, tier_id, tier_name, kind, file, sha256, status, duration_ms, delta, tiergate_version)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) returning id`,
    [plan, tier.id, tier.name, tier.kind, tier.file, tier.sha256, status, Math.round(durationMs), delta ? JSON.stringify(delta) : null, tiergateVersion()],
  );
  return Number(r.rows[0]?.id);
}

/**
 * After a COMMIT whose answer was lost: did it commit? The ledger row it
 * inserted exists exactly when it did. Asked on a new connection; null when
 * that is not possible either (the outcome stays unknown).
 */
export async function ledgerRowCommitted(db: Db, id: number): Promise<boolean | null> {
  let sibling: Db | null = null;
  try {
    sibling = await db.sibling();
    const r = await sibling.query<{ ok: boolean }>('select exists (select 1 from tiergate.ledger where id = $1) as ok', [id]);
    return Boolean(r.rows[0]?.ok);
  } catch {
    return null;
  } finally {
    await sibling?.close();
  }
}

/**
 * Records a failed tier in its own transaction, on a sibling connection (the
 * tier's own connection may be the one that died). Best effort: a failure to
 * record must not hide the tier's failure.
 */
export async function recordAttempt(db: Db, plan: string, tier: Tier, failure: SqlFailure): Promise<boolean> {
  let sibling: Db | null = null;
  try {
    // a new connection even when the tier's own died (network cut, server restart)
    sibling = await db.sibling();
    await ensureLedger(sibling);
    await sibling.query(
      `insert into tiergate.attempt (plan, tier_id, tier_name, sha256, sqlstate, message, detail, hint, file, line, tiergate_version)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
      [plan, tier.id, tier.name, tier.sha256, failure.sqlstate, failure.message, failure.detail, failure.hint, failure.file, failure.line, tiergateVersion()],
    );
    return true;
  } catch {
    return false;
  } finally {
    await sibling?.close();
  }
}
