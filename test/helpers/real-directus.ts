/**
 * A database made by a real Directus 11 (test/fixtures/directus-real/: a dump
 * taken after driving Directus 11.17.4 through its REST API) and the figures
 * derived from it, for the tests that must hold beyond the sample.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { withDb } from '../../src/db/open-db.js';
import { PgliteDb } from '../../src/db/pglite-adapter.js';
import { loadDump } from '../../src/rehearsal/clone-dump.js';
import { freshDatabase, type TargetKind, type TestDatabase } from './targets.js';

export const REAL = join(import.meta.dirname, '..', 'fixtures', 'directus-real');
export const expected = JSON.parse(readFileSync(join(REAL, 'expected.json'), 'utf8')) as {
  anchors: number;
  contained: number;
  anchorFields: number;
  emails: Record<string, string>;
};

/** A database named directus holding the real Directus 11 dump: psql on the server, the dump loader on PGlite. */
export async function realDirectus(kind: TargetKind): Promise<TestDatabase> {
  const t = await freshDatabase(kind, 'directus', { exactName: true });
  if (kind === 'postgres') {
    const psql = join(process.env.TIERGATE_TEST_PG_BINDIR ?? '/usr/bin', 'psql');
    execFileSync(psql, ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', t.url, '-f', join(REAL, 'directus-11.sql')], { stdio: ['ignore', 'ignore', 'pipe'] });
  } else {
    await withDb(t.url, (db) => loadDump(db as PgliteDb, join(REAL, 'directus-11.sql'), () => undefined));
  }
  return t;
}
