import type { Db } from '../db/port.js';
import { TargetError } from '../errors.js';
import type { Plan, Tier } from '../plan/plan.js';
import { readIdentity } from '../probe/identity.js';
import { readLedger, type LedgerEntry } from './ledger.js';
import { assertPlanDatabase, runPreflight } from './preflight.js';
import type { TierResult } from './result.js';
import { withRollout } from './rollout.js';
import { finish, idle, type EngineEvent, type RunResult } from './run-result.js';
import { runTier } from './run-tier.js';
import { boundSession, namingBlockers } from './session-bounds.js';

/** The plan's rollback tier and the tiers it reverts. */
export function rollbackTier(plan: Plan): { tier: Tier; reverts: Tier[] } {
  const tier = plan.tiers.find((t) => t.kind === 'rollback');
  if (!tier) throw new TargetError(`plan '${plan.name}' has no rollback tier (kind: rollback)`);
  return { tier, reverts: tier.reverts.map((id) => plan.tiers.find((t) => t.id === id)!) };
}

/** Refuses (touching nothing) unless every tier the rollback reverts is applied. */
function assertRevertible(plan: Plan, tier: Tier, ledger: Map<number, LedgerEntry>, displayUrl: string): void {
  const notApplied = tier.reverts.filter((id) => ledger.get(id)?.status !== 'applied');
  if (notApplied.length) {
    throw new TargetError(
      `rollback tier ${tier.id} reverts tiers ${tier.reverts.join(', ')}, but tier ${notApplied.join(', ')} ${notApplied.length > 1 ? 'are' : 'is'} not applied on ${displayUrl}; nothing was changed (see 'tiergate status')`,
    );
  }
}

/**
 * What a rollback would revert on this target, read-only: the CLI asks for
 * confirmation only after this has passed (a rollback that would refuse is
 * refused before the question).
 */
export async function previewRollback(db: Db, plan: Plan): Promise<{ tier: Tier; reverts: Tier[] }> {
  const r = rollbackTier(plan);
  await boundSession(db, plan);
  assertPlanDatabase(plan, await readIdentity(db), db.displayUrl);
  const ledger = await namingBlockers(db, `reading the ledger of plan '${plan.name}'`, 'select from tiergate.ledger', () => readLedger(db, plan.name));
  assertRevertible(plan, r.tier, ledger, db.displayUrl);
  return r;
}

/**
 * Runs the plan's rollback tier in one transaction and marks the tiers it
 * reverts `reverted` in the ledger (same transaction). Refuses, touching
 * nothing, unless every tier it reverts is applied.
 */
export async function rollback(
  db: Db,
  plan: Plan,
  options: { onEvent?: (e: EngineEvent) => void; waitMs?: number; signal?: AbortSignal } = {},
): Promise<RunResult> {
  const { tier, reverts } = rollbackTier(plan);
  return withRollout(db, plan, { waitMs: options.waitMs, signal: options.signal }, async ({ identity, ledger }) => {
    const results: TierResult[] = [];
    for (const pre of plan.tiers.filter((t) => t.kind === 'preflight')) {
      const r = await runPreflight(db, plan, pre, identity, 'rollback');
      results.push(r);
      if (r.status === 'Failed') return finish('rollback', db.displayUrl, plan, identity, null, results);
    }
    assertRevertible(plan, tier, ledger, db.displayUrl);
    options.onEvent?.({ phase: 'start', tier });
    const r = await runTier(db, plan, tier, { reverts, signal: options.signal, command: 'rollback' });
    options.onEvent?.({ phase: 'end', tier, result: r });
    results.push(r);
    if (r.status === 'Applied') {
      for (const t of reverts) results.push({ ...idle(t), status: 'Reverted', reason: `reverted by tier ${tier.id}` });
    }
    return finish('rollback', db.displayUrl, plan, identity, null, results, Boolean(options.signal?.aborted));
  });
}
