import type { Db } from '../db/port.js';
import type { Plan } from '../plan/plan.js';
import type { TargetIdentity } from '../probe/identity.js';
import { readHistory, type HistoryEvent } from './ledger.js';
import { openPlanSession } from './preflight.js';
import { namingBlockers } from './session-bounds.js';

export interface HistoryResult {
  plan: { name: string };
  target: string;
  identity: TargetIdentity;
  events: HistoryEvent[];
}

/**
 * The history of a plan on a target (`tiergate log`): every ledger row and
 * every attempt — applied, reverted, failed, checks passed — oldest first,
 * with time, database user, tiergate version, file sha256 and error.
 * Read-only; the plan's database only (another is refused, exit 2).
 */
export async function history(db: Db, plan: Plan): Promise<HistoryResult> {
  const identity = await openPlanSession(db, plan);
  const events = await namingBlockers(db, `reading the ledger of plan '${plan.name}'`, 'select from tiergate.ledger, tiergate.attempt', () => readHistory(db, plan.name));
  return { plan: { name: plan.name }, target: db.displayUrl, identity, events };
}
