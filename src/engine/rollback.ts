import type { Db } from '../db/port.js';
import { TargetError } from '../errors.js';
import type { Plan, Tier } from '../plan/plan.js';
import { readIdentity } from '../probe/identity.js';
import { readGateBounded } from './apply.js';
import { readHistory, readLedger, type LedgerEntry } from './ledger.js';
import { assertPlanDatabase, runPreflight } from './preflight.js';
import type { TierResult } from './result.js';
import { withRollout } from './rollout.js';
import { finish, idle, type EngineEvent, type RunResult } from './run-result.js';
import { runTier } from './run-tier.js';
import { boundSession, namingBlockers } from './session-bounds.js';

/** Which rollback: the plan's full one, or the one that reverts the amendment for the gate's current subject. */
export type RollbackScope = 'all' | 'subject';

/** The plan's rollback tier of that scope and the tiers it reverts. */
export function rollbackTier(plan: Plan, scope: RollbackScope = 'all'): { tier: Tier; reverts: Tier[] } {
  const tier = plan.tiers.find((t) => t.kind === 'rollback' && t.scope === scope);
  if (!tier) {
    throw new TargetError(
      scope === 'subject'
        ? `plan '${plan.name}' has no rollback tier of scope subject (kind: rollback, scope: subject): it cannot revert one amendment`
        : `plan '${plan.name}' has no rollback tier (kind: rollback)`,
    );
  }
  return { tier, reverts: tier.reverts.map((id) => plan.tiers.find((t) => t.id === id)!) };
}

/**
 * Refuses (touching nothing) unless every tier the rollback reverts is
 * applied — for a rollback of scope subject, applied for the gate's current
 * subject (the amendment it reverts).
 */
function assertRevertible(plan: Plan, tier: Tier, ledger: Map<number, LedgerEntry>, displayUrl: string, subject: string | null, subjectsApplied: Set<string> = new Set()): void {
  const notApplied = tier.reverts.filter((id) => ledger.get(id)?.status !== 'applied');
  if (notApplied.length) {
    throw new TargetError(
      `rollback tier ${tier.id} reverts tiers ${tier.reverts.join(', ')}, but tier ${notApplied.join(', ')} ${notApplied.length > 1 ? 'are' : 'is'} not applied on ${displayUrl}; nothing was changed (see 'tiergate status')`,
    );
  }
  if (tier.scope !== 'subject') return;
  if (!subject) throw new TargetError(`rollback tier ${tier.id} reverts the amendment for the gate's current subject, but the gate's subject reads nothing on ${displayUrl}; nothing was changed`);
  if (![...subjectsApplied].some((x) => x !== subject)) {
    throw new TargetError(
      `rollback tier ${tier.id} reverts an amendment, but tiers ${tier.reverts.join(', ')} were only ever applied for subject ${subject.slice(0, 12)}, the current one: that is the rollout itself, not an amendment of it — the plan's full rollback reverts it (tiergate rollback); nothing was changed`,
    );
  }
  const other = tier.reverts.filter((id) => ledger.get(id)?.subject !== subject);
  if (other.length) {
    const was = ledger.get(other[0]!)?.subject;
    throw new TargetError(
      `rollback tier ${tier.id} reverts the amendment for subject ${subject.slice(0, 12)}, but tier ${other.join(', ')} ${other.length > 1 ? 'were' : 'was'} last applied for ${was ? `subject ${was.slice(0, 12)}` : 'no subject'}: that amendment is not applied on ${displayUrl}; nothing was changed (see 'tiergate status')`,
    );
  }
}

/** Every gate subject the tiers a rollback reverts were ever applied for (the ledger's history). */
async function subjectsApplied(db: Db, plan: Plan, tier: Tier): Promise<Set<string>> {
  const history = await readHistory(db, plan.name);
  return new Set(history.filter((e) => e.source === 'ledger' && e.outcome === 'applied' && tier.reverts.includes(e.tierId) && e.subject).map((e) => e.subject!));
}

/**
 * What a rollback would revert on this target, read-only: the CLI asks for
 * confirmation only after this has passed (a rollback that would refuse is
 * refused before the question).
 */
export async function previewRollback(db: Db, plan: Plan, scope: RollbackScope = 'all'): Promise<{ tier: Tier; reverts: Tier[]; subject: string | null }> {
  const r = rollbackTier(plan, scope);
  await boundSession(db, plan);
  assertPlanDatabase(plan, await readIdentity(db), db.displayUrl);
  const ledger = await namingBlockers(db, `reading the ledger of plan '${plan.name}'`, 'select from tiergate.ledger', () => readLedger(db, plan.name));
  const subject = scope === 'subject' ? ((await readGateBounded(db, plan))?.subject ?? null) : null;
  assertRevertible(plan, r.tier, ledger, db.displayUrl, subject, scope === 'subject' ? await subjectsApplied(db, plan, r.tier) : undefined);
  return { ...r, subject };
}

/**
 * Runs the plan's rollback tier in one transaction and marks the tiers it
 * reverts `reverted` in the ledger (same transaction). Refuses, touching
 * nothing, unless every tier it reverts is applied.
 */
export async function rollback(
  db: Db,
  plan: Plan,
  options: { onEvent?: (e: EngineEvent) => void; waitMs?: number; signal?: AbortSignal; scope?: RollbackScope } = {},
): Promise<RunResult> {
  const { tier, reverts } = rollbackTier(plan, options.scope);
  return withRollout(db, plan, { waitMs: options.waitMs, signal: options.signal }, async ({ identity, ledger }) => {
    const results: TierResult[] = [];
    for (const pre of plan.tiers.filter((t) => t.kind === 'preflight')) {
      const r = await runPreflight(db, plan, pre, identity, 'rollback');
      results.push(r);
      if (r.status === 'Failed') return finish('rollback', db.displayUrl, plan, identity, null, results);
    }
    const subject = tier.scope === 'subject' ? ((await readGateBounded(db, plan))?.subject ?? null) : null;
    assertRevertible(plan, tier, ledger, db.displayUrl, subject, tier.scope === 'subject' ? await subjectsApplied(db, plan, tier) : undefined);
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
