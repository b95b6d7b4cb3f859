import type { Db } from '../db/port.js';
import { idle, runPreflight } from '../engine/apply.js';
import { compareExpectations } from '../engine/expectations.js';
import { gateLabel, readGate } from '../engine/gate.js';
import { ensureLedger } from '../engine/ledger.js';
import type { GateReading, TierResult } from '../engine/result.js';
import { runCheckTier, runTier, type RunTierOptions } from '../engine/run-tier.js';
import { TargetError } from '../errors.js';
import { planFileHashes, type Plan, type Tier } from '../plan/plan.js';
import { diffFingerprints, fingerprintClone, sameFingerprint, type Fingerprint } from '../probe/fingerprint.js';
import { tiergateVersion } from '../version.js';
import { isMarkedClone, withClones, type Clone, type CloneSource } from './clone.js';
import { EVIDENCE_SCHEMA_VERSION, type CheckRecord, type Evidence, type FingerprintDiff, type StageRecord } from './evidence.js';

export type RehearsalEvent =
  | { type: 'stage'; stage: StageRecord['name']; title: string }
  | { type: 'tier-start'; stage: string; tier: Tier }
  | { type: 'tier-end'; stage: string; result: TierResult }
  | { type: 'progress'; message: string };

export interface RehearseOptions {
  keep?: boolean;
  onEvent?: (e: RehearsalEvent) => void;
}

/** Where the rehearsal's source is, for the evidence. */
export interface SourceInfo {
  kind: Evidence['source']['kind'];
  location: string;
  /** a read-only connection to the source, when the source is a server (preflight runs there) */
  openSource?: () => Promise<Db>;
}

/**
 * The rehearsal scenario (product.md): preflight on the source (read-only) →
 * stage A on a clone with the gate as the source has it → stage B with the
 * gate opened on the clone → stage C rollback, proven against a clean apply of
 * the kept tiers on a second clone and against stage B by re-applying →
 * verdict. Returns the evidence; never throws for a failed check.
 *
 * @example const evidence = await rehearse(loadPlan(), { kind: 'pglite-sample', scale: 1 }, info);
 */
export async function rehearse(plan: Plan, source: CloneSource, info: SourceInfo, options: RehearseOptions = {}): Promise<Evidence> {
  const started = performance.now();
  const emit = options.onEvent ?? (() => undefined);
  return withClones(
    source,
    2,
    async (clones) => {
      const [main, kept] = clones as [Clone, Clone];
      // Preflight on the source: identity and the gate's real value decide the execution verdict.
      const { preflight, gate, database } = await readSource(plan, info.openSource ?? (() => main.open()));
      const s = new Scenario(plan, await main.open(), emit);
      try {
        if (preflight?.status === 'Failed') s.failures.push(`preflight on the source failed: ${preflight.error?.message ?? preflight.reason}`);
        else {
          await ensureLedger(s.db);
          await s.stageA(gate);
          const fpB = await s.stageB();
          if (s.failures.length === 0) await s.stageC(kept, fpB);
          else if (s.rollbackTier) s.failures.push('C: rollback not rehearsed, because an earlier stage failed');
        }
      } finally {
        await s.db.close();
      }
      const passed = s.failures.length === 0;
      return {
        schemaVersion: EVIDENCE_SCHEMA_VERSION,
        tool: { name: 'tiergate', version: tiergateVersion() },
        createdAt: new Date().toISOString(),
        plan: { name: plan.name, dir: plan.dir, sha256: plan.sha256, files: planFileHashes(plan) },
        source: { kind: info.kind, location: info.location, database, gate, preflight },
        clone: { kind: main.kind, location: main.displayUrl, kept: Boolean(options.keep), copyMs: main.copyMs },
        stages: s.stages,
        rollback: s.rollback,
        verdict: {
          rehearsal: passed ? 'PASS' : 'FAIL',
          execution: passed && (gate?.open ?? true) ? 'GO' : 'NO-GO',
          reason: !passed ? 'rehearsal failed' : gate ? gateLabel(gate) : 'no gate',
          failures: s.failures,
        },
        durationMs: Math.round(performance.now() - started),
      };
    },
    { keep: options.keep, onProgress: (message) => emit({ type: 'progress', message }) },
  );
}

/** The state of one rehearsal on its main clone: stages, checks, failures. */
class Scenario {
  readonly stages: StageRecord[] = [];
  readonly failures: string[] = [];
  rollback: Evidence['rollback'] = null;
  readonly verifyTier: Tier | undefined;
  readonly rollbackTier: Tier | undefined;
  /** the tiers a rollout applies: structure and data, in plan order */
  readonly body: Tier[];
  /** tiers applied on the main clone; checks count as satisfied for `requires` */
  private readonly applied: Set<number>;

  constructor(
    readonly plan: Plan,
    readonly db: Db,
    private readonly emit: (e: RehearsalEvent) => void,
  ) {
    this.verifyTier = plan.tiers.find((t) => t.kind === 'verify');
    this.rollbackTier = plan.tiers.find((t) => t.kind === 'rollback');
    this.body = plan.tiers.filter((t) => t.kind === 'structure' || t.kind === 'data');
    this.applied = new Set(plan.tiers.filter((t) => t.kind === 'preflight' || t.kind === 'verify').map((t) => t.id));
  }

  /** Stage A: the gate as the source has it. Gated tiers must stop themselves and leave the fingerprint unchanged. */
  async stageA(gate: GateReading | null): Promise<void> {
    const a = this.stage('A', `gate as the source has it (${gateLabel(gate)})`);
    const gateOpen = gate?.open ?? true;
    // The clone is tiergate's own: nothing else writes to it. After a blocked
    // tier, the clone's fingerprint is the next blocked tier's "before" unless
    // a tier applied in between (a fingerprint is seconds at 6,500 tables).
    let last: Fingerprint | null = null;
    for (const tier of this.body) {
      if (tier.gated && !gateOpen) {
        const before = last ?? (await fingerprintClone(this.db));
        const r = await this.run(a, tier, () => runTier(this.db, this.plan, tier, { proveGuard: true }));
        last = await fingerprintClone(this.db);
        const unchanged = sameFingerprint(before, last);
        r.fingerprintUnchanged = unchanged;
        this.check(a, {
          name: `A: tier ${tier.id} stops itself with the gate closed`,
          ok: r.status === 'Blocked' && r.guardProven === true && unchanged,
          detail: !r.guardProven ? (r.reason ?? 'not blocked') : unchanged ? 'its guard aborted it; fingerprint unchanged' : 'its guard aborted it, but the fingerprint changed',
        });
      } else if (tier.requires.some((id) => !this.applied.has(id))) {
        await this.run(a, tier, async () => ({ ...idle(tier), status: 'Skipped', reason: 'requires a tier not applied in this stage' }));
      } else {
        last = null;
        this.check(a, tierCheck('A', await this.apply(a, tier)));
      }
    }
    if (this.verifyTier) {
      const v = await this.verify(a);
      this.check(a, { name: 'A: verify shows the honest gaps', ok: true, detail: `${v.status}: ${metricsLine(v)}` });
    }
  }

  /** Stage B: the gate opened on the clone (and only on a clone); every remaining tier applies as expected; verify passes. */
  async stageB(): Promise<Fingerprint> {
    const b = this.stage('B', 'gate opened on the clone');
    const pending = this.body.filter((t) => !this.applied.has(t.id));
    await openGate(this.db, this.plan);
    for (const tier of pending) {
      if (tier.requires.some((id) => !this.applied.has(id))) {
        await this.run(b, tier, async () => ({ ...idle(tier), status: 'Skipped', reason: 'requires a tier that did not apply' }));
        this.check(b, { name: `B: tier ${tier.id} applies`, ok: false, detail: 'a tier it requires did not apply' });
      } else {
        this.check(b, tierCheck('B', await this.apply(b, tier)));
      }
    }
    if (this.verifyTier) this.check(b, verifyCheck('B: verify passes', await this.verify(b)));
    return fingerprintClone(this.db);
  }

  /**
   * Stage C: the rollback tier, then two proofs — the clone equals a clean
   * apply of the kept tiers on a second clone, and re-applying the reverted
   * tiers reproduces stage B.
   */
  async stageC(kept: Clone, fpB: Fingerprint): Promise<void> {
    const rollbackTier = this.rollbackTier;
    if (!rollbackTier) return;
    const c = this.stage('C', 'rollback, proven');
    const reverted = rollbackTier.reverts.map((id) => this.plan.tiers.find((t) => t.id === id)!);
    const rb = await this.apply(c, rollbackTier, { reverts: reverted });
    this.check(c, tierCheck('C', rb));
    if (rb.status !== 'Applied') return;
    for (const t of reverted) c.tiers.push({ ...idle(t), status: 'Reverted', reason: `reverted by tier ${rollbackTier.id}` });
    const fpRolled = await fingerprintClone(this.db);

    this.emit({ type: 'progress', message: `applying the kept tiers on a second clone (${kept.displayUrl})` });
    const keptFp = await applyKept(this.plan, kept, this.body.filter((t) => !rollbackTier.reverts.includes(t.id)));
    const keptDiff = 'error' in keptFp ? null : diffFingerprints(fpRolled, keptFp.fp);
    const matchesKeptTiers = keptDiff !== null && sameFingerprint(fpRolled, (keptFp as { fp: Fingerprint }).fp);
    this.check(c, {
      name: 'C: after rollback the clone equals a clean apply of the kept tiers',
      ok: matchesKeptTiers,
      detail: 'error' in keptFp ? keptFp.error : matchesKeptTiers ? `fingerprint ${fpRolled.hash.slice(0, 12)} on both clones` : describeDiff(keptDiff!),
    });

    // Metrics before a re-apply differ from the first apply's by design (kept
    // tiers stay applied): the proof here is the fingerprint, not `expect`.
    for (const tier of this.body.filter((t) => rollbackTier.reverts.includes(t.id))) {
      const r = await this.run(c, tier, () => runTier(this.db, this.plan, tier));
      this.check(c, { name: `C: tier ${tier.id} re-applies`, ok: r.status === 'Applied', detail: r.status === 'Applied' ? 'applied' : (r.error?.message ?? r.reason ?? r.status) });
    }
    if (this.verifyTier) this.check(c, verifyCheck('C: verify passes after the re-apply', await this.verify(c)));
    const fpAgain = await fingerprintClone(this.db);
    const reapplyDiff = diffFingerprints(fpB, fpAgain);
    const reapplyMatches = sameFingerprint(fpB, fpAgain);
    this.check(c, {
      name: 'C: re-applying the reverted tiers reproduces stage B',
      ok: reapplyMatches,
      detail: reapplyMatches ? `fingerprint ${fpB.hash.slice(0, 12)}` : describeDiff(reapplyDiff),
    });
    this.rollback = {
      tier: rollbackTier.id,
      reverted: rollbackTier.reverts,
      matchesKeptTiers,
      reapplyMatches,
      keptDiff: matchesKeptTiers ? null : keptDiff,
      reapplyDiff: reapplyMatches ? null : reapplyDiff,
    };
  }

  private stage(name: StageRecord['name'], title: string): StageRecord {
    const s: StageRecord = { name, title, tiers: [], checks: [] };
    this.stages.push(s);
    this.emit({ type: 'stage', stage: name, title });
    return s;
  }

  private check(stage: StageRecord, check: CheckRecord): void {
    stage.checks.push(check);
    if (!check.ok) this.failures.push(`${check.name}: ${check.detail}`);
  }

  private async run(stage: StageRecord, tier: Tier, body: () => Promise<TierResult>): Promise<TierResult> {
    this.emit({ type: 'tier-start', stage: stage.name, tier });
    const r = await body();
    stage.tiers.push(r);
    this.emit({ type: 'tier-end', stage: stage.name, result: r });
    return r;
  }

  /** Applies a tier and checks its delta against the plan's expectations. */
  private async apply(stage: StageRecord, tier: Tier, options: RunTierOptions = {}): Promise<TierResult> {
    const r = await this.run(stage, tier, async () => {
      const result = await runTier(this.db, this.plan, tier, options);
      return result.delta && result.status === 'Applied' ? { ...result, expectations: compareExpectations(tier, result.delta) } : result;
    });
    if (r.status === 'Applied') this.applied.add(tier.id);
    return r;
  }

  private verify(stage: StageRecord): Promise<TierResult> {
    const tier = this.verifyTier!;
    return this.run(stage, tier, () => runCheckTier(this.db, this.plan, tier));
  }
}

/** Preflight and gate on the source, read-only. */
async function readSource(plan: Plan, open: () => Promise<Db>): Promise<{ preflight: TierResult | null; gate: GateReading | null; database: string }> {
  const tier = plan.tiers.find((t) => t.kind === 'preflight') ?? null;
  const src = await open();
  try {
    const preflight = tier ? await runPreflight(src, plan, tier) : null;
    const gate = await src.transaction((tx) => readGate(tx, plan), { readOnly: true });
    const d = await src.query<{ d: string }>('select current_database() as d');
    return { preflight, gate, database: d.rows[0]?.d ?? '' };
  } finally {
    await src.close();
  }
}

/**
 * Opens the plan's gate when it is closed. Refused on any database without
 * tiergate's clone mark — first, whatever the gate reads, so that no call
 * ever writes approvals outside a clone. A gate already open is left as it
 * is, so every clone ends with the same approvals.
 */
export async function openGate(db: Db, plan: Plan): Promise<void> {
  const mark = await isMarkedClone(db);
  if (!mark.marked) throw new TargetError(`refusing to open the gate on ${db.displayUrl}: it is not a clone made by tiergate (no tiergate.clone_mark)`);
  const current = await db.transaction((tx) => readGate(tx, plan), { readOnly: true });
  if (!current || current.open) return;
  const sql = plan.rehearsal?.open_gate;
  if (!sql) throw new TargetError(`plan '${plan.name}' has no rehearsal.open_gate: the rehearsal cannot open the gate on the clone`);
  await db.transaction((tx) => tx.exec(sql));
}

async function applyKept(plan: Plan, clone: Clone, tiers: Tier[]): Promise<{ fp: Fingerprint } | { error: string }> {
  const db = await clone.open();
  try {
    await ensureLedger(db);
    await openGate(db, plan);
    for (const tier of tiers) {
      const r = await runTier(db, plan, tier);
      if (r.status !== 'Applied') return { error: `tier ${tier.id} did not apply on the second clone: ${r.error?.message ?? r.reason}` };
    }
    return { fp: await fingerprintClone(db) };
  } finally {
    await db.close();
  }
}

function tierCheck(stage: string, r: TierResult): CheckRecord {
  const missed = (r.expectations ?? []).filter((x) => !x.ok);
  if (r.status !== 'Applied') {
    const where = r.error ? ` (${r.error.file}:${r.error.line ?? '?'})` : '';
    return { name: `${stage}: tier ${r.id} applies`, ok: false, detail: r.error ? `${r.error.sqlstate ?? ''} ${r.error.message}${where}`.trim() : (r.reason ?? r.status) };
  }
  if (missed.length) {
    return { name: `${stage}: tier ${r.id} matches the plan's expectations`, ok: false, detail: missed.map((m) => `${m.what}: expected ${m.expected}, got ${m.actual}`).join('; ') };
  }
  return { name: `${stage}: tier ${r.id} applies as expected`, ok: true, detail: `${(r.expectations ?? []).length} expectation(s) met` };
}

function verifyCheck(name: string, v: TierResult): CheckRecord {
  return { name, ok: v.status === 'Passed', detail: v.status === 'Passed' ? metricsLine(v) : (v.reason ?? 'failed') };
}

function metricsLine(t: TierResult): string {
  return Object.entries(t.delta?.metrics ?? {})
    .map(([k, v]) => `${k}=${v.after ?? 'n/a'}`)
    .join(', ');
}

function describeDiff(d: FingerprintDiff): string {
  const list = (xs: string[]) => xs.slice(0, 10).join(', ') + (xs.length > 10 ? ` (+${xs.length - 10})` : '');
  const parts = [d.objects.length ? `objects differ: ${list(d.objects)}` : '', d.tables.length ? `table contents differ: ${list(d.tables)}` : ''];
  return parts.filter(Boolean).join('; ') || 'fingerprints differ';
}
