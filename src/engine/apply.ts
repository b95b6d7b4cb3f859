import type { Db } from '../db/port.js';
import { DriftError, TargetError, type SqlFailure } from '../errors.js';
import type { Plan, Tier } from '../plan/plan.js';
import { readMetrics } from '../probe/metrics.js';
import { compareExpectations } from './expectations.js';
import { readGate } from './gate.js';
import { ensureLedger, readLedger, type LedgerEntry } from './ledger.js';
import type { GateReading, TierResult } from './result.js';
import { withRolloutLock } from './rollout-lock.js';
import { runCheckTier, runTier } from './run-tier.js';
import { boundSession, namingBlockers } from './session-bounds.js';
import { assertOneTransactionPerTier } from './tier-files.js';

export type EngineEvent = { phase: 'start'; tier: Tier } | { phase: 'end'; tier: Tier; result: TierResult };

export interface RunResult {
  command: 'apply' | 'rollback' | 'verify' | 'status';
  plan: { name: string; sha256: string };
  target: string;
  gate: GateReading | null;
  tiers: TierResult[];
  /** ok; failed (a tier or check failed: exit 1); no-go (gated tiers blocked by the gate: exit 3) */
  outcome: 'ok' | 'failed' | 'no-go';
}

export interface ApplyOptions {
  structureOnly?: boolean;
  onEvent?: (e: EngineEvent) => void;
  /** run the verify tier at the end when every tier is applied (default true) */
  verify?: boolean;
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
  await assertOneTransactionPerTier(plan);
  await boundSession(db, plan);
  await assertTargetIdentity(db, plan);
  return withRolloutLock(db, plan.name, async () => {
    const ledger = await bookkeeping(db, plan);
    assertNoDrift(plan, ledger);
    const results: TierResult[] = [];
    const emit = options.onEvent ?? (() => undefined);
    const run = async (tier: Tier, body: () => Promise<TierResult>): Promise<TierResult> => {
      emit({ phase: 'start', tier });
      const r = await body();
      results.push(r);
      emit({ phase: 'end', tier, result: r });
      return r;
    };

    // The metrics as the last transaction of this run left them: the next
    // tier's "before" (metric sets over views of a whole database are most of
    // an apply's own cost; this halves them). Each metric is a statement of
    // READ COMMITTED transactions, so it always sees what other sessions have
    // committed at that moment: a change committed by someone else between
    // two tiers shows in the next tier's metric delta instead of between the
    // two, exactly as one committed during a tier does. Row and object deltas
    // are measured inside each tier's own transaction and are not affected.
    let metricsNow: Record<string, number | null> | undefined;
    for (const tier of plan.tiers.filter((t) => t.kind === 'preflight')) {
      const r = await run(tier, () => runPreflight(db, plan, tier));
      if (r.status === 'Failed') return finish('apply', db, plan, null, results);
      metricsNow = afterMetrics(r);
    }
    const gate = await readGateBounded(db, plan);
    const applied = new Set([...ledger.values()].filter((e) => e.status === 'applied').map((e) => e.tierId));
    const notApplied = new Map<number, string>();
    let failed = false;

    for (const tier of plan.tiers) {
      if (tier.kind === 'preflight' || tier.kind === 'verify' || tier.kind === 'rollback') continue;
      const prior = ledger.get(tier.id);
      const skip = (reason: string, status: 'Skipped' | 'Blocked' = 'Skipped') => {
        if (status === 'Blocked' || !applied.has(tier.id)) notApplied.set(tier.id, status === 'Blocked' ? 'blocked' : 'not applied');
        return run(tier, async () => ({ ...idle(tier), status, reason }));
      };
      if (failed) {
        await skip('an earlier tier failed');
        continue;
      }
      if (!db.alive()) {
        // nothing more can run on a lost connection (the next run picks up from the ledger)
        failed = true;
        notApplied.set(tier.id, 'not started');
        const message = 'the connection to the server was lost before this tier started';
        await run(tier, async () => ({ ...idle(tier), status: 'Failed', reason: message, error: { ...noFailure(), message, sqlstate: '08003', file: tier.file } }));
        continue;
      }
      if (prior?.status === 'applied') {
        await skip(`already applied ${prior.appliedAt}`);
        continue;
      }
      if (options.structureOnly && tier.kind !== 'structure') {
        await skip('--structure-only');
        continue;
      }
      const missing = tier.requires.filter((r) => notApplied.has(r));
      if (missing.length) {
        await skip(`requires tier ${missing.join(', ')}, which is ${missing.map((m) => notApplied.get(m)).join(', ')}`, 'Blocked');
        continue;
      }
      if (tier.gated && gate && !gate.open) {
        await skip(`gate closed (${gate.name}=${gate.value ?? 'n/a'}, needs ≥ ${gate.min})`, 'Blocked');
        continue;
      }
      const r = await run(tier, async () => {
        const result = await runTier(db, plan, tier, { metricsBefore: metricsNow });
        return result.delta ? { ...result, expectations: compareExpectations(tier, result.delta) } : result;
      });
      // a COMMIT confirmed only afterwards (reason set) came with a new session: read afresh
      metricsNow = r.status === 'Applied' && r.reason === null ? afterMetrics(r) : undefined;
      if (r.status === 'Applied') applied.add(tier.id);
      else {
        notApplied.set(tier.id, r.status === 'Blocked' ? 'blocked' : 'failed');
        if (r.status === 'Failed') failed = true;
      }
    }

    for (const tier of plan.tiers.filter((t) => t.kind === 'verify')) {
      if (options.verify === false) continue;
      if (notApplied.size > 0 || failed) {
        await run(tier, async () => ({ ...idle(tier), status: 'Skipped', reason: 'not every tier is applied' }));
      } else {
        await run(tier, () => runCheckTier(db, plan, tier));
      }
    }
    return finish('apply', db, plan, gate, results);
  });
}

/** Creates (first time) and reads the ledger, naming whoever blocks it. */
async function bookkeeping(db: Db, plan: Plan): Promise<Map<number, LedgerEntry>> {
  return namingBlockers(db, `reading the ledger of plan '${plan.name}'`, 'select from tiergate.ledger, tiergate.attempt', async () => {
    await ensureLedger(db);
    return readLedger(db, plan.name);
  });
}

/** The gate, read-only, naming whoever blocks it. */
function readGateBounded(db: Db, plan: Plan): Promise<GateReading | null> {
  return namingBlockers(db, `reading gate '${plan.gate?.name ?? ''}'`, plan.gate?.sql ?? 'select', () => db.transaction((tx) => readGate(tx, plan), { readOnly: true }));
}

/** Stops before touching anything when an applied tier's file changed. */
export function assertNoDrift(plan: Plan, ledger: Map<number, LedgerEntry>): void {
  const drifted = plan.tiers
    .filter((t) => t.kind !== 'rollback' && t.kind !== 'preflight' && t.kind !== 'verify')
    .flatMap((t) => {
      const e = ledger.get(t.id);
      return e && e.status === 'applied' && e.sha256 !== t.sha256 ? [{ tier: t.id, name: t.name, file: t.file, applied: e.sha256, current: t.sha256 }] : [];
    });
  if (drifted.length) throw new DriftError(plan.name, drifted);
}

/** Preflight: the plan's identity check, then the preflight file, read-only. */
export async function runPreflight(db: Db, plan: Plan, tier: Tier): Promise<TierResult> {
  if (plan.database) {
    const identity = await databaseIdentity(db);
    if (identity.database !== plan.database && identity.cloneOf !== plan.database) {
      return {
        ...idle(tier),
        status: 'Failed',
        reason: `target database is '${identity.database}', plan '${plan.name}' expects '${plan.database}'`,
        error: {
          message: `target database is '${identity.database}', but plan '${plan.name}' is for database '${plan.database}' (and this is not a tiergate clone of it)`,
          sqlstate: null,
          detail: null,
          hint: 'check --target: it must name the database the plan was written for',
          where: null,
          file: 'tiergate.yaml',
          line: null,
          column: null,
          excerpt: null,
        },
      };
    }
  }
  return runCheckTier(db, plan, tier);
}

/**
 * apply and rollback touch only the database the plan was written for (its
 * `database:`), or a tiergate clone of it: anything else is a wrong target
 * (exit 2, nothing touched), refused before the rollout lock and the ledger.
 */
async function assertTargetIdentity(db: Db, plan: Plan): Promise<void> {
  if (!plan.database) return;
  const identity = await databaseIdentity(db);
  if (identity.database === plan.database || identity.cloneOf === plan.database) return;
  throw new TargetError(
    `target database is '${identity.database}', but plan '${plan.name}' is for database '${plan.database}' (and this is not a tiergate clone of it); nothing was changed — check --target: it must name the database the plan was written for`,
  );
}

/** The database's name, and the source it was cloned from when tiergate made it. */
export async function databaseIdentity(db: Db): Promise<{ database: string; cloneOf: string | null }> {
  const r = await db.query<{ d: string; marked: boolean }>(`select current_database() as d, to_regclass('tiergate.clone_mark') is not null as marked`);
  const database = r.rows[0]?.d ?? '';
  if (!r.rows[0]?.marked) return { database, cloneOf: null };
  const m = await db.query<{ s: string }>('select source_database as s from tiergate.clone_mark limit 1');
  return { database, cloneOf: m.rows[0]?.s ?? null };
}

function noFailure(): SqlFailure {
  return { message: '', sqlstate: null, detail: null, hint: null, where: null, file: null, line: null, column: null, excerpt: null };
}

/** A tier's metrics after it ran (undefined when it did not measure them). */
function afterMetrics(r: TierResult): Record<string, number | null> | undefined {
  if (!r.delta) return undefined;
  return Object.fromEntries(Object.entries(r.delta.metrics).map(([name, m]) => [name, m.after]));
}

export function idle(tier: Tier): Omit<TierResult, 'status'> {
  return { id: tier.id, name: tier.name, kind: tier.kind, file: tier.file, sha256: tier.sha256, reason: null, durationMs: 0, delta: null, post: [], error: null };
}

export function finish(command: RunResult['command'], db: Db, plan: Plan, gate: GateReading | null, tiers: TierResult[]): RunResult {
  const failed = tiers.some((t) => t.status === 'Failed');
  const blocked = tiers.some((t) => t.status === 'Blocked');
  return {
    command,
    plan: { name: plan.name, sha256: plan.sha256 },
    target: db.displayUrl,
    gate,
    tiers,
    outcome: failed ? 'failed' : blocked ? 'no-go' : 'ok',
  };
}

/**
 * Runs the plan's rollback tier in one transaction and marks the tiers it
 * reverts `reverted` in the ledger (same transaction). Refuses, touching
 * nothing, unless every tier it reverts is applied.
 */
export async function rollback(db: Db, plan: Plan, options: { onEvent?: (e: EngineEvent) => void } = {}): Promise<RunResult> {
  const tier = plan.tiers.find((t) => t.kind === 'rollback');
  if (!tier) throw new TargetError(`plan '${plan.name}' has no rollback tier (kind: rollback)`);
  await assertOneTransactionPerTier(plan);
  await boundSession(db, plan);
  await assertTargetIdentity(db, plan);
  return withRolloutLock(db, plan.name, async () => {
    const ledger = await bookkeeping(db, plan);
    assertNoDrift(plan, ledger);
    const results: TierResult[] = [];
    for (const pre of plan.tiers.filter((t) => t.kind === 'preflight')) {
      const r = await runPreflight(db, plan, pre);
      results.push(r);
      if (r.status === 'Failed') return finish('rollback', db, plan, null, results);
    }
    const notApplied = tier.reverts.filter((id) => ledger.get(id)?.status !== 'applied');
    if (notApplied.length) {
      throw new TargetError(
        `rollback tier ${tier.id} reverts tiers ${tier.reverts.join(', ')}, but tier ${notApplied.join(', ')} ${notApplied.length > 1 ? 'are' : 'is'} not applied on ${db.displayUrl}; nothing was changed (see 'tiergate status')`,
      );
    }
    const reverted = tier.reverts.map((id) => plan.tiers.find((t) => t.id === id)!);
    options.onEvent?.({ phase: 'start', tier });
    const r = await runTier(db, plan, tier, { reverts: reverted });
    options.onEvent?.({ phase: 'end', tier, result: r });
    results.push(r.delta ? { ...r, expectations: compareExpectations(tier, r.delta) } : r);
    if (r.status === 'Applied') {
      for (const t of reverted) results.push({ ...idle(t), status: 'Reverted', reason: `reverted by tier ${tier.id}` });
    }
    return finish('rollback', db, plan, null, results);
  });
}

/** Runs the verify tier read-only: Passed, or Failed with every failing assertion. */
export async function verify(db: Db, plan: Plan): Promise<RunResult> {
  const tier = plan.tiers.find((t) => t.kind === 'verify');
  if (!tier) throw new TargetError(`plan '${plan.name}' has no verify tier (kind: verify)`);
  await boundSession(db, plan);
  const r = await runCheckTier(db, plan, tier);
  return finish('verify', db, plan, await readGateBounded(db, plan), [r]);
}

export interface StatusResult {
  plan: { name: string; sha256: string };
  target: string;
  gate: GateReading | null;
  metrics: Record<string, number | null>;
  tiers: { id: number; name: string; kind: string; file: string; sha256: string; state: 'applied' | 'reverted' | 'pending' | 'drift'; appliedAt: string | null; appliedSha256: string | null }[];
}

/** Ledger, gate value and every metric, read-only (takes no lock). */
export async function status(db: Db, plan: Plan): Promise<StatusResult> {
  await boundSession(db, plan);
  const ledger = await namingBlockers(db, `reading the ledger of plan '${plan.name}'`, 'select from tiergate.ledger', () => readLedger(db, plan.name));
  const { gate, metrics } = await namingBlockers(db, 'reading the gate and metrics', [plan.gate?.sql ?? '', ...Object.values(plan.metrics)].join(';\n'), () =>
    db.transaction(async (tx) => ({ gate: await readGate(tx, plan), metrics: await readMetrics(tx, plan.metrics) }), { readOnly: true }),
  );
  return {
    plan: { name: plan.name, sha256: plan.sha256 },
    target: db.displayUrl,
    gate,
    metrics,
    tiers: plan.tiers.map((t) => {
      const e = ledger.get(t.id);
      const state = !e ? 'pending' : e.status === 'applied' && e.sha256 !== t.sha256 && t.kind !== 'rollback' ? 'drift' : e.status;
      return { id: t.id, name: t.name, kind: t.kind, file: t.file, sha256: t.sha256, state, appliedAt: e?.appliedAt ?? null, appliedSha256: e?.sha256 ?? null };
    }),
  };
}
