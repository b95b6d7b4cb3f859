import type { Db } from '../db/port.js';
import { TargetError } from '../errors.js';
import type { Plan } from '../plan/plan.js';
import { readGateBounded } from './apply.js';
import { openPlanSession } from './preflight.js';
import { gateReads, metricReads, refuseLacking } from './privileges.js';
import { OBJECTS_RECORD } from './hand-edits.js';
import { finish, type RunResult } from './run-result.js';
import { runCheckTier } from './run-tier.js';
import { grantsFor } from './session-bounds.js';

/**
 * Runs the verify tier read-only on the plan's database (another database is
 * refused, exit 2): Passed, or Failed with every failing assertion. Writes
 * nothing (it runs on read replicas too).
 */
export async function verify(db: Db, plan: Plan, options: { signal?: AbortSignal } = {}): Promise<RunResult> {
  const tier = plan.tiers.find((t) => t.kind === 'verify');
  if (!tier) throw new TargetError(`plan '${plan.name}' has no verify tier (kind: verify)`);
  const identity = await openPlanSession(db, plan);
  // every GRANT a reading user lacks in one message, not one a run
  // (and the ledger's rows: the record of the plan's objects verify compares the database with, src/engine/hand-edits.ts)
  await refuseLacking(db, 'verify', [{ label: `tier ${tier.id} '${tier.name}'`, sql: tier.sql }, OBJECTS_RECORD, ...metricReads(plan), ...gateReads(plan)]);
  const r = await runCheckTier(db, plan, tier, { signal: options.signal });
  // a role that may not read what verify reads learns what to grant (exit 2), not that governance failed
  if (r.status === 'Failed' && r.error?.sqlstate === '42501') {
    throw new TargetError(`verify on ${db.displayUrl}: ${r.error.message}: ${await grantsFor(db, r.error.message)}; nothing was changed`);
  }
  return finish('verify', db.displayUrl, plan, identity, await readGateBounded(db, plan), [r]);
}
