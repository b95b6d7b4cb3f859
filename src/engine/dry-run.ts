import type { Db } from '../db/port.js';
import { DriftError } from '../errors.js';
import type { LintFinding } from '../plan/lint.js';
import type { Plan } from '../plan/plan.js';
import type { TargetIdentity } from '../probe/identity.js';
import { decideRun, plannedTiers, readGateBounded, type TierDecision } from './apply.js';
import { readHandEdits, type HandEdits } from './hand-edits.js';
import { readLedger } from './ledger.js';
import { openPlanSession, runPreflight } from './preflight.js';
import type { GateReading, TierResult } from './result.js';
import { quotedUser } from './blockers.js';
import { describeLacks, lackedPrivileges, runSql } from './privileges.js';
import { assertNoDrift, whyNotWritable } from './rollout.js';
import { rolloutLockHolder } from './rollout-lock.js';
import { isBodyTier } from './run-result.js';
import { namingBlockers } from './session-bounds.js';

export interface DryRunResult {
  plan: { name: string; sha256: string };
  target: string;
  identity: TargetIdentity;
  /** every finding of `tiergate lint`: apply refuses the plan when one is an error */
  lint: LintFinding[];
  /** whether tiergate's ledger exists on the target yet */
  ledger: boolean;
  /** applied tiers whose file changed: apply would stop before touching anything */
  drift: string | null;
  /** who holds the rollout lock now, or null */
  lockHeldBy: string | null;
  /** why apply could not write the target (a hot standby, read-only sessions, no right to create the ledger schema), or null */
  unwritable: string | null;
  /** privileges the tiers apply would run surely need and this user lacks, with the GRANTs (apply would stop before any tier), or null */
  lacks: string | null;
  preflight: TierResult | null;
  gate: GateReading | null;
  /**
   * Each structure and data tier's fate: `stop` when apply would stop before
   * running any tier (a lint error, drift, a failing preflight: `reason` says
   * which); otherwise what apply would decide for it.
   */
  tiers: ({ id: number; name: string; kind: string; appliedBefore?: number[] } & (TierDecision | { action: 'stop'; reason: string }))[];
  /** what apply would do with the verify tier */
  verify: string | null;
  /** objects of the plan's schemas changed outside tiergate since its last tier here: verify fails on them (src/engine/hand-edits.ts) */
  handEdits: HandEdits | null;
}

/**
 * What `apply` would do on this target, changing nothing: no lock taken, no
 * ledger schema created, no tier run (the preflight, read-only, runs). The
 * target's identity, the plan's lint, drift, the rollout lock, the gate, and
 * each tier's fate with the reason `apply` would give.
 *
 * @example const d = await dryRun(db, plan); d.tiers.filter((t) => t.action === 'apply')
 */
export async function dryRun(db: Db, plan: Plan, options: { structureOnly?: boolean } = {}): Promise<DryRunResult> {
  const identity = await openPlanSession(db, plan, { queries: false });
  const { lintPlan } = await import('../plan/lint.js');
  const lint = await lintPlan(plan);
  const ledger = await namingBlockers(db, `reading the ledger of plan '${plan.name}'`, 'select from tiergate.ledger', () => readLedger(db, plan.name));
  const hasLedger = (await db.query<{ ok: boolean }>(`select to_regclass('tiergate.ledger') is not null as ok`)).rows[0]?.ok === true;
  let drift: string | null = null;
  try {
    assertNoDrift(plan, ledger);
  } catch (e) {
    if (!(e instanceof DriftError)) throw e;
    drift = e.message;
  }
  const handEdits = hasLedger ? await db.transaction((tx) => readHandEdits(tx, plan), { readOnly: true }) : null;
  const lockHeldBy = await rolloutLockHolder(db, plan.name);
  const preTier = plan.tiers.find((t) => t.kind === 'preflight');
  const preflight = preTier ? await runPreflight(db, plan, preTier, identity) : null;
  // a plan query that lint refuses is not sent (a gate that does not parse would fail the dry run instead of listing it)
  const refusedQueries = lint.some((f) => f.rule === 'plan-query' && f.severity === 'error');
  const gate = refusedQueries ? null : await readGateBounded(db, plan);
  // apply would run no tier at all: say so of each, not what it would decide on a plan it runs
  const firstLintError = lint.find((f) => f.severity === 'error');
  const unwritable = await whyNotWritable(db);
  const lacks = firstLintError || unwritable || drift ? [] : await lackedPrivileges(db, runSql(plannedTiers(plan, ledger, gate, Boolean(options.structureOnly)), plan.gate?.lock)).catch(() => []);
  const lacking = lacks.length ? describeLacks(lacks, await quotedUser(db)) : null;
  const stop = firstLintError
    ? `apply would refuse the plan: lint error at ${firstLintError.file}:${firstLintError.line}`
    : unwritable
      ? `apply would stop before any tier: ${unwritable}`
      : drift
      ? 'apply would stop before any tier: an applied file changed (drift)'
      : preflight?.status === 'Failed'
        ? `apply would stop before any tier: the preflight fails: ${preflight.error?.message ?? preflight.reason ?? 'see its result'}`
        : lacking
          ? 'apply would stop before any tier: this user lacks privileges the tiers need'
          : null;
  const lacksLine = lacking ? `${lacking.what} — ${lacking.grants}` : null;
  if (stop) {
    const tiers = plan.tiers.filter(isBodyTier).map((t) => ({ id: t.id, name: t.name, kind: t.kind, action: 'stop' as const, reason: stop }));
    const verify = plan.tiers.some((t) => t.kind === 'verify') ? 'would not run: apply would stop before any tier' : null;
    return { plan: { name: plan.name, sha256: plan.sha256 }, target: db.displayUrl, identity, lint, ledger: hasLedger, drift, lockHeldBy, unwritable, lacks: lacksLine, preflight, gate, tiers, verify, handEdits };
  }
  // each tier's fate as apply decides it, with the tiers applied before each one it would run (the state its delta belongs to)
  const { decisions, notApplied } = decideRun(plan, ledger, gate, Boolean(options.structureOnly));
  const tiers: DryRunResult['tiers'] = decisions.map(({ tier, decision, appliedBefore }) => ({
    id: tier.id,
    name: tier.name,
    kind: tier.kind,
    ...decision,
    ...(appliedBefore ? { appliedBefore } : {}),
  }));
  const verifyTier = plan.tiers.find((t) => t.kind === 'verify');
  const verify = verifyTier
    ? notApplied.size
      ? `skipped: tier ${[...notApplied.keys()].join(', ')} would not be applied`
      : `would run after the last tier${handEdits ? ", and fail on the objects changed outside tiergate unless the tiers change them" : ''}`
    : null;
  return { plan: { name: plan.name, sha256: plan.sha256 }, target: db.displayUrl, identity, lint, ledger: hasLedger, drift, lockHeldBy, unwritable, lacks: lacksLine, preflight, gate, tiers, verify, handEdits };
}
