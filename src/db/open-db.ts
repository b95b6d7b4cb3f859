import { readFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { redactUrl, registerSecret } from '../secrets.js';
import { isPostgresUrl, parsePostgresUrl } from './pg-url.js';
import type { Db } from './port.js';

/** The file in a PGlite data directory naming the database tiergate uses there. */
export const PGLITE_DATABASE_FILE = '.tiergate-database';

export type Target =
  | { kind: 'postgres'; url: string }
  | { kind: 'pglite'; dir: string | null; database: string };

/**
 * Parses a target URL: `postgres://…` / `postgresql://…` (libpq conventions:
 * PG* environment variables fill what the URL leaves out), `pglite:memory`,
 * `pglite:///absolute/dir` or `pglite:relative/dir` (`?database=NAME`).
 *
 * @example parseTarget('pglite:./clone?database=directus')
 */
export function parseTarget(url: string): Target {
  if (!url || !url.trim()) throw new UsageError('no target given: pass --target URL (postgres://user@host/db or pglite:DIR)');
  registerSecret(process.env.PGPASSWORD);
  if (isPostgresUrl(url)) {
    const u = parsePostgresUrl(url);
    if (!u) throw new UsageError(`'${redactUrl(url)}' is not a valid PostgreSQL URL: expected postgres://user[:password]@host[:port]/database`);
    if (u.password) registerSecret(decodeURIComponent(u.password));
    return { kind: 'postgres', url };
  }
  if (/^pglite:/i.test(url)) {
    const rest = url.slice('pglite:'.length);
    const [pathPart = '', query = ''] = rest.split('?', 2);
    const params = new URLSearchParams(query);
    for (const key of params.keys()) {
      if (key !== 'database') throw new UsageError(`'${url}': unknown PGlite URL option '${key}' (only ?database=NAME)`);
    }
    if (pathPart === 'memory' || pathPart === '//memory') {
      return { kind: 'pglite', dir: null, database: params.get('database') ?? 'postgres' };
    }
    const path = pathPart.startsWith('//') ? pathPart.slice(2) : pathPart;
    if (!path) throw new UsageError(`'${url}': a PGlite URL needs a directory (pglite:///abs/dir, pglite:./dir) or 'memory'`);
    const dir = resolve(decodeURIComponent(path));
    const database = params.get('database') ?? pgliteDefaultDatabase(dir);
    return { kind: 'pglite', dir, database };
  }
  throw new UsageError(
    `'${redactUrl(url)}' is not a target URL tiergate knows: use postgres://user@host:port/database or pglite:DIR (or pglite:memory)`,
  );
}

function pgliteDefaultDatabase(dir: string): string {
  const file = join(dir, PGLITE_DATABASE_FILE);
  return existsSync(file) ? readFileSync(file, 'utf8').trim() || 'postgres' : 'postgres';
}

/** The URL of a target for display: password redacted. */
export function displayTarget(url: string): string {
  return redactUrl(url);
}

/**
 * Opens a target through the adapter its URL names. Drivers are imported lazily.
 *
 * @example const db = await openDb('postgres://localhost/directus'); try { … } finally { await db.close(); }
 */
export async function openDb(url: string, options: { applicationName?: string } = {}): Promise<Db> {
  const target = parseTarget(url);
  if (target.kind === 'postgres') {
    const { PgDb } = await import('./pg-adapter.js');
    return PgDb.connect(target.url, options.applicationName);
  }
  const { PgliteDb } = await import('./pglite-adapter.js');
  return PgliteDb.open({ dir: target.dir, database: target.database }, redactUrl(url));
}

/** Runs `fn` with an open target and always closes it. */
export async function withDb<T>(url: string, fn: (db: Db) => Promise<T>, options: { applicationName?: string } = {}): Promise<T> {
  const db = await openDb(url, options);
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}
