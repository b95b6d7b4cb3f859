import { accessSync, constants, mkdtempSync, readdirSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyDir, copyDirs } from '../db/copy-dir.js';
import { acquireDirLock } from '../db/dir-lock.js';
import { parseTarget, withDb, writeDatabaseFile } from '../db/open-db.js';
import { closeWarm, keepWarm, preloadPglite } from '../db/pglite-adapter.js';
import type { Db } from '../db/port.js';
import { createPgliteDatabase } from '../db/pglite-create.js';
import { UsageError } from '../errors.js';
import { liveStatus } from '../live-status.js';
import { recordBaseline } from '../probe/fingerprint.js';
import { loadDump, checkDumpFile } from './clone-dump.js';
import { markClone, ScopedClone, type CloneProvider } from './clone.js';
import { buildSample, cachedSample } from './pglite-sample.js';
import { KEPT_MARK, ownedTempPrefix, removeAtAbruptExit } from '../exit-cleanup.js';

/**
 * Clones of the embedded sample Directus database (`fixtures/directus-sample/`):
 * copies, all at once, of the sample built in tiergate's cache (built there
 * first when it is not); a sample too large to cache is built in the first
 * clone, which the others copy.
 */
export function sampleProvider(scale: number, variant?: string): CloneProvider {
  if (!Number.isInteger(scale) || scale < 1) throw new UsageError(`the sample's scale must be a whole number from 1 (got ${scale})`);
  const database = 'directus';
  const what = `the sample Directus database (scale ${scale})`;
  return async (count, progress, register) => {
    const started = performance.now();
    // loaded while the clones are copied: the first one is opened as soon as it is
    preloadPglite();
    const snapshotAt = new Date().toISOString();
    const clones: DirClone[] = [];
    for (let i = 0; i < count; i++) clones.push(await newDirClone(register, snapshotAt, count * sampleBytes(scale)));
    const folders = clones.map((c) => c.dir).join(', ');
    let built = false;
    const sample = await cachedSample(scale, variant, database, (cacheDir) => {
      built = true;
      progress(`building ${what} in PGlite, once: tiergate's cache keeps it for the next runs (${cacheDir})`);
    });
    if (sample) {
      progress(`copying ${built ? 'it' : `${what} from tiergate's cache`} into the clone${count > 1 ? 's' : ''} (${folders})`);
      await copyClones(sample, clones, database, started, progress, 0, true);
      return;
    }
    const [first, ...rest] = clones as [DirClone, ...DirClone[]];
    progress(`building ${what} in PGlite (${first.dir})`);
    await buildSample(first.dir, database, scale, variant);
    writeDatabaseFile(first.dir, database);
    first.clone.copyMs = Math.round(performance.now() - started);
    progress(`clone 1 of ${count} ready in ${seconds(first.clone.copyMs)}`);
    await copyClones(first.dir, rest, database, started, progress, 1);
    await warmUp(first, database);
  };
}

/** Clones of a plain SQL dump, loaded into PGlite. */
export function dumpProvider(file: string, database: string): CloneProvider {
  checkDumpFile(file);
  const stat = statSync(file);
  // a database loaded from a plain dump takes a few times the file's size
  const provider = pgliteProvider(database, `the dump ${file}`, 4 * stat.size, (db, progress) => loadDump(db, file, progress));
  // the copy of the source is the dump: taken when the file was written
  const snapshotAt = stat.mtime.toISOString();
  return async (count, progress, register, afterRun) => provider(count, progress, (c) => register(Object.assign(c, { snapshotAt })), afterRun);
}

/**
 * Clones of a PGlite data directory (`--source pglite:DIR`): the directory is
 * copied while tiergate holds its lock (no other process writes it
 * meanwhile), never opened for writing; the copies are marked.
 */
export function pgliteDirProvider(url: string): CloneProvider {
  const target = parseTarget(url);
  if (target.kind !== 'pglite' || !target.dir) throw new UsageError(`--source ${url}: a PGlite source is a data directory (pglite:DIR)`);
  const source = target.dir;
  return pgliteProvider(target.database, `a copy of ${url}`, dirBytes(source), async () => undefined, async (into) => {
    const lock = acquireDirLock(source, { command: 'rehearse (copying it)' });
    try {
      await copyDir(source, into);
    } finally {
      lock.release();
    }
    // the copy holds the source's lock file and id: it is another database
    rmSync(join(into, '.tiergate.lock'), { force: true });
  });
}

/**
 * Builds the source once, in the first clone's PGlite data directory, marks
 * it, and makes the other clones by copying that directory (a file copy is
 * several times faster than PGlite's dumpDataDir / loadDataDir round trip,
 * and each clone is a directory a `pglite:` URL can open).
 */
function pgliteProvider(
  database: string,
  what: string,
  /** what one clone takes on disk, about */
  bytes: number,
  fill: (db: Db, progress: (m: string) => void) => Promise<void>,
  copyFrom?: (into: string) => Promise<void>,
): CloneProvider {
  return async (count, progress, register) => {
    const started = performance.now();
    const snapshotAt = new Date().toISOString();
    const clones: DirClone[] = [];
    for (let i = 0; i < count; i++) clones.push(await newDirClone(register, snapshotAt, count * bytes));
    const [first, ...rest] = clones as [DirClone, ...DirClone[]];
    progress(copyFrom ? `copying ${what} (${first.dir})` : `building ${what} in PGlite (${first.dir})`);
    if (copyFrom) {
      await copyFrom(first.dir);
      writeDatabaseFile(first.dir, database);
    } else await createPgliteDatabase(first.dir, database);
    await withDb(first.clone.url, async (db) => {
      await fill(db, progress);
      await markClone(db, database);
      await recordBaseline(db, { progress });
    });
    first.clone.copyMs = Math.round(performance.now() - started);
    progress(`clone 1 of ${count} ready in ${seconds(first.clone.copyMs)}`);
    await copyClones(first.dir, rest, database, started, progress, 1);
    await warmUp(first, database);
  };
}

interface DirClone {
  dir: string;
  clone: ScopedClone;
}

/**
 * A PGlite clone whose connection may be kept warm (src/db/pglite-adapter.ts:
 * opened once, lent to each `open`): releasing or dropping it closes that.
 */
class PgliteClone extends ScopedClone {
  constructor(readonly dir: string) {
    const url = `pglite://${dir}`;
    // a second Ctrl-C exits at once: the folder is removed then too (src/cli/common.ts)
    const forget = removeAtAbruptExit(dir);
    super(url, url, 'pglite', async () => {
      rmSync(dir, { recursive: true, force: true });
      forget();
    });
  }

  override async release(): Promise<void> {
    await super.release();
    await closeWarm(this.dir);
  }

  /** A kept folder says so: a later run's sweep of what killed runs left (src/exit-cleanup.ts) leaves it. */
  override async keep(): Promise<void> {
    await this.release();
    writeFileSync(join(this.dir, KEPT_MARK), 'kept by tiergate rehearse --keep: remove the folder when done with it\n');
  }
}

/**
 * The first clone is the one the scenario opens, more than once: its
 * connection is opened now and kept (~0.3 s a PGlite start), while the other
 * clones are still being copied when they are. The others are kept open in
 * worker threads (`worker`), started as soon as each is copied.
 */
async function warmUp(clone: DirClone, database: string, options: { worker?: boolean } = {}): Promise<void> {
  const target = parseTarget(clone.clone.url);
  await keepWarm(clone.dir, database, target.kind === 'pglite' ? target.instance : null, clone.clone.displayUrl, options);
}

/** A new, empty clone folder, registered at once (its removal is the clone's drop). */
async function newDirClone(register: (clone: ScopedClone) => void | Promise<void>, snapshotAt: string, bytes: number): Promise<DirClone> {
  const dir = mkdtempSync(join(cloneRoot(bytes), ownedTempPrefix('clone')));
  const clone = new PgliteClone(dir);
  // before register: a provider's register may set its own (a dump's is the file's time)
  clone.snapshotAt = snapshotAt;
  await register(clone);
  return { dir, clone };
}

const GIB = 1024 ** 3;

/**
 * Where PGlite clones are made: `TIERGATE_CLONE_DIR`, else the `TMPDIR` the
 * user set, else `/dev/shm` (memory) when it has room for the clones
 * (`bytes`, all of them) with 2 GiB to spare, else the system's temporary
 * folder. A clone is throwaway and PGlite creates and opens its files
 * through an emulated file system: on this machine's disk the sample's two
 * clones took 1.2 s to copy and every relation a tier creates paid for its
 * files; in /dev/shm the copy takes 0.13 s and a whole `npm start` ~1.5 s less.
 */
export function cloneRoot(bytes: number, env: NodeJS.ProcessEnv = process.env): string {
  if (env.TIERGATE_CLONE_DIR) return env.TIERGATE_CLONE_DIR;
  if (env.TMPDIR) return tmpdir();
  try {
    const shm = '/dev/shm';
    accessSync(shm, constants.W_OK);
    const fs = statfsSync(shm);
    if (fs.bavail * fs.bsize >= 2 * GIB + bytes) return shm;
  } catch {
    // no /dev/shm here (not Linux, or not writable): the temporary folder
  }
  return tmpdir();
}

/** The bytes of the files under `dir` (0 where it cannot be read: the copy then says what is wrong). */
function dirBytes(dir: string): number {
  try {
    return readdirSync(dir, { recursive: true, withFileTypes: true }).reduce((sum, e) => (e.isFile() ? sum + statSync(join(e.parentPath ?? e.path, e.name)).size : sum), 0);
  } catch {
    return 0;
  }
}

/** What a clone of the sample at `scale` takes on disk, with room to spare (52 MB at scale 1). */
const sampleBytes = (scale: number) => scale * 80 * 1024 ** 2;

/**
 * Copies `from` (a closed PGlite data directory) into the clones' folders,
 * all at once; each copy is a new database (its own id). `before` clones
 * are made already (the numbering). The first clone's copyMs runs from
 * `started` (the whole copy of the source), the others' from their copy's
 * start.
 */
async function copyClones(from: string, clones: DirClone[], database: string, started: number, progress: (m: string) => void, before = 0, warmFirst = false): Promise<void> {
  if (!clones.length) return;
  const count = before + clones.length;
  const copying = performance.now();
  let warming: Promise<void> | undefined;
  let copied = false;
  try {
    await copyDirs(
      from,
      clones.map((c) => c.dir),
      {
        onPart: (done, total) => liveStatus(`copying ${clones.length === 1 ? 'the clone' : `${clones.length} clones`}: ${done} of ${total} parts`),
        onCopied: (dir) => {
          const i = clones.findIndex((c) => c.dir === dir);
          const c = clones[i]!;
          writeDatabaseFile(c.dir, database);
          c.clone.copyMs = Math.round(performance.now() - (before + i === 0 ? started : copying));
          if (warmFirst && before + i === 0) {
            // its copy is complete: its connection starts while the others are copied
            warming = warmUp(c, database);
            warming.catch(() => undefined); // awaited below
          } else if (before + i > 0) {
            // the other clones start in worker threads, on the other core: their work
            // (a rehearsal's reference on the second clone) runs beside the first's
            // (a worker that fails to start says so to whoever opens the clone)
            warmUp(c, database, { worker: true }).catch(() => undefined);
          }
        },
      },
    );
    copied = true;
  } finally {
    // a copy failed: the connection being started must be settled before the clones are dropped
    if (!copied) await warming?.catch(() => undefined);
  }
  await warming;
  clones.forEach((c, i) => {
    const n = before + i + 1;
    progress(n === 1 ? `clone 1 of ${count} ready in ${seconds(c.clone.copyMs)}` : `clone ${n} of ${count} copied in ${seconds(c.clone.copyMs)}`);
  });
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
