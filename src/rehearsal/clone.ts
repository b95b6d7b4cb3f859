import { tmpdir } from 'node:os';
import { openDb } from '../db/open-db.js';
import type { Db, Queryable } from '../db/port.js';
import { InterruptedError, TargetError, UsageError } from '../errors.js';
import type { CloneSnapshot } from '../evidence/types.js';
import { sweepLeftBehind } from '../exit-cleanup.js';
import { installChangeLog } from '../probe/change-log.js';
import { tiergateVersion } from '../version.js';
import type { PlanStateReader } from './plan-state.js';

/**
 * A database tiergate made for a rehearsal, carrying tiergate's clone mark.
 * `url` can hold the password of the scratch server: print `displayUrl`.
 */
export interface Clone {
  url: string;
  displayUrl: string;
  kind: 'pglite' | 'postgres';
  /** how long making this clone took; for the first, the whole copy of the source */
  copyMs: number;
  /** when the copy of the source this clone holds was taken (ISO 8601) */
  snapshotAt: string;
  /** the kept snapshot this clone is a copy of (a PostgreSQL source that keeps one); absent otherwise */
  snapshot?: CloneSnapshot;
  /**
   * A database that holds what this clone was copied from, untouched: a new
   * copy of the kept snapshot (released: dropped), or a direct rehearsal's
   * restored source (released: nothing; dropped with the clones). Absent
   * where the baseline hashed every table (src/rehearsal/rehearse.ts
   * `comparable`).
   */
  untouchedCopy?: () => Promise<{ clone: Clone; release: () => Promise<void> }>;
  /** a new connection to the clone (a PGlite clone can be open once at a time) */
  open(): Promise<Db>;
  /** closes what `open` opened and removes the clone (idempotent: every call awaits the one removal) */
  drop(): Promise<void>;
}

/** What to clone: the embedded sample, a PostgreSQL server (cloned onto a scratch server), or a plain SQL dump. */
export type CloneSource =
  | { kind: 'pglite-sample'; scale: number; variant?: string }
  | { kind: 'pglite'; url: string }
  | { kind: 'postgres'; url: string; scratchUrl: string; /** absent: no snapshot is kept (the clones are made as before snapshots existed) */ snapshot?: SnapshotOptions }
  | { kind: 'dump'; file: string; /** the database the dump was taken from (default `directus`) */ database?: string };

/**
 * Whether a PostgreSQL source's restored, marked copy is kept on the scratch
 * server as a snapshot (`tiergate_snap_…`) that later rehearsals copy instead
 * of dumping the source again (src/rehearsal/clone-postgres.ts).
 */
export interface SnapshotOptions {
  /** keep the snapshot (the clones are copies of it); false: restore into the first clone and keep nothing, as a fleet does */
  keep: boolean;
  /** reuse the newest complete snapshot of this source taken at most this long ago (`--reuse-snapshot AGE`); absent: dump afresh */
  reuseMs?: number;
  /** dump afresh even when a snapshot would qualify (`--fresh`) */
  fresh?: boolean;
  /**
   * How many of the clones asked for are needed, once the snapshot they are
   * copied from is chosen (at least one): a rehearsal that has the
   * reference of its rollback proof for that snapshot needs one
   * (src/rehearsal/kept-reference.ts). Absent: all of them.
   * `scratchSettings`: the scratch server's settings its clones' sessions
   * get from its configuration and its user (`scratchSettings` in
   * clone-postgres.ts), which a stored reference was fingerprinted under.
   */
  clonesFor?: (snapshot: CloneSnapshot, scratchSettings: string) => number;
  /**
   * What the rehearsal's evidence is bound to in the source (the gate's
   * subject, the plan's ledger): recorded in a snapshot when it is made, and
   * a snapshot is reused only while the source reads the same
   * (src/rehearsal/plan-state.ts). Absent: not compared.
   */
  planState?: PlanStateReader;
}

/**
 * `tiergate_spare_<slug>_<idhash8>_<yyyymmdd>t<hhmmss>`: the ready copy of
 * the kept snapshot of that name and time (within 63 bytes, as the
 * snapshot's name is), one at a time (src/rehearsal/clone-postgres.ts).
 */
export function spareName(snapshot: string): string {
  return snapshot.replace(/^tiergate_snap_/, 'tiergate_spare_');
}

export interface WithClonesOptions {
  /** keep the first clone (the one the scenario runs on) instead of dropping it; the others are always dropped */
  keep?: boolean;
  onProgress?: (message: string) => void;
  /** told of each clone as soon as it exists, before it is used */
  onClone?: (clone: Pick<Clone, 'url' | 'kind'>) => void | Promise<void>;
  /**
   * After a run that did not throw: the clones are dropped while the caller
   * goes on (writing its report), and `cleanup` settles when they are, with
   * the error that names a clone left behind. `sent` settles once every
   * removal is under way (a PostgreSQL clone's DROP DATABASE sent to the
   * server): a caller about to keep this thread busy (rendering its report)
   * waits for it, so that the server drops meanwhile instead of after.
   * Without it, withClones returns once they are dropped.
   */
  onCleanup?: (cleanup: Promise<void>, sent: Promise<void>) => void;
  /** Ctrl-C while the clones are made: stopped, what was being made removed, an InterruptedError */
  signal?: AbortSignal;
}

/** A clone under construction or in use; the providers register it as soon as something exists to clean up. */
export class ScopedClone implements Clone {
  copyMs = 0;
  snapshotAt = new Date().toISOString();
  snapshot?: CloneSnapshot;
  untouchedCopy?: Clone['untouchedCopy'];
  /** not one of the clones the run gets (a direct rehearsal's restored source, kept untouched): dropped with them */
  auxiliary = false;
  private readonly opened = new Set<Db>();
  private dropping: Promise<void> | null = null;
  /** settles `underway` (declared first: the promise's executor assigns it) */
  private markSent!: () => void;
  /** settles once the removal is under way (see `dropSent`) */
  private readonly underway = new Promise<void>((resolve) => {
    this.markSent = resolve;
  });

  constructor(
    readonly url: string,
    readonly displayUrl: string,
    readonly kind: 'pglite' | 'postgres',
    /** removes the clone; calls `sent` once nothing but the server's own work is left (a DROP DATABASE sent) */
    private readonly remove: (sent: () => void) => Promise<void>,
  ) {}

  async open(): Promise<Db> {
    if (this.dropping) throw new TargetError(`the clone ${this.displayUrl} was already dropped`);
    const db = await openDb(this.url, { applicationName: 'tiergate rehearse (clone)' });
    this.opened.add(db);
    return db;
  }

  /** Kept after the run (`--keep`): its connections closed, the clone left as it is. */
  async keep(): Promise<void> {
    await this.release();
  }

  /** Closes every connection `open` made (closing twice is harmless in both adapters). */
  async release(): Promise<void> {
    for (const db of this.opened) await db.close().catch(() => undefined);
    this.opened.clear();
  }

  /**
   * One removal, however many ask for it: a clone dropped as soon as it is
   * no longer needed (the rehearsal's second clone) and the clean-up of
   * withClones await the same, and its failure reaches both.
   */
  drop(): Promise<void> {
    this.dropping ??= (async () => {
      try {
        await this.release();
        await this.remove(this.markSent);
      } finally {
        this.markSent();
      }
    })();
    return this.dropping;
  }

  /** Settles once the clone's removal is under way (its DROP DATABASE sent) or over, whether it succeeds or not; never before `drop` is called. */
  dropSent(): Promise<void> {
    return this.underway;
  }
}

/**
 * Makes the clones of a source; `register` is called as soon as a clone
 * exists, so a failure halfway cleans up. `afterRun` is handed what the
 * provider starts once the run is over (a PostgreSQL source's ready copy for
 * the next rehearsal): started when the clones are about to be removed,
 * never awaited, never failing the run.
 */
export type CloneProvider = (
  count: number,
  progress: (message: string) => void,
  register: (clone: ScopedClone) => void | Promise<void>,
  afterRun: (start: () => void) => void,
  /** Ctrl-C: a provider stops what it runs (pg_dump, pg_restore, a wait) and throws an InterruptedError */
  signal?: AbortSignal,
) => Promise<void>;

/**
 * Makes `count` independent, marked clones of `source`, runs `fn` with them,
 * and always removes them afterwards — on success, on error, when making
 * them fails halfway — except the first one when `keep` is set (and `fn` ran).
 * The source is only read (a PostgreSQL source through `pg_dump`). A
 * snapshot a PostgreSQL source keeps on the scratch server
 * (`source.snapshot.keep`) is not a clone: it is never registered here, so
 * it outlives the run, for the next rehearsal to copy.
 *
 * @example
 *   await withClones({ kind: 'pglite-sample', scale: 1 }, 2, async ([main, spare]) => {
 *     const db = await main.open(); try { … } finally { await db.close(); }
 *   });
 */
export async function withClones<T>(source: CloneSource, count: number, fn: (clones: Clone[]) => Promise<T>, options: WithClonesOptions = {}): Promise<T> {
  if (!Number.isInteger(count) || count < 1 || count > 20) throw new UsageError(`withClones: count must be a whole number from 1 to 20 (got ${count})`);
  const progress = options.onProgress ?? (() => undefined);
  sweepOnce(progress);
  const provider = await providerFor(source);
  const clones: ScopedClone[] = [];
  const afterRun: (() => void)[] = [];
  let ran = false;
  let failed = false;
  let interrupted = false;
  try {
    // a provider that awaits `register` (PostgreSQL) creates the clone only once its owner has been told of it
    await provider(
      count,
      progress,
      async (c) => {
        clones.push(c);
        if (options.onClone) await Promise.resolve(options.onClone(c)).catch(() => undefined);
      },
      (start) => afterRun.push(start),
      options.signal,
    );
    if (options.signal?.aborted) throw new InterruptedError('interrupted (Ctrl-C)');
    ran = true;
    return await fn(clones.filter((c) => !c.auxiliary));
  } catch (e) {
    failed = true;
    interrupted = e instanceof InterruptedError;
    // stopped while the clones were made: nothing was rehearsed, and what was being made is removed (below, and a snapshot by its provider)
    if (interrupted && !ran) {
      throw new InterruptedError(
        `rehearsal interrupted (Ctrl-C) while its clones were made: nothing was rehearsed; the clones and any incomplete snapshot were dropped (a kept snapshot is always a complete one); the source was only read`,
      );
    }
    throw e;
  } finally {
    const kept = ran && options.keep ? clones.find((c) => !c.auxiliary) : undefined;
    const dropped = clones.filter((c) => c !== kept);
    // (not after Ctrl-C: nothing is started that the user stopped)
    for (const start of interrupted ? [] : afterRun) {
      try {
        start();
      } catch {
        /* what comes after the run never fails it */
      }
    }
    const cleanup = dropClones(kept, dropped, failed, progress);
    if (options.onCleanup && !failed) {
      cleanup.catch(() => undefined);
      options.onCleanup(cleanup, Promise.all(dropped.map((c) => c.dropSent())).then(() => undefined));
    } else await cleanup;
  }
}

let swept = false;

/**
 * Once a process: the clone and dump folders of runs that were killed
 * before they could remove them (src/exit-cleanup.ts) — gigabytes in memory
 * at scale, and dump files holding a source's data.
 */
function sweepOnce(progress: (message: string) => void): void {
  if (swept) return;
  swept = true;
  const removed = sweepLeftBehind([process.env.TIERGATE_CLONE_DIR, tmpdir(), '/dev/shm'].filter((d): d is string => Boolean(d)));
  if (removed) progress(`removed ${removed} clone or dump folder${removed === 1 ? '' : 's'} that killed runs left behind`);
}

/** Drops the clones `dropped`, all at once (a clone of 6,500 tables takes ~0.5 s to drop), and releases `kept`. */
async function dropClones(kept: ScopedClone | undefined, dropped: ScopedClone[], failed: boolean, progress: (message: string) => void): Promise<void> {
  const leftBehind: string[] = [];
  await Promise.all([
    kept?.keep().then(() => progress(`kept the clone ${kept.displayUrl}`)),
    ...dropped.map(async (clone) => {
      try {
        await clone.drop();
      } catch (e) {
        leftBehind.push(`${clone.displayUrl} (${(e as Error).message})`);
      }
    }),
  ]);
  if (leftBehind.length) {
    const message = `could not remove the clone${leftBehind.length > 1 ? 's' : ''} ${leftBehind.join(', ')}: remove ${leftBehind.length > 1 ? 'them' : 'it'} by hand`;
    // never hide the error that made us clean up; without one, a clone left behind is the error
    if (failed) progress(message);
    else throw new TargetError(message);
  }
}

async function providerFor(source: CloneSource): Promise<CloneProvider> {
  switch (source.kind) {
    case 'pglite-sample': {
      const { sampleProvider } = await import('./clone-pglite.js');
      return sampleProvider(source.scale, source.variant);
    }
    case 'pglite': {
      const { pgliteDirProvider } = await import('./clone-pglite.js');
      return pgliteDirProvider(source.url);
    }
    case 'dump': {
      const { dumpProvider } = await import('./clone-pglite.js');
      return dumpProvider(source.file, source.database ?? 'directus');
    }
    case 'postgres': {
      const { postgresProvider } = await import('./clone-postgres.js');
      return postgresProvider(source.url, source.scratchUrl, source.snapshot);
    }
    default:
      throw new UsageError(`unknown clone source '${(source as { kind: string }).kind}'`);
  }
}

/**
 * Marks a database as a clone tiergate made: the only kind of database the
 * rehearsal opens a gate on. One row in `tiergate.clone_mark`. Installs the
 * change log too (src/probe/change-log.ts: a statement trigger on every
 * table), so that the rehearsal's fingerprints hash again only what its
 * tiers wrote.
 */
export async function markClone(db: Queryable, sourceDatabase: string): Promise<void> {
  await db.exec(`
    create schema if not exists tiergate;
    create table if not exists tiergate.clone_mark (
      source_database text not null,
      created_at timestamptz not null default now(),
      tiergate_version text
    );
    delete from tiergate.clone_mark;`);
  await db.query('insert into tiergate.clone_mark (source_database, tiergate_version) values ($1, $2)', [sourceDatabase, tiergateVersion()]);
  await installChangeLog(db);
}

/** Does this database carry tiergate's clone mark, and of which source database? Read-only. */
export async function isMarkedClone(db: Queryable): Promise<{ marked: boolean; sourceDatabase: string | null }> {
  const t = await db.query<{ present: boolean }>(`select to_regclass('tiergate.clone_mark') is not null as present`);
  if (!t.rows[0]?.present) return { marked: false, sourceDatabase: null };
  const r = await db.query<{ s: string }>('select source_database as s from tiergate.clone_mark order by created_at desc limit 1');
  const row = r.rows[0];
  return row ? { marked: true, sourceDatabase: row.s } : { marked: false, sourceDatabase: null };
}
