import type { Db } from '../db/port.js';
import { amendment, appliedTiers, sortedIds } from '../engine/apply.js';
import { readGate } from '../engine/gate.js';
import { amendmentReverted, ensureLedger, readLedger, type LedgerEntry } from '../engine/ledger.js';
import { assertPlanDatabase, runPreflight } from '../engine/preflight.js';
import type { DatabaseIdentity, GateReading, TierResult } from '../engine/result.js';
import { assertNoDrift, assertPlanRunnable } from '../engine/rollout.js';
import { idle, isBodyTier } from '../engine/run-result.js';
import { Carry, runCheckTier, runTier, type RunTierOptions } from '../engine/run-tier.js';
import type { CheckRecord, Evidence, FingerprintDiff, StageRecord } from '../evidence/types.js';
import { computeVerdict } from '../evidence/verdict.js';
import { EVIDENCE_SCHEMA_VERSION } from '../evidence/version.js';
import { DbError, InterruptedError, TargetError } from '../errors.js';
import { parsePostgresUrl } from '../db/pg-url.js';
import { planFileHashes, type Plan, type Tier } from '../plan/plan.js';
import { keepJitOff, withoutJit } from '../probe/jit.js';
import {
  deferredDifferences,
  diffFingerprints,
  FingerprintCache,
  fingerprintClone,
  hashDeferred,
  isDeferred,
  loadBaseline,
  sameFingerprint,
  sameSeal,
  sealChange,
  sealOf,
  withResolved,
  type DeferredTable,
  type Fingerprint,
  type Seal,
} from '../probe/fingerprint.js';
import { readCache, writeCache } from '../cache.js';
import { readIdentity } from '../probe/identity.js';
import { hasXid8Snapshots, nothingCommittedSince, readXactMark, type XactMark } from '../probe/xact-mark.js';
import { both } from '../settle.js';
import { tiergateVersion } from '../version.js';
import { isMarkedClone, withClones, type Clone, type CloneSource } from './clone.js';
import { planStateReader } from './plan-state.js';
import { storeReference, withStoredReference, type ReferenceLookup } from './kept-reference.js';
import { interruptedBy } from '../engine/run-script.js';

export type RehearsalEvent =
  | { type: 'stage'; stage: StageRecord['name']; title: string }
  | { type: 'tier-start'; stage: string; tier: Tier }
  | { type: 'tier-end'; stage: string; result: TierResult }
  | { type: 'progress'; message: string };

export interface RehearseOptions {
  keep?: boolean;
  onEvent?: (e: RehearsalEvent) => void;
  /** Ctrl-C: the running tier rolls back, the clones are dropped, the rehearsal fails */
  signal?: AbortSignal;
  /** told of each clone as soon as it exists (a fleet records them, to drop what a killed worker left) */
  onClone?: (clone: Pick<Clone, 'url' | 'kind'>) => void | Promise<void>;
  /** the clones are dropped while the caller writes its report: `cleanup` settles when they are, `sent` once their removal is under way (src/rehearsal/clone.ts withClones) */
  onCleanup?: (cleanup: Promise<void>, sent: Promise<void>) => void;
}

/** Where the rehearsal's source is, for the evidence. */
export interface SourceInfo {
  kind: Evidence['source']['kind'];
  location: string;
  /** a read-only connection to the source, when the source is a database (preflight runs there) */
  openSource?: () => Promise<Db>;
  /** the source's identity when it cannot be opened (a plain SQL dump) */
  identity?: DatabaseIdentity;
}

/**
 * The rehearsal scenario (product.md): preflight on the source (read-only) →
 * stage A on a clone with the gate closed (gated tiers must stop themselves,
 * the clone unchanged) → stage B with the gate as the source has it, or
 * opened on the clone → stage C rollback, proven against a clean apply of
 * the kept tiers on a second clone and against stage B by re-applying →
 * verdict. Tiers the source already has applied (its ledger, cloned with it)
 * are skipped, as `apply` would. Returns the evidence; never throws for a
 * failed check.
 *
 * @example const evidence = await rehearse(loadPlan(), { kind: 'pglite-sample', scale: 1 }, info);
 */
export async function rehearse(plan: Plan, source: CloneSource, info: SourceInfo, options: RehearseOptions = {}): Promise<Evidence> {
  const started = performance.now();
  const emit = options.onEvent ?? (() => undefined);
  // a plan that would be refused in production is refused here, before the clone is made; so is a source that is not the plan's database
  await assertPlanRunnable(plan);
  await assertSourceDatabase(plan, info);
  // a source with a kept snapshot may have the rollback proof's reference stored: then one clone
  const { source: referenced, lookup } = withStoredReference(plan, source);
  // a snapshot is reused only while the source's gate subject and ledger read as they did when it was taken
  const cloneSource: CloneSource =
    referenced.kind === 'postgres' && referenced.snapshot ? { ...referenced, snapshot: { ...referenced.snapshot, planState: planStateReader(plan) } } : referenced;
  return withClones(
    cloneSource,
    2,
    async (clones) => {
      const [main, kept] = clones as [Clone, Clone | undefined];
      // The clones' first fingerprint is taken on the second clone, untouched
      // until stage C, while the source is read and stage A runs on the
      // first: both are copies of one marked clone, so its hashes hold for
      // the first clone too until its change log names a table. Without a
      // second clone, the baseline the first was copied with is read from it.
      const fingerprints = new Fingerprints(kept ?? main, kept !== undefined, main.untouchedCopy, (message) => emit({ type: 'progress', message }));
      // Preflight on the source: identity and the gate's real value decide the execution verdict. The
      // clone is made ready meanwhile, when the source is a database of its own (a dump's is the clone itself)
      const sourceRead = readSource(plan, info, main, options.signal);
      sourceRead.catch(() => undefined);
      if (!info.openSource) await sourceRead.catch(() => undefined);
      const db = await main.open().catch(async (e) => {
        await sourceRead.catch(() => undefined);
        await fingerprints.settle();
        throw e;
      });
      const s = new Scenario(plan, db, kept, lookup, emit, fingerprints, options.signal);
      let cloneIdentity: DatabaseIdentity | undefined;
      let src!: Awaited<typeof sourceRead>;
      try {
        const ready = (async () => {
          cloneIdentity = withoutCloneOf(await readIdentity(s.db));
          await ensureLedger(s.db);
          await s.start();
        })();
        const [read, clone] = await Promise.allSettled([sourceRead, ready]);
        if (read.status === 'rejected') throw read.reason;
        src = read.value;
        // (a preflight that failed ends the rehearsal here: what the clone's ledger says no longer matters)
        if (clone.status === 'rejected' && (src.preflight?.status !== 'Failed' || !cloneIdentity)) throw clone.reason;
        if (src.preflight?.status !== 'Failed') {
          await s.stageA();
          const fpB = await s.stageB(src.gate);
          if (s.passing()) await s.stageC(fpB);
        }
      } catch (e) {
        // what Ctrl-C leaves on the scratch server: the snapshot the clones were copied from (complete), for the next rehearsal
        if (e instanceof InterruptedError && main.snapshot) {
          throw new InterruptedError(`${e.message}; the snapshot ${main.snapshot.database} stays on the scratch server for the next rehearsal (drop database ${main.snapshot.database} removes it)`);
        }
        throw e;
      } finally {
        await s.settleKept();
        await fingerprints.settle();
        await fingerprints.release(s.db);
        await s.db.close();
      }
      emit({ type: 'progress', message: fingerprints.summary() });
      const verdict = computeVerdict(plan, { preflight: src.preflight, gate: src.gate, stages: s.stages, rollback: s.rollback });
      return {
        schemaVersion: EVIDENCE_SCHEMA_VERSION,
        tool: { name: 'tiergate', version: tiergateVersion() },
        createdAt: new Date().toISOString(),
        plan: {
          name: plan.name,
          dir: plan.dir,
          sha256: plan.sha256,
          files: planFileHashes(plan),
          sql: Object.fromEntries(plan.tiers.map((t) => [t.file, t.sql])),
        },
        source: { kind: info.kind, location: info.location, identity: src.identity, snapshotAt: main.snapshotAt, gate: src.gate, preflight: src.preflight },
        clone: { kind: main.kind, location: main.displayUrl, kept: Boolean(options.keep), copyMs: main.copyMs, ...(main.snapshot ? { snapshot: main.snapshot } : {}), ...(cloneIdentity ? { identity: cloneIdentity } : {}) },
        stages: s.stages,
        rollback: s.rollback,
        verdict,
        durationMs: Math.round(performance.now() - started),
      } satisfies Evidence;
    },
    { keep: options.keep, onProgress: (message) => emit({ type: 'progress', message }), onClone: options.onClone, onCleanup: options.onCleanup, signal: options.signal },
  );
}

/**
 * The rehearsal's fingerprints: one cache (src/probe/fingerprint.ts) for
 * both clones, its first entry the second clone's full fingerprint, started
 * at once; every later fingerprint hashes only the tables the clone's change
 * log names since (and any it cannot vouch for).
 */
class Fingerprints {
  readonly cache = new FingerprintCache();
  private readonly baseline: Promise<void>;

  /**
   * `untouched`: nothing writes to `from` until this baseline is read (the
   * second clone); else (the first) only a stored baseline is read.
   * `untouchedCopy`: where a deferred hash is hashed (`comparable`).
   */
  constructor(
    from: Clone,
    untouched: boolean,
    private readonly untouchedCopy?: Clone['untouchedCopy'],
    private readonly progress: (message: string) => void = () => undefined,
  ) {
    this.baseline = (async () => {
      const db = await from.open();
      try {
        // stored in the clone when it was made (src/probe/fingerprint.ts recordBaseline), else taken now
        if (!(await loadBaseline(db, this.cache)) && untouched) await this.take(db);
      } finally {
        await this.release(db);
        await db.close();
      }
    })();
    // a failed baseline only means the first fingerprint of the main clone hashes everything
    this.baseline.catch(() => undefined);
  }

  /** fingerprints taken, tables hashed and reused, seals read, deferred hashes hashed on an untouched copy of the source, time spent (the baseline's included) */
  readonly totals = { count: 0, hashed: 0, reused: 0, seals: 0, marks: 0, deferred: 0, ms: 0 };

  /** the hashes deferred tokens stand for, hashed in this rehearsal or read from tiergate's cache */
  private readonly deferredHashes = new Map<string, string>();

  /**
   * `a` and `b` ready to compare. A new snapshot's baseline leaves its large
   * tables unhashed (src/probe/fingerprint.ts `DEFERRED`): a fingerprint
   * carries a token for such a table while the change log proves it
   * unwritten, and two equal tokens are equal contents. Where a table
   * differs and one side is a token — the tiers wrote it on the other side
   * only — the token is replaced by the hash of the table as the source's
   * copy holds it, hashed on an untouched copy (`Clone.untouchedCopy`: a
   * copy of the kept snapshot made for that, or a direct rehearsal's
   * restored source; the clones have been written since), once per copy and
   * table (tiergate's cache keeps it for the next rehearsal of a snapshot).
   */
  async comparable(a: Fingerprint, b: Fingerprint): Promise<[Fingerprint, Fingerprint]> {
    const names = deferredDifferences(a, b);
    if (!names.length) return [a, b];
    const todo = new Map<string, DeferredTable>();
    for (const token of new Set(names.flatMap((n) => [a.tables[n]!, b.tables[n]!]).filter(isDeferred))) {
      if (this.deferredHashes.has(token)) continue;
      const stored = readCache<string>(DEFERRED_HASHES, token);
      if (typeof stored === 'string') {
        this.deferredHashes.set(token, stored);
        continue;
      }
      const table = this.cache.deferredTable(token);
      if (!table) throw new TargetError(`the baseline of the source's copy does not say how to hash a table it left unhashed (${names.join(', ')}): ${AFRESH}`);
      todo.set(token, table);
    }
    if (todo.size) await this.hashOnCopy(todo);
    return [withResolved(a, this.deferredHashes), withResolved(b, this.deferredHashes)];
  }

  private async hashOnCopy(todo: Map<string, DeferredTable>): Promise<void> {
    const names = [...new Set([...todo.values()].map((t) => t.name))].sort();
    if (!this.untouchedCopy) throw new TargetError(`no untouched copy of the source is left to hash ${names.join(', ')}, which its baseline left unhashed: ${AFRESH}`);
    const t = performance.now();
    const them = names.length === 1 ? 'it' : 'them';
    this.progress(
      `${names.join(', ')} changed on one side of a comparison only (written there, or reading through a foreign key a table that was): hashing ${them} as the copy of the source holds ${them}, untouched (its baseline left large tables unhashed)`,
    );
    const { clone, release } = await this.untouchedCopy();
    let hashes: Map<string, string>;
    try {
      const db = await clone.open();
      try {
        // (a run killed meanwhile: the server ends the hash within seconds, and the next rehearsal finds the copy unused)
        if (db.capabilities.serverVersion >= 140000) await db.exec("set client_connection_check_interval = '2s'");
        hashes = await withoutJit(db, () => hashDeferred(db, todo));
      } finally {
        await db.close();
      }
    } finally {
      await release();
    }
    for (const token of todo.keys()) {
      const hash = hashes.get(token);
      if (hash === undefined) throw new TargetError(`the untouched copy of the source has no table ${todo.get(token)!.name} to hash: ${AFRESH}`);
      this.deferredHashes.set(token, hash);
      writeCache(DEFERRED_HASHES, token, hash, 64);
    }
    this.totals.deferred += todo.size;
    this.totals.ms += performance.now() - t;
  }

  async of(db: Db): Promise<Fingerprint> {
    await this.settle();
    return this.take(db);
  }

  /**
   * `meanwhile` on `db` — a verify tier: read-only, it changes nothing a
   * fingerprint reads — and the fingerprint of `db` at once, taken on its
   * lanes (its second connection and that one's own), both finished before
   * either's error is thrown. On one connection (PGlite), one after the other.
   */
  async beside<T>(db: Db, meanwhile: () => Promise<T>): Promise<[T, Fingerprint]> {
    const lane = await this.laneOf(db).catch(() => undefined);
    if (!lane) return [await meanwhile(), await this.of(db)];
    return both(meanwhile(), this.settle().then(() => this.take(lane)));
  }

  private async take(db: Db): Promise<Fingerprint> {
    const t = performance.now();
    const fp = await fingerprintClone(db, { cache: this.cache, lane: await this.laneOf(db) });
    this.totals.count++;
    this.totals.ms += performance.now() - t;
    this.totals.hashed += this.cache.last.hashed;
    this.totals.reused += this.cache.last.reused;
    return fp;
  }

  /**
   * The second connection each clone's fingerprints share (none on PGlite):
   * kept from one fingerprint to the next, its server process keeps the
   * catalog caches it filled. `release` closes it, before its clone's own.
   */
  private readonly lanes = new Map<Db, Promise<Db>>();

  private async laneOf(db: Db): Promise<Db | undefined> {
    if (db.capabilities.singleConnection) return undefined;
    let lane = this.lanes.get(db);
    if (!lane) {
      // tiergate's own connection, for its reads only: JIT off for its lifetime, not turned off and back on around each read
      lane = db.sibling().then((open) => (keepJitOff(open), open));
      this.lanes.set(db, lane);
      // a lane that failed to open is opened again by the next fingerprint
      lane.catch(() => this.lanes.delete(db));
    }
    return lane;
  }

  /** Closes the lane of `db` if it has one (a lane that will not close is no reason to keep its clone's own connection open). */
  async release(db: Db): Promise<void> {
    const lane = this.lanes.get(db);
    this.lanes.delete(db);
    const open = lane ? await lane.catch(() => null) : null;
    if (!open) return;
    // (its own lane first: `beside` fingerprints on a lane with a lane of its own)
    await this.release(open);
    await open.close().catch(() => undefined);
  }

  /**
   * The clone's state before a blocked tier: its seal (src/probe/fingerprint.ts
   * `Seal`: no catalog read) and the server's transaction mark read just
   * before it, or its fingerprint where it has no change log.
   */
  async stateOf(db: Db, previous?: CloneState): Promise<CloneState> {
    await this.settle();
    const t = performance.now();
    // (before PostgreSQL 13, every blocked tier compares seals)
    const mark = hasXid8Snapshots(db) ? await readXactMark(db) : null;
    const seal = await sealOf(db, { previous: previous && 'seal' in previous ? previous.seal : null, lane: await this.laneOf(db).catch(() => undefined) });
    this.totals.ms += performance.now() - t;
    if (!seal) return { fp: await this.take(db) };
    this.totals.seals++;
    return { seal, mark };
  }

  /**
   * Whether the clone is as `before` found it, its state now, and (when it is
   * not) what changed. When every transaction the server ran since `before`'s
   * mark aborted — the blocked tier's own, and nothing else on the server
   * committed — nothing any read would see has changed (src/probe/xact-mark.ts):
   * the seal holds as it was, unread. Else the seals are compared.
   */
  async compare(db: Db, before: CloneState): Promise<{ after: CloneState; unchanged: boolean; change: string }> {
    if ('seal' in before && before.mark) {
      const t = performance.now();
      const since = await nothingCommittedSince(db, before.mark);
      this.totals.ms += performance.now() - t;
      if (since.clean) {
        this.totals.marks++;
        return { after: { seal: before.seal, mark: since.mark }, unchanged: true, change: '' };
      }
    }
    if ('fp' in before) {
      const fp = await this.of(db);
      const pair = await this.comparable(before.fp, fp);
      const unchanged = sameFingerprint(...pair);
      return { after: { fp }, unchanged, change: unchanged ? '' : describeDiff(diffFingerprints(...pair)) };
    }
    const after = await this.stateOf(db, before);
    if (!('seal' in after)) return { after, unchanged: false, change: "the clone's change log is gone" };
    const unchanged = sameSeal(before.seal, after.seal);
    return { after, unchanged, change: unchanged ? '' : await sealChange(db, before.seal, after.seal) };
  }

  /** One line for the progress: what the change log saved. */
  summary(): string {
    const { count, hashed, reused, seals, marks, deferred, ms } = this.totals;
    const copied = deferred ? `; ${deferred} large table${deferred === 1 ? '' : 's'} the baseline left unhashed hashed on an untouched copy of the source` : '';
    const sealed = seals ? `; ${seals} seal${seals === 1 ? '' : 's'} (the catalog's version and the change log, no catalog read)` : '';
    const marked = marks ? `; ${marks} blocked tier${marks === 1 ? '' : 's'} proven to change nothing by the server's transactions (every one since the last seal aborted: no seal read)` : '';
    return `${count} fingerprints in ${(ms / 1000).toFixed(1)} s: ${grouped(hashed)} table contents hashed, ${grouped(reused)} reused (proven unchanged by the clones' change log)${sealed}${marked}${copied}`;
  }

  /** Waits for the baseline (nothing may be left running on a clone that is about to be dropped). */
  async settle(): Promise<void> {
    await this.baseline.catch(() => undefined);
  }
}

/** What to do when a table a baseline left unhashed cannot be hashed for a comparison (none of it should happen). */
const AFRESH = "rehearse again from a new copy of the source (--fresh, or --no-snapshot) with TIERGATE_BASELINE_DEFER_MB above the table's size: its baseline then hashes it";

/** tiergate's cache of the hashes deferred tokens stand for (src/cache.ts): a token names its snapshot's change log and the table's key */
const DEFERRED_HASHES = 'deferred-hash';

function withoutCloneOf(identity: DatabaseIdentity & { cloneOf?: string | null }): DatabaseIdentity {
  const { cloneOf: _, ...rest } = identity;
  return rest;
}

/** What a blocked tier's proof compares: the clone's seal and the server's transaction mark read just before it, or its fingerprint where a seal proves nothing. */
type CloneState = { seal: Seal; mark: XactMark | null } | { fp: Fingerprint };

/** The second clone's clean apply of the kept tiers: its fingerprint, or why it could not be made. */
type KeptRun = Promise<{ fp: Fingerprint } | { error: string }>;

/** Whether two lists of tier ids (or two nulls) hold the same tiers. */
function sameIds(a: number[] | null, b: number[] | null): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && [...a].sort().join(',') === [...b].sort().join(',');
}

/** The state of one rehearsal on its main clone: stages, checks, the tiers applied. */
class Scenario {
  readonly stages: StageRecord[] = [];
  rollback: Evidence['rollback'] = null;
  readonly verifyTier: Tier | undefined;
  rollbackTier: Tier | undefined;
  /** the tiers a rollout applies: structure and data, in plan order */
  readonly body: Tier[];
  /** tiers applied on the main clone (by the source before it was cloned, or here) */
  private readonly applied = new Set<number>();
  /** the tiers applied when stage B opened the gate on the clone (null: it did not open it) */
  private appliedWhenGateOpened: number[] | null = null;
  private ledger = new Map<number, LedgerEntry>();
  /** the clone's gate as start() read it (start() runs before the stages, as for the ledger) */
  private gateAtStart: GateReading | null = null;
  /**
   * The plan's metrics and catalog as the last tier on this clone left them,
   * read in its transaction just before its COMMIT: the next tier's
   * "before", as in `apply` (src/engine/run-tier.ts). Nothing else writes
   * to the clone; a guard proof rolls back (its fingerprint proves it) and
   * keeps them; opening the gate forgets them.
   */
  private readonly carry = new Carry();

  /** the reference of the rollback proof, built on the second clone from stage A on (or stored), the tiers it opened the gate after (null: not opened), and where it came from */
  private keptRun: { run: KeptRun; gateAfter: number[] | null; reference: { reused: boolean; madeAt: string } } | null = null;

  constructor(
    readonly plan: Plan,
    readonly db: Db,
    /** the second clone: the kept tiers' clean apply (none when its fingerprint is stored: `reference`) */
    private readonly kept: Clone | undefined,
    /** the stored reference of the rollback proof, when the source's snapshot has one (src/rehearsal/kept-reference.ts) */
    private readonly reference: ReferenceLookup,
    private readonly emit: (e: RehearsalEvent) => void,
    private readonly fingerprints: Fingerprints,
    private readonly signal?: AbortSignal,
  ) {
    this.verifyTier = plan.tiers.find((t) => t.kind === 'verify');
    this.rollbackTier = plan.tiers.find((t) => t.kind === 'rollback' && t.scope !== 'subject');
    this.body = plan.tiers.filter(isBodyTier);
  }

  /** Whether every tier `tier` requires is applied (checks — preflight, verify — count as done). */
  private satisfied(tier: Tier, applied: Set<number> = this.applied): boolean {
    return tier.requires.every((id) => applied.has(id) || !isBodyTier(this.plan.tiers.find((t) => t.id === id)!));
  }

  passing(): boolean {
    return this.stages.every((s) => s.checks.every((c) => c.ok));
  }

  /** What the source has applied already (its ledger came with the clone), drift refused as apply refuses it. */
  async start(): Promise<void> {
    this.ledger = await readLedger(this.db, this.plan.name);
    assertNoDrift(this.plan, this.ledger);
    const gate = await this.db.transaction((tx) => readGate(tx, this.plan), { readOnly: true });
    this.gateAtStart = gate;
    // a gated tier applied for another subject is an amendment to rehearse: pending again
    for (const id of appliedTiers(this.plan, this.ledger, gate)) this.applied.add(id);
    // rehearsing an amendment proves the amendment's own rollback, when the plan has one
    const scoped = this.plan.tiers.find((t) => t.kind === 'rollback' && t.scope === 'subject');
    // (also an amendment rolled back on the source: applying it again amends what an earlier subject wrote, which stays)
    const amends = (t: Tier) => amendment(t, this.ledger.get(t.id), gate) !== null || amendmentReverted(this.ledger.get(t.id));
    // …but not when a tier the full rollback reverts is applied from nothing (never applied, or reverted by the full
    // rollback after the amendment's own): then the rehearsal applies the rollout itself, and the full rollback is the one
    // that takes it back (the amendment's would leave what the rollout wrote)
    const full = this.rollbackTier;
    const fromNothing = (id: number) => {
      const t = this.plan.tiers.find((x) => x.id === id);
      return t !== undefined && t.gated === true && !this.applied.has(id) && !amends(t);
    };
    if (scoped && this.plan.tiers.some(amends) && !(full?.reverts.some(fromNothing) ?? false)) this.rollbackTier = scoped;
  }

  /**
   * Stage A: the gate closed. Structure tiers apply; every gated tier must be
   * stopped by its own guard — its transaction rolled back, the clone's
   * fingerprint unchanged. When the clone's gate is open (the source's is),
   * the proof closes it inside its own transaction (`rehearsal.close_gate`).
   */
  async stageA(): Promise<void> {
    const a = this.stage('A', 'gate closed: structure applies, gated tiers must stop themselves');
    // the gate as start() read it: nothing has written to the clone since (at 6,500 collections a reading is ~100 ms)
    const reading = this.gateAtStart;
    const gateOpen = reading?.open ?? false;
    // The second clone's reference needs only what stage B will start from:
    // the tiers this stage applies when each applies (when one does not, the
    // rehearsal fails here, and stage C never runs) and whether the gate will
    // then be opened. So it starts now, beside this stage.
    const willApply = new Set(this.applied);
    for (const tier of this.body) if (!tier.gated && !willApply.has(tier.id) && this.satisfied(tier, willApply)) willApply.add(tier.id);
    const opens = reading !== null && !reading.open && this.body.some((t) => t.gated && !willApply.has(t.id));
    this.startKept(opens ? [...willApply] : null);
    // The clone is tiergate's own: nothing else writes to it. After a blocked
    // tier, the clone's state is the next blocked tier's "before" unless a
    // tier applied in between.
    let last: CloneState | null = null;
    for (const tier of this.body) {
      if (this.applied.has(tier.id)) {
        await this.run(a, tier, async () => ({ ...idle(tier), status: 'Skipped', reason: `already applied on the source ${this.ledger.get(tier.id)?.appliedAt ?? ''}`.trim() }));
      } else if (tier.gated) {
        if (gateOpen && !this.plan.rehearsal?.close_gate) {
          this.check(a, { name: `A: tier ${tier.id} stops itself with the gate closed`, ok: false, detail: "the source's gate is open and the plan has no rehearsal.close_gate: the guard cannot be proven" });
          continue;
        }
        const before = last ?? (await this.fingerprints.stateOf(this.db));
        let unchanged = false;
        let change = '';
        const r = await this.run(
          a,
          tier,
          () => runTier(this.db, this.plan, tier, { proveGuard: true, closeGate: gateOpen ? this.plan.rehearsal?.close_gate : undefined, carry: this.carry, signal: this.signal }),
          async (result) => {
            const proof = await this.fingerprints.compare(this.db, before);
            last = proof.after;
            unchanged = proof.unchanged;
            change = proof.change;
            // rolled back, and proven so: the metrics and catalog are as the last tier left them
            if (!unchanged) this.carry.forget();
            result.fingerprintUnchanged = unchanged;
            if (result.status === 'Blocked') result.expectedOutcome = 'the gate is closed';
          },
        );
        this.check(a, {
          name: `A: tier ${tier.id} stops itself with the gate closed`,
          ok: r.status === 'Blocked' && r.guardProven === true && unchanged,
          detail: !r.guardProven ? (r.reason ?? 'not blocked') : unchanged ? 'its guard aborted it; fingerprint unchanged' : `its guard aborted it, but the fingerprint changed: ${change}`,
        });
      } else if (!this.satisfied(tier)) {
        await this.run(a, tier, async () => ({ ...idle(tier), status: 'Skipped', reason: 'requires a tier not applied in this stage' }));
      } else {
        last = null;
        this.check(a, tierCheck('A', await this.apply(a, tier)));
      }
    }
    if (this.verifyTier) {
      const complete = this.body.every((t) => this.applied.has(t.id));
      const v = await this.verify(a, (result) => {
        if (!complete && result.status === 'Failed') result.expectedOutcome = 'the gated tiers have not run, so verify shows the honest gaps';
      });
      this.check(a, { name: 'A: verify shows the honest gaps', ok: true, expected: true, detail: `${v.status}: ${metricsLine(v)}` });
    }
    this.dropKeptWhenBuilt();
  }

  /**
   * Stage B: the gate as the source has it when it is open, else opened on
   * the clone (and only on a clone); every remaining tier applies as
   * expected; verify passes.
   */
  async stageB(sourceGate: GateReading | null): Promise<Fingerprint> {
    const pending = this.body.filter((t) => !this.applied.has(t.id));
    let opened = false;
    try {
      opened = pending.some((t) => t.gated) && (await openGate(this.db, this.plan));
    } catch (e) {
      // the plan's rehearsal.open_gate refused on this clone (its approval tables are not where it looks): a failed stage, with evidence
      if (!(e instanceof DbError)) throw e;
      const b = this.stage('B', 'the gate could not be opened on the clone');
      const why = `the plan's rehearsal.open_gate (tiergate.yaml) failed on the clone: ${e.message}${e.sqlstate ? ` (SQLSTATE ${e.sqlstate})` : ''}`;
      this.check(b, { name: 'B: the gate opens on the clone', ok: false, detail: why });
      for (const tier of pending) await this.run(b, tier, async () => ({ ...idle(tier), status: 'Skipped', reason: 'the gate could not be opened on the clone' }));
      return this.fingerprints.of(this.db);
    }
    // a clone of a snapshot taken before the source's approvals has its gate closed while the source's is open: it is opened on the clone, and said so
    const b = this.stage(
      'B',
      !opened && sourceGate?.open ? 'gate open, as on the source' : sourceGate?.open ? "gate opened on the clone (open on the source, closed in the copy of it: the copy predates the approvals)" : 'gate opened on the clone',
    );
    if (opened) {
      this.appliedWhenGateOpened = [...this.applied];
      this.carry.forget();
    }
    for (const tier of pending) {
      if (!this.satisfied(tier)) {
        await this.run(b, tier, async () => ({ ...idle(tier), status: 'Skipped', reason: 'requires a tier that did not apply' }));
        this.check(b, { name: `B: tier ${tier.id} applies`, ok: false, detail: 'a tier it requires did not apply' });
      } else {
        this.check(b, tierCheck('B', await this.apply(b, tier)));
      }
    }
    if (!this.verifyTier) return this.fingerprints.of(this.db);
    // the clone as stage B left it: verify reads it meanwhile
    const [verified, fpB] = await this.fingerprints.beside(this.db, () => this.verify(b));
    this.check(b, verifyCheck('B: verify passes', verified));
    return fpB;
  }

  /**
   * Stage C: the rollback tier, then two proofs — the clone equals a clean
   * apply of the kept tiers on a second clone, and re-applying the reverted
   * tiers reproduces stage B.
   */
  async stageC(fpB: Fingerprint): Promise<void> {
    const rollbackTier = this.rollbackTier;
    if (!rollbackTier) return;
    const c = this.stage('C', 'rollback, proven');
    const reverted = rollbackTier.reverts.map((id) => this.plan.tiers.find((t) => t.id === id)!);
    // started with stage A (a plan with a rollback tier always has one)
    const { run: keptRun, gateAfter, reference } = this.keptRun!;
    let rb: TierResult;
    try {
      rb = await this.apply(c, rollbackTier, { reverts: reverted });
    } catch (e) {
      // nothing may be left running on a clone that is about to be dropped
      await keptRun.catch(() => undefined);
      throw e;
    }
    this.check(c, tierCheck('C', rb));
    if (rb.status !== 'Applied') {
      await keptRun.catch(() => undefined);
      return;
    }
    for (const t of reverted) {
      this.applied.delete(t.id);
      c.tiers.push({ ...idle(t), status: 'Reverted', reason: `reverted by tier ${rollbackTier.id}` });
    }
    const fpRolled = await this.fingerprints.of(this.db).catch(async (e: unknown) => {
      await keptRun.catch(() => undefined);
      throw e;
    });
    const built = await keptRun;
    // stage B opened the gate elsewhere than the reference assumed (possible only when stage A failed, and stage C then does not run)
    const keptFp = sameIds(gateAfter, this.appliedWhenGateOpened) ? built : { error: 'the second clone opened the gate after other tiers than stage B did: no reference to compare with' };
    const pair = 'error' in keptFp ? keptFp : await this.fingerprints.comparable(fpRolled, keptFp.fp).catch((e: unknown) => ({ error: (e as Error).message }));
    const keptDiff = 'error' in pair ? null : diffFingerprints(...pair);
    const matchesKeptTiers = !('error' in pair) && sameFingerprint(...pair);
    this.check(c, {
      name: 'C: after rollback the clone equals a clean apply of the kept tiers',
      ok: matchesKeptTiers,
      detail:
        'error' in pair
          ? pair.error
          : matchesKeptTiers
            ? reference.reused
              ? `fingerprint ${pair[0].hash.slice(0, 12)}, as the kept tiers' clean apply on a copy of the same snapshot (stored by the rehearsal of ${reference.madeAt})`
              : `fingerprint ${pair[0].hash.slice(0, 12)} on both clones`
            : describeDiff(keptDiff!),
    });

    // the re-apply is a production run after a rollback: its deltas are
    // recorded with the state they ran in (apply --evidence compares a
    // re-apply with them), and checked against the plan's expectations
    for (const tier of this.body.filter((t) => rollbackTier.reverts.includes(t.id))) {
      this.check(c, tierCheck('C', await this.apply(c, tier), 're-applies'));
    }
    let fpAgain: Fingerprint;
    if (this.verifyTier) {
      const [verified, fp] = await this.fingerprints.beside(this.db, () => this.verify(c));
      this.check(c, verifyCheck('C: verify passes after the re-apply', verified));
      fpAgain = fp;
    } else fpAgain = await this.fingerprints.of(this.db);
    const again = await this.fingerprints.comparable(fpB, fpAgain).catch((e: unknown) => ({ error: (e as Error).message }));
    const reapplyDiff = 'error' in again ? diffFingerprints(fpB, fpAgain) : diffFingerprints(...again);
    const reapplyMatches = !('error' in again) && sameFingerprint(...again);
    this.check(c, {
      name: 'C: re-applying the reverted tiers reproduces stage B',
      ok: reapplyMatches,
      detail: 'error' in again ? again.error : reapplyMatches ? `fingerprint ${again[0].hash.slice(0, 12)}` : describeDiff(reapplyDiff),
    });
    this.rollback = {
      tier: rollbackTier.id,
      reverted: rollbackTier.reverts,
      matchesKeptTiers,
      reapplyMatches,
      keptDiff: matchesKeptTiers ? null : keptDiff,
      reapplyDiff: reapplyMatches ? null : reapplyDiff,
      ...(this.reference.key ? { reference } : {}),
    };
  }

  /**
   * Starts the reference of the rollback proof — a clean apply of the kept
   * tiers on the second clone, the gate opened after `gateAfter` (null: not
   * opened) — at the start of stage A. It is built there while the
   * stages run on the first clone: two clones, two sessions (on PGlite, two
   * threads), nothing shared but the fingerprint cache. No run when the
   * plan has no rollback to prove.
   */
  private startKept(gateAfter: number[] | null): void {
    const rollbackTier = this.rollbackTier;
    if (!rollbackTier) return;
    if (!this.kept) {
      this.keptRun = this.storedKept(rollbackTier, gateAfter);
      return;
    }
    this.emit({ type: 'progress', message: `applying the kept tiers on a second clone (${this.kept.displayUrl}), meanwhile the stages on the first` });
    const keptTiers = this.body.filter((t) => !rollbackTier.reverts.includes(t.id));
    const madeAt = new Date().toISOString();
    const run = applyKept(this.plan, this.kept, keptTiers, rollbackTier, gateAfter, this.fingerprints, this.signal);
    // kept for the next rehearsal of the same snapshot (src/rehearsal/kept-reference.ts)
    const key = this.reference.key;
    if (key) void run.then((r) => 'fp' in r && storeReference(key, { fp: r.fp, rollbackTier: rollbackTier.id, gateAfter, madeAt })).catch(() => undefined);
    run.catch(() => undefined); // awaited in stage C, or by settleKept
    this.keptRun = { run, gateAfter, reference: { reused: false, madeAt } };
  }

  /**
   * The reference stored for this snapshot, when it is the clean apply this
   * rehearsal would make: the same rollback tier, the gate opened after the
   * same tiers (what the key cannot hold; different, stage C fails and says so).
   */
  private storedKept(rollbackTier: Tier, gateAfter: number[] | null): NonNullable<Scenario['keptRun']> {
    const stored = this.reference.stored;
    const madeAt = stored?.madeAt ?? '';
    const fits = stored !== undefined && stored.rollbackTier === rollbackTier.id && sameIds(stored.gateAfter, gateAfter);
    this.emit({
      type: 'progress',
      message: fits
        ? `the rollback proof's reference is stored: the kept tiers' clean apply on a copy of this snapshot, made by the rehearsal of ${madeAt} (no second clone)`
        : 'the stored reference of the rollback proof does not fit this rehearsal',
    });
    const error = `the stored reference of the rollback proof (the rehearsal of ${madeAt || 'an unknown time'}) ${
      stored && stored.rollbackTier !== rollbackTier.id ? `proves rollback tier ${stored.rollbackTier}, not ${rollbackTier.id}` : 'opened the gate after other tiers'
    }: rehearse again with --fresh`;
    return { run: Promise.resolve(fits ? { fp: stored.fp } : { error }), gateAfter, reference: { reused: true, madeAt } };
  }

  /**
   * Drops the second clone once its fingerprint is taken: nothing reads it
   * again. Called when stage A is over, so that its blocked tiers' proofs
   * see no commit of the drop (src/probe/xact-mark.ts: any commit on the
   * server sends a proof back to the seals); it runs beside stage B (at
   * 6,500 tables a drop unlinks ~40,000 files, ~0.5 s), and withClones's
   * clean-up awaits the same removal (and reports its failure).
   */
  private dropKeptWhenBuilt(): void {
    void this.keptRun?.run.catch(() => undefined).then(() => this.kept?.drop().catch(() => undefined));
  }

  /** Waits for the second clone's work (nothing may be left running on a clone that is about to be dropped). */
  async settleKept(): Promise<void> {
    await this.keptRun?.run.catch(() => undefined);
  }

  private stage(name: StageRecord['name'], title: string): StageRecord {
    const s: StageRecord = { name, title, tiers: [], checks: [] };
    this.stages.push(s);
    this.emit({ type: 'stage', stage: name, title });
    return s;
  }

  private check(stage: StageRecord, check: CheckRecord): void {
    stage.checks.push(check);
  }

  /** Runs a tier's step and records it; `annotate` completes the result (proofs, expected outcomes) before it is shown. */
  private async run(stage: StageRecord, tier: Tier, body: () => Promise<TierResult>, annotate?: (r: TierResult) => Promise<void> | void): Promise<TierResult> {
    if (this.signal?.aborted) throw new InterruptedError(`rehearsal interrupted (${interruptedBy(this.signal)}): the clones were dropped; the source was only read`);
    this.emit({ type: 'tier-start', stage: stage.name, tier });
    const r = await body();
    // Ctrl-C during the step (its tier rolled back): interrupted, not a failure of the rehearsal — also for the last step
    // of a stage (the rollback tier of stage C, after which no step would start to say so)
    if (this.signal?.aborted) throw new InterruptedError(`rehearsal interrupted (${interruptedBy(this.signal)}): the clones were dropped; the source was only read`);
    await annotate?.(r);
    stage.tiers.push(r);
    this.emit({ type: 'tier-end', stage: stage.name, result: r });
    return r;
  }

  /** Applies a tier, recording the state it ran in (the tiers applied before it). */
  private async apply(stage: StageRecord, tier: Tier, options: RunTierOptions = {}): Promise<TierResult> {
    const appliedBefore = sortedIds(this.applied, this.plan);
    const r = await this.run(stage, tier, async () => ({ ...(await runTier(this.db, this.plan, tier, { carry: this.carry, ...options, signal: this.signal })), appliedBefore }));
    if (r.status === 'Applied') this.applied.add(tier.id);
    return r;
  }

  private verify(stage: StageRecord, annotate?: (r: TierResult) => void): Promise<TierResult> {
    const tier = this.verifyTier!;
    // the metrics as the last tier left them (this clone's carry): verify reads no set of its own
    return this.run(stage, tier, () => runCheckTier(this.db, this.plan, tier, { carry: this.carry, signal: this.signal }), annotate);
  }
}

/**
 * A source that is not the plan's database (nor a tiergate clone of it) is
 * refused before it is dumped or copied (exit 2, as apply refuses such a
 * target): a PostgreSQL source whose URL names another database is asked
 * (it may be a marked clone), a dump by the name it was given. A PGlite
 * folder is not opened twice for this: its preflight says it.
 */
async function assertSourceDatabase(plan: Plan, info: SourceInfo): Promise<void> {
  if (!plan.database) return;
  if (info.kind === 'dump' && info.identity) {
    assertPlanDatabase(plan, { ...info.identity, cloneOf: null }, info.location, '--dump');
    return;
  }
  if (info.kind !== 'postgres' || !info.openSource) return;
  const named = parsePostgresUrl(info.location)?.pathname.slice(1);
  if (named !== undefined && decodeURIComponent(named) === plan.database) return;
  const src = await info.openSource();
  try {
    assertPlanDatabase(plan, await readIdentity(src), src.displayUrl, '--source');
  } finally {
    await src.close();
  }
}

/** Preflight, gate and identity of the source, read-only (the main clone stands in for a source that is not a database). */
async function readSource(plan: Plan, info: SourceInfo, main: Clone, signal?: AbortSignal): Promise<{ preflight: TierResult | null; gate: GateReading | null; identity: DatabaseIdentity }> {
  const tier = plan.tiers.find((t) => t.kind === 'preflight') ?? null;
  const src = await (info.openSource ?? (() => main.open()))();
  try {
    const id = await readIdentity(src);
    const preflight = tier ? await runPreflight(src, plan, tier, id, undefined, signal) : null;
    const gate = await src.transaction((tx) => readGate(tx, plan), { readOnly: true });
    return { preflight, gate, identity: info.identity ?? withoutCloneOf({ ...id, database: id.cloneOf ?? id.database }) };
  } finally {
    await src.close();
  }
}

/**
 * Opens the plan's gate when it is closed. Refused on any database without
 * tiergate's clone mark — first, whatever the gate reads, so that no call
 * ever writes approvals outside a clone. A gate already open is left as it
 * is, so every clone ends with the same approvals. True when it opened it.
 */
export async function openGate(db: Db, plan: Plan): Promise<boolean> {
  const mark = await isMarkedClone(db);
  if (!mark.marked) throw new TargetError(`refusing to open the gate on ${db.displayUrl}: it is not a clone made by tiergate (no tiergate.clone_mark)`);
  const current = await db.transaction((tx) => readGate(tx, plan), { readOnly: true });
  if (!current || current.open) return false;
  const sql = plan.rehearsal?.open_gate;
  if (!sql) throw new TargetError(`plan '${plan.name}' has no rehearsal.open_gate: the rehearsal cannot open the gate on the clone`);
  await db.transaction((tx) => tx.exec(sql));
  return true;
}

/**
 * The reference of the rollback proof, on the second clone (a copy of the
 * source): the kept tiers applied where the source has not applied them, in
 * the order the main clone saw them — the gate opened on this clone at the
 * point stage B opened it on the main one (`appliedWhenGateOpened`: after
 * those tiers; null when stage B did not open it), so that both clones end
 * with the same approvals and what the tiers do to an approval (tier 7
 * records its origin) happens to both alike. When the source has already
 * applied some of the tiers the rollback reverts (a production where the
 * structure tiers ran first), no clean state without them exists: the
 * rollback tier is then run over them here too, so that the proof shows
 * what matters — the tiers this rehearsal applied and reverted leave nothing
 * behind.
 */
async function applyKept(
  plan: Plan,
  clone: Clone,
  tiers: Tier[],
  rollbackTier: Tier,
  appliedWhenGateOpened: number[] | null,
  fingerprints: Fingerprints,
  signal?: AbortSignal,
): Promise<{ fp: Fingerprint } | { error: string }> {
  // the baseline is read from this clone first (one session at a time on PGlite)
  await fingerprints.settle();
  const db = await clone.open();
  try {
    await ensureLedger(db);
    const ledger = await readLedger(db, plan.name);
    const todo = tiers.filter((t) => ledger.get(t.id)?.status !== 'applied');
    const beforeGate = new Set(appliedWhenGateOpened ?? todo.map((t) => t.id));
    const order = [...todo.filter((t) => beforeGate.has(t.id)), null, ...todo.filter((t) => !beforeGate.has(t.id))];
    // a reference run: only the state it leaves is compared (no deltas, only the metrics its post-conditions name)
    for (const tier of order) {
      if (tier === null) {
        if (appliedWhenGateOpened) await openGate(db, plan);
        continue;
      }
      const r = await runTier(db, plan, tier, { reference: true, signal });
      if (r.status !== 'Applied') return { error: `tier ${tier.id} did not apply on the second clone: ${r.error?.message ?? r.reason}` };
    }
    // (a rollback of scope subject reverts this rehearsal's amendment only: what the source applied for its own subject stays)
    const alreadyApplied =
      rollbackTier.scope === 'subject' ? [] : rollbackTier.reverts.filter((id) => ledger.get(id)?.status === 'applied').map((id) => plan.tiers.find((t) => t.id === id)!);
    if (alreadyApplied.length) {
      const r = await runTier(db, plan, rollbackTier, { reverts: alreadyApplied, reference: true, signal });
      if (r.status !== 'Applied') return { error: `the rollback of the source's own tier ${alreadyApplied.map((t) => t.id).join(', ')} did not apply on the second clone: ${r.error?.message ?? r.reason}` };
    }
    return { fp: await fingerprints.of(db) };
  } finally {
    await fingerprints.release(db);
    await db.close();
  }
}

function tierCheck(stage: string, r: TierResult, verb = 'applies'): CheckRecord {
  const missed = (r.expectations ?? []).filter((x) => !x.ok);
  if (r.status !== 'Applied') {
    const where = r.error ? ` (${r.error.file}:${r.error.line ?? '?'})` : '';
    return { name: `${stage}: tier ${r.id} ${verb}`, ok: false, detail: r.error ? `${r.error.sqlstate ?? ''} ${r.error.message}${where}`.trim() : (r.reason ?? r.status) };
  }
  if (missed.length) {
    return { name: `${stage}: tier ${r.id} matches the plan's expectations`, ok: false, detail: missed.map((m) => `${m.what}: expected ${m.expected}, got ${m.actual}`).join('; ') };
  }
  return { name: `${stage}: tier ${r.id} ${verb} as expected`, ok: true, detail: `${(r.expectations ?? []).length} expectation(s) met` };
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

/** 26068 → `26,068` (toLocaleString's first call loads the locale data: 12 ms of a rehearsal, for one line). */
function grouped(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}
