/**
 * The embedded sample Directus database in a PGlite data directory, the
 * source every `pglite-sample` clone is a copy of. Building it takes seconds
 * (PGlite's initdb, then ~40 scripts); it depends only on the generator's
 * code, the options and the PGlite version, so small samples are built once
 * and kept in tiergate's cache (see src/cache.ts), marked as a tiergate
 * clone: each clone of it is a copy, as every further clone of a source is.
 */
import type { SampleVariant } from '../../fixtures/directus-sample/generate.js';
import { buildCachedFolder, cachedFolder, cacheEnabled, codeStamp } from '../cache.js';
import { withDb } from '../db/open-db.js';
import type { Db } from '../db/port.js';
import { createPgliteDatabase } from '../db/pglite-create.js';
import { liveStatus, ticking } from '../live-status.js';
import { recordBaseline } from '../probe/fingerprint.js';
import { tiergateVersion } from '../version.js';
import { markClone } from './clone.js';

/** Samples up to this scale are kept in the cache (scale 1: ~50 MB; a scale-100 sample is built for each rehearsal). */
export const CACHED_SAMPLE_SCALE = 10;
/** Built samples kept: the default and the few variants the tests use. */
const KEEP = 6;
const PREFIX = 'sample-';

/** What builds a sample, by module: the cache's key follows their text. */
const GENERATOR = ['generate', 'pattern', 'metadata', 'sql', 'system', 'tables', 'texts', 'fields'].map((m) => `../../fixtures/directus-sample/${m}`);
const BUILDER = ['pglite-sample', 'clone', '../probe/change-log', '../probe/fingerprint', '../probe/catalog', '../db/pglite-create'];

/**
 * Builds the sample into `dir` (new or empty): a PGlite data directory
 * holding database `database`, marked as a tiergate clone of it. Progress
 * goes to the live status (src/live-status.ts), step by step.
 */
export async function buildSample(dir: string, database: string, scale: number, variant?: string): Promise<void> {
  await ticking('initialising PostgreSQL in PGlite (initdb)', () => createPgliteDatabase(dir, database, { buildTemplate: false }));
  await withDb(`pglite://${dir}`, async (db) => {
    liveStatus('building the sample: starting PostgreSQL');
    const { writeSample } = await import('../../fixtures/directus-sample/generate.js');
    await writeSample(db, { scale, variant: variant as SampleVariant | undefined }, (done) => liveStatus(`building the sample: ${done}`));
    await markClone(db, database);
    liveStatus('building the sample: its fingerprint');
    await recordBaseline(db);
    if (database !== 'postgres') await dropUnused(db);
  });
}

/**
 * PGlite's initdb makes `postgres` and `template0` besides `template1`: a
 * clone never opens them, and copying their ~600 files is a third of the
 * time each clone takes (creating files dominates a copy). `template1`
 * stays: CREATE DATABASE in a kept clone works as anywhere.
 */
async function dropUnused(db: Db): Promise<void> {
  // one statement a call: DROP DATABASE cannot run in the transaction a multi-statement script is
  for (const sql of ['drop database if exists postgres', 'alter database template0 is_template false', 'drop database template0']) await db.exec(sql);
}

/**
 * The built sample in tiergate's cache, built there first when it is not
 * (`onBuild` is told before); null when it is not cached: a larger scale,
 * `TIERGATE_CACHE=off`, a cache that cannot be written or trusted, a key
 * that cannot follow the code. The folder is only ever copied.
 */
export async function cachedSample(scale: number, variant: string | undefined, database: string, onBuild: (cacheDir: string) => void): Promise<string | null> {
  const name = sampleName(scale, variant ?? 'standard', database);
  if (!name) return null;
  const found = cachedFolder(name);
  if (found) return found;
  return buildCachedFolder(
    name,
    async (dir) => {
      onBuild(dir);
      await buildSample(dir, database, scale, variant);
    },
    { prefix: PREFIX, keep: KEEP },
  );
}

function sampleName(scale: number, variant: string, database: string): string | null {
  if (scale > CACHED_SAMPLE_SCALE || !cacheEnabled() || !/^[a-z-]+$/.test(variant) || !/^\w+$/.test(database)) return null;
  const stamp = codeStamp(import.meta.url, [...GENERATOR, ...BUILDER], ['@electric-sql/pglite']);
  if (!stamp) return null;
  // the clone mark records tiergate's version
  return `${PREFIX}${stamp.slice(0, 16)}-${tiergateVersion()}-s${scale}-${variant}-${database}`;
}
