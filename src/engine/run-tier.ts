import type { Db, Queryable } from '../db/port.js';
import { DbError, type SqlFailure } from '../errors.js';
import { touchedRelations } from '../plan/lint.js';
import type { Plan, Tier } from '../plan/load-plan.js';
import { checkPostCondition } from '../plan/post-condition.js';
import { diffCatalog, snapshotCatalog } from '../probe/catalog.js';
import { readMetrics } from '../probe/metrics.js';
import { relationsToWatch, RowWatch } from '../probe/rows.js';
import { describeBlockers } from './blockers.js';
import { readGate } from './gate.js';
import { recordAttempt, recordLedger } from './ledger.js';
import type { Delta, GateReading, MetricChange, PostResult, TierResult } from './result.js';
import { runAssertions, runScript, StatementError } from './run-script.js';
import { testHook } from './test-hook.js';

export interface RunTierOptions {
  /**
   * Rehearsal's stop-gate proof: run a gated tier's file with the gate
   * closed, skipping the engine's own gate check, expecting the file's guard
   * to abort it; always rolled back.
   */
  proveGuard?: boolean;
  /** rollback tiers: the tiers whose ledger rows become `reverted` in the same transaction */
  reverts?: Tier[];
  /** do not write the ledger (a rehearsal's measurement that is rolled back anyway) */
  noLedger?: boolean;
}

class GateClosed extends Error {
  constructor(readonly gate: GateReading) {
    super(`gate ${gate.name}=${gate.value ?? 'n/a'} < ${gate.min}`);
  }
}

class PostConditionFailed extends Error {
  constructor(readonly post: PostResult[]) {
    super(
      post
        .filter((p) => !p.ok)
        .map((p) => `post-condition '${p.expr}' does not hold (${p.expr.split(/\s/)[0]} = ${p.value ?? 'n/a'})`)
        .join('; '),
    );
  }
}

/** Thrown inside the transaction to roll it back after a successful measurement. */
class RollbackOnPurpose extends Error {
  constructor(readonly result: { delta: Delta; post: PostResult[] }) {
    super('rolled back on purpose');
  }
}

/** Plan-relative file name, for messages and the ledger. */
export function fileOf(tier: Tier): string {
  return tier.file;
}

function baseResult(tier: Tier): Omit<TierResult, 'status' | 'durationMs'> {
  return { id: tier.id, name: tier.name, kind: tier.kind, file: tier.file, sha256: tier.sha256, reason: null, delta: null, post: [], error: null };
}

async function setTimeouts(tx: Queryable, plan: Plan, tier: Tier): Promise<void> {
  await tx.query(`select set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true)`, [
    tier.lock_timeout ?? plan.defaults.lock_timeout,
    tier.statement_timeout ?? plan.defaults.statement_timeout,
  ]);
}

/**
 * Applies one structure, data or rollback tier in ONE transaction:
 * timeouts → gate (gated tiers, rows locked) → snapshots → the file →
 * metrics and post-conditions → delta → ledger row → COMMIT. Any failure rolls
 * everything back and leaves only a failure record (`tiergate.attempt`).
 */
export async function runTier(db: Db, plan: Plan, tier: Tier, options: RunTierOptions = {}): Promise<TierResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  try {
    const measured = await db.transaction(async (tx) => {
      await setTimeouts(tx, plan, tier);
      if (tier.gated && !options.proveGuard) {
        const gate = await readGate(tx, plan, { lockRows: true });
        if (gate && !gate.open) throw new GateClosed(gate);
      }
      await testHook('tier-begin', tier.id);
      // a file the parser refuses is still the server's to judge: then watch every table of the plan's schemas
      const touched = await touchedRelations(tier.sql).catch(() => null);
      const catalogBefore = await snapshotCatalog(tx, plan.schemas);
      const rows = await RowWatch.start(tx, await relationsToWatch(tx, touched, plan.schemas), touched?.drops ?? []);
      const before = await readMetrics(tx, plan.metrics);
      await runScript(tx, tier, tier.file);
      await testHook('tier-script-done', tier.id);
      const after = await readMetrics(tx, plan.metrics);
      const post = tier.post.map((p) => ({ expr: p.expr, ok: checkPostCondition(p, after[p.metric] ?? null), value: after[p.metric] ?? null }));
      if (post.some((p) => !p.ok)) throw new PostConditionFailed(post);
      const delta: Delta = {
        objects: diffCatalog(catalogBefore, await snapshotCatalog(tx, plan.schemas)),
        rows: await rows.finish(tx),
        metrics: pairMetrics(before, after),
      };
      if (options.proveGuard) throw new RollbackOnPurpose({ delta, post });
      if (!options.noLedger) {
        await recordLedger(tx, plan.name, tier, 'applied', elapsed(), delta);
        for (const r of options.reverts ?? []) await recordLedger(tx, plan.name, r, 'reverted', 0, null);
      }
      await testHook('tier-before-commit', tier.id);
      return { delta, post };
    });
    await testHook('tier-committed', tier.id);
    return { ...baseResult(tier), status: 'Applied', durationMs: elapsed(), delta: measured.delta, post: measured.post };
  } catch (e) {
    return failedOrBlocked(db, plan, tier, e, elapsed(), options);
  }
}

async function failedOrBlocked(db: Db, plan: Plan, tier: Tier, e: unknown, durationMs: number, options: RunTierOptions): Promise<TierResult> {
  const base = baseResult(tier);
  if (e instanceof GateClosed) {
    return { ...base, status: 'Blocked', durationMs, reason: `gate closed (${e.gate.name}=${e.gate.value ?? 'n/a'}, needs ≥ ${e.gate.min})` };
  }
  if (options.proveGuard) {
    if (e instanceof RollbackOnPurpose) {
      return {
        ...base,
        status: 'Failed',
        durationMs,
        guardProven: false,
        delta: e.result.delta,
        reason: 'the file ran to the end with the gate closed: its guard did not stop it',
        error: { ...emptyFailure(), message: `tier ${tier.id} is not self-guarded: with the gate closed its file applied`, file: tier.file },
      };
    }
    const failure = toFailure(tier, e);
    const atGuard = e instanceof StatementError && e.statementIndex === 0;
    return {
      ...base,
      status: atGuard ? 'Blocked' : 'Failed',
      durationMs,
      guardProven: atGuard,
      reason: atGuard ? `its own guard aborted it: ${failure.message}` : `aborted, but not by its guard (statement 1): ${failure.message}`,
      error: atGuard ? null : failure,
    };
  }
  const failure = toFailure(tier, e);
  if (failure.sqlstate === '55P03' || failure.sqlstate === '57014') {
    const blockers = await describeBlockers(db, e instanceof StatementError ? e.statementSql : tier.sql);
    if (blockers) failure.detail = [failure.detail, `blocked by ${blockers}`].filter(Boolean).join('; ');
  }
  const post = e instanceof PostConditionFailed ? e.post : [];
  if (!options.noLedger) await recordAttempt(db, plan.name, tier, failure);
  return { ...base, status: 'Failed', durationMs, post, error: failure };
}

function emptyFailure(): SqlFailure {
  return { message: '', sqlstate: null, detail: null, hint: null, where: null, file: null, line: null, column: null, excerpt: null };
}

/** Any error of a tier run as a SqlFailure. */
export function toFailure(tier: Tier, e: unknown): SqlFailure {
  if (e instanceof StatementError) return e.failure;
  if (e instanceof PostConditionFailed) {
    return { ...emptyFailure(), message: e.message, file: 'tiergate.yaml', hint: `the tier's changes were rolled back; fix the tier or the post-condition of tier ${tier.id}` };
  }
  if (e instanceof DbError) {
    return { ...emptyFailure(), message: e.message, sqlstate: e.sqlstate, detail: e.detail, hint: e.hint, where: e.where, file: tier.file };
  }
  return { ...emptyFailure(), message: e instanceof Error ? e.message : String(e), file: tier.file };
}

export function pairMetrics(before: Record<string, number | null>, after: Record<string, number | null>): Record<string, MetricChange> {
  const out: Record<string, MetricChange> = {};
  for (const name of Object.keys(after)) out[name] = { before: before[name] ?? null, after: after[name] ?? null };
  return out;
}

/**
 * Runs a read-only tier (preflight, verify) in a READ ONLY transaction.
 * Verify runs every statement in its own savepoint and lists all failing
 * assertions; preflight stops at the first failure.
 */
export async function runCheckTier(db: Db, plan: Plan, tier: Tier): Promise<TierResult> {
  const started = performance.now();
  const base = baseResult(tier);
  try {
    const out = await db.transaction(
      async (tx) => {
        await setTimeouts(tx, plan, tier);
        let failures: SqlFailure[] = [];
        if (tier.kind === 'verify') failures = await runAssertions(tx, tier, tier.file);
        else await runScript(tx, tier, tier.file);
        const metrics = await readMetrics(tx, plan.metrics);
        const post = tier.post.map((p) => ({ expr: p.expr, ok: checkPostCondition(p, metrics[p.metric] ?? null), value: metrics[p.metric] ?? null }));
        return { failures, metrics, post };
      },
      { readOnly: true },
    );
    const failedPost = out.post.filter((p) => !p.ok);
    const ok = out.failures.length === 0 && failedPost.length === 0;
    const delta: Delta = { objects: {}, rows: {}, metrics: pairMetrics(out.metrics, out.metrics) };
    return {
      ...base,
      status: ok ? 'Passed' : 'Failed',
      durationMs: Math.round(performance.now() - started),
      delta,
      post: out.post,
      failedAssertions: out.failures,
      reason: ok ? null : [...out.failures.map((f) => f.message), ...failedPost.map((p) => `post-condition '${p.expr}' does not hold (${p.value ?? 'n/a'})`)].join('; '),
      error: out.failures[0] ?? (failedPost.length ? toFailure(tier, new PostConditionFailed(out.post)) : null),
    };
  } catch (e) {
    return { ...base, status: 'Failed', durationMs: Math.round(performance.now() - started), error: toFailure(tier, e), reason: toFailure(tier, e).message };
  }
}
