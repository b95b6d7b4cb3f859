import type { Db } from '../db/port.js';
import { TargetError } from '../errors.js';
import type { Plan, Tier } from '../plan/plan.js';
import { readIdentity, type TargetIdentity } from '../probe/identity.js';
import type { TierResult } from './result.js';
import { emptyFailure, idle } from './run-result.js';
import { runCheckTier } from './run-tier.js';
import { boundSession } from './session-bounds.js';

/**
 * The start of every command on a target outside a rollout (status, verify,
 * log, approve, dry-run, scan, propose, a rollback's preview): the session's
 * waits bounded by the plan, then the target's identity, refused (exit 2,
 * nothing touched) when it is not the plan's database. A plan whose own
 * queries (metrics, figures, the gate's) are not each one query that only
 * reads is refused first (exit 2), as apply refuses it, not read as a
 * failed metric (`queries: false`: the dry run, which reports lint itself).
 */
export async function openPlanSession(db: Db, plan: Plan, options: { queries?: boolean } = {}): Promise<TargetIdentity> {
  if (options.queries !== false) await assertPlanQueries(plan);
  await boundSession(db, plan);
  const identity = await readIdentity(db);
  assertPlanDatabase(plan, identity, db.displayUrl);
  return identity;
}

/** Whether a database is the plan's (its `database:`), or a tiergate clone of it. */
export function isPlanDatabase(plan: Plan, identity: TargetIdentity): boolean {
  return !plan.database || identity.database === plan.database || identity.cloneOf === plan.database;
}

/**
 * apply, rollback, status, verify and log touch or read only the database the
 * plan was written for (its `database:`), or a tiergate clone of it: anything
 * else is a wrong target (exit 2, nothing touched).
 */
export function assertPlanDatabase(plan: Plan, identity: TargetIdentity, displayUrl: string, flag: '--target' | '--source' | '--dump' = '--target'): void {
  if (isPlanDatabase(plan, identity)) return;
  const what = flag === '--target' ? 'target' : 'source';
  const check =
    (flag === '--dump' ? 'check --database: it must name the database the dump was taken from, the one the plan was written for' : `check ${flag}: it must name the database the plan was written for`) +
    ` — or, when '${identity.database}' is that database under another name (one tenant of a fleet, a copy), pass --plan-database ${identity.database}`;
  throw new TargetError(
    `${what} database is '${identity.database}', but plan '${plan.name}' is for database '${plan.database}' (and ${displayUrl} is not a tiergate clone of it); nothing was changed — ${check}`,
  );
}

/** Preflight: the plan's identity check, then the preflight file, read-only; `record` names the command whose history keeps its result. */
export async function runPreflight(db: Db, plan: Plan, tier: Tier, identity: TargetIdentity, record?: string, signal?: AbortSignal): Promise<TierResult> {
  if (!isPlanDatabase(plan, identity)) {
    return {
      ...idle(tier),
      status: 'Failed',
      reason: `target database is '${identity.database}', plan '${plan.name}' expects '${plan.database}'`,
      error: {
        ...emptyFailure(),
        message: `target database is '${identity.database}', but plan '${plan.name}' is for database '${plan.database}' (and this is not a tiergate clone of it)`,
        hint: `check --target: it must name the database the plan was written for — or, when '${identity.database}' is that database under another name, pass --plan-database ${identity.database}`,
        file: 'tiergate.yaml',
      },
    };
  }
  // the database the plan is for, told to the preflight file (current_setting('tiergate.database')): the plan's
  // database:, or, when the plan names none (a fleet whose targets file lists its databases), this one
  await db.query(`select set_config('tiergate.database', $1, false)`, [plan.database ?? identity.cloneOf ?? identity.database]);
  return runCheckTier(db, plan, tier, { record, signal });
}

/** Refuses (exit 2) a plan whose own queries in tiergate.yaml are not each one query that only reads (lint's `plan-query`). */
export async function assertPlanQueries(plan: Plan): Promise<void> {
  const { planQueryFindings, refuseFindings } = await import('../plan/plan-queries.js');
  refuseFindings(plan, await planQueryFindings(plan), 'read');
}
