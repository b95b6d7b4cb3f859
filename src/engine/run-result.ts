import type { SqlFailure } from '../errors.js';
import type { Plan, Tier } from '../plan/plan.js';
import type { TargetIdentity } from '../probe/identity.js';
import type { GateReading, TierResult } from './result.js';

export type EngineEvent = { phase: 'start'; tier: Tier } | { phase: 'end'; tier: Tier; result: TierResult };

/** What apply, rollback and verify return: never thrown for a tier's failure. */
export interface RunResult {
  command: 'apply' | 'rollback' | 'verify';
  plan: { name: string; sha256: string };
  target: string;
  identity: TargetIdentity | null;
  gate: GateReading | null;
  tiers: TierResult[];
  /** ok; failed (a tier or check failed: exit 1); no-go (gated tiers blocked by the gate: exit 3); interrupted (Ctrl-C) */
  outcome: 'ok' | 'failed' | 'no-go' | 'interrupted';
}

export function emptyFailure(): SqlFailure {
  return { message: '', sqlstate: null, detail: null, hint: null, where: null, file: null, line: null, column: null, excerpt: null };
}

/** A tier result before anything ran: the tier's identity, nothing measured. */
export function idle(tier: Tier): Omit<TierResult, 'status'> {
  return { id: tier.id, name: tier.name, kind: tier.kind, file: tier.file, sha256: tier.sha256, reason: null, durationMs: 0, delta: null, post: [], error: null };
}

export function finish(
  command: RunResult['command'],
  target: string,
  plan: Plan,
  identity: TargetIdentity | null,
  gate: GateReading | null,
  tiers: TierResult[],
  interrupted = false,
): RunResult {
  const failed = tiers.some((t) => t.status === 'Failed');
  const blocked = tiers.some((t) => t.status === 'Blocked');
  return {
    command,
    plan: { name: plan.name, sha256: plan.sha256 },
    target,
    identity,
    gate,
    tiers,
    outcome: interrupted ? 'interrupted' : failed ? 'failed' : blocked ? 'no-go' : 'ok',
  };
}

/** A tier's metrics after it ran (undefined when it did not measure them). */
export function afterMetrics(r: TierResult): Record<string, number | null> | undefined {
  if (!r.delta) return undefined;
  return Object.fromEntries(Object.entries(r.delta.metrics).map(([name, m]) => [name, m.after]));
}

/** The tiers a rollout changes (structure, data): those the ledger tracks and drift applies to. */
export function isBodyTier(t: Tier): boolean {
  return t.kind === 'structure' || t.kind === 'data';
}
