import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { redactUrl, registerSecret } from '../secrets.js';
import { isPostgresUrl, parsePostgresUrl } from './pg-url.js';
import type { Db } from './port.js';

/** The file in a PGlite data directory naming the database tiergate uses there (line 1) and the directory's id (`instance …`). */
export const PGLITE_DATABASE_FILE = '.tiergate-database';

export type Target =
  | { kind: 'postgres'; url: string }
  | { kind: 'pglite'; dir: string | null; database: string; instance: string | null };

/** libpq's `sslmode` values. */
const SSLMODES = new Set(['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']);

/**
 * Parses a target URL: `postgres://…` / `postgresql://…` (libpq conventions:
 * PG* environment variables fill what the URL leaves out), `pglite:memory`,
 * `pglite:///absolute/dir` or `pglite:relative/dir` (`?database=NAME`).
 * Anything that could not be used as written is a UsageError (exit 2) saying
 * what is wrong: a control character (a newline pasted into a URL), a
 * password that is not valid percent-encoding, a port or timeout that is not
 * a number, an unknown sslmode.
 *
 * @example parseTarget('pglite:./clone?database=directus')
 */
export function parseTarget(url: string): Target {
  if (!url || !url.trim()) throw new UsageError('no target given: pass --target URL (postgres://user@host/db or pglite:DIR)');
  registerSecret(process.env.PGPASSWORD);
  const control = /[\u0000-\u001f\u007f]/.exec(url);
  if (control) {
    throw new UsageError(
      `'${redactUrl(url.replace(/[\u0000-\u001f\u007f]/g, '?'))}' holds a control character (${JSON.stringify(control[0])}, e.g. a line break pasted into it): write the URL on one line`,
    );
  }
  if (isPostgresUrl(url)) {
    const u = parsePostgresUrl(url);
    if (!u) throw new UsageError(`'${redactUrl(url)}' is not a valid PostgreSQL URL: expected postgres://user@host[:port]/database, a password after the user (user:password@, percent-encoded)`);
    for (const [part, raw] of [['password', u.password], ['user name', u.username], ['database name', u.pathname]] as const) {
      try {
        const decoded = decodeURIComponent(raw);
        if (part === 'password' && decoded) registerSecret(decoded);
      } catch {
        if (part === 'password') registerSecret(raw);
        throw new UsageError(`'${redactUrl(url)}': the ${part} is not valid percent-encoding (a '%' must be followed by two hex digits): write '%' as %25`);
      }
    }
    checkQuery(url, u.searchParams);
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
      return { kind: 'pglite', dir: null, database: params.get('database') ?? 'postgres', instance: null };
    }
    const path = pathPart.startsWith('//') ? pathPart.slice(2) : pathPart;
    if (!path) throw new UsageError(`'${url}': a PGlite URL needs a directory (pglite:///abs/dir, pglite:./dir) or 'memory'`);
    let decoded: string;
    try {
      decoded = decodeURIComponent(path);
    } catch {
      throw new UsageError(`'${url}': the directory is not valid percent-encoding: write '%' as %25`);
    }
    const dir = resolve(decoded);
    const file = readDatabaseFile(dir);
    return { kind: 'pglite', dir, database: params.get('database') ?? file.database, instance: file.instance };
  }
  throw new UsageError(
    `'${redactUrl(url)}' is not a target URL tiergate knows: use postgres://user@host:port/database or pglite:DIR (or pglite:memory)`,
  );
}

/** The libpq parameters of a URL's query that must be well-formed before a driver sees them. */
function checkQuery(url: string, params: URLSearchParams): void {
  const bad = (what: string) => new UsageError(`'${redactUrl(url)}': ${what}`);
  for (const key of ['port', 'connect_timeout']) {
    const v = params.get(key);
    if (v !== null && !/^\d+$/.test(v)) throw bad(`${key}=${v} is not a whole number`);
  }
  const port = params.get('port');
  if (port !== null && (Number(port) < 1 || Number(port) > 65535)) throw bad(`port=${port} is out of range (1–65535)`);
  const sslmode = params.get('sslmode');
  if (sslmode !== null && !SSLMODES.has(sslmode)) throw bad(`sslmode=${sslmode} is not one of ${[...SSLMODES].join(', ')}`);
}

/** What `.tiergate-database` says of a PGlite directory (its database name and id); defaults when it has none. */
function readDatabaseFile(dir: string): { database: string; instance: string | null } {
  const file = join(dir, PGLITE_DATABASE_FILE);
  if (!existsSync(file)) return { database: 'postgres', instance: null };
  const [first = '', ...rest] = readFileSync(file, 'utf8').split('\n');
  const instance = rest.map((l) => /^instance (\S+)$/.exec(l.trim())?.[1]).find(Boolean) ?? null;
  return { database: first.trim() || 'postgres', instance };
}

/** Records a PGlite directory's database name and gives the directory a new id (a copied directory is another database). */
export function writeDatabaseFile(dir: string, database: string): void {
  writeFileSync(join(dir, PGLITE_DATABASE_FILE), `${database}\ninstance ${randomUUID()}\n`);
}

/** The URL of a target for display: password redacted. */
export function displayTarget(url: string): string {
  return redactUrl(url);
}

export interface OpenOptions {
  applicationName?: string;
  /** a PGlite directory that does not exist yet may be created (only `sample` and rehearsal clones) */
  create?: boolean;
}

/**
 * Opens a target through the adapter its URL names. Drivers are imported
 * lazily. A PGlite directory must already hold a database unless `create`
 * (a typo must not create one).
 *
 * @example const db = await openDb('postgres://localhost/directus'); try { … } finally { await db.close(); }
 */
export async function openDb(url: string, options: OpenOptions = {}): Promise<Db> {
  const target = parseTarget(url);
  if (target.kind === 'postgres') {
    const { PgDb } = await import('./pg-adapter.js');
    return PgDb.connect(target.url, options.applicationName);
  }
  if (target.dir && !options.create) requireDatabaseDir(url, target.dir);
  const { PgliteDb } = await import('./pglite-adapter.js');
  return PgliteDb.open({ dir: target.dir, database: target.database, instance: target.instance }, redactUrl(url), { create: options.create });
}

function requireDatabaseDir(url: string, dir: string): void {
  if (!existsSync(dir)) {
    throw new UsageError(`'${url}': the folder ${dir} does not exist; make a PGlite database with 'tiergate sample --pglite ${dir}', or check the path`);
  }
  if (!statSync(dir).isDirectory()) throw new UsageError(`'${url}': ${dir} is not a folder`);
  if (!existsSync(join(dir, 'PG_VERSION'))) {
    throw new UsageError(`'${url}': ${dir} holds no PGlite database (no PG_VERSION); make one with 'tiergate sample --pglite DIR', or check the path`);
  }
}

/** Runs `fn` with an open target and always closes it. */
export async function withDb<T>(url: string, fn: (db: Db) => Promise<T>, options: OpenOptions = {}): Promise<T> {
  const db = await openDb(url, options);
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}
