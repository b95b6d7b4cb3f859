import type { PGlite } from '@electric-sql/pglite';
import { toDbError } from './db-error.js';
import { acquireDirLock, type DirLock } from './dir-lock.js';
import { TargetError, UsageError } from '../errors.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Capabilities, Db, QueryResult, Queryable, TransactionOptions } from './port.js';

export interface PgliteLocation {
  /** null: in memory */
  dir: string | null;
  database: string;
  /** the directory's id (`.tiergate-database`), when tiergate made it */
  instance?: string | null;
}


/** PostgreSQL's default search_path, which PGlite's sessions are given (PGlite's own is 'public'). */
export const SERVER_SEARCH_PATH = '"$user", public';

/** Starts loading PGlite's module (~0.1 s) while the caller does other work, such as copying a clone. */
export function preloadPglite(): void {
  import('@electric-sql/pglite').catch(() => undefined);
}

/**
 * What every PGlite connection shares: one session (BEGIN … COMMIT on it;
 * ROLLBACK if `fn` throws), which is also its own sibling (closing that is a
 * no-op), alive until closed.
 */
export abstract class SingleSessionDb implements Db {
  abstract readonly displayUrl: string;
  abstract readonly capabilities: Capabilities;
  protected closed = false;

  abstract query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<QueryResult<R>>;
  abstract exec<R = Record<string, unknown>>(script: string): Promise<QueryResult<R>[]>;
  abstract close(): Promise<void>;

  async transaction<T>(fn: (tx: Queryable) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    await this.exec(options.readOnly ? 'begin transaction read only' : 'begin');
    try {
      const out = await fn(this);
      await this.exec('commit');
      return out;
    } catch (e) {
      await this.exec('rollback').catch(() => undefined);
      throw e;
    }
  }

  async sibling(): Promise<Db> {
    return new Proxy(this, {
      get: (target, prop, receiver) => (prop === 'close' ? async () => undefined : Reflect.get(target, prop, receiver)),
    });
  }

  alive(): boolean {
    return !this.closed;
  }
}

/**
 * PGlite adapter: PostgreSQL in WASM, in this process. A data directory can be
 * open in one process only, so opening one takes an exclusive lock file.
 */
export class PgliteDb extends SingleSessionDb {
  readonly capabilities: Capabilities;

  private constructor(
    readonly pg: PGlite,
    readonly location: PgliteLocation,
    readonly displayUrl: string,
    private readonly lock: DirLock | null,
    serverVersion: number,
  ) {
    super();
    this.capabilities = { driver: 'pglite', singleConnection: true, pgDump: false, serverVersion, instance: location.instance ?? null };
  }

  /**
   * Opens a data directory (created only with `create`), or an in-memory
   * database. A directory kept warm (`keepWarm`) lends its open connection
   * instead, when nobody else has it.
   */
  static async open(location: PgliteLocation, displayUrl: string, options: { loadDataDir?: Blob; create?: boolean } = {}): Promise<Db> {
    const kept = location.dir ? warm.get(location.dir) : undefined;
    if (kept && !kept.lent) {
      kept.lent = true;
      try {
        return new LentPglite(await kept.ready, displayUrl, () => kept.giveBack());
      } catch (e) {
        kept.lent = false;
        throw e;
      }
    }
    return PgliteDb.start(location, displayUrl, options);
  }

  /** Starts PGlite on `location` (`open` lends a connection kept warm instead). */
  static async start(location: PgliteLocation, displayUrl: string, options: { loadDataDir?: Blob; create?: boolean }): Promise<PgliteDb> {
    const lock = location.dir ? lockDir(location.dir, displayUrl, Boolean(options.create)) : null;
    try {
      const { PGlite } = await import('@electric-sql/pglite');
      const pg = new PGlite(location.dir ?? undefined, {
        database: location.database,
        loadDataDir: options.loadDataDir,
        // counts (int8) and numeric as numbers, like the pg adapter
        parsers: { 20: (v: string) => Number(v), 1700: (v: string) => Number(v) },
      });
      try {
        await pg.waitReady;
      } catch (e) {
        throw (await missingDatabase(location, displayUrl)) ?? unusableDir(location.dir, displayUrl, e);
      }
      // PGlite starts its sessions with search_path 'public'; a server's default is '"$user", public', which a function
      // created with SET search_path FROM CURRENT records: a clone of a dump must re-create what the server created
      const v = await pg.query<{ v: string }>(`select current_setting('server_version_num') as v, set_config('search_path', $1, false)`, [SERVER_SEARCH_PATH]);
      return new PgliteDb(pg, location, displayUrl, lock, Number(v.rows[0]?.v ?? 0));
    } catch (e) {
      lock?.release();
      throw e;
    }
  }

  async query<R = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<QueryResult<R>> {
    await yieldToWorkers();
    try {
      const r = await this.pg.query<R>(sql, params);
      return { rows: r.rows, rowCount: r.affectedRows ?? r.rows.length };
    } catch (e) {
      throw toDbError(e);
    }
  }

  async exec<R = Record<string, unknown>>(script: string): Promise<QueryResult<R>[]> {
    await yieldToWorkers();
    try {
      return (await this.pg.exec(script)).map((r) => ({ rows: r.rows as R[], rowCount: r.affectedRows ?? r.rows.length }));
    } catch (e) {
      throw toDbError(e);
    }
  }

  /** A snapshot of the whole data directory (for clones). */
  async dump(): Promise<Blob> {
    return (await this.pg.dumpDataDir('none')) as Blob;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.pg.close();
    } finally {
      this.lock?.release();
    }
  }
}

/**
 * A PGlite query runs its WASM on this thread without giving the event loop
 * a turn, and one awaited after another only queues microtasks: a worker's
 * answers (src/db/pglite-worker.ts) would wait until this thread idles —
 * the second clone's work waited for the first's whole stage — and so would
 * a signal: Ctrl-C during an apply on PGlite was handled only once every
 * tier had committed. With a worker open, each query here first lets the
 * event loop deliver them; without one, at least every 50 ms.
 */
async function yieldToWorkers(): Promise<void> {
  if (openWorkers === 0 && performance.now() - lastTurn < TURN_EVERY_MS) return;
  await new Promise<void>((resolve) => setImmediate(resolve));
  lastTurn = performance.now();
}

/** When the event loop last had a turn between two PGlite queries (yieldToWorkers). */
let lastTurn = 0;
const TURN_EVERY_MS = 50;

/** How many PGlite workers (src/db/pglite-worker.ts) this process has open. */
let openWorkers = 0;

/** A worker opened (+1) or ended (−1). */
export function countWorker(change: 1 | -1): void {
  openWorkers += change;
}

export function openWorkerCount(): number {
  return openWorkers;
}

/**
 * Data directories whose connection this process keeps open between uses:
 * PGlite takes ~0.3 s to start (its WASM, the single-user backend), and a
 * rehearsal opens its main clone more than once. A directory is still open
 * to one user at a time — a second open meets its lock, as before.
 */
const warm = new Map<string, { ready: Promise<Db>; lent: boolean; giveBack(): Promise<void> }>();

/**
 * Keeps the PGlite directory `dir` (its database `database`) open in this
 * process until `closeWarm(dir)`: it is opened now, each later open lends
 * that connection (waiting for it to be ready), and closing what was lent
 * resets the session (`DISCARD ALL`: what a new connection would start with)
 * instead of closing it. With `worker`, it is opened in a worker thread
 * (src/db/pglite-worker.ts), so that its queries run on another core than
 * this process's main thread; the promise is then settled once it has
 * started, without waiting for it to be ready.
 */
export async function keepWarm(dir: string, database: string, instance: string | null, displayUrl: string, options: { worker?: boolean } = {}): Promise<void> {
  if (warm.has(dir)) return;
  const ready: Promise<Db> = options.worker
    ? import('./pglite-worker.js').then((m) => m.PgliteWorkerDb.start({ dir, database, instance }, displayUrl))
    : PgliteDb.start({ dir, database, instance }, displayUrl, {});
  ready.catch(() => undefined); // whoever opens it meets the error
  const entry = {
    ready,
    lent: false,
    async giveBack(): Promise<void> {
      const db = await ready;
      try {
        try {
          await db.exec('discard all');
        } catch {
          // left inside a transaction: end it, as a closing connection would
          await db.exec('rollback').catch(() => undefined);
          await db.exec('discard all');
        }
        // (DISCARD ALL gives back PGlite's own search_path: the server's, as a new connection starts with it)
        await db.query(`select set_config('search_path', $1, false)`, [SERVER_SEARCH_PATH]);
      } finally {
        entry.lent = false;
      }
    },
  };
  warm.set(dir, entry);
  if (options.worker) return;
  try {
    await ready;
  } catch (e) {
    warm.delete(dir);
    throw e;
  }
}

/** Closes a directory kept warm (idempotent); what it lent is closed with it. */
export async function closeWarm(dir: string): Promise<void> {
  const entry = warm.get(dir);
  if (!entry) return;
  warm.delete(dir);
  const db = await entry.ready.catch(() => null);
  await db?.close();
}

/** A connection lent by a warm directory: the same session, given back (not closed) by `close`. */
class LentPglite implements Db {
  private closed = false;

  constructor(
    private readonly db: Db,
    readonly displayUrl: string,
    private readonly giveBack: () => Promise<void>,
  ) {}

  get capabilities(): Capabilities {
    return this.db.capabilities;
  }

  private open(): Db {
    if (this.closed || !this.db.alive()) throw new TargetError(`the connection to ${this.displayUrl} is closed`);
    return this.db;
  }

  async query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<QueryResult<R>> {
    return this.open().query<R>(sql, params);
  }

  async exec<R = Record<string, unknown>>(script: string): Promise<QueryResult<R>[]> {
    return this.open().exec<R>(script);
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>, options?: TransactionOptions): Promise<T> {
    return this.open().transaction(fn, options);
  }

  async sibling(): Promise<Db> {
    return this.open().sibling();
  }

  alive(): boolean {
    return !this.closed && this.db.alive();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.db.alive()) await this.giveBack();
  }
}

/** The folder's lock, or a refusal in words when the folder cannot take it (not writable by this user, a folder in its place). */
export function lockDir(dir: string, displayUrl: string, create: boolean): DirLock {
  try {
    return acquireDirLock(dir, { create });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EROFS') {
      throw new UsageError(`cannot use ${displayUrl}: ${dir} is on a read-only file system (EROFS): tiergate writes its lock file there and PGlite its files (copy the folder to a writable place)`);
    }
    if (code === 'EACCES' || code === 'EPERM') {
      throw new UsageError(`cannot use ${displayUrl}: this user may not write in ${dir} (${code}): tiergate writes its lock file there and PGlite its files (run as the folder's owner, or copy the folder)`);
    }
    if (code === 'EISDIR' || code === 'ERR_FS_EISDIR') throw new UsageError(`cannot use ${displayUrl}: ${join(dir, '.tiergate.lock')} is a folder, where tiergate keeps its lock file: remove it`);
    throw e;
  }
}

/**
 * PGlite could not start on `location`: when the folder opens on its template
 * database and has no database of the name asked for (`?database=` mistyped),
 * that, in words, with the databases it has; otherwise null.
 */
export async function missingDatabase(location: PgliteLocation, displayUrl: string): Promise<Error | null> {
  if (!location.dir || location.database === 'template1') return null;
  try {
    const { PGlite } = await import('@electric-sql/pglite');
    const pg = new PGlite(location.dir, { database: 'template1' });
    try {
      const names = (await pg.query<{ name: string }>('select datname::text as name from pg_database where not datistemplate order by 1')).rows.map((r) => r.name);
      if (names.includes(location.database)) return null;
      return new UsageError(
        `cannot open ${displayUrl}: the PGlite folder ${location.dir} has no database '${location.database}' (it has: ${names.join(', ') || 'none'}): check ?database= in the URL`,
      );
    } finally {
      await pg.close().catch(() => undefined);
    }
  } catch {
    return null;
  }
}

/** PGlite could not start on `dir`: a damaged folder, or another server's data directory. */
export function unusableDir(dir: string | null, displayUrl: string, e: unknown): Error {
  if (!dir) return e as Error;
  let version = '';
  try {
    version = readFileSync(join(dir, 'PG_VERSION'), 'utf8').trim();
  } catch {
    version = '';
  }
  const why = (e instanceof Error ? e.message : String(e)).split('\n')[0]!.replace(/\. Build with -sASSERTIONS.*$/, '');
  return new UsageError(
    `cannot open ${displayUrl}: ${dir} is not a PGlite database this tiergate can open (PGlite stopped: ${why}${version ? `; its PG_VERSION says ${version}` : ''}): ` +
      `a data directory of a PostgreSQL server is not one (rehearse it with --source postgres://…), and a damaged folder is restored from a copy`,
  );
}
