import type { Db } from '../db/port.js';
import { DriftError, TargetError } from '../errors.js';
import { appliedRevision, type Plan } from '../plan/plan.js';
import { readIdentity, type TargetIdentity } from '../probe/identity.js';
import { ensureLedger, ledgerGrants, readLedger, type LedgerEntry } from './ledger.js';
import { assertPlanDatabase } from './preflight.js';
import { withRolloutLock } from './rollout-lock.js';
import { isBodyTier } from './run-result.js';
import { boundSession, namingBlockers } from './session-bounds.js';

/** What a rollout knows once it holds the lock: the target's identity and its ledger, read after the lock. */
export interface Rollout {
  identity: TargetIdentity;
  ledger: Map<number, LedgerEntry>;
}

export interface RolloutOptions {
  /** wait this long for another rollout's lock (`--wait`) instead of failing at once */
  waitMs?: number;
  signal?: AbortSignal;
  /**
   * A look that changes nothing (`apply --dry-run`): no rollout lock, no
   * ledger schema created; the ledger is read if it is there.
   */
  readOnly?: boolean;
  /** checks of the target before the lock and the ledger (evidence binding): a throw touches nothing */
  before?: (identity: TargetIdentity) => Promise<void>;
}

/**
 * The preamble of every command that changes a target, in one place: the
 * plan's files parsed and linted (errors refuse the plan before anything is
 * touched), the session's waits bounded, the target's identity checked, the
 * rollout lock taken, the ledger created and read (after the lock), drift
 * refused — then `fn`. The lock is released on every path.
 *
 * @example await withRollout(db, plan, {}, async ({ ledger }) => …)
 */
export async function withRollout<T>(db: Db, plan: Plan, options: RolloutOptions, fn: (rollout: Rollout) => Promise<T>): Promise<T> {
  await assertPlanRunnable(plan);
  await boundSession(db, plan);
  const identity = await readIdentity(db);
  assertPlanDatabase(plan, identity, db.displayUrl);
  await options.before?.(identity);
  if (!options.readOnly) {
    const why = await whyNotWritable(db);
    if (why) throw new TargetError(`cannot change ${db.displayUrl}: ${why}; nothing was touched`);
  }
  const run = async () => {
    const ledger = await bookkeeping(db, plan, !options.readOnly);
    assertNoDrift(plan, ledger);
    return fn({ identity, ledger });
  };
  if (options.readOnly) return run();
  return withRolloutLock(db, plan.name, run, { waitMs: options.waitMs, signal: options.signal });
}

/**
 * Refuses, before anything is touched, a plan whose tier files do not parse
 * or break a lint rule marked error (a gated file without its guard, a
 * statement that ends the tier's transaction, DDL in a data tier …): exit 2,
 * each problem with its file:line:column.
 */
export async function assertPlanRunnable(plan: Plan): Promise<void> {
  const { lintErrors } = await import('../plan/lint.js');
  const { refuseFindings } = await import('../plan/plan-queries.js');
  refuseFindings(plan, await lintErrors(plan), 'run');
}

/** Reads the ledger (creating it first unless `create` is false), naming whoever blocks it. */
async function bookkeeping(db: Db, plan: Plan, create: boolean): Promise<Map<number, LedgerEntry>> {
  return namingBlockers(db, `reading the ledger of plan '${plan.name}'`, 'select from tiergate.ledger, tiergate.attempt', async () => {
    if (create) await ensureLedger(db);
    return readLedger(db, plan.name);
  });
}

/** Stops before touching anything when an applied tier's file changed. */
export function assertNoDrift(plan: Plan, ledger: Map<number, LedgerEntry>): void {
  const drifted = plan.tiers.filter(isBodyTier).flatMap((t) => {
    const e = ledger.get(t.id);
    if (!e || e.status !== 'applied' || appliedRevision(t, e.sha256) !== 'drift') return [];
    const revertedBy = plan.tiers.filter((r) => r.kind === 'rollback' && r.reverts.includes(t.id)).map((r) => r.id);
    return [{ tier: t.id, name: t.name, file: t.file, applied: e.sha256, current: t.sha256, revertedBy }];
  });
  if (drifted.length) throw new DriftError(plan.name, drifted);
}

/**
 * Why this session cannot write the target (null when it can): a hot
 * standby, sessions that are read-only, or no ledger schema yet and no right
 * to create it. Said before anything is touched, in words, instead of the
 * server's refusal of the first write (CREATE SCHEMA tiergate).
 */
export async function whyNotWritable(db: Db): Promise<string | null> {
  const r = await db.query<{ standby: boolean; read_only: boolean; usr: string; role: string; dbname: string; has_schema: boolean; can_create: boolean; can_write: boolean; owner: string | null }>(
    `select pg_is_in_recovery() as standby, current_setting('transaction_read_only') = 'on' as read_only, current_user as usr,
            quote_ident(current_user) as role, current_database() as dbname, ns.oid is not null as has_schema,
            has_database_privilege(current_database(), 'CREATE') as can_create,
            -- the ledger another user created: this one must read and write its tables (by oid, from the catalog: a
            -- name lookup in a schema without USAGE is itself refused; by name in pg_class's index, not a scan of it)
            ns.oid is null or (has_schema_privilege(ns.oid, 'USAGE')
              and not exists (select 1 from pg_class c
                               where c.relname in ('ledger', 'attempt', 'ledger_id_seq', 'attempt_id_seq') and c.relnamespace = ns.oid
                                 and case when c.relkind = 'S' then not has_sequence_privilege(c.oid, 'USAGE')
                                          else not has_table_privilege(c.oid, 'SELECT, INSERT') end)) as can_write,
            pg_get_userbyid(ns.nspowner)::text as owner
       from (select 1) one left join pg_namespace ns on ns.nspname = 'tiergate'`,
  );
  const w = r.rows[0];
  if (!w) return null;
  const readOnly = readOnlyReason(w);
  if (readOnly) return readOnly;
  if (!w.has_schema && !w.can_create) {
    return `user ${w.usr} may not create tiergate's ledger schema (no CREATE privilege on database ${w.dbname}): GRANT CREATE ON DATABASE ${w.dbname} TO ${w.usr}, or have its owner run CREATE SCHEMA tiergate AUTHORIZATION ${w.usr}`;
  }
  if (w.has_schema && !w.can_write) return `user ${w.usr} may not write tiergate's ledger (schema tiergate, created by ${w.owner ?? 'another user'}): ${ledgerGrants(w.role, 'write')}, or run as ${w.owner ?? 'its owner'}`;
  return null;
}

/**
 * Why nothing can be written on this session's database (null when it can):
 * a hot standby, or sessions that are read-only. For the commands that write
 * something else than the ledger (approve records an approval, scan runs the
 * plan's scanner): said before, in words, instead of the server's refusal
 * of the write (SQLSTATE 25006).
 */
export async function whyReadOnly(db: Db): Promise<string | null> {
  const r = await db.query<ReadOnlyFacts>(
    `select pg_is_in_recovery() as standby, current_setting('transaction_read_only') = 'on' as read_only, current_user as usr, current_database() as dbname`,
  );
  return r.rows[0] ? readOnlyReason(r.rows[0]) : null;
}

interface ReadOnlyFacts {
  standby: boolean;
  read_only: boolean;
  usr: string;
  dbname: string;
}

function readOnlyReason(w: ReadOnlyFacts): string | null {
  if (w.standby) return 'it is a hot standby (in recovery), where nothing can be written: point --target at the primary';
  if (w.read_only) {
    return `its sessions are read-only (default_transaction_read_only = on, for database ${w.dbname} or user ${w.usr}): point --target at a writable database, or turn it off for this user (ALTER ROLE ${w.usr} SET default_transaction_read_only = off)`;
  }
  return null;
}
