import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SampleVariant } from '../../fixtures/directus-sample/generate.js';
import { copyDir } from '../db/copy-dir.js';
import { acquireDirLock } from '../db/dir-lock.js';
import { parseTarget, withDb, writeDatabaseFile } from '../db/open-db.js';
import type { Db } from '../db/port.js';
import { createPgliteDatabase } from '../db/pglite-create.js';
import { UsageError } from '../errors.js';
import { loadDump, checkDumpFile } from './clone-dump.js';
import { markClone, ScopedClone, type CloneProvider } from './clone.js';

/** Clones of the embedded sample Directus database (`fixtures/directus-sample/`). */
export function sampleProvider(scale: number, variant?: string): CloneProvider {
  if (!Number.isInteger(scale) || scale < 1) throw new UsageError(`the sample's scale must be a whole number from 1 (got ${scale})`);
  return pgliteProvider('directus', `the sample Directus database (scale ${scale})`, async (db) => {
    const { writeSample } = await import('../../fixtures/directus-sample/generate.js');
    await writeSample(db, { scale, variant: variant as SampleVariant | undefined });
  });
}

/** Clones of a plain SQL dump, loaded into PGlite. */
export function dumpProvider(file: string, database: string): CloneProvider {
  checkDumpFile(file);
  const provider = pgliteProvider(database, `the dump ${file}`, (db, progress) => loadDump(db, file, progress));
  // the copy of the source is the dump: taken when the file was written
  const snapshotAt = statSync(file).mtime.toISOString();
  return async (count, progress, register) => provider(count, progress, (c) => register(Object.assign(c, { snapshotAt })));
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
  return pgliteProvider(target.database, `a copy of ${url}`, async () => undefined, async (into) => {
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
 * Builds the source once, in a PGlite data directory, marks it, and makes the
 * other clones by copying that directory (a file copy is several times faster
 * than PGlite's dumpDataDir / loadDataDir round trip, and each clone is a
 * directory a `pglite:` URL can open).
 */
function pgliteProvider(
  database: string,
  what: string,
  fill: (db: Db, progress: (m: string) => void) => Promise<void>,
  copyFrom?: (into: string) => Promise<void>,
): CloneProvider {
  return async (count, progress, register) => {
    const started = performance.now();
    const first = newDirClone();
    register(first.clone);
    first.clone.snapshotAt = new Date().toISOString();
    progress(copyFrom ? `copying ${what} (${first.dir})` : `building ${what} in PGlite (${first.dir})`);
    if (copyFrom) {
      await copyFrom(first.dir);
      writeDatabaseFile(first.dir, database);
    } else await createPgliteDatabase(first.dir, database);
    await withDb(first.clone.url, async (db) => {
      await fill(db, progress);
      await markClone(db, database);
    });
    first.clone.copyMs = Math.round(performance.now() - started);
    progress(`clone 1 of ${count} ready in ${seconds(first.clone.copyMs)}`);
    for (let i = 1; i < count; i++) {
      const t = performance.now();
      const next = newDirClone();
      register(next.clone);
      await copyDir(first.dir, next.dir);
      writeDatabaseFile(next.dir, database);
      next.clone.snapshotAt = first.clone.snapshotAt;
      next.clone.copyMs = Math.round(performance.now() - t);
      progress(`clone ${i + 1} of ${count} copied in ${seconds(next.clone.copyMs)}`);
    }
  };
}

function newDirClone(): { dir: string; clone: ScopedClone } {
  const dir = mkdtempSync(join(tmpdir(), 'tiergate-clone-'));
  const url = `pglite://${dir}`;
  const clone = new ScopedClone(url, url, 'pglite', async () => rmSync(dir, { recursive: true, force: true }));
  return { dir, clone };
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
