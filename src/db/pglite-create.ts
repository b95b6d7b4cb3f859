import { existsSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { cacheRoot, packageVersion, trustedTree } from '../cache.js';
import { copyDir } from './copy-dir.js';
import { writeDatabaseFile } from './open-db.js';
import { PgliteDb } from './pglite-adapter.js';
import { mkdirEach } from '../mkdir.js';

/**
 * Creates a PGlite data directory holding an empty database `name`, and
 * records the name so that `pglite:DIR` opens it. Refuses a non-empty folder.
 * Returns the target URL.
 *
 * PGlite's initdb costs seconds; its result depends only on the PGlite
 * version and the database name, so it is kept once in a cache
 * (`node_modules/.cache/tiergate/`, or TIERGATE_CACHE_DIR) and copied.
 * `buildTemplate: false` uses a template already there but does not build
 * one (initdb runs in `dir` itself): for a caller that caches what it builds
 * on top, a copy of a template it will not use again is wasted.
 */
export async function createPgliteDatabase(dir: string, name: string, options: { buildTemplate?: boolean } = {}): Promise<string> {
  const abs = resolve(dir);
  if (existsSync(abs) && readdirSync(abs).length > 0) {
    throw new UsageError(`'${dir}' is not empty: give a new or empty folder for the PGlite data directory`);
  }
  const template = await cachedTemplate(name, options.buildTemplate ?? true);
  if (template) {
    mkdirEach(abs);
    await copyDir(template, abs);
  } else {
    await initialise(abs, name);
  }
  writeDatabaseFile(abs, name);
  return `pglite://${abs}`;
}

async function initialise(dir: string, name: string): Promise<void> {
  const admin = await PgliteDb.open({ dir, database: 'postgres' }, `pglite:${dir}`, { create: true });
  try {
    if (name !== 'postgres') await admin.exec(`create database "${name.replace(/"/g, '""')}"`);
  } finally {
    await admin.close();
  }
}

/**
 * The cached initialised directory for `name`, built on first use; null when
 * no cache can be written, or when the one there cannot be trusted: every
 * database `sample --pglite` makes and every rehearsal clone of the sample
 * starts as a copy of it, so it must be this user's alone (the cache's rule,
 * applied to every file in it) — else it is ignored, never copied.
 */
async function cachedTemplate(name: string, build: boolean): Promise<string | null> {
  try {
    const root = cacheRoot();
    const key = `pglite-${packageVersion('@electric-sql/pglite') ?? 'unknown'}-${name.replace(/[^A-Za-z0-9_-]/g, '_')}`;
    const dir = join(root, key);
    if (existsSync(join(dir, 'PG_VERSION'))) return trustedTree(dir) ? dir : null;
    if (!build) return null;
    mkdirEach(root, 0o700);
    const building = mkdtempSync(join(root, `${key}.building-`));
    await initialise(building, name);
    try {
      renameSync(building, dir); // atomic: a concurrent builder's copy wins, ours is dropped
    } catch {
      rmSync(building, { recursive: true, force: true });
    }
    return existsSync(join(dir, 'PG_VERSION')) && trustedTree(dir) ? dir : null;
  } catch {
    return null;
  }
}


