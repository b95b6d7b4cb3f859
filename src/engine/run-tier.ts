import type { Db, Queryable } from '../db/port.js';
import { CommitInDoubtError, DbError, type SqlFailure } from '../errors.js';
import { touchedRelations } from '../plan/lint.js';
import type { Plan, Tier } from '../plan/plan.js';
import { checkPostCondition } from '../plan/post-condition.js';
import { diffCatalog, snapshotCatalog } from '../probe/catalog.js';
import { readMetrics } from '../probe/metrics.js';
import { relationsToWatch, RowWatch } from '../probe/rows.js';
import { describeBlockers, isWaitTimeout } from './blockers.js';
import { readGate } from './gate.js';
import { ledgerRowCommitted, recordAttempt, recordLedger } from './ledger.js';
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
  /**
   * The metrics as the previous tier of the same run left them (read in its
   * transaction just before its COMMIT, or by the preflight): used as this
   * tier's "before" instead of evaluating every metric again. See `apply`.
   */
  metricsBefore?: Record<string, number | null>;
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

/**
 * SQLSTATEs that doom the whole tier, not one metric: a lock or statement
 * timeout, a cancellation, a lost connection, a deadlock or serialization
 * failure, resources exhausted.
 */
const DOOMS_THE_TIER = /^(55P03|57014|57P0\d|08\d{3}|40P01|40001|53\d{3})$/;

/**
 * The connection as the metric reader sees it. The reader turns any error
 * into "n/a" (an object that does not exist yet); an error that dooms the
 * tier must not become a quiet n/a — nor be waited for again by every
 * following metric (each would sit out its own lock_timeout). The first
 * such error is kept, every later query fails at once with it, and the tier
 * fails with it. One per connection, so the reader's per-session state
 * (prepared metrics) stays valid.
 */
class MetricConnection implements Queryable {
  doom: DbError | null = null;
  constructor(private readonly tx: Queryable) {}
  query<R = Record<string, unknown>>(sql: string, params?: unknown[]) {
    return this.guard(() => this.tx.query<R>(sql, params));
  }
  exec(script: string) {
    return this.guard(() => this.tx.exec(script));
  }
  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    if (this.doom) throw this.doom;
    try {
      return await fn();
    } catch (e) {
      if (e instanceof DbError && e.sqlstate && DOOMS_THE_TIER.test(e.sqlstate)) this.doom ??= e;
      throw e;
    }
  }
}
const metricConnections = new WeakMap<Queryable, MetricConnection>();

/** The plan's metrics inside a tier's transaction; throws what dooms the tier instead of reading n/a. */
async function tierMetrics(tx: Queryable, plan: Plan): Promise<Record<string, number | null>> {
  let conn = metricConnections.get(tx);
  if (!conn) metricConnections.set(tx, (conn = new MetricConnection(tx)));
  conn.doom = null;
  const out = await readMetrics(conn, plan.metrics);
  if (conn.doom) throw conn.doom;
  return out;
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
  // what the transaction wrote before its COMMIT: to resolve a COMMIT whose answer was lost
  let ledgerId: number | null = null;
  let pending: { delta: Delta; post: PostResult[] } | null = null;
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
      const before = options.metricsBefore ?? (await tierMetrics(tx, plan));
      await runScript(tx, tier, tier.file);
      await testHook('tier-script-done', tier.id);
      const after = await tierMetrics(tx, plan);
      const post = tier.post.map((p) => ({ expr: p.expr, ok: checkPostCondition(p, after[p.metric] ?? null), value: after[p.metric] ?? null }));
      if (post.some((p) => !p.ok)) throw new PostConditionFailed(post);
      const delta: Delta = {
        objects: diffCatalog(catalogBefore, await snapshotCatalog(tx, plan.schemas)),
        rows: await rows.finish(tx),
        metrics: pairMetrics(before, after),
      };
      if (options.proveGuard) throw new RollbackOnPurpose({ delta, post });
      if (!options.noLedger) {
        ledgerId = await recordLedger(tx, plan.name, tier, 'applied', elapsed(), delta);
        for (const r of options.reverts ?? []) await recordLedger(tx, plan.name, r, 'reverted', 0, null);
      }
      await testHook('tier-before-commit', tier.id);
      pending = { delta, post };
      return pending;
    });
    await testHook('tier-committed', tier.id);
    return { ...baseResult(tier), status: 'Applied', durationMs: elapsed(), delta: measured.delta, post: measured.post };
  } catch (e) {
    if (e instanceof CommitInDoubtError) return commitInDoubt(db, plan, tier, e, elapsed(), ledgerId, pending, options);
    return failedOrBlocked(db, plan, tier, e, elapsed(), options);
  }
}

/**
 * The connection broke while COMMIT was on its way: the server may have
 * committed. The tier's ledger row exists exactly when it did, so it is
 * looked up on a new connection: Applied when it is there, Failed (nothing
 * committed) when it is not, Failed with SQLSTATE 08007 when nobody can tell.
 */
async function commitInDoubt(
  db: Db,
  plan: Plan,
  tier: Tier,
  e: CommitInDoubtError,
  durationMs: number,
  ledgerId: number | null,
  measured: { delta: Delta; post: PostResult[] } | null,
  options: RunTierOptions,
): Promise<TierResult> {
  const committed = ledgerId === null ? null : await ledgerRowCommitted(db, ledgerId);
  if (committed && measured) {
    return {
      ...baseResult(tier),
      status: 'Applied',
      durationMs,
      delta: measured.delta,
      post: measured.post,
      reason: `committed: the connection broke while the COMMIT was answered (${e.lost.message}); its ledger row, read on a new connection, confirms it`,
    };
  }
  if (committed === false) {
    return failedOrBlocked(db, plan, tier, new DbError(`${e.lost.message}; the COMMIT did not take effect (the tier's ledger row is not there): nothing of tier ${tier.id} was committed`, e.lost.sqlstate, e.detail, e.hint, null, e.where), durationMs, options);
  }
  const failure: SqlFailure = {
    ...emptyFailure(),
    message: `${e.message}; whether tier ${tier.id} committed is unknown: run 'tiergate status' to read the ledger`,
    sqlstate: '08007',
    file: tier.file,
    hint: "the tier committed exactly when its ledger row exists ('tiergate status' shows it applied)",
  };
  if (!options.noLedger) await recordAttempt(db, plan.name, tier, failure);
  return { ...baseResult(tier), status: 'Failed', durationMs, error: failure };
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
  await nameBlockers(db, failure, e instanceof StatementError ? e.statementSql : tier.sql);
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
        const metrics = await tierMetrics(tx, plan);
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
    const failure = toFailure(tier, e);
    await nameBlockers(db, failure, e instanceof StatementError ? e.statementSql : tier.sql);
    return { ...base, status: 'Failed', durationMs: Math.round(performance.now() - started), error: failure, reason: failure.message };
  }
}

/** After a lock or statement timeout: adds who held the locks to the failure's detail. */
async function nameBlockers(db: Db, failure: SqlFailure, statementSql: string): Promise<void> {
  if (!isWaitTimeout(failure.sqlstate)) return;
  const blockers = await describeBlockers(db, statementSql);
  if (blockers) failure.detail = [failure.detail, `blocked by ${blockers}`].filter(Boolean).join('; ');
}
