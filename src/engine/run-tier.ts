import type { Db, Queryable } from '../db/port.js';
import { CommitInDoubtError, DbError, DbStepError, type SqlFailure } from '../errors.js';
import type { Plan, Tier } from '../plan/plan.js';
import { checkPostCondition } from '../plan/post-condition.js';
import { touchedRelations, type TouchedRelations } from '../plan/sql-facts.js';
import { diffCatalog, emptySnapshot, snapshotCatalog, type CatalogSnapshot } from '../probe/catalog.js';
import { jitScope, jitUntilTransactionEnd } from '../probe/jit.js';
import { MetricReadError, readMetrics } from '../probe/metrics.js';
import { callsUserFunction, catalogWritesSoFar, relationsToWatch, RowWatch } from '../probe/rows.js';
import { hasXid8Snapshots } from '../probe/xact-mark.js';
import { describeBlockers, isWaitTimeout } from './blockers.js';
import { compareExpectations } from './expectations.js';
import { gateClosedReason, readGate } from './gate.js';
import { handEditsMessage, readHandEdits } from './hand-edits.js';
import { ledgerRowCommitted, recordAttempt, recordLedger, type LedgerExtras } from './ledger.js';
import type { Delta, Difference, ExpectationResult, GateReading, MetricChange, PostResult, TierResult } from './result.js';
import { afterMetrics, emptyFailure } from './run-result.js';
import { Interrupted, runAssertions, runScript, StatementError } from './run-script.js';
import { testHook } from './test-hook.js';
import { heldRolloutLock } from './rollout-lock.js';

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
  /** what the previous tier of the same run left: this tier's "before", kept up to date (see Carry) */
  carry?: Carry;
  /**
   * A guard proof on a clone whose gate is open: SQL that closes the gate
   * inside the proof's transaction (rolled back with it).
   */
  closeGate?: string;
  /**
   * apply --evidence: where this tier's delta differs from the rehearsal's,
   * asked inside the transaction before COMMIT; a difference rolls the tier
   * back unless `acceptDifferences`.
   */
  compare?: (delta: Delta) => Difference[];
  acceptDifferences?: boolean;
  /** what the ledger row records of the evidence the run is bound to */
  evidence?: { file: string; sha256: string; createdAt: string };
  /** stop between statements (Ctrl-C): the tier rolls back */
  signal?: AbortSignal;
  /**
   * A reference run (the rehearsal's second clone, src/rehearsal/rehearse.ts
   * applyKept): only the state it leaves matters. No catalog or row deltas,
   * no figures, and of the metrics only those its post-conditions name;
   * the file, its guard, the post-conditions and the ledger as in any run.
   */
  reference?: boolean;
  /** the command a failure record names (apply, rollback) */
  command?: string;
  /**
   * The gate subject (the approved payload's sha256) the run decided its
   * tiers for: a gated tier that finds another under its rows' lock fails,
   * writing nothing (the payload changed during the run).
   */
  subject?: string | null;
}

/**
 * What the last tier of a run read in its transaction just before its
 * COMMIT (or the preflight, for the metrics): the plan's metrics and its
 * schemas' catalog. The next tier takes them as its "before" instead of
 * reading both again: two of a tier's costliest reads (metric sets over
 * views of a whole database; a catalog snapshot reads every object of the
 * plan's schemas). Both are read in READ COMMITTED statements, which see
 * what other sessions have committed when they run: a change committed by
 * someone else between two tiers shows in the next tier's delta (before, in
 * none), exactly as one committed during a tier does in that tier's — a
 * run's deltas add up to everything that changed in the plan's schemas.
 *
 * runTier keeps it: a clean COMMIT replaces it, a tier that does not commit
 * (or whose COMMIT is confirmed only afterwards, on a new session) forgets
 * it, a guard proof leaves it as it was — its caller proves the proof
 * rolled back, or forgets it. Whoever changes the database between tiers
 * (opening the gate) forgets it too.
 */
export class Carry {
  metrics?: Record<string, number | null>;
  catalog?: CatalogSnapshot;

  keep(metrics: Record<string, number | null> | undefined, catalog?: CatalogSnapshot): void {
    this.metrics = metrics;
    this.catalog = catalog;
  }

  forget(): void {
    this.keep(undefined);
  }
}

class GateClosed extends Error {
  constructor(readonly gate: GateReading) {
    super(`gate ${gate.name}=${gate.value ?? 'n/a'} < ${gate.min}`);
  }
}

/**
 * The payload the approvals approve changed while the run went on (another
 * session submitted an amendment between two of its tiers): the run chose
 * its tiers, and a rehearsal its evidence, for the subject it started with.
 */
class SubjectChanged extends Error {
  constructor(
    readonly from: string | null,
    readonly to: string | null,
  ) {
    super(
      `the gate's subject changed during this run (${from?.slice(0, 12) ?? 'none'} → ${to?.slice(0, 12) ?? 'none'}): the approved payload was replaced after the run began; this tier wrote nothing — run apply again to apply the new payload (with evidence: rehearse it first)`,
    );
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

/** A data tier changed objects of the plan's schemas (DDL the parser could not see): rolled back. */
class DdlInDataTier extends Error {
  constructor(tier: Tier, objects: Delta['objects']) {
    const changes = Object.entries(objects)
      .flatMap(([kind, c]) => [...c!.added.map((n) => `${kind} +${n}`), ...c!.removed.map((n) => `${kind} −${n}`), ...c!.changed.map((n) => `${kind} ~${n}`)])
      .slice(0, 8)
      .join(', ');
    super(`data tier ${tier.id} changed the schema (${changes}): data tiers change rows only; move the DDL to a structure tier (the tier was rolled back)`);
  }
}

/** Thrown inside the transaction to roll it back after a successful measurement. */
class RollbackOnPurpose extends Error {
  constructor(readonly result: Measured) {
    super('rolled back on purpose');
  }
}

/** Production's delta differs from the rehearsal's: the tier rolls back. */
class DiffersFromRehearsal extends Error {
  constructor(
    readonly differences: Difference[],
    readonly delta: Delta,
  ) {
    super(
      `production differs from the rehearsal: ${differences
        .slice(0, 8)
        .map((d) => `${d.what}: rehearsal ${d.rehearsal}, production ${d.production}`)
        .join('; ')}${differences.length > 8 ? ` (+${differences.length - 8} more)` : ''}`,
    );
  }
}

function baseResult(tier: Tier): Omit<TierResult, 'status' | 'durationMs'> {
  return { id: tier.id, name: tier.name, kind: tier.kind, file: tier.file, sha256: tier.sha256, reason: null, delta: null, post: [], error: null };
}

/** Whether a file may change the session's settings: the parser saw it do so, cannot see all it does, or it calls a function of the database's (`callsUser`). */
function mayChangeSettings(touched: TouchedRelations | null, callsUser: boolean): boolean {
  return !touched || touched.settings.length > 0 || touched.incomplete.length > 0 || callsUser;
}

function timeouts(plan: Plan, tier: Tier): [string, string] {
  return [tier.lock_timeout ?? plan.defaults.lock_timeout, tier.statement_timeout ?? plan.defaults.statement_timeout];
}

/**
 * The tier's timeouts, for its transaction. With `keep`, first the session's
 * own settings (pg_settings whose source is the session, as JSON): what
 * restoreSettings gives back after a file that may change them.
 */
async function setTimeouts(tx: Queryable, plan: Plan, tier: Tier, keep = false): Promise<string | null> {
  if (!keep) {
    await tx.query(`select set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true)`, timeouts(plan, tier));
    return null;
  }
  const r = await tx.query<{ kept: string }>(
    `with s as materialized (select coalesce(json_agg(json_build_array(name, setting)), '[]')::text as kept
                               from (select name, setting from pg_settings where source = 'session'
                                     -- (the role is not in pg_settings: SET ROLE in a file would outlast it, and the ledger row say another user)
                                     union all select 'role', current_setting('role')) x)
     select s.kept, set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true) from s`,
    timeouts(plan, tier),
  );
  return r.rows[0]?.kept ?? '[]';
}

/**
 * A tier file's session settings end with the file, as they do when `psql -f`
 * runs each file in a session of its own: a pg_dump header's
 * `set_config('search_path', '', false)`, `SET statement_timeout = 0` or
 * `SET ROLE` holds for the file's statements, then every session setting is
 * put back as it was before the file (`kept`: setTimeouts), in the same
 * transaction, so that tiergate's reads after the file (metrics, a catalog
 * printed with the session's search_path), its ledger row and the tiers after
 * it run as the run set them; then the tier's timeouts again, for the rest of
 * its transaction. The role first (a setting may need it), and neither
 * `session_authorization` nor the `transaction_*` settings (they end with
 * the transaction).
 */
async function restoreSettings(tx: Queryable, plan: Plan, tier: Tier, kept: string): Promise<void> {
  await tx.query(
    `with b(name, setting) as (select x ->> 0, x ->> 1 from json_array_elements($1::json) x),
          c as (select name, setting, reset_val from pg_settings where source = 'session'),
          todo(name, v) as (
            select c.name, coalesce(b.setting, c.reset_val) from c left join b using (name) where b.setting is distinct from c.setting
            union all
            select b.name, b.setting from b where not exists (select 1 from c where c.name = b.name)),
          restored as materialized (
            select count(set_config(t.name, t.v, false)) as n
              from (select * from todo where name <> 'session_authorization' and left(name, 12) <> 'transaction_' order by name <> 'role') t)
     select (select n from restored) as n, set_config('lock_timeout', $2, true), set_config('statement_timeout', $3, true)`,
    [kept, ...timeouts(plan, tier)],
  );
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
  let pending: Measured | null = null;
  try {
    // what the parser sees the file do (a file it refuses is refused before any tier runs, by lint): the server judges the rest
    const touched = await touchedRelations(tier.sql).catch(() => null);
    const measured = await db.transaction((tx) => cancelledAtAbort(db, options.signal, async () => {
      const callsUser = touched ? await callsUserFunction(tx, touched.calls) : true;
      // the session's settings, kept when the file may change them (given back after it)
      const kept = await setTimeouts(tx, plan, tier, mayChangeSettings(touched, callsUser));
      let gate: GateReading | null = null;
      if (tier.gated && !options.proveGuard) {
        gate = await readGate(tx, plan, { lockRows: true });
        // a closed gate blocks, whatever it now approves; an open one for another payload than the run began with stops the run
        if (gate && !gate.open) throw new GateClosed(gate);
        if (gate && options.subject !== undefined && gate.subject !== options.subject) throw new SubjectChanged(options.subject, gate.subject);
      }
      if (options.proveGuard && options.closeGate) await tx.exec(options.closeGate);
      await testHook('tier-begin', tier.id);
      // tiergate's own reads before and after the file, each group with JIT off at most once (src/probe/jit.ts); the file runs with the server's setting
      const reference = options.reference === true;
      const { catalogBefore, rows, before, figures } = reference
        ? { catalogBefore: emptySnapshot(), rows: null, before: {}, figures: {} }
        : await jitScope(tx, async () => ({
            catalogBefore: options.carry?.catalog ?? (await snapshotCatalog(tx, plan.schemas)),
            rows: await RowWatch.start(tx, await relationsToWatch(tx, touched, plan.schemas, callsUser), touched?.drops ?? [], {
              versions: hasXid8Snapshots(db),
            }),
            before: options.carry?.metrics ?? (await readMetrics(tx, plan.metrics)),
            figures: tier.figures.length ? await readMetrics(tx, pick(plan.figures, tier.figures), 'figure') : {},
          }));
      // a data tier's own catalog writes before its file (read again below only when the plan schemas' objects changed): DDL it ran, not another session's, rolls it back
      const writesBefore = tier.kind === 'data' && !reference ? await catalogWritesSoFar(tx) : null;
      await runScript(tx, tier, tier.file, options.signal);
      if (kept !== null) await restoreSettings(tx, plan, tier, kept);
      await testHook('tier-script-done', tier.id);
      // (only the ledger and COMMIT follow: JIT stays off until the transaction ends)
      const { delta, post, catalogAfter } = await jitUntilTransactionEnd(tx, async () => {
        const after = await readMetrics(tx, reference ? pick(plan.metrics, [...new Set(tier.post.map((p) => p.metric))]) : plan.metrics);
        const post = tier.post.map((p) => ({ expr: p.expr, ok: checkPostCondition(p, after[p.metric] ?? null), value: after[p.metric] ?? null }));
        if (post.some((p) => !p.ok)) throw new PostConditionFailed(post);
        const catalogAfter = reference ? catalogBefore : await ownStep('reading the catalog after the file', () => snapshotCatalog(tx, plan.schemas));
        const objects = diffCatalog(catalogBefore, catalogAfter);
        // a data tier changes rows only: DDL lint could not see (EXECUTE of a built string, a function) rolls it back; a change
        // another session committed meanwhile shows in the delta but wrote no catalog row in this transaction
        if (writesBefore !== null && Object.keys(objects).length && (await catalogWritesSoFar(tx)) !== writesBefore) throw new DdlInDataTier(tier, objects);
        const delta: Delta = {
          objects,
          rows: rows ? await ownStep("reading the rows the file wrote (tiergate's row snapshots)", () => rows.finish(tx)) : {},
          metrics: pairMetrics(before, after),
        };
        return { delta, post, catalogAfter };
      });
      const result: Measured = { delta, post, figures, expectations: compareExpectations(tier, delta, figures), differences: [], catalogAfter };
      if (options.proveGuard) throw new RollbackOnPurpose(result);
      if (options.compare) {
        result.differences = options.compare(delta);
        if (result.differences.length && !options.acceptDifferences) throw new DiffersFromRehearsal(result.differences, delta);
      }
      if (!options.noLedger) {
        const extras: LedgerExtras = {
          gate,
          lock: heldRolloutLock(db, plan.name),
          command: options.command ?? null,
          evidence: options.evidence ? { ...options.evidence, differencesAccepted: result.differences } : null,
          // the plan's objects as this tier leaves them (a reference run reads no catalog: none)
          objects: reference ? null : { schemas: plan.schemas, after: result.catalogAfter, changes: delta.objects },
        };
        ledgerId = await ownStep("writing the tier's ledger row", () => recordLedger(tx, plan.name, tier, 'applied', elapsed(), delta, extras));
        // a rollback of scope subject reverts the amendment for the gate's current subject: its rows say which
        const subject = tier.kind === 'rollback' && tier.scope === 'subject' ? ((await readGate(tx, plan))?.subject ?? null) : null;
        for (const r of options.reverts ?? []) await recordLedger(tx, plan.name, r, 'reverted', 0, null, { command: options.command ?? null, subject });
      }
      await testHook('tier-before-commit', tier.id);
      // Ctrl-C after the last statement: the tier still rolls back (the signal is checked between statements too)
      if (options.signal?.aborted) throw new Interrupted(tier, options.signal);
      pending = result;
      return result;
    }));
    const applied: TierResult = { ...baseResult(tier), status: 'Applied', durationMs: elapsed(), ...measuredFields(measured) };
    if (options.reference) options.carry?.forget();
    else options.carry?.keep(afterMetrics(applied), measured.catalogAfter);
    await testHook('tier-committed', tier.id);
    return applied;
  } catch (caught) {
    // a statement of tiergate's own (the gate's wait for its lock, a metric) cancelled at Ctrl-C: the interruption it is
    const e = cancelledByCtrlC(caught, options.signal) ? new Interrupted(tier, options.signal) : caught;
    if (!options.proveGuard) options.carry?.forget();
    if (e instanceof CommitInDoubtError) return commitInDoubt(db, plan, tier, e, elapsed(), ledgerId, pending, options);
    return failedOrBlocked(db, plan, tier, e, elapsed(), options);
  }
}

/**
 * Runs a tier's transaction body. A Ctrl-C while it runs cancels the
 * statement under way on a server (a long UPDATE, a wait for a lock) instead
 * of waiting for it to end or time out; the tier then rolls back. The body
 * ends only once the cancel has been delivered, so it cannot reach the
 * ROLLBACK sent after it, nor a COMMIT (none is sent after a Ctrl-C, and the
 * server is asked to skip one).
 */
async function cancelledAtAbort<T>(db: Db, signal: AbortSignal | undefined, body: () => Promise<T>): Promise<T> {
  const cancelStatement = db.cancelStatement?.bind(db);
  if (!signal || !cancelStatement) return body();
  let sent: Promise<void> | null = null;
  // (listening only while the body runs: an abort after it reaches nothing)
  const cancel = () => void (sent = cancelStatement().catch(() => undefined));
  signal.addEventListener('abort', cancel, { once: true });
  try {
    return await body();
  } finally {
    signal.removeEventListener('abort', cancel);
    if (sent) await sent;
  }
}

/** A statement cancelled (57014) after a Ctrl-C (`cancelledAtAbort`): the interruption, not a statement timeout. */
function cancelledByCtrlC(e: unknown, signal: AbortSignal | undefined): boolean {
  if (!signal?.aborted) return false;
  const sqlstate = e instanceof StatementError ? e.failure.sqlstate : (e as { sqlstate?: unknown } | null)?.sqlstate;
  return sqlstate === '57014';
}

/** What a tier's transaction measured. */
interface Measured {
  delta: Delta;
  post: PostResult[];
  figures: Record<string, number | null>;
  expectations: ExpectationResult[];
  differences: Difference[];
  /** the plan schemas' catalog just before COMMIT: the next tier's "before" (Carry) */
  catalogAfter: CatalogSnapshot;
}

function measuredFields(m: Measured): Pick<TierResult, 'delta' | 'post' | 'figures' | 'expectations' | 'differences'> {
  return {
    delta: m.delta,
    post: m.post,
    ...(Object.keys(m.figures).length ? { figures: m.figures } : {}),
    ...(m.expectations.length ? { expectations: m.expectations } : {}),
    ...(m.differences.length ? { differences: m.differences } : {}),
  };
}

function pick(all: Record<string, string>, names: string[]): Record<string, string> {
  return Object.fromEntries(names.map((n) => [n, all[n]!]));
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
  measured: Measured | null,
  options: RunTierOptions,
): Promise<TierResult> {
  const committed = ledgerId === null ? null : await ledgerRowCommitted(db, ledgerId);
  if (committed && measured) {
    return {
      ...baseResult(tier),
      status: 'Applied',
      durationMs,
      ...measuredFields(measured),
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
    return { ...base, status: 'Blocked', durationMs, reason: gateClosedReason(e.gate) };
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
    const why = notTheGuard(plan, e, failure);
    return {
      ...base,
      status: why === null ? 'Blocked' : 'Failed',
      durationMs,
      guardProven: why === null,
      reason: why === null ? `its own guard aborted it: ${failure.message}` : `aborted, but not by its guard: ${why}`,
      // the guard's own error is the proof: kept, with its file:line
      error: failure,
    };
  }
  const failure = toFailure(tier, e);
  await nameBlockers(db, failure, e instanceof StatementError ? e.statementSql : tier.sql);
  if (e instanceof PostConditionFailed) await locatePost(plan, tier, failure);
  const post = e instanceof PostConditionFailed ? e.post : [];
  const differences = e instanceof DiffersFromRehearsal ? { differences: e.differences, delta: e.delta } : {};
  if (e instanceof DiffersFromRehearsal) {
    failure.hint = 'the tier was rolled back: production must do what was rehearsed. Rehearse again on a fresh copy of this database, or pass --accept-differences to commit and record them';
  }
  if (!options.noLedger) await recordAttempt(db, plan.name, tier, failure, 'failed', options.command ?? null);
  return { ...base, status: 'Failed', durationMs, post, ...differences, error: failure };
}

/**
 * Why an error of a guard proof is not the guard's own (null when it is): it
 * must come from the file's first statement, as the parser split the file,
 * and carry the SQLSTATE (and the message text) the plan's gate declares.
 * A syntax error, a missing table or any other failure is not a proof.
 */
function notTheGuard(plan: Plan, e: unknown, failure: SqlFailure): string | null {
  const guard = plan.gate?.guard ?? { sqlstate: 'P0001' };
  if (!(e instanceof StatementError)) return `${failure.sqlstate ? `SQLSTATE ${failure.sqlstate}: ` : ''}${failure.message}`;
  if (!e.parsed) return `the file does not parse, so no statement can be told to be its guard (${failure.message})`;
  if (e.statementIndex !== 0) return `statement ${e.statementIndex + 1} failed (the guard is statement 1): ${failure.sqlstate ?? ''} ${failure.message}`.replace(/ {2}/g, ' ');
  if (failure.sqlstate !== guard.sqlstate) return `SQLSTATE ${failure.sqlstate ?? 'none'} (${failure.message}), not the guard's ${guard.sqlstate} (gate.guard.sqlstate)`;
  if (guard.message && !failure.message.includes(guard.message)) return `the message '${failure.message}' does not contain the guard's '${guard.message}' (gate.guard.message)`;
  return null;
}

/**
 * An error of one of tiergate's own statements in a tier's transaction, after
 * its file ran: said as the step it was, not as a failure of the file (whose
 * session changes — DISCARD TEMP, SET transaction_read_only — may be why).
 */
class OwnStepError extends DbStepError {}

async function ownStep<T>(step: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof DbError && !(e instanceof CommitInDoubtError) && !(e instanceof DbStepError)) throw new OwnStepError(step, e);
    throw e;
  }
}

/** Any error of a tier run as a SqlFailure. */
export function toFailure(tier: Tier, e: unknown): SqlFailure {
  if (e instanceof StatementError) return e.failure;
  if (e instanceof OwnStepError) {
    return {
      ...emptyFailure(),
      message: e.message,
      sqlstate: e.sqlstate,
      detail: e.detail,
      where: e.where,
      hint: e.hint ?? `tiergate's own step after ${tier.file} ran; a file that changes its session (DISCARD, SET transaction_read_only, SET SESSION AUTHORIZATION) can make it fail. Nothing of the tier was committed`,
    };
  }
  // a metric, figure or the gate: a query of tiergate.yaml
  if (e instanceof MetricReadError) {
    return { ...emptyFailure(), message: e.message, sqlstate: e.sqlstate, detail: e.detail, hint: e.hint, where: e.where, file: 'tiergate.yaml' };
  }
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
 *
 * `carry`: on a clone only (nothing else writes to it), the metrics the last
 * tier read before its COMMIT are the metrics now; a read-only tier changes
 * none of them, so they are not read again (a set is ~150 ms at 6,500
 * collections, and a rehearsal verifies three times).
 */
export async function runCheckTier(db: Db, plan: Plan, tier: Tier, options: { record?: string; carry?: Carry; signal?: AbortSignal } = {}): Promise<TierResult> {
  const started = performance.now();
  const base = baseResult(tier);
  const touched = await touchedRelations(tier.sql).catch(() => null);
  try {
    const out = await db.transaction(
      (tx) => cancelledAtAbort(db, options.signal, async () => {
        const kept = await setTimeouts(tx, plan, tier, mayChangeSettings(touched, touched ? await callsUserFunction(tx, touched.calls) : true));
        let failures: SqlFailure[] = [];
        if (tier.kind === 'verify') failures = await runAssertions(tx, tier, tier.file);
        else await runScript(tx, tier, tier.file, options.signal);
        if (kept !== null) await restoreSettings(tx, plan, tier, kept);
        const metrics = options.carry?.metrics ?? (await jitUntilTransactionEnd(tx, () => readMetrics(tx, plan.metrics)));
        const post = tier.post.map((p) => ({ expr: p.expr, ok: checkPostCondition(p, metrics[p.metric] ?? null), value: metrics[p.metric] ?? null }));
        // a Ctrl-C that cancelled one of verify's assertions: the interruption, not a failing assertion
        if (options.signal?.aborted && failures.some((f) => f.sqlstate === '57014')) throw new Interrupted(tier, options.signal);
        // verify also fails on the plan's objects changed outside tiergate (last: it sets the settings the record was read with)
        const edits = tier.kind === 'verify' ? await ownStep("comparing the plan's objects with tiergate's record of them", () => readHandEdits(tx, plan)) : null;
        if (edits) failures = [...failures, { ...emptyFailure(), message: `verify: ${handEditsMessage(edits)}` }];
        return { failures, metrics, post };
      }),
      { readOnly: true },
    );
    const failedPost = out.post.filter((p) => !p.ok);
    const ok = out.failures.length === 0 && failedPost.length === 0;
    const delta: Delta = { objects: {}, rows: {}, metrics: pairMetrics(out.metrics, out.metrics) };
    const error = out.failures[0] ?? (failedPost.length ? await locatePost(plan, tier, toFailure(tier, new PostConditionFailed(out.post))) : null);
    if (options.record) await recordAttempt(db, plan.name, tier, error, ok ? 'passed' : 'failed', options.record);
    return {
      ...base,
      status: ok ? 'Passed' : 'Failed',
      durationMs: Math.round(performance.now() - started),
      delta,
      post: out.post,
      failedAssertions: out.failures,
      reason: ok ? null : [...out.failures.map((f) => f.message), ...failedPost.map((p) => `post-condition '${p.expr}' does not hold (${p.value ?? 'n/a'})`)].join('; '),
      error,
    };
  } catch (caught) {
    // a statement cancelled at Ctrl-C (the file's, a metric's): the interruption it is, not a timeout
    const e = cancelledByCtrlC(caught, options.signal) ? new Interrupted(tier, options.signal) : caught;
    const failure = toFailure(tier, e);
    await nameBlockers(db, failure, e instanceof StatementError ? e.statementSql : tier.sql);
    if (options.record) await recordAttempt(db, plan.name, tier, failure, 'failed', options.record);
    return { ...base, status: 'Failed', durationMs: Math.round(performance.now() - started), error: failure, reason: failure.message };
  }
}

/** A failed post-condition's failure, with the line of the tier's `post:` in the plan's YAML file. */
async function locatePost(plan: Plan, tier: Tier, failure: SqlFailure): Promise<SqlFailure> {
  const { postConditionLine } = await import('../plan/source-lines.js');
  failure.file = plan.yamlName;
  failure.line = await postConditionLine(plan, tier.id);
  return failure;
}

/** After a lock or statement timeout: adds who held the locks to the failure's detail. */
async function nameBlockers(db: Db, failure: SqlFailure, statementSql: string): Promise<void> {
  if (!isWaitTimeout(failure.sqlstate)) return;
  const blockers = await describeBlockers(db, statementSql);
  if (blockers) failure.detail = [failure.detail, `blocked by ${blockers}`].filter(Boolean).join('; ');
}
