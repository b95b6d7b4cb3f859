import type { Db } from '../db/port.js';
import { EvidenceRefusedError, TargetError } from '../errors.js';
import type { Plan, Tier } from '../plan/plan.js';
import type { TargetIdentity } from '../probe/identity.js';
import { gateClosedReason, readGate } from './gate.js';
import type { LedgerEntry } from './ledger.js';
import { runPreflight } from './preflight.js';
import type { Delta, Difference, GateReading, TierResult } from './result.js';
import { withRollout, type RolloutOptions } from './rollout.js';
import { afterMetrics, emptyFailure, finish, idle, isBodyTier, type EngineEvent, type RunResult } from './run-result.js';
import { Carry, runCheckTier, runTier } from './run-tier.js';
import { describeLacks, lackedPrivileges, runSql, type PrivilegedSql } from './privileges.js';
import { quotedUser } from './blockers.js';
import { namingBlockers } from './session-bounds.js';
import { interruptedBy } from './run-script.js';

/**
 * A production run bound to a rehearsal (`apply --evidence`): the engine asks
 * it before touching anything whether the evidence is this target's, and
 * inside each tier's transaction, before COMMIT, where the tier's delta
 * differs from what the rehearsal measured in the same state. Implemented by
 * src/evidence/bind.ts.
 */
export interface RehearsalBinding {
  /** refuses (throws, exit 2) evidence of another database, an older subject, too old a snapshot … */
  checkTarget(identity: TargetIdentity, gate: GateReading | null): void;
  /** why no rehearsal of the tier after the tiers `appliedBefore` is recorded (apply would roll it back), null when one is: a dry run's check */
  unrehearsedState(tierId: number, appliedBefore: number[]): string | null;
  /** where `delta` differs from the rehearsal of `tier` after the tiers `appliedBefore`; [] when it matches */
  differences(tier: Tier, appliedBefore: number[], delta: Delta): Difference[];
  /** commit a tier that differs, recording the differences (`--accept-differences`) */
  acceptDifferences: boolean;
  /** what the ledger records of the evidence */
  record: { file: string; sha256: string; createdAt: string };
}

export interface ApplyOptions {
  /** apply only the tiers that need no approval: structure tiers and ungated data tiers */
  structureOnly?: boolean;
  onEvent?: (e: EngineEvent) => void;
  /** run the verify tier at the end when every tier is applied (default true) */
  verify?: boolean;
  /** wait this long for another rollout's lock instead of failing at once */
  waitMs?: number;
  /** Ctrl-C: the running tier rolls back, no further tier starts */
  signal?: AbortSignal;
  binding?: RehearsalBinding;
}

/** A plan that demands evidence (`evidence.required`) refuses a run without it (exit 2), a dry run too. */
export function assertEvidenceGiven(plan: Plan, given: boolean): void {
  if (plan.evidence.required && !given) {
    throw new EvidenceRefusedError(
      `plan '${plan.name}' demands that production applies only what was rehearsed (evidence.required): rehearse this target, then apply with --evidence FILE; nothing was changed`,
    );
  }
}

/**
 * Applies a plan to one target: lock → ledger → drift check → preflight →
 * every tier in plan order (skipped when applied with the same sha256,
 * blocked when its gate is closed or a tier it requires is not applied) →
 * verify. Never throws for a tier failure: the result says what happened.
 *
 * @example const r = await apply(db, loadPlan()); r.outcome // 'no-go' while ospa = 0
 */
export async function apply(db: Db, plan: Plan, options: ApplyOptions = {}): Promise<RunResult> {
  const binding = options.binding;
  assertEvidenceGiven(plan, binding !== undefined);
  const rollout: RolloutOptions = {
    waitMs: options.waitMs,
    signal: options.signal,
    before: binding ? async (identity) => binding.checkTarget(identity, await readGateBounded(db, plan)) : undefined,
  };
  return withRollout(db, plan, rollout, async ({ identity, ledger }) => {
    const results: TierResult[] = [];
    const emit = options.onEvent ?? (() => undefined);
    const run = async (tier: Tier, body: () => Promise<TierResult>): Promise<TierResult> => {
      emit({ phase: 'start', tier });
      const r = await body();
      results.push(r);
      emit({ phase: 'end', tier, result: r });
      return r;
    };
    const done = (gate: GateReading | null) => finish('apply', db.displayUrl, plan, identity, gate, results, Boolean(options.signal?.aborted));

    // The metrics and the plan's catalog as the last transaction of this run
    // left them: the next tier's "before" (src/engine/run-tier.ts, Carry).
    const carry = new Carry();
    for (const tier of plan.tiers.filter((t) => t.kind === 'preflight')) {
      const r = await run(tier, () => runPreflight(db, plan, tier, identity, 'apply', options.signal));
      if (r.status === 'Failed') {
        if (!options.signal?.aborted) return done(null);
        // interrupted in the preflight: every tier below says the interruption stopped it
        break;
      }
      carry.keep(afterMetrics(r));
    }
    const gate = await readGateBounded(db, plan);
    const applied = appliedTiers(plan, ledger, gate);
    // what the tiers this run applies surely need, checked before the first: a user that lacks it is told which GRANT, nothing runs
    await refuseLackedPrivileges(db, runSql(plannedTiers(plan, ledger, gate, Boolean(options.structureOnly)), plan.gate?.lock));
    const notApplied = new Map<number, string>();
    let failed = false;

    for (const tier of plan.tiers.filter(isBodyTier)) {
      const skip = (reason: string, status: 'Skipped' | 'Blocked' = 'Skipped') => {
        leavePending(notApplied, tier.id, status === 'Blocked', applied);
        return run(tier, async () => ({ ...idle(tier), status, reason }));
      };
      if (options.signal?.aborted) {
        // a tier this run would have skipped (applied already) says why: only the others were stopped by the interruption
        const decision = decide(plan, tier, ledger.get(tier.id), { structureOnly: Boolean(options.structureOnly), notApplied, gate });
        await skip(decision.action === 'skip' ? decision.reason : `interrupted (${interruptedBy(options.signal)}) before it started`);
        continue;
      }
      if (failed) {
        await skip('an earlier tier failed');
        continue;
      }
      if (!db.alive()) {
        // nothing more can run on a lost connection (the next run picks up from the ledger)
        failed = true;
        notApplied.set(tier.id, 'not started');
        const message = 'the connection to the server was lost before this tier started';
        await run(tier, async () => ({ ...idle(tier), status: 'Failed', reason: message, error: { ...emptyFailure(), message, sqlstate: '08003', file: tier.file } }));
        continue;
      }
      const decision = decide(plan, tier, ledger.get(tier.id), { structureOnly: Boolean(options.structureOnly), notApplied, gate });
      if (decision.action !== 'apply') {
        await skip(decision.reason, decision.action === 'block' ? 'Blocked' : 'Skipped');
        continue;
      }
      const appliedBefore = sortedIds(applied, plan);
      const r = await run(tier, async () => {
        const result = await runTier(db, plan, tier, {
          carry,
          signal: options.signal,
          command: 'apply',
          // the payload this run decided its tiers for: replaced meanwhile, the next gated tier stops the run
          ...(gate ? { subject: gate.subject } : {}),
          ...(binding
            ? {
                compare: (delta: Delta) => binding.differences(tier, appliedBefore, delta),
                acceptDifferences: binding.acceptDifferences,
                evidence: binding.record,
              }
            : {}),
        });
        return { ...result, appliedBefore };
      });
      if (r.status === 'Applied') applied.add(tier.id);
      else {
        notApplied.set(tier.id, r.status === 'Blocked' ? 'blocked' : 'failed');
        if (r.status === 'Failed') failed = true;
      }
    }

    for (const tier of plan.tiers.filter((t) => t.kind === 'verify')) {
      if (options.verify === false) continue;
      if (notApplied.size > 0 || failed || options.signal?.aborted) {
        await run(tier, async () => ({ ...idle(tier), status: 'Skipped', reason: 'not every tier is applied' }));
      } else {
        await run(tier, () => runCheckTier(db, plan, tier, { record: 'apply', signal: options.signal }));
      }
    }
    // a gated tier that found the gate closed (or its subject changed) during the run: the summary tells the gate as it is now
    const gateMoved = results.some((r) => plan.tiers.find((t) => t.id === r.id)?.gated && (r.status === 'Blocked' || r.status === 'Failed'));
    return done(gateMoved && db.alive() ? await readGateBounded(db, plan).catch(() => gate) : gate);
  });
}

/**
 * The structure and data tiers a run would apply, in order, if each applied:
 * `decide` asked of each as the run asks it (a tier skipped or blocked makes
 * those that require it blocked).
 */
export function plannedTiers(plan: Plan, ledger: Map<number, LedgerEntry>, gate: GateReading | null, structureOnly: boolean): Tier[] {
  return decideRun(plan, ledger, gate, structureOnly)
    .decisions.filter((d) => d.decision.action === 'apply')
    .map((d) => d.tier);
}

/**
 * What a run decides for each structure and data tier, in plan order, if
 * every tier it applies applies — `decide` asked of each as the run asks it
 * — with the tiers applied before each it would apply, and the tiers it
 * leaves not applied (`leftPending`), which block those that require them
 * and skip verify. `apply --dry-run` reports it; `apply` checks the
 * privileges of the tiers it would apply with it.
 */
export function decideRun(
  plan: Plan,
  ledger: Map<number, LedgerEntry>,
  gate: GateReading | null,
  structureOnly: boolean,
): { decisions: { tier: Tier; decision: TierDecision; appliedBefore: number[] | null }[]; notApplied: Map<number, string> } {
  const applied = appliedTiers(plan, ledger, gate);
  const notApplied = new Map<number, string>();
  const decisions: { tier: Tier; decision: TierDecision; appliedBefore: number[] | null }[] = [];
  for (const tier of plan.tiers.filter(isBodyTier)) {
    const decision = decide(plan, tier, ledger.get(tier.id), { structureOnly, notApplied, gate });
    const applies = decision.action === 'apply';
    if (!applies) leavePending(notApplied, tier.id, decision.action === 'block', applied);
    decisions.push({ tier, decision, appliedBefore: applies ? sortedIds(applied, plan) : null });
    if (applies) applied.add(tier.id);
  }
  return { decisions, notApplied };
}

/**
 * Notes tier `id`, which a run did not apply, as not applied when it is:
 * blocked, or skipped while not applied for the gate's subject (`applied`:
 * an amended gated tier skipped by --structure-only is pending, though its
 * ledger row says applied). A tier skipped because it is applied is not.
 */
function leavePending(notApplied: Map<number, string>, id: number, blocked: boolean, applied: Set<number>): void {
  if (blocked || !applied.has(id)) notApplied.set(id, blocked ? 'blocked' : 'not applied');
}

/**
 * Refuses the run (exit 2, before any tier) when this session's user lacks
 * a privilege the tiers it would apply surely need on a relation that
 * exists: a non-owner deploying user once had three tiers committed before
 * the fourth was refused. A check that cannot be read refuses nothing.
 */
async function refuseLackedPrivileges(db: Db, tiers: PrivilegedSql[]): Promise<void> {
  const lacks = await lackedPrivileges(db, tiers).catch(() => []);
  if (!lacks.length) return;
  const user = await quotedUser(db);
  const { what, grants } = describeLacks(lacks, user);
  throw new TargetError(`cannot apply on ${db.displayUrl}: user ${user} lacks what the tiers need: ${what}; no structure or data tier was run — ${grants} (or apply as a user who has them)`);
}

/** What apply does with one structure or data tier, and why. */
export interface TierDecision {
  action: 'apply' | 'skip' | 'block';
  reason: string;
}

/**
 * The one rule that decides a tier's fate in a run: skipped when already
 * applied (same file), with --structure-only for a gated tier; blocked when a
 * tier it requires is not applied or its gate is closed; applied otherwise.
 * `apply` and `apply --dry-run` both ask it.
 */
export function decide(
  plan: Plan,
  tier: Tier,
  prior: LedgerEntry | undefined,
  context: { structureOnly: boolean; notApplied: Map<number, string>; gate: GateReading | null },
): TierDecision {
  const gate = context.gate;
  const amended = amendment(tier, prior, gate);
  if (prior?.status === 'applied' && !amended) return { action: 'skip', reason: `already applied ${prior.appliedAt}` };
  const why = amended ? `${amended}: ` : '';
  if (context.structureOnly && tier.gated) return { action: 'skip', reason: `${why}--structure-only: it needs the gate` };
  const missing = tier.requires.filter((r) => context.notApplied.has(r));
  if (missing.length) return { action: 'block', reason: `${why}requires tier ${missing.join(', ')}, which is ${missing.map((m) => context.notApplied.get(m)).join(', ')}` };
  if (tier.gated && gate && !gate.open) return { action: 'block', reason: `${why}${gateClosedReason(gate)}` };
  return { action: 'apply', reason: gate && tier.gated ? `${why}gate open (${gate.name}=${gate.value})` : prior?.status === 'reverted' ? `reverted ${prior.appliedAt}: applied again` : 'not applied yet' };
}

/**
 * A gated tier is applied *for a gate subject* (what the approvals approve:
 * the payload's sha256). When the subject is no longer the one it was
 * applied for, the tier is pending again — an amendment — and is skipped
 * again once applied for the new one. Null when it is not (or nothing tells:
 * no subject query, or a ledger row without a subject).
 */
export function amendment(tier: Tier, prior: Pick<LedgerEntry, 'status' | 'subject'> | undefined, gate: Pick<GateReading, 'subject'> | null): string | null {
  if (!tier.gated || prior?.status !== 'applied' || !prior.subject || !gate?.subject || prior.subject === gate.subject) return null;
  return `an amendment (applied for subject ${prior.subject.slice(0, 12)}, the subject is now ${gate.subject.slice(0, 12)})`;
}

/**
 * The tiers of the plan a run counts as applied: applied in the ledger, but
 * for a gated tier applied for another gate subject (pending again: an
 * amendment). Apply and the rehearsal count alike, so that a tier's delta
 * belongs to the same state in both.
 */
export function appliedTiers(plan: Plan, ledger: Map<number, LedgerEntry>, gate: GateReading | null): Set<number> {
  return new Set(plan.tiers.filter((t) => ledger.get(t.id)?.status === 'applied' && !amendment(t, ledger.get(t.id), gate)).map((t) => t.id));
}

/** The ids of `applied` body tiers, in plan order: the state a tier's delta belongs to. */
export function sortedIds(applied: Set<number>, plan: Plan): number[] {
  return plan.tiers.filter((t) => isBodyTier(t) && applied.has(t.id)).map((t) => t.id);
}

/** The gate, read-only, naming whoever blocks it. */
export function readGateBounded(db: Db, plan: Plan): Promise<GateReading | null> {
  return namingBlockers(db, `reading gate '${plan.gate?.name ?? ''}'`, plan.gate?.sql ?? 'select', () => db.transaction((tx) => readGate(tx, plan), { readOnly: true }));
}
