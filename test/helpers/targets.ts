/**
 * The targets every integration suite runs on: PGlite and a real PostgreSQL
 * server (see test/setup/postgres.ts). Loop over `testTargets()`.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { writeDatabaseFile } from '../../src/db/open-db.js';
import { copyPgliteTemplate, PG_URL_KEY } from '../setup/postgres.js';

export type TargetKind = 'pglite' | 'postgres';

export interface TestDatabase {
  kind: TargetKind;
  /** a tiergate target URL */
  url: string;
  /** the database name */
  database: string;
  drop(): Promise<void>;
}

/** The targets this run can use; with CI=true a missing server is an error, never a skip. */
export function testTargets(): TargetKind[] {
  const all: TargetKind[] = process.env[PG_URL_KEY] ? ['pglite', 'postgres'] : ['pglite'];
  if (all.length === 1 && process.env.CI === 'true') throw new Error(`CI=true and no PostgreSQL server for the tests (${PG_URL_KEY} unset)`);
  // TIERGATE_TEST_BACKENDS=pglite (or postgres): one backend only (npm run test:guarantees runs each mutation per backend)
  const only = process.env.TIERGATE_TEST_BACKENDS?.split(',').map((s) => s.trim());
  return only ? all.filter((k) => only.includes(k)) : all;
}

export function serverUrl(database = 'postgres'): string {
  const base = process.env[PG_URL_KEY];
  if (!base) throw new Error(`${PG_URL_KEY} is not set: no PostgreSQL test server`);
  const u = new URL(base);
  u.pathname = '/' + database;
  return u.toString();
}

/** Runs SQL on the test server's maintenance database. */
export async function onServer<T>(fn: (c: pg.Client) => Promise<T>, database = 'postgres'): Promise<T> {
  const c = new pg.Client({ connectionString: serverUrl(database) });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Waits for the exclusive use of a database name on the test server (a session advisory lock of a connection kept open). */
async function takeTurn(database: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: serverUrl('postgres') });
  await c.connect();
  await c.query('select pg_advisory_lock(hashtext($1))', [`tiergate-test-database:${database}`]);
  return c;
}

/**
 * A new, empty database: on the PostgreSQL test server (CREATE DATABASE) or
 * a fresh PGlite directory (copied from a template). `name` is the database
 * name on PGlite ('postgres' or 'directus'); on the server a unique name is
 * made from it unless `exactName` is set.
 */
export async function freshDatabase(kind: TargetKind, name = 'directus', options: { exactName?: boolean } = {}): Promise<TestDatabase> {
  if (kind === 'postgres') {
    const database = options.exactName ? name : `${name}_${randomBytes(4).toString('hex')}`;
    // one database of a given name per server: test files running at once take turns (a session lock, held until drop)
    const turn = options.exactName ? await takeTurn(database) : null;
    try {
      await onServer((c) => c.query(`drop database if exists "${database}" with (force)`).then(() => c.query(`create database "${database}"`)));
    } catch (e) {
      await turn?.end();
      throw e;
    }
    return {
      kind,
      url: serverUrl(database),
      database,
      drop: async () => {
        try {
          await onServer((c) => c.query(`drop database if exists "${database}" with (force)`));
        } finally {
          await turn?.end();
        }
      },
    };
  }
  const root = mkdtempSync(join(tmpdir(), 'tiergate-pglite-'));
  const dir = join(root, 'data');
  copyPgliteTemplate(dir);
  if (name !== 'postgres' && name !== 'directus') {
    const { PGlite } = await import('@electric-sql/pglite');
    const db = new PGlite(dir);
    await db.exec(`create database "${name}"`);
    await db.close();
  }
  writeDatabaseFile(dir, name);
  return {
    kind,
    url: `pglite://${dir}`,
    database: name,
    drop: async () => rmSync(root, { recursive: true, force: true }),
  };
}
