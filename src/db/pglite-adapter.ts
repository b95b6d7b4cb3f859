import type { PGlite } from '@electric-sql/pglite';
import { toDbError } from './db-error.js';
import { acquireDirLock, type DirLock } from './dir-lock.js';
import type { Capabilities, Db, QueryResult, Queryable, TransactionOptions } from './port.js';

export interface PgliteLocation {
  /** null: in memory */
  dir: string | null;
  database: string;
  /** the directory's id (`.tiergate-database`), when tiergate made it */
  instance?: string | null;
}

/**
 * PGlite adapter: PostgreSQL in WASM, in this process. A data directory can be
 * open in one process only, so opening one takes an exclusive lock file.
 */
export class PgliteDb implements Db {
  readonly capabilities: Capabilities;
  private closed = false;

  private constructor(
    readonly pg: PGlite,
    readonly location: PgliteLocation,
    readonly displayUrl: string,
    private readonly lock: DirLock | null,
    serverVersion: number,
  ) {
    this.capabilities = { driver: 'pglite', singleConnection: true, pgDump: false, serverVersion, instance: location.instance ?? null };
  }

  /** Opens a data directory (created only with `create`), or an in-memory database. */
  static async open(location: PgliteLocation, displayUrl: string, options: { loadDataDir?: Blob; create?: boolean } = {}): Promise<PgliteDb> {
    const lock = location.dir ? acquireDirLock(location.dir, { create: Boolean(options.create) }) : null;
    try {
      const { PGlite } = await import('@electric-sql/pglite');
      const pg = new PGlite(location.dir ?? undefined, {
        database: location.database,
        loadDataDir: options.loadDataDir,
        // counts (int8) and numeric as numbers, like the pg adapter
        parsers: { 20: (v: string) => Number(v), 1700: (v: string) => Number(v) },
      });
      await pg.waitReady;
      const v = await pg.query<{ v: string }>('select current_setting($1) as v', ['server_version_num']);
      return new PgliteDb(pg, location, displayUrl, lock, Number(v.rows[0]?.v ?? 0));
    } catch (e) {
      lock?.release();
      throw e;
    }
  }

  async query<R = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<QueryResult<R>> {
    try {
      const r = await this.pg.query<R>(sql, params);
      return { rows: r.rows, rowCount: r.affectedRows ?? r.rows.length };
    } catch (e) {
      throw toDbError(e);
    }
  }

  async exec(script: string): Promise<void> {
    try {
      await this.pg.exec(script);
    } catch (e) {
      throw toDbError(e);
    }
  }

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

  /** One process, one connection: the sibling is this same connection (closing it is a no-op). */
  async sibling(): Promise<Db> {
    return new Proxy(this, {
      get: (target, prop, receiver) => (prop === 'close' ? async () => undefined : Reflect.get(target, prop, receiver)),
    });
  }

  alive(): boolean {
    return !this.closed;
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
