import type { Db } from '../db/port.js';
import { TargetError } from '../errors.js';
import type { Plan, Tier } from '../plan/plan.js';
import { readGateBounded } from './apply.js';
import { inEffect, readHistory, readLedger, type LedgerEntry } from './ledger.js';
import { openPlanSession, runPreflight } from './preflight.js';
import type { TierResult } from './result.js';
import { withRollout } from './rollout.js';
import { finish, idle, type EngineEvent, type RunResult } from './run-result.js';
import { runTier } from './run-tier.js';
import { namingBlockers } from './session-bounds.js';

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
 * applied (for the full rollback: in effect, `inEffect`) — for a rollback of scope subject, applied for the gate's current
 * subject (the amendment it reverts), which must not be the only subject the
 * tiers were ever applied for (that is the rollout itself). Returns that
 * subject (null for the full rollback).
 */
async function assertRevertible(db: Db, plan: Plan, tier: Tier, ledger: Map<number, LedgerEntry>): Promise<string | null> {
  // the full rollback also reverts what earlier subjects wrote when only an amendment of it was rolled back
  const notApplied = tier.reverts.filter((id) => (tier.scope === 'subject' ? ledger.get(id)?.status !== 'applied' : !inEffect(ledger.get(id))));
  if (notApplied.length) {
    throw new TargetError(
      `rollback tier ${tier.id} reverts tiers ${tier.reverts.join(', ')}, but ${notApplied.length > 1 ? 'tiers' : 'tier'} ${notApplied.join(', ')} ${notApplied.length > 1 ? 'are' : 'is'} not applied on ${db.displayUrl}; nothing was changed (see 'tiergate status')`,
    );
  }
  if (tier.scope !== 'subject') return null;
  const subject = (await readGateBounded(db, plan))?.subject ?? null;
  if (!subject) throw new TargetError(`rollback tier ${tier.id} reverts the amendment for the gate's current subject, but the gate's subject reads nothing on ${db.displayUrl}; nothing was changed`);
  // every gate subject the tiers were ever applied for (the ledger's history)
  const history = await readHistory(db, plan.name);
  const subjects = new Set(history.filter((e) => e.source === 'ledger' && e.outcome === 'applied' && tier.reverts.includes(e.tierId) && e.subject).map((e) => e.subject));
  if (![...subjects].some((x) => x !== subject)) {
    throw new TargetError(
      `rollback tier ${tier.id} reverts an amendment, but tiers ${tier.reverts.join(', ')} were only ever applied for subject ${subject.slice(0, 12)}, the current one: that is the rollout itself, not an amendment of it — the plan's full rollback reverts it (tiergate rollback); nothing was changed`,
    );
  }
  const other = tier.reverts.filter((id) => ledger.get(id)?.subject !== subject);
  if (other.length) {
    const was = ledger.get(other[0]!)?.subject;
    throw new TargetError(
      `rollback tier ${tier.id} reverts the amendment for subject ${subject.slice(0, 12)}, but ${other.length > 1 ? 'tiers' : 'tier'} ${other.join(', ')} ${other.length > 1 ? 'were' : 'was'} last applied for ${was ? `subject ${was.slice(0, 12)}` : 'no subject'}: that amendment is not applied on ${db.displayUrl}; nothing was changed (see 'tiergate status')`,
    );
  }
  return subject;
}

/**
 * What a rollback would revert on this target, read-only: the CLI asks for
 * confirmation only after this has passed (a rollback that would refuse is
 * refused before the question).
 */
export async function previewRollback(db: Db, plan: Plan, scope: RollbackScope = 'all'): Promise<{ tier: Tier; reverts: Tier[]; subject: string | null }> {
  const r = rollbackTier(plan, scope);
  await openPlanSession(db, plan);
  const ledger = await namingBlockers(db, `reading the ledger of plan '${plan.name}'`, 'select from tiergate.ledger', () => readLedger(db, plan.name));
  return { ...r, subject: await assertRevertible(db, plan, r.tier, ledger) };
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
      const r = await runPreflight(db, plan, pre, identity, 'rollback', options.signal);
      results.push(r);
      if (r.status === 'Failed') return finish('rollback', db.displayUrl, plan, identity, null, results, Boolean(options.signal?.aborted));
    }
    await assertRevertible(db, plan, tier, ledger);
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
