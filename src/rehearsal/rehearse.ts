import type { Db } from '../db/port.js';
import { runPreflight } from '../engine/apply.js';
import { compareExpectations } from '../engine/expectations.js';
import { gateLabel, readGate } from '../engine/gate.js';
import { ensureLedger } from '../engine/ledger.js';
import type { GateReading, TierResult } from '../engine/result.js';
import { runCheckTier, runTier } from '../engine/run-tier.js';
import { TargetError } from '../errors.js';
import type { Plan, Tier } from '../plan/load-plan.js';
import { diffFingerprints, fingerprint, sameFingerprint, type Fingerprint } from '../probe/fingerprint.js';
import { tiergateVersion } from '../version.js';
import { isMarkedClone, withClones, type Clone, type CloneSource } from './clone.js';
import { EVIDENCE_SCHEMA_VERSION, type CheckRecord, type Evidence, type StageRecord } from './evidence.js';

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
 */
export async function rehearse(plan: Plan, source: CloneSource, info: SourceInfo, options: RehearseOptions = {}): Promise<Evidence> {
  const started = performance.now();
  const emit = options.onEvent ?? (() => undefined);
  return withClones(
    source,
    2,
    async (clones) => {
      const [main, kept] = clones as [Clone, Clone];
      const failures: string[] = [];
      const fail = (check: CheckRecord) => {
        if (!check.ok) failures.push(check.name + ': ' + check.detail);
        return check;
      };

      // Preflight on the source: identity and the gate's real value decide the execution verdict.
      const preflightTier = plan.tiers.find((t) => t.kind === 'preflight') ?? null;
      const { preflight, gate, database } = await readSource(plan, preflightTier, info.openSource ?? (() => main.open()));
      if (preflight?.status === 'Failed') failures.push(`preflight on the source failed: ${preflight.error?.message ?? preflight.reason}`);

      const db = await main.open();
      await ensureLedger(db);
      const stages: StageRecord[] = [];
      let rollbackRecord: Evidence['rollback'] = null;
      try {
        const run = async (stage: string, tier: Tier, body: () => Promise<TierResult>): Promise<TierResult> => {
          emit({ type: 'tier-start', stage, tier });
          const r = await body();
          emit({ type: 'tier-end', stage, result: r });
          return r;
        };
        const applyTier = (stage: string, tier: Tier, extra: Parameters<typeof runTier>[3] = {}) =>
          run(stage, tier, async () => {
            const r = await runTier(db, plan, tier, extra);
            return r.delta && r.status === 'Applied' ? { ...r, expectations: compareExpectations(tier, r.delta) } : r;
          });
        const verifyTier = plan.tiers.find((t) => t.kind === 'verify');
        const rollbackTier = plan.tiers.find((t) => t.kind === 'rollback');
        const body = plan.tiers.filter((t) => t.kind === 'structure' || t.kind === 'data');

        if (preflight?.status !== 'Failed') {
          // Stage A: the gate as the source has it.
          emit({ type: 'stage', stage: 'A', title: 'gate as the source has it' });
          const a: StageRecord = { name: 'A', title: `gate as the source has it (${gateLabel(gate)})`, tiers: [], checks: [] };
          stages.push(a);
          const sourceGateOpen = gate?.open ?? true;
          // checks (preflight, verify) hold nothing to apply: a tier requiring one only needs it to have passed
          const appliedA = new Set<number>(plan.tiers.filter((t) => t.kind === 'preflight' || t.kind === 'verify').map((t) => t.id));
          for (const tier of body) {
            if (tier.gated && !sourceGateOpen) {
              const before = await fingerprint(db);
              const r = await run('A', tier, () => runTier(db, plan, tier, { proveGuard: true }));
              const unchanged = sameFingerprint(before, await fingerprint(db));
              const result = { ...r, fingerprintUnchanged: unchanged };
              a.tiers.push(result);
              a.checks.push(
                fail({
                  name: `A: tier ${tier.id} stops itself with the gate closed`,
                  ok: result.status === 'Blocked' && result.guardProven === true && unchanged,
                  detail: result.guardProven ? (unchanged ? 'its guard aborted it; fingerprint unchanged' : 'its guard aborted it, but the fingerprint changed') : (result.reason ?? 'not blocked'),
                }),
              );
              continue;
            }
            if (tier.requires.some((r) => !appliedA.has(r))) {
              a.tiers.push(await run('A', tier, async () => ({ ...skipped(tier), reason: 'requires a tier not applied in this stage' })));
              continue;
            }
            const r = await applyTier('A', tier);
            a.tiers.push(r);
            if (r.status === 'Applied') appliedA.add(tier.id);
            a.checks.push(fail(tierCheck('A', r)));
          }
          if (verifyTier) {
            const v = await run('A', verifyTier, () => runCheckTier(db, plan, verifyTier));
            a.tiers.push(v);
            a.checks.push({
              name: 'A: verify shows the honest gaps',
              ok: true,
              detail: `${v.status}: ${metricsLine(v)}`,
            });
          }

          // Stage B: the gate opened on the clone, and only on a clone.
          const pending = body.filter((t) => !appliedA.has(t.id));
          const b: StageRecord = { name: 'B', title: 'gate opened on the clone', tiers: [], checks: [] };
          stages.push(b);
          emit({ type: 'stage', stage: 'B', title: b.title });
          if (!sourceGateOpen || pending.length) await openGate(db, plan);
          const fullyApplied = new Set(appliedA);
          for (const tier of pending) {
            if (tier.requires.some((r) => !fullyApplied.has(r))) {
              b.tiers.push(await run('B', tier, async () => ({ ...skipped(tier), reason: 'requires a tier that did not apply' })));
              b.checks.push(fail({ name: `B: tier ${tier.id} applies`, ok: false, detail: 'a tier it requires did not apply' }));
              continue;
            }
            const r = await applyTier('B', tier);
            b.tiers.push(r);
            if (r.status === 'Applied') fullyApplied.add(tier.id);
            b.checks.push(fail(tierCheck('B', r)));
          }
          if (verifyTier) {
            const v = await run('B', verifyTier, () => runCheckTier(db, plan, verifyTier));
            b.tiers.push(v);
            b.checks.push(fail({ name: 'B: verify passes', ok: v.status === 'Passed', detail: v.status === 'Passed' ? metricsLine(v) : (v.reason ?? 'failed') }));
          }
          const fpB = await fingerprint(db);

          // Stage C: rollback, proven twice.
          if (rollbackTier && failures.length === 0) {
            const c: StageRecord = { name: 'C', title: 'rollback, proven', tiers: [], checks: [] };
            stages.push(c);
            emit({ type: 'stage', stage: 'C', title: c.title });
            const reverted = rollbackTier.reverts.map((id) => plan.tiers.find((t) => t.id === id)!);
            const rb = await applyTier('C', rollbackTier, { reverts: reverted });
            c.tiers.push(rb);
            c.checks.push(fail(tierCheck('C', rb)));
            for (const t of reverted) if (rb.status === 'Applied') c.tiers.push({ ...skipped(t), status: 'Reverted', reason: `reverted by tier ${rollbackTier.id}` });
            const fpRolled = await fingerprint(db);

            // A clean apply of the kept tiers on the second clone.
            emit({ type: 'progress', message: `applying the kept tiers on a second clone (${kept.displayUrl})` });
            const keptFp = await applyKept(plan, kept, body.filter((t) => !rollbackTier.reverts.includes(t.id)));
            const keptDiff = keptFp.error ? null : diffFingerprints(fpRolled, keptFp.fp!);
            const matchesKeptTiers = !keptFp.error && sameFingerprint(fpRolled, keptFp.fp!);
            c.checks.push(
              fail({
                name: 'C: after rollback the clone equals a clean apply of the kept tiers',
                ok: matchesKeptTiers,
                detail: keptFp.error ?? (matchesKeptTiers ? `fingerprint ${fpRolled.hash.slice(0, 12)} on both clones` : describeDiff(keptDiff!)),
              }),
            );

            // Re-apply the reverted tiers, in plan order: must reproduce stage B.
            for (const tier of body.filter((t) => rollbackTier.reverts.includes(t.id))) {
              // metrics before a re-apply differ from the first apply's by design (tier 2 stayed):
              // the proof here is the fingerprint below, not the plan's expectations
              const r = await run('C', tier, () => runTier(db, plan, tier));
              c.tiers.push(r);
              c.checks.push(fail({ name: `C: tier ${tier.id} re-applies`, ok: r.status === 'Applied', detail: r.status === 'Applied' ? 'applied' : (r.error?.message ?? r.reason ?? r.status) }));
            }
            if (verifyTier) {
              const v = await run('C', verifyTier, () => runCheckTier(db, plan, verifyTier));
              c.tiers.push(v);
              c.checks.push(fail({ name: 'C: verify passes after the re-apply', ok: v.status === 'Passed', detail: v.status === 'Passed' ? metricsLine(v) : (v.reason ?? 'failed') }));
            }
            const fpAgain = await fingerprint(db);
            const reapplyDiff = diffFingerprints(fpB, fpAgain);
            const reapplyMatches = sameFingerprint(fpB, fpAgain);
            c.checks.push(
              fail({ name: 'C: re-applying the reverted tiers reproduces stage B', ok: reapplyMatches, detail: reapplyMatches ? `fingerprint ${fpB.hash.slice(0, 12)}` : describeDiff(reapplyDiff) }),
            );
            rollbackRecord = {
              tier: rollbackTier.id,
              reverted: rollbackTier.reverts,
              matchesKeptTiers,
              reapplyMatches,
              keptDiff: matchesKeptTiers ? null : keptDiff,
              reapplyDiff: reapplyMatches ? null : reapplyDiff,
            };
          } else if (rollbackTier) {
            failures.push('C: rollback not rehearsed, because an earlier stage failed');
          }
        }
      } finally {
        await db.close();
      }

      const passed = failures.length === 0;
      const go = passed && (gate?.open ?? true);
      return {
        schemaVersion: EVIDENCE_SCHEMA_VERSION,
        tool: { name: 'tiergate', version: tiergateVersion() },
        createdAt: new Date().toISOString(),
        plan: { name: plan.name, dir: plan.dir, sha256: plan.sha256, files: { 'tiergate.yaml': plan.yamlSha256, ...plan.files } },
        source: { kind: info.kind, location: info.location, database, gate, preflight },
        clone: { kind: main.kind, location: main.displayUrl, kept: Boolean(options.keep), copyMs: main.copyMs },
        stages,
        rollback: rollbackRecord,
        verdict: {
          rehearsal: passed ? 'PASS' : 'FAIL',
          execution: go ? 'GO' : 'NO-GO',
          reason: !passed ? 'rehearsal failed' : gate ? gateLabel(gate) : 'no gate',
          failures,
        },
        durationMs: Math.round(performance.now() - started),
      };
    },
    { keep: options.keep, onProgress: (message) => emit({ type: 'progress', message }) },
  );
}

/** Preflight and gate on the source, read-only. */
async function readSource(
  plan: Plan,
  preflightTier: Tier | null,
  open: () => Promise<Db>,
): Promise<{ preflight: TierResult | null; gate: GateReading | null; database: string }> {
  const src = await open();
  try {
    const preflight = preflightTier ? await runPreflight(src, plan, preflightTier) : null;
    const gate = await src.transaction((tx) => readGate(tx, plan), { readOnly: true });
    const d = await src.query<{ d: string }>('select current_database() as d');
    return { preflight, gate, database: d.rows[0]?.d ?? '' };
  } finally {
    await src.close();
  }
}

/** Opens the plan's gate — refused unless the database carries tiergate's clone mark. */
export async function openGate(db: Db, plan: Plan): Promise<void> {
  const sql = plan.rehearsal?.open_gate;
  if (!sql) throw new TargetError(`plan '${plan.name}' has no rehearsal.open_gate: the rehearsal cannot open the gate on the clone`);
  const mark = await isMarkedClone(db);
  if (!mark.marked) throw new TargetError(`refusing to open the gate on ${db.displayUrl}: it is not a clone made by tiergate (no tiergate.clone_mark)`);
  await db.transaction((tx) => tx.exec(sql));
}

async function applyKept(plan: Plan, clone: Clone, tiers: Tier[]): Promise<{ fp?: Fingerprint; error?: string }> {
  const db = await clone.open();
  try {
    await ensureLedger(db);
    await openGate(db, plan);
    for (const tier of tiers) {
      const r = await runTier(db, plan, tier);
      if (r.status !== 'Applied') return { error: `tier ${tier.id} did not apply on the second clone: ${r.error?.message ?? r.reason}` };
    }
    return { fp: await fingerprint(db) };
  } finally {
    await db.close();
  }
}

function tierCheck(stage: string, r: TierResult): CheckRecord {
  const missed = (r.expectations ?? []).filter((x) => !x.ok);
  if (r.status !== 'Applied') return { name: `${stage}: tier ${r.id} applies`, ok: false, detail: r.error ? `${r.error.sqlstate ?? ''} ${r.error.message} (${r.error.file}:${r.error.line ?? '?'})`.trim() : (r.reason ?? r.status) };
  if (missed.length) return { name: `${stage}: tier ${r.id} matches the plan's expectations`, ok: false, detail: missed.map((m) => `${m.what}: expected ${m.expected}, got ${m.actual}`).join('; ') };
  return { name: `${stage}: tier ${r.id} applies as expected`, ok: true, detail: `${(r.expectations ?? []).length} expectation(s) met` };
}

function skipped(tier: Tier): TierResult {
  return { id: tier.id, name: tier.name, kind: tier.kind, file: tier.file, sha256: tier.sha256, status: 'Skipped', reason: null, durationMs: 0, delta: null, post: [], error: null };
}

function metricsLine(t: TierResult): string {
  return Object.entries(t.delta?.metrics ?? {})
    .map(([k, v]) => `${k}=${v.after ?? 'n/a'}`)
    .join(', ');
}

function describeDiff(d: { objects: string[]; tables: string[] }): string {
  const parts = [d.objects.length ? `objects differ: ${d.objects.slice(0, 10).join(', ')}${d.objects.length > 10 ? ` (+${d.objects.length - 10})` : ''}` : '', d.tables.length ? `table contents differ: ${d.tables.slice(0, 10).join(', ')}${d.tables.length > 10 ? ` (+${d.tables.length - 10})` : ''}` : ''];
  return parts.filter(Boolean).join('; ') || 'fingerprints differ';
}
