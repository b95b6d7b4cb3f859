import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb, parseTarget, withDb } from '../db/open-db.js';
import { connectLibpqSsl } from '../db/pg-adapter.js';
import { editPostgresUrl, NO_HOST, parsePostgresUrl } from '../db/pg-url.js';
import type { Db } from '../db/port.js';
import { ConnectionError, DbError, InterruptedError, TargetError, UsageError } from '../errors.js';
import { ownedTempPrefix, ownerGone, ownerMark, removeAtAbruptExit } from '../exit-cleanup.js';
import type { CloneSnapshot } from '../evidence/types.js';
import { describeAge } from '../parse-duration.js';
import { recordBaseline, ROW_HASH } from '../probe/fingerprint.js';
import { readIdentity } from '../probe/identity.js';
import { redactUrl } from '../secrets.js';
import { both } from '../settle.js';
import { tiergateVersion } from '../version.js';
import { markClone, ScopedClone, spareName, type CloneProvider, type SnapshotOptions } from './clone.js';
import { findPgTools } from './clone-tools.js';
import { dump, restore, restoreMode } from './pg-dump-restore.js';
import type { PlanState, PlanStateReader } from './plan-state.js';

/**
 * Clones of a PostgreSQL database onto a scratch server: `pg_dump
 * --format=custom` of the source (read-only by nature, and run with
 * default_transaction_read_only on), `pg_restore --no-owner --no-privileges`
 * (in one transaction or with two jobs: `restoreMode`), marked.
 *
 * Without `snapshot.keep` the restore goes into the first clone
 * `tiergate_clone_<source>_<random>` and further clones are `CREATE DATABASE
 * … TEMPLATE` the first. With it, the restore goes into a kept snapshot
 * `tiergate_snap_<source>_<idhash8>_<time>` and every clone is a copy of it,
 * all made at once; a later rehearsal with `reuseMs` copies that snapshot
 * instead of dumping the source again (37 s of dump and restore at 6,500
 * tables). See `snapshotClones`.
 */
export function postgresProvider(sourceUrl: string, scratchUrl: string, snapshot?: SnapshotOptions): CloneProvider {
  requireServerUrl(sourceUrl, '--source');
  requireServerUrl(scratchUrl, '--scratch');
  return async (count, progress, register, afterRun, signal) => {
    const started = performance.now();
    // (a bad setting is said before the source is read, not after its dump)
    const defer = deferBytes();
    // both servers at once (a failure of the source's is told first, as when they were read in turn)
    // (the source's plan state only when a snapshot may be reused: it decides whether one is)
    const reader = snapshot?.keep && snapshot.reuseMs !== undefined && !snapshot.fresh ? snapshot.planState : undefined;
    const [source, scratch] = await both(readSource(sourceUrl, reader), readScratch(scratchUrl));
    const ctx: ProviderContext = { sourceUrl, scratchUrl, source, scratch, started, count, progress, register, afterRun, signal, defer };
    stopIfInterrupted(ctx);
    if (source.standby) progress(standbyNote(source.standby));
    await dropLeftBehind(scratchUrl, scratch, progress);
    if (snapshot?.keep) await snapshotClones(ctx, snapshot);
    else await directClones(ctx);
  };
}

interface ProviderContext {
  sourceUrl: string;
  scratchUrl: string;
  source: SourceFacts;
  scratch: ScratchFacts;
  started: number;
  count: number;
  progress: (message: string) => void;
  register: (clone: ScopedClone) => void | Promise<void>;
  afterRun: (start: () => void) => void;
  /** Ctrl-C: pg_dump and pg_restore are stopped, a wait ends, and an InterruptedError is thrown at the next step */
  signal?: AbortSignal;
  /** the size from which the baseline leaves a table unhashed (`deferBytes`) */
  defer: number;
}

/** Between two steps of making the clones: a Ctrl-C stops here (withClones drops what was registered, makeSnapshot its snapshot). */
function stopIfInterrupted(ctx: Pick<ProviderContext, 'signal'>): void {
  if (ctx.signal?.aborted) throw new InterruptedError('interrupted (Ctrl-C)');
}

/**
 * No snapshot kept: restore into the first clone; the others are copies of
 * it (a fleet, `--no-snapshot`). When its baseline left large tables
 * unhashed, the restored copy stays untouched for the comparisons that need
 * one of them hashed (`untouchedCopy`): the clones are all copies of it, one
 * more copy instead of hashing every row of the large tables.
 */
async function directClones(ctx: ProviderContext): Promise<void> {
  const { scratchUrl, source, scratch, count, progress, register } = ctx;
  const base = cloneName(source.database);
  const snapshotAt = new Date().toISOString();
  const first = await createDatabase(scratchUrl, base, scratch.version, null, register, source.searchPath, { source: source.locale, progress });
  first.snapshotAt = snapshotAt;
  await dumpAndRestore(ctx, first.url, first.displayUrl);
  stopIfInterrupted(ctx);
  const deferred = await withDb(first.url, async (db) => {
    await markClone(db, source.database);
    progress(`hashing the copy's tables for its baseline (every row of each table under ${ctx.defer / MB} MB, once)`);
    return recordBaseline(db, { progress, signal: ctx.signal, defer: { minBytes: ctx.defer } });
  }, { applicationName: 'tiergate rehearse (clone)' });
  first.copyMs = Math.round(performance.now() - ctx.started);
  if (deferred) {
    first.auxiliary = true;
    progress(`the restored copy ${first.displayUrl} stays untouched (its large tables are hashed there if a comparison needs them); the clones are copies of it`);
  } else progress(`clone 1 of ${count} ready in ${(first.copyMs / 1000).toFixed(1)} s`);
  const untouchedCopy = async () => ({ clone: first, release: async () => undefined });
  stopIfInterrupted(ctx);
  // every copy registered before any is created (in the clones' order), then all copied at once on their own connections
  const copies: ScopedClone[] = [];
  for (let i = deferred ? 0 : 1; i < count; i++) copies.push(await registerDatabase(scratchUrl, `${base}_${copies.length + 2}`, scratch.version, register));
  if (!copies.length) return;
  const t = performance.now();
  await copyAll(scratchUrl, copies, base, '', source.searchPath);
  const copyMs = Math.round(performance.now() - t);
  for (const [i, c] of copies.entries()) {
    c.snapshotAt = snapshotAt;
    c.copyMs = i === 0 && deferred ? Math.round(performance.now() - ctx.started) : copyMs;
    if (deferred) c.untouchedCopy = untouchedCopy;
  }
  const which = copies.length > 1 ? `clones ${count - copies.length + 1}–${count} of ${count}` : `clone ${count} of ${count}`;
  progress(`${which} copied at once (CREATE DATABASE … TEMPLATE) in ${(copyMs / 1000).toFixed(1)} s`);
}

/** pg_dump of the source into a temporary file, pg_restore of it into `url` (which must exist, empty). */
async function dumpAndRestore(ctx: ProviderContext, url: string, displayUrl: string): Promise<void> {
  const tools = findPgTools(Math.floor(ctx.source.version / 10000));
  const work = mkdtempSync(join(tmpdir(), ownedTempPrefix('dump')));
  // (a second Ctrl-C exits at once: the dump file goes with it)
  const forget = removeAtAbruptExit(work);
  try {
    const file = join(work, 'source.dump');
    const tables = await dump(tools.pgDump, ctx.sourceUrl, file, ctx.progress, ctx.signal);
    stopIfInterrupted(ctx);
    ctx.progress(`restoring into ${displayUrl}`);
    await restore(tools.pgRestore, url, file, tables, restoreMode(tools.pgRestore, file, tables, ctx.scratch.lockSlots), ctx.progress, ctx.signal);
  } finally {
    rmSync(work, { recursive: true, force: true });
    forget();
  }
}

/** What the comment of a complete snapshot starts with; a snapshot database without it is incomplete (a run that stopped) and never reused. */
const SNAPSHOT_COMPLETE = 'tiergate snapshot complete ';

/** A snapshot database on the scratch server, as its name and comment tell. */
interface FoundSnapshot {
  name: string;
  complete: boolean;
  /** ISO 8601 (from the comment; null when incomplete) */
  takenAt: string | null;
  tiergateVersion: string | null;
  /** the source database's oid when the snapshot was taken (null: a snapshot that did not record it) */
  sourceOid: string | null;
  /** the plan state read on the snapshot when it was made, and by which reader (null: not recorded) */
  planState: (PlanState & { id: string }) | null;
  /** the scratch server's settings its baseline was hashed under (`settingsStamp`; null: not recorded) */
  settings: string | null;
  /** how its baseline hashed rows (`ROW_HASH`; null: an earlier tiergate's row md5) */
  rowHash: string | null;
}

/**
 * The clones are copies of a kept snapshot: the newest complete one of this
 * source when `reuseMs` allows it, else a new one (dump, restore, mark, then
 * the comment that says it is complete). Under a session advisory lock on the
 * scratch server, keyed by the snapshot prefix, from choosing the snapshot
 * until every clone is copied: two rehearsals of one source never dump at
 * once, the second waits and may reuse what the first made. While it is
 * held, incomplete snapshots of the prefix are dropped, and so are all but
 * the newest complete one, and the ready copies of any other. A failure
 * drops the snapshot being made; the clones are registered before they are
 * created, as always.
 *
 * The ready copy (`spareName`): a copy of the snapshot for the next
 * rehearsal, closed to connections as the snapshot is, started once this
 * rehearsal is over (`afterRun`) and finished by the server after tiergate
 * exits: a CREATE DATABASE is one statement, all or nothing, so a ready
 * copy that exists is complete. A rehearsal that reuses the snapshot takes
 * it as its first clone (a rename), waiting for it when the server is still
 * making it. On a disk where every new file costs (this machine's: "The
 * scratch server's disk" in docs/performance.md) that is the 4–8 s copy of
 * 6,500 tables a repeated rehearsal no longer makes.
 */
async function snapshotClones(ctx: ProviderContext, options: SnapshotOptions): Promise<void> {
  const { scratchUrl, source, scratch, count, progress, register } = ctx;
  const prefix = snapshotPrefix(source.database, source.identityKey);
  let release: (() => Promise<void>) | null = null;
  const releaseNow = () => void release?.();
  const chosen = await withSnapshotLock(scratchUrl, prefix, progress, ctx.signal, async (lockDb) => {
    const found = await listSnapshots(lockDb, prefix);
    for (const s of found.filter((x) => !x.complete)) {
      await dropDatabase(scratchUrl, s.name, scratch.version);
      progress(`dropped the incomplete snapshot ${s.name} (left by a rehearsal that stopped before it was complete)`);
    }
    const complete = found.filter((x) => x.complete).sort((a, b) => Date.parse(b.takenAt!) - Date.parse(a.takenAt!));
    const newest = complete[0] ?? null;
    const reuse = chooseReuse(newest, options, source);
    let chosen: CloneSnapshot;
    // the settings the clones' sessions get from the scratch server (and the source's search_path they are given)
    const settings = await cloneSettings(lockDb, source.searchPath);
    if (reuse.ok && newest) {
      chosen = { database: newest.name, takenAt: newest.takenAt!, reused: true };
      progress(`snapshot: reusing ${newest.name} taken ${newest.takenAt} (${describeAge(Date.now() - Date.parse(newest.takenAt!))} old): no pg_dump of the source`);
      if (newest.settings && newest.settings !== settingsStamp(settings)) {
        progress(
          `  the scratch server's settings for its user (TimeZone, DateStyle, search_path and the like, which shape how values print) changed since ${newest.name} was taken: the hashes of its baseline do not hold under them, every table is hashed again (--fresh takes a snapshot under the new settings)`,
        );
      }
    } else {
      progress(`snapshot: ${reuse.why}`);
      chosen = await makeSnapshot(ctx, prefix, complete.map((x) => x.name), settingsStamp(settings), options.planState);
    }
    // (a snapshot just made is complete: it stays, and so do the older ones until the next rehearsal)
    stopIfInterrupted(ctx);
    // in use by this rehearsal until it is over: another that would drop it (a newer snapshot taken, --fresh) leaves it
    release = await holdSnapshot(scratchUrl, chosen.database);
    // (Ctrl-C: nothing runs after the rehearsal, and its hold goes now)
    ctx.signal?.addEventListener('abort', releaseNow, { once: true });
    for (const old of complete.filter((x) => x.name !== chosen.database)) {
      if (!(await unusedSnapshot(lockDb, old.name))) {
        progress(`left the older snapshot ${old.name} (taken ${old.takenAt}): another rehearsal is copying from it or running on its copies; the next rehearsal drops it`);
        continue;
      }
      await dropDatabase(scratchUrl, old.name, scratch.version);
      progress(`dropped the older snapshot ${old.name} (taken ${old.takenAt})`);
    }
    // ready copies of another snapshot go (one a rehearsal is still making is dropped by the next)
    const spare = spareName(chosen.database);
    for (const other of await listSpares(lockDb, prefix)) if (other !== spare) await dropDatabase(scratchUrl, other, scratch.version);

    // every clone registered before any is created, then all copied at once on their own connections
    const base = cloneName(source.database);
    const clones: ScopedClone[] = [];
    // (the clones' search_path is the source's: a reference made under another is not this one's)
    const needed = options.clonesFor ? Math.min(count, Math.max(1, options.clonesFor(chosen, settings))) : count;
    for (let i = 0; i < needed; i++) clones.push(await registerDatabase(scratchUrl, i === 0 ? base : `${base}_${i + 1}`, scratch.version, register));
    const t = performance.now();
    // the first clone is the ready copy when there is one (a reused snapshot's)
    const taken = chosen.reused && (await takeSpare(lockDb, spare, nameOf(clones[0]!), source.searchPath, progress, ctx.signal));
    stopIfInterrupted(ctx);
    const rest = clones.slice(taken ? 1 : 0);
    // (the snapshot's size, which decides how to copy it, walks its files: ~80 ms at 6,500 tables; read only to copy)
    const strategy = rest.length ? await copyStrategy(lockDb, chosen.database) : null;
    await copyAll(scratchUrl, rest, chosen.database, strategy?.clause ?? '', source.searchPath);
    const copyMs = Math.round(performance.now() - t);
    // (a comparison of a large table its baseline left unhashed, written on one side only: src/rehearsal/rehearse.ts)
    let copies = 0;
    const untouchedCopy = async () => {
      const copy = await registerDatabase(scratchUrl, `${base}_s${++copies}`, scratch.version, register);
      const how = await withServer(scratchUrl, 'the scratch server', (db) => copyStrategy(db, chosen.database));
      await copyAll(scratchUrl, [copy], chosen.database, how.clause, source.searchPath);
      return { clone: copy, release: () => copy.drop() };
    };
    for (const [i, c] of clones.entries()) {
      c.untouchedCopy = untouchedCopy;
      c.snapshotAt = chosen.takenAt;
      c.snapshot = i === 0 && taken ? { ...chosen, readyCopy: true } : chosen;
      c.copyMs = i === 0 ? Math.round(performance.now() - ctx.started) : copyMs;
    }
    const what = needed > 1 ? `clones 1–${needed} of ${needed}` : 'clone 1 of 1';
    progress(
      taken
        ? `${what} ready in ${(copyMs / 1000).toFixed(1)} s: clone 1 is the copy of ${chosen.database} made ready after the last rehearsal (${spare}, renamed)${strategy ? `, clone 2 copied (CREATE DATABASE … TEMPLATE, ${strategy.why})` : ''}`
        : `${what} copied from ${chosen.database} at once (CREATE DATABASE … TEMPLATE, ${strategy!.why}) in ${(copyMs / 1000).toFixed(1)} s`,
    );
    return chosen;
  }).catch(async (e: unknown) => {
    await release?.();
    throw e;
  });
  // the next rehearsal's ready copy, once this one is over: the server finishes it after tiergate exits
  ctx.afterRun(() => {
    progress(`the scratch server makes a copy of ${chosen.database} ready for the next rehearsal (${spareName(chosen.database)}), after this one`);
    readyCopyInBackground(scratchUrl, spareName(chosen.database), chosen.database);
    ctx.signal?.removeEventListener('abort', releaseNow);
    releaseNow();
  });
}

/**
 * The settings a session on the scratch server gets from its configuration,
 * its command line and its user (not from the session itself), as text:
 * TimeZone, DateStyle, extra_float_digits, bytea_output and the like change
 * how values print, and so what a fingerprint hashes. A reference stored
 * under other settings is not this one's (kept-reference.ts).
 */
async function scratchSettings(db: Db): Promise<string> {
  const r = await db.query<{ s: string }>(
    `select coalesce(string_agg(name || '=' || setting, E'\n' order by name), '') as s from pg_settings
      where source in ('configuration file', 'command line', 'environment variable', 'global', 'user', 'database user')`,
  );
  return r.rows[0]?.s ?? '';
}

/** The settings the clones' sessions get: the scratch server's for its user (`scratchSettings`) and the source's search_path, which tiergate gives them. */
async function cloneSettings(db: Db, searchPath: string | null): Promise<string> {
  return `${await scratchSettings(db)}\nsource search_path=${searchPath ?? ''}`;
}

/** What a snapshot records of the settings its baseline was hashed under (`cloneSettings`, hashed). */
function settingsStamp(settings: string): string {
  return createHash('sha256').update(settings).digest('hex').slice(0, 16);
}

/** 'tg' + 3: a snapshot in use — held shared by each rehearsal that copied it, until it is over; taken exclusive to drop it. */
const SNAPSHOT_USE_CLASS = 0x7467_0003;

const snapshotUseKey = (snapshot: string) => createHash('sha256').update(snapshot).digest().readUInt32BE(0) & 0x7fff_ffff;

/**
 * Marks `snapshot` in use by this rehearsal (a shared advisory lock on a
 * connection of its own): released by the returned function, or by the
 * server when the process ends. Taken under the snapshot lock of its
 * source, as every drop is: none can come between.
 */
async function holdSnapshot(scratchUrl: string, snapshot: string): Promise<() => Promise<void>> {
  const db = await openDb(scratchUrl, { applicationName: 'tiergate rehearse (snapshot in use)' });
  try {
    await db.query('select pg_advisory_lock_shared($1, $2)', [SNAPSHOT_USE_CLASS, snapshotUseKey(snapshot)]);
  } catch (e) {
    await db.close().catch(() => undefined);
    throw e;
  }
  let closed = false;
  return async () => {
    if (closed) return;
    closed = true;
    await db.close().catch(() => undefined);
  };
}

/** Whether no rehearsal uses `snapshot` now: its use lock is free (taken exclusive on `db` for a moment). */
async function unusedSnapshot(db: Db, snapshot: string): Promise<boolean> {
  const key = snapshotUseKey(snapshot);
  const got = await db.query<{ ok: boolean }>('select pg_try_advisory_lock($1, $2) as ok', [SNAPSHOT_USE_CLASS, key]);
  if (!got.rows[0]?.ok) return false;
  await db.query('select pg_advisory_unlock($1, $2)', [SNAPSHOT_USE_CLASS, key]);
  return true;
}

/** The ready copies of the snapshots of `prefix`. */
async function listSpares(db: Db, prefix: string): Promise<string[]> {
  const r = await db.query<{ name: string }>(`select datname::text as name from pg_database where left(datname, length($1)) = $1 order by datname`, [`${spareName(prefix)}_`]);
  return r.rows.map((row) => row.name);
}

/**
 * Starts `CREATE DATABASE spare TEMPLATE snapshot … ALLOW_CONNECTIONS
 * false` on a connection of its own and lets tiergate exit meanwhile: the
 * connection does not keep the process alive, and the server, which reads
 * nothing from a client while it runs one statement, completes it — or,
 * if it stops first, leaves nothing. A failure (the name taken by another
 * rehearsal's, the snapshot dropped) only means the next rehearsal copies.
 */
function readyCopyInBackground(scratchUrl: string, spare: string, snapshot: string): void {
  void (async () => {
    // sslmode as libpq reads it, a connect timeout, errors of an idle client caught
    const { client } = await connectLibpqSsl(pg, scratchUrl, READY_COPY_APP);
    try {
      // copied as the clones are (the size read here, after the rehearsal)
      const { clause } = chooseStrategy((await client.query<StrategyFacts>(STRATEGY_FACTS, [snapshot])).rows[0]);
      const created = client.query(`create database ${ident(spare)} template ${ident(snapshot)}${clause} allow_connections false`);
      created.catch(() => undefined);
      // sent (a write in progress still holds the process): from here the connection no longer keeps tiergate running
      (client as unknown as { connection: { stream: { unref(): void } } }).connection.stream.unref();
      await created;
    } finally {
      await client.end().catch(() => undefined);
    }
  })().catch(() => undefined);
}

/** The application name of the connection that makes a ready copy: how the next rehearsal tells one in the making. */
const READY_COPY_APP = 'tiergate rehearse (ready copy)';

/**
 * Takes the ready copy `spare` as the clone `clone` (registered already):
 * renamed, then opened to connections. When the server is still making it
 * (after the last rehearsal), waits for it first. False when there is none
 * (the clone is then copied as usual).
 */
async function takeSpare(lockDb: Db, spare: string, clone: string, searchPath: string | null, progress: (m: string) => void, signal?: AbortSignal): Promise<boolean> {
  const making = async () =>
    (
      await lockDb.query<{ n: number }>(
        "select count(*)::int as n from pg_stat_activity where state = 'active' and application_name = $2 and strpos(query, $1) > 0",
        [ident(spare), READY_COPY_APP],
      )
    ).rows[0]!.n > 0;
  if (await making()) {
    const t = performance.now();
    progress(`waiting for the scratch server to finish the ready copy ${spare} (started after the last rehearsal)`);
    while (await making()) {
      if (signal?.aborted) return false;
      if (performance.now() - t > 300_000) {
        progress(`the ready copy ${spare} is still not made after 5 min: copying the snapshot instead`);
        return false;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  try {
    await lockDb.exec(`alter database ${ident(spare)} rename to ${ident(clone)}`);
  } catch {
    return false;
  }
  await lockDb.exec(`alter database ${ident(clone)} allow_connections true`);
  await commentOn(lockDb, clone, CLONE_COMMENT + JSON.stringify(ownerMark()));
  await setSearchPath(lockDb, clone, searchPath);
  return true;
}

/** Whether the newest complete snapshot is reused, and when not, why (for the progress line). */
function chooseReuse(newest: FoundSnapshot | null, options: SnapshotOptions, source: SourceFacts): { ok: boolean; why: string } {
  const age = newest ? Date.now() - Date.parse(newest.takenAt!) : 0;
  const described = newest ? `the newest, ${newest.name}, is ${describeAge(age)} old` : '';
  if (options.fresh) return { ok: false, why: `--fresh: dumping the source afresh${newest ? ` (${described})` : ''}` };
  if (options.reuseMs === undefined) return { ok: false, why: 'dumping the source into a new snapshot (rehearse again with --reuse-snapshot AGE to copy it instead)' };
  const limit = describeAge(options.reuseMs);
  if (!newest) return { ok: false, why: `none of this source on the scratch server to reuse (--reuse-snapshot ${limit}): dumping the source` };
  if (newest.tiergateVersion !== tiergateVersion()) {
    return { ok: false, why: `${newest.name} was made by tiergate ${newest.tiergateVersion ?? '(unknown)'}, this is ${tiergateVersion()}: dumping the source afresh` };
  }
  // its baseline's table hashes do not hold for this tiergate's: every rehearsal of it would hash every table again
  if (newest.rowHash !== ROW_HASH) {
    return { ok: false, why: `${newest.name} was made by an earlier tiergate, whose baseline hashes rows another way: dumping the source afresh` };
  }
  // a snapshot "taken" in the future (clocks apart) is not trusted either
  if (age > options.reuseMs || age < -60_000) return { ok: false, why: `${described}, older than --reuse-snapshot ${limit}: dumping the source afresh` };
  // a database of the same name dropped and created again (restored from another dump, say) is another database
  if (newest.sourceOid !== source.databaseOid) {
    return {
      ok: false,
      why:
        newest.sourceOid === null
          ? `${newest.name} does not record which database ${source.database} it copied: dumping the source afresh`
          : `${source.database} was dropped and created again since ${newest.name} was taken (database oid ${newest.sourceOid}, now ${source.databaseOid}): dumping the source afresh`,
    };
  }
  // what the evidence is bound to (the gate's subject, the plan's ledger) as it was when the snapshot was taken
  const reader = options.planState;
  if (reader && source.planState) {
    const kept = newest.planState;
    if (!kept || kept.id !== reader.id) return { ok: false, why: `${newest.name} does not record the proposal and tiers it holds as this plan reads them: dumping the source afresh` };
    if (kept.subject !== source.planState.subject) {
      const short = (s: string | null) => (s === null ? 'none' : s.length > 12 ? `${s.slice(0, 12)}…` : s);
      return {
        ok: false,
        why: `${reader.subjectLabel} changed on ${source.database} since ${newest.name} was taken (${short(kept.subject)} then, ${short(source.planState.subject)} now): a rehearsal of it would rehearse what is no longer proposed: dumping the source afresh`,
      };
    }
    if (kept.ledger !== source.planState.ledger) return { ok: false, why: `tiers were applied or rolled back on ${source.database} since ${newest.name} was taken: dumping the source afresh` };
  }
  return { ok: true, why: '' };
}

/**
 * A new complete snapshot: an empty database, the source restored into it,
 * marked (the change log installed, as on every clone), closed to
 * connections (a session in a template would stop every copy of it), and
 * last the comment that says it is complete. Dropped again on any failure.
 */
/** `settings`: the stamp of the settings its baseline is hashed under (`settingsStamp`), recorded in its comment. */
async function makeSnapshot(ctx: ProviderContext, prefix: string, taken: string[], settings: string, reader?: PlanStateReader): Promise<CloneSnapshot> {
  const { scratchUrl, source, scratch, progress } = ctx;
  // one snapshot per second and source: a name already in use waits for the next second
  let at = new Date();
  while (taken.includes(`${prefix}_${stamp(at)}`)) {
    await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 5));
    at = new Date();
  }
  const name = `${prefix}_${stamp(at)}`;
  const takenAt = at.toISOString();
  const snapshot = await registerDatabase(scratchUrl, name, scratch.version, () => undefined);
  try {
    await createOn(scratchUrl, name, 'template0', '', { what: 'snapshot', searchPath: source.searchPath, locale: { source: source.locale, progress } });
    await dumpAndRestore(ctx, snapshot.url, snapshot.displayUrl);
    stopIfInterrupted(ctx);
    // the plan state it holds, read on the copy itself (what the source read when pg_dump took it)
    const planState = await withDb(snapshot.url, async (db) => {
      const state = reader ? { id: reader.id, ...(await reader.read(db)) } : null;
      await markClone(db, source.database);
      progress(
        `hashing the copy's tables for its baseline (every row of each table under ${ctx.defer / MB} MB, once: later rehearsals of this snapshot hash only what their tiers write)`,
      );
      await recordBaseline(db, { progress, signal: ctx.signal, defer: { minBytes: ctx.defer } });
      return state;
    }, { applicationName: 'tiergate rehearse (snapshot)' });
    // (interrupted after its last statement: not marked complete, so dropped below, not kept beside the older one)
    stopIfInterrupted(ctx);
    await withServer(scratchUrl, 'the scratch server', async (db) => {
      await db.exec(`alter database ${ident(name)} allow_connections false`);
      // (the settings its baseline was hashed under: a later rehearsal under others is told why it hashes every table)
      const meta = { takenAt, sourceDatabase: source.database, sourceOid: source.databaseOid, tiergateVersion: tiergateVersion(), settings, rowHash: ROW_HASH, ...(planState ? { planState } : {}) };
      const comment = `${SNAPSHOT_COMPLETE}${JSON.stringify(meta)}`;
      await commentOn(db, name, comment);
    });
  } catch (e) {
    await snapshot.drop().catch((d: unknown) => progress(`could not remove the incomplete snapshot ${name} (${(d as Error).message}): the next rehearsal of this source drops it, or drop database ${name}`));
    throw e;
  }
  progress(`snapshot ${name} complete in ${((performance.now() - ctx.started) / 1000).toFixed(1)} s, kept on ${redactUrl(scratchUrl)} (remove it with: drop database ${name})`);
  return { database: name, takenAt, reused: false };
}

const MB = 1024 * 1024;

/**
 * The size from which a new snapshot's baseline leaves a table unhashed
 * (`TIERGATE_BASELINE_DEFER_MB`, default 64; 0 defers every table the change
 * log can vouch for). At 5.85 GB of Directus (C10: an activity log, revisions
 * and page views of millions of rows) hashing every row took 48–69 s of a
 * 119 s first rehearsal, for tables no tier writes; a table a rehearsal's
 * tiers write on one side of a comparison only is hashed then, on a copy of
 * the snapshot (src/rehearsal/rehearse.ts `comparable`), once per snapshot.
 */
function deferBytes(): number {
  const raw = process.env.TIERGATE_BASELINE_DEFER_MB;
  if (raw === undefined || raw.trim() === '') return 64 * MB;
  // (decimal only: Number would take 0x10 for 16 and 1e3 for 1000)
  const mb = /^\s*\d+(\.\d+)?\s*$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isFinite(mb) || mb < 0) {
    throw new UsageError(
      `TIERGATE_BASELINE_DEFER_MB='${raw}' is not a size in MB: a number, 0 or more (a new snapshot's baseline leaves tables of that size and more unhashed; unset, 64)`,
    );
  }
  return Math.round(mb * MB);
}

/**
 * The snapshots of `prefix` on the scratch server: databases named
 * `<prefix>_<time>`, complete when their comment says so.
 */
async function listSnapshots(db: Db, prefix: string): Promise<FoundSnapshot[]> {
  // compared as text, not LIKE: the prefix's underscores would be wildcards
  const r = await db.query<{ name: string; comment: string | null }>(
    `select datname::text as name, shobj_description(oid, 'pg_database') as comment
       from pg_database where left(datname, length($1)) = $1 order by datname`,
    [`${prefix}_`],
  );
  return r.rows
    .filter((row) => SNAPSHOT_NAME.test(row.name.slice(prefix.length)))
    .map((row) => {
      const meta = parseComment(row.comment);
      return {
        name: row.name,
        complete: meta !== null,
        takenAt: meta?.takenAt ?? null,
        tiergateVersion: meta?.tiergateVersion ?? null,
        sourceOid: meta?.sourceOid ?? null,
        settings: meta?.settings ?? null,
        rowHash: meta?.rowHash ?? null,
        planState: meta?.planState ?? null,
      };
    });
}

/** The part of a snapshot's name after its prefix: `_<yyyymmdd>t<hhmmss>`. */
const SNAPSHOT_NAME = /^_\d{8}t\d{6}$/;

function parseComment(
  comment: string | null,
): { takenAt: string; tiergateVersion: string | null; sourceOid: string | null; settings: string | null; rowHash: string | null; planState: (PlanState & { id: string }) | null } | null {
  if (!comment?.startsWith(SNAPSHOT_COMPLETE)) return null;
  try {
    const meta = JSON.parse(comment.slice(SNAPSHOT_COMPLETE.length)) as { takenAt?: unknown; tiergateVersion?: unknown; sourceOid?: unknown; settings?: unknown; rowHash?: unknown; planState?: unknown };
    if (typeof meta.takenAt !== 'string' || Number.isNaN(Date.parse(meta.takenAt))) return null;
    const text = (v: unknown) => (typeof v === 'string' ? v : null);
    const ps = typeof meta.planState === 'object' && meta.planState !== null ? (meta.planState as Record<string, unknown>) : null;
    const planState =
      ps && typeof ps.id === 'string' && typeof ps.ledger === 'string' && (ps.subject === null || typeof ps.subject === 'string')
        ? { id: ps.id, subject: ps.subject as string | null, ledger: ps.ledger }
        : null;
    return { takenAt: meta.takenAt, tiergateVersion: text(meta.tiergateVersion), sourceOid: text(meta.sourceOid), settings: text(meta.settings), rowHash: text(meta.rowHash), planState };
  } catch {
    return null;
  }
}

/**
 * `tiergate_snap_<slug>_<idhash8>`: slug the source database's name
 * (lowercased, at most 20 characters), idhash8 the first 8 hex digits of
 * sha256 over the source's identity (cluster system identifier, else host
 * and port, and the database), so that two sources of one name never share
 * snapshots. With `_<yyyymmdd>t<hhmmss>` it stays within 63 bytes; the `t`
 * is lower case so that an unquoted `drop database` names it.
 */
export function snapshotPrefix(sourceDatabase: string, identityKey: string): string {
  const slug = sourceDatabase.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 20) || 'db';
  const idhash8 = createHash('sha256').update(`${identityKey}\0${sourceDatabase}`).digest('hex').slice(0, 8);
  return `tiergate_snap_${slug}_${idhash8}`;
}

/** `20261204t170000` (UTC) */
function stamp(at: Date): string {
  return at.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', 't');
}


/** tiergate's advisory-lock namespace of snapshots (first key of the two-int form): 'tg' + 2 (the rollout lock is 'tg' + 1). */
const SNAPSHOT_LOCK_CLASS = 0x7467_0002;

/**
 * Runs `fn` holding the session advisory lock of a snapshot prefix on the
 * scratch server (waiting for it, and saying so, when another rehearsal of
 * the source holds it). Released when its connection closes, on every path
 * — by the server too if the process dies.
 */
async function withSnapshotLock<T>(scratchUrl: string, prefix: string, progress: (m: string) => void, signal: AbortSignal | undefined, fn: (db: Db) => Promise<T>): Promise<T> {
  const key = createHash('sha256').update(prefix).digest().readUInt32BE(0) & 0x7fff_ffff;
  return withServer(scratchUrl, 'the scratch server', async (db) => {
    const got = await db.query<{ ok: boolean }>('select pg_try_advisory_lock($1, $2) as ok', [SNAPSHOT_LOCK_CLASS, key]);
    if (!got.rows[0]?.ok) {
      const holder = await db
        .query<{ pid: number }>(
          `select pid from pg_locks where locktype = 'advisory' and granted and classid = $1::bigint::oid and objid = $2::bigint::oid and objsubid = 2
              and database = (select oid from pg_database where datname = current_database())`,
          [SNAPSHOT_LOCK_CLASS, key],
        )
        .then((r) => (r.rows[0] ? `backend pid ${r.rows[0].pid}` : 'holder not visible to this user'))
        .catch(() => 'holder unknown');
      progress(`snapshot: waiting for another rehearsal of this source (${holder}) to finish with ${prefix}_…`);
      const t = performance.now();
      // asked again every 200 ms rather than waited for in one statement: a Ctrl-C ends the wait
      while (!(await db.query<{ ok: boolean }>('select pg_try_advisory_lock($1, $2) as ok', [SNAPSHOT_LOCK_CLASS, key])).rows[0]?.ok) {
        stopIfInterrupted({ signal });
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      progress(`snapshot: waited ${((performance.now() - t) / 1000).toFixed(1)} s for the other rehearsal`);
    }
    try {
      return await fn(db);
    } finally {
      await db.query('select pg_advisory_unlock($1, $2)', [SNAPSHOT_LOCK_CLASS, key]).catch(() => undefined);
    }
  });
}

/**
 * How the clones are copied: `STRATEGY FILE_COPY` on PostgreSQL 15 and later
 * when the snapshot is larger than 50 MB or the server does not fsync, the
 * server's default (WAL_LOG from 15 on) otherwise. FILE_COPY checkpoints
 * twice and copies the files; WAL_LOG writes every page through the WAL.
 * Measured on 2 cores, fsync on: 1 MB-class, file_copy 1.07 s vs wal_log
 * 0.87 s; 65 MB, 4.8 vs 7.2 s (two at once 3.3 vs 5.9 s); 566 MB, 25 vs 27 s.
 * With fsync off (a scratch server kept for speed; the checkpoints write
 * only to the operating system's cache): 43 MB, 63 vs 132 ms.
 */
async function copyStrategy(db: Db, snapshot: string): Promise<{ clause: string; why: string }> {
  return chooseStrategy((await db.query<StrategyFacts>(STRATEGY_FACTS, [snapshot])).rows[0]);
}

/** What `chooseStrategy` decides by, read in one statement (`$1` the snapshot): a ready copy's own connection reads it too. */
const STRATEGY_FACTS = "select pg_database_size($1::name)::int8 as n, current_setting('fsync') as fsync, current_setting('server_version_num')::int as v";

interface StrategyFacts {
  n: string;
  fsync: string;
  v: number;
}

function chooseStrategy(facts: StrategyFacts | undefined): { clause: string; why: string } {
  const bytes = Number(facts?.n ?? 0);
  const size = `${(bytes / 1e6).toFixed(0)} MB`;
  if (Number(facts?.v ?? 0) < 150000) return { clause: '', why: `file copy: ${size}` };
  if (bytes > 50e6) return { clause: ' strategy file_copy', why: `strategy file_copy: ${size}` };
  if (facts?.fsync === 'off') return { clause: ' strategy file_copy', why: `strategy file_copy: ${size}, fsync off` };
  return { clause: '', why: `strategy wal_log: ${size}` };
}

interface ScratchFacts {
  version: number;
  lockSlots: number;
  /** clone databases whose rehearsal was killed before it could drop them (`cloneLeftBehind`) */
  leftBehind: string[];
}

/**
 * The scratch server's version, its lock table size (max_locks_per_transaction ×
 * (max_connections + max_prepared_transactions)) and the clones killed runs
 * left on it, in one visit.
 */
export async function readScratch(scratchUrl: string): Promise<ScratchFacts> {
  return withServer(scratchUrl, 'the scratch server', async (db) => {
    const r = await db.query<{ n: string }>(
      `select current_setting('max_locks_per_transaction')::int8 * (current_setting('max_connections')::int8 + current_setting('max_prepared_transactions')::int8) as n`,
    );
    // this user's clone databases no session is connected to, with the mark of the run that made them (an autovacuum
    // worker is no session of a run: a clone its maker left is vacuumed like any database, and DROP … WITH (FORCE) ends it)
    const clones = await db.query<{ name: string; comment: string | null }>(
      `select d.datname::text as name, shobj_description(d.oid, 'pg_database') as comment
         from pg_database d
        where left(d.datname, length($1)) = $1
          and pg_has_role(current_user, d.datdba, 'MEMBER')
          and not exists (select 1 from pg_stat_activity a where a.datid = d.oid and a.backend_type is distinct from 'autovacuum worker')
        order by d.datname`,
      [CLONE_PREFIX],
    );
    const leftBehind = clones.rows.filter((c) => cloneLeftBehind(c.comment)).map((c) => c.name);
    return { version: db.capabilities.serverVersion, lockSlots: Number(r.rows[0]?.n ?? 0), leftBehind };
  });
}

/** What a clone database's name starts with (`cloneName`); a snapshot's and a ready copy's do not. */
const CLONE_PREFIX = 'tiergate_clone_';

/**
 * What the comment of a clone database starts with, its maker's mark
 * (`ownerMark`, JSON) after it: a later rehearsal on the same machine drops
 * a clone whose maker is gone (killed before it could). A clone kept with
 * `--keep` says so instead and is never dropped; a clone without either
 * (an older tiergate's, another tool's) is left.
 */
const CLONE_COMMENT = 'tiergate clone made by ';
const KEPT_COMMENT = 'tiergate clone kept (rehearse --keep), made by ';

/** Whether a clone database with this comment was left by a run that is gone. */
export function cloneLeftBehind(comment: string | null, alive?: (pid: number, since: Date) => boolean): boolean {
  if (!comment?.startsWith(CLONE_COMMENT)) return false;
  try {
    return ownerGone(JSON.parse(comment.slice(CLONE_COMMENT.length)), alive);
  } catch {
    return false;
  }
}

/** `COMMENT ON DATABASE name IS comment` (a literal, not a parameter: the server quotes it, format %L). */
async function commentOn(db: Db, name: string, comment: string): Promise<void> {
  const sql = await db.query<{ sql: string }>(`select format('comment on database %I is %L', $1::text, $2::text) as sql`, [name, comment]);
  await db.exec(sql.rows[0]!.sql);
}

/** The clones killed rehearsals left on the scratch server (`readScratch`), dropped; a failure only says so. */
async function dropLeftBehind(scratchUrl: string, scratch: ScratchFacts, progress: (message: string) => void): Promise<void> {
  if (!scratch.leftBehind.length) return;
  const failed: string[] = [];
  await Promise.all(
    scratch.leftBehind.map((name) => dropDatabase(scratchUrl, name, scratch.version).catch((e: unknown) => void failed.push(`${name} (${(e as Error).message})`))),
  );
  const dropped = scratch.leftBehind.length - failed.length;
  const n = (k: number) => `${k} clone database${k === 1 ? '' : 's'}`;
  if (dropped) progress(`dropped ${n(dropped)} that killed rehearsals left on the scratch server`);
  if (failed.length) progress(`could not drop ${n(failed.length)} that killed rehearsals left on the scratch server: ${failed.join(', ')}`);
}

function requireServerUrl(url: string, flag: string): void {
  const t = parseTarget(url);
  if (t.kind !== 'postgres') throw new UsageError(`${flag} must be a PostgreSQL server URL (postgres://user@host:port/database), not '${redactUrl(url)}'`);
}

interface SourceFacts {
  database: string;
  version: number;
  /** what tells this source's server apart: its system identifier, else host and port from the URL */
  identityKey: string;
  /** the database's oid on its server: a database dropped and created again under its name is another one */
  databaseOid: string;
  /** the plan state it reads now (read only when a snapshot may be reused) */
  planState?: PlanState;
  /** its session's search_path (its role's or database's setting, which a dump does not carry): the clones get it */
  searchPath: string | null;
  /** its database's encoding and locale, which the first copy is created with (a dump carries neither) */
  locale: SourceLocale;
  /** a hot standby (a replica): how far what it has replayed is behind; null on a primary */
  standby: { replayedAt: string | null; agoS: number | null; caughtUp: boolean | null } | null;
}

/**
 * What a rehearsal of a hot standby copies: the primary as of the last
 * transaction the standby replayed, not as of now — an approval given on
 * the primary since is not in the copy (a NO-GO), a payload changed since
 * is (apply then refuses the evidence: the gate's subject changed).
 */
export function standbyNote(s: NonNullable<SourceFacts['standby']>): string {
  const behind = s.caughtUp === false ? '; it has WAL received and not yet replayed' : '';
  if (!s.replayedAt) return `the source is a hot standby that has replayed no transaction since it started${behind}: the copy shows the primary as of its base backup or its last restart (approvals given on the primary since are not in it)`;
  const ago = s.agoS !== null ? ` (${describeAge(Math.max(0, s.agoS) * 1000)} ago)` : '';
  return `the source is a hot standby: the newest transaction it has replayed committed on the primary at ${s.replayedAt}${ago}${behind}; the copy shows the primary as of then (approvals given on the primary since are not in it)`;
}

interface SourceLocale {
  encoding: string | null;
  collate: string | null;
  ctype: string | null;
  /** PostgreSQL 15 and later: 'i' for ICU, with its locale */
  provider: string | null;
  icuLocale: string | null;
}

/** Name, server version and identity of the source, read-only (a snapshot is keyed by the identity; readIdentity copes with a server that refuses pg_control_system()). */
async function readSource(url: string, reader?: PlanStateReader): Promise<SourceFacts> {
  return withServer(url, 'the source', async (db) => {
    const id = await readIdentity(db);
    const oid = await db.query<{ oid: string; path: string | null; enc: string; d: Record<string, unknown>; standby: boolean; replayed: Date | string | null; ago: number | null; caught: boolean | null }>(
      `select d.oid::text as oid, current_setting('search_path') as path, pg_encoding_to_char(d.encoding) as enc, to_jsonb(d) as d,
              pg_is_in_recovery() as standby,
              case when pg_is_in_recovery() then pg_last_xact_replay_timestamp() end as replayed,
              case when pg_is_in_recovery() then round(extract(epoch from now() - pg_last_xact_replay_timestamp()))::int end as ago,
              case when pg_is_in_recovery() then pg_last_wal_receive_lsn() is not distinct from pg_last_wal_replay_lsn() end as caught
         from pg_database d where d.datname = current_database()`,
    );
    const d = oid.rows[0]?.d ?? {};
    const text = (v: unknown) => (typeof v === 'string' && v !== '' ? v : null);
    const facts: SourceFacts = {
      database: id.database || 'postgres',
      version: db.capabilities.serverVersion,
      identityKey: id.systemIdentifier ?? hostPort(url),
      databaseOid: oid.rows[0]?.oid ?? '',
      searchPath: oid.rows[0]?.path ?? null,
      locale: { encoding: oid.rows[0]?.enc ?? null, collate: text(d.datcollate), ctype: text(d.datctype), provider: text(d.datlocprovider), icuLocale: text(d.daticulocale) ?? text(d.datlocale) },
      standby: oid.rows[0]?.standby
        ? {
            replayedAt: oid.rows[0].replayed ? new Date(oid.rows[0].replayed).toISOString() : null,
            agoS: oid.rows[0].ago ?? null,
            caughtUp: oid.rows[0].caught ?? null,
          }
        : null,
    };
    if (reader) facts.planState = await reader.read(db);
    return facts;
  });
}

/** `host:port` of a server URL (the socket folder for libpq's empty-host form). */
function hostPort(url: string): string {
  const u = parsePostgresUrl(url);
  if (!u) return url;
  const host = u.hostname === NO_HOST || !u.hostname ? (u.searchParams.get('host') ?? '') : u.hostname;
  return `${host}:${u.port || '5432'}`;
}

/** Connects, naming which server could not be reached (the adapter's message already redacts the URL). */
async function withServer<T>(url: string, what: string, fn: (db: Db) => Promise<T>): Promise<T> {
  let db: Db;
  try {
    db = await openDb(url, { applicationName: 'tiergate rehearse (clone)' });
  } catch (e) {
    if (e instanceof ConnectionError) throw new ConnectionError(`${what}: ${e.message}`, e.sqlstate);
    throw e;
  }
  try {
    return await fn(db);
  } catch (e) {
    if (!ranOutOfUserTimeout(e)) throw e;
    const advice =
      what === 'the source'
        ? 'a statement of the rehearsal ran out of the statement_timeout the source sets for its user: raise it for the user --source names (ALTER ROLE … SET statement_timeout = …)'
        : scratchTimeoutAdvice('a statement');
    throw new TargetError(`${what} (${redactUrl(url)}): ${(e as Error).message}; ${advice}`);
  } finally {
    await db.close();
  }
}

/** What to do when the scratch user's statement_timeout ended `what` (tiergate sets none on the scratch server). */
function scratchTimeoutAdvice(what: 'the copy' | 'a statement'): string {
  return `${what} ran out of the statement_timeout the scratch server sets for its user: the scratch server only holds tiergate's copies, turn it off there (ALTER ROLE … SET statement_timeout = 0)`;
}

/** A statement the server's statement_timeout for the user (or database) ended: tiergate sets none on these connections. */
function ranOutOfUserTimeout(e: unknown): boolean {
  return e instanceof DbError && e.sqlstate === '57014' && /statement timeout/.test(e.message);
}

/** `tiergate_clone_<source>_<random>`: a valid, unquoted-safe name within 63 bytes. */
function cloneName(sourceDatabase: string): string {
  const slug = sourceDatabase.toLowerCase().replace(/[^a-z0-9_]+/g, '_').slice(0, 32) || 'db';
  return `${CLONE_PREFIX}${slug}_${randomBytes(3).toString('hex')}`;
}

function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function databaseUrl(serverUrl: string, database: string): string {
  return editPostgresUrl(serverUrl, (u) => {
    u.pathname = '/' + encodeURIComponent(database);
  });
}

/**
 * Creates an empty database (from template0) or a copy of `template`,
 * registered for cleanup before it is created (its removal is `drop database
 * if exists`): a process killed at any moment leaves no clone its owner was
 * not told of.
 */
async function createDatabase(
  scratchUrl: string,
  name: string,
  scratchVersion: number,
  template: string | null,
  register: (c: ScopedClone) => void | Promise<void>,
  searchPath: string | null,
  locale?: { source: SourceLocale; progress: (m: string) => void },
): Promise<ScopedClone> {
  const clone = await registerDatabase(scratchUrl, name, scratchVersion, register);
  await createOn(scratchUrl, name, template ?? 'template0', '', { searchPath, locale: template === null ? locale : undefined });
  return clone;
}

/**
 * The source database's encoding and locale as CREATE DATABASE … TEMPLATE
 * template0 takes them (a dump carries neither: a SQL_ASCII or ICU source
 * restored into the scratch server's UTF8 / C.utf8 default sorts and
 * validates text otherwise). ICU only on a scratch server of PostgreSQL 15
 * and later.
 */
function localeClause(l: SourceLocale, scratchVersion: number): string {
  const lit = (v: string) => `'${v.replace(/'/g, "''")}'`;
  const parts: string[] = [];
  if (l.encoding) parts.push(`encoding ${lit(l.encoding)}`);
  if (l.collate) parts.push(`lc_collate ${lit(l.collate)}`);
  if (l.ctype) parts.push(`lc_ctype ${lit(l.ctype)}`);
  if (l.provider === 'i' && l.icuLocale && scratchVersion >= 150000) parts.push(`locale_provider icu icu_locale ${lit(l.icuLocale)}`);
  return parts.length ? ` ${parts.join(' ')}` : '';
}

/**
 * The source session's search_path as the clone's sessions are to have it
 * (ALTER DATABASE … SET: a role's setting is not dumped, and Directus in a
 * schema other than public needs it): only a list of identifiers, and only
 * when it is not the server's default. Set on the snapshot too, so that its
 * baseline fingerprint prints names as the clones do.
 */
async function setSearchPath(db: Db, database: string, searchPath: string | null): Promise<void> {
  if (!searchPath || searchPath === DEFAULT_SEARCH_PATH || !SEARCH_PATH_LIST.test(searchPath)) return;
  await db.exec(`alter database ${ident(database)} set search_path to ${searchPath}`);
}

const DEFAULT_SEARCH_PATH = '"$user", public';
/** identifiers, plain or quoted, separated by commas (what current_setting('search_path') prints) */
const SEARCH_PATH_LIST = /^\s*(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)(?:\s*,\s*(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*))*\s*$/;

/** The handle of a database about to be created, handed to `register` first (its removal is `drop database if exists`). */
async function registerDatabase(scratchUrl: string, name: string, scratchVersion: number, register: (c: ScopedClone) => void | Promise<void>): Promise<ScopedClone> {
  const url = databaseUrl(scratchUrl, name);
  const clone = new PostgresClone(url, scratchUrl, name, (sent) => dropDatabase(scratchUrl, name, scratchVersion, sent));
  await register(clone);
  return clone;
}

/** A clone database on the scratch server: one kept (`--keep`) says so in its comment, and no later rehearsal drops it. */
class PostgresClone extends ScopedClone {
  constructor(
    url: string,
    private readonly scratchUrl: string,
    private readonly name: string,
    remove: (sent: () => void) => Promise<void>,
  ) {
    super(url, redactUrl(url), 'postgres', remove);
  }

  override async keep(): Promise<void> {
    await super.keep();
    try {
      await withServer(this.scratchUrl, 'the scratch server', (db) => commentOn(db, this.name, KEPT_COMMENT + JSON.stringify(ownerMark())));
    } catch (e) {
      throw new TargetError(
        `kept the clone ${this.displayUrl}, but could not mark it kept (${(e as Error).message}): a later rehearsal on this machine would drop it once this run is over; comment on database ${this.name} is 'kept' to keep it`,
      );
    }
  }
}

/**
 * `CREATE DATABASE name TEMPLATE template` on a connection of its own; `clause` adds e.g. ` strategy file_copy`.
 * A clone is marked with its maker (`CLONE_COMMENT`); a clone or snapshot gets the source's search_path (`searchPathSql`).
 */
async function createOn(
  scratchUrl: string,
  name: string,
  template: string,
  clause: string,
  options: { what?: 'clone' | 'snapshot'; searchPath?: string | null; locale?: { source: SourceLocale; progress: (m: string) => void } } = {},
): Promise<void> {
  const what = options.what ?? 'clone';
  await withServer(scratchUrl, 'the scratch server', async (db) => {
    try {
      const locale = options.locale ? localeClause(options.locale.source, db.capabilities.serverVersion) : '';
      try {
        await db.exec(`create database ${ident(name)} template ${ident(template)}${clause}${locale}`);
      } catch (e) {
        // a locale the scratch server's machine does not have: its default, said
        if (!locale || !(e instanceof DbError) || !['22023', '42704', '0A000', '42809'].includes(e.sqlstate ?? '')) throw e;
        options.locale!.progress(`the scratch server cannot create a database with the source's encoding and locale (${e.message}): the ${what} uses its own — text may sort and compare otherwise than on the source`);
        await db.exec(`create database ${ident(name)} template ${ident(template)}${clause}`);
      }
    } catch (e) {
      const err = e as Error & { sqlstate?: string | null };
      const advice =
        err.sqlstate === '53100'
          ? "the scratch server's disk is full: a clone takes about as much room as the source's database, and a rehearsal makes two besides its snapshot — free room there, or point --scratch at a server with more"
          : err.sqlstate === '42501'
            ? 'the --scratch user needs CREATEDB'
            : ranOutOfUserTimeout(err)
              ? scratchTimeoutAdvice('the copy')
            : 'the --scratch user needs CREATEDB, and the scratch server room for a copy of the source';
      throw new TargetError(`cannot create the ${what} database '${name}' on ${redactUrl(scratchUrl)}: ${err.message}; ${advice}`);
    }
    if (what === 'clone') await commentOn(db, name, CLONE_COMMENT + JSON.stringify(ownerMark()));
    await setSearchPath(db, name, options.searchPath ?? null);
  });
}

/** `clones` (registered, not yet created) copied from `template` all at once, each on a connection of its own; every copy settles before a failure is thrown. */
async function copyAll(scratchUrl: string, clones: ScopedClone[], template: string, clause: string, searchPath: string | null): Promise<void> {
  const copied = await Promise.allSettled(clones.map((c) => createOn(scratchUrl, nameOf(c), template, clause, { searchPath })));
  const failure = copied.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) throw failure.reason;
}

/** The database name of a clone on the scratch server. */
function nameOf(clone: ScopedClone): string {
  return decodeURIComponent(parsePostgresUrl(clone.url)!.pathname.slice(1));
}

/** `sent`: called once the DROP DATABASE is on its way to the server (see ScopedClone). */
async function dropDatabase(scratchUrl: string, name: string, scratchVersion: number, sent: () => void = () => undefined): Promise<void> {
  await withServer(scratchUrl, 'the scratch server', async (db) => {
    if (scratchVersion >= 130000) {
      const dropping = db.exec(`drop database if exists ${ident(name)} with (force)`);
      sent();
      await dropping;
      return;
    }
    await db.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [name]);
    await db.exec(`drop database if exists ${ident(name)}`);
  });
}
