import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { toDbError } from './db-error.js';
import type { DirLock } from './dir-lock.js';
import { TargetError } from '../errors.js';
import { countWorker, lockDir, SERVER_SEARCH_PATH, SingleSessionDb, missingDatabase, unusableDir, type PgliteLocation } from './pglite-adapter.js';
import type { Capabilities, QueryResult } from './port.js';

/**
 * A PGlite data directory opened in a worker thread: the same single
 * session as `PgliteDb`, but its WASM runs on another core. PGlite runs in
 * the thread that calls it, so a rehearsal's two clones on the main thread
 * took turns — stage C's "meanwhile" (the kept tiers on the second clone
 * while the rollback runs on the first) was serial. The second clone lives
 * here instead (src/rehearsal/clone-pglite.ts); the first stays on the
 * main thread, where nothing is copied between threads.
 *
 * Each query is one message each way (structured clone of its parameters
 * and rows); errors come back as PostgreSQL's fields and become a DbError
 * here, exactly as `PgliteDb` makes them.
 */
export class PgliteWorkerDb extends SingleSessionDb {
  readonly capabilities: Capabilities;
  private next = 1;
  private readonly waiting = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void }>();
  private failure: Error | null = null;
  private exited = false;

  private constructor(
    private readonly worker: Worker,
    readonly displayUrl: string,
    private readonly lock: DirLock,
    location: PgliteLocation,
  ) {
    super();
    this.capabilities = { driver: 'pglite', singleConnection: true, pgDump: false, serverVersion: 0, instance: location.instance ?? null };
    worker.on('message', (m: Reply) => {
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if ('error' in m) w.reject(toDbError(m.error));
      else w.resolve(m.result);
    });
    countWorker(1);
    const fail = (e: Error) => {
      this.ended();
      this.failure ??= e;
      this.closed = true;
      for (const w of this.waiting.values()) w.reject(new TargetError(`the PGlite worker of ${displayUrl} stopped: ${e.message}`));
      this.waiting.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`exit code ${code}`)));
  }

  static async start(location: PgliteLocation, displayUrl: string): Promise<PgliteWorkerDb> {
    if (!location.dir) throw new TargetError('a PGlite worker opens a data directory, not an in-memory database');
    const lock = lockDir(location.dir, displayUrl, false);
    let worker: Worker | null = null;
    try {
      worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { module: pgliteModule(), dir: location.dir, database: location.database, searchPath: SERVER_SEARCH_PATH } });
      const db = new PgliteWorkerDb(worker, displayUrl, lock, location);
      // (the first query opens the folder: PGlite stopping there is the folder's fault, said in words)
      const v = await db.query<{ v: string }>('select current_setting($1) as v', ['server_version_num']).catch(async (e: unknown) => {
        await worker?.terminate().catch(() => undefined);
        throw (await missingDatabase(location, displayUrl)) ?? unusableDir(location.dir, displayUrl, e);
      });
      (db.capabilities as { serverVersion: number }).serverVersion = Number(v.rows[0]?.v ?? 0);
      return db;
    } catch (e) {
      await worker?.terminate().catch(() => undefined);
      lock.release();
      throw e;
    }
  }

  private send<T>(message: Omit<Request, 'id'>): Promise<T> {
    if (this.closed) return Promise.reject(new TargetError(`the connection to ${this.displayUrl} is closed${this.failure ? ` (${this.failure.message})` : ''}`));
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ ...message, id });
    });
  }

  async query<R = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<QueryResult<R>> {
    return this.send<QueryResult<R>>({ op: 'query', sql, params });
  }

  async exec<R = Record<string, unknown>>(script: string): Promise<QueryResult<R>[]> {
    return this.send<QueryResult<R>[]>({ op: 'exec', sql: script });
  }

  async close(): Promise<void> {
    try {
      if (!this.closed) await this.send<null>({ op: 'close', sql: '' });
    } finally {
      this.closed = true;
      await this.worker.terminate().catch(() => undefined);
      this.ended();
      this.lock.release();
    }
  }

  /** Counted out of the open workers, once. */
  private ended(): void {
    if (this.exited) return;
    this.exited = true;
    countWorker(-1);
  }
}

interface Request {
  id: number;
  op: 'query' | 'exec' | 'close';
  sql: string;
  params?: unknown[];
}

type Reply = { id: number; result: unknown } | { id: number; error: Record<string, unknown> };

/** PGlite's ESM entry, as a file URL the worker can import (the worker has no module resolution of its own when evaluated). */
function pgliteModule(): string {
  const cjs = createRequire(import.meta.url).resolve('@electric-sql/pglite');
  return pathToFileURL(join(dirname(cjs), 'index.js')).href;
}

/**
 * The worker: opens the directory as `PgliteDb` does (counts and numerics as
 * numbers), then answers one request at a time, in order.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fields = (e) => ({ message: String(e && e.message || e), code: e && e.code, detail: e && e.detail, hint: e && e.hint, position: e && e.position, where: e && e.where });
(async () => {
  let pg = null;
  let opened = null;
  const open = () => (opened ??= import(workerData.module).then(async ({ PGlite }) => {
    pg = new PGlite(workerData.dir, { database: workerData.database, parsers: { 20: (v) => Number(v), 1700: (v) => Number(v) } });
    await pg.waitReady;
    // (the server's default search_path, as PgliteDb.start gives its sessions)
    await pg.query("select set_config('search_path', $1, false)", [workerData.searchPath]);
  }));
  let queue = Promise.resolve();
  parentPort.on('message', (m) => {
    queue = queue.then(async () => {
      try {
        await open();
        if (m.op === 'query') {
          const r = await pg.query(m.sql, m.params);
          parentPort.postMessage({ id: m.id, result: { rows: r.rows, rowCount: r.affectedRows ?? r.rows.length } });
        } else if (m.op === 'exec') {
          const rs = await pg.exec(m.sql);
          parentPort.postMessage({ id: m.id, result: rs.map((r) => ({ rows: r.rows, rowCount: r.affectedRows ?? r.rows.length })) });
        } else {
          await pg.close();
          parentPort.postMessage({ id: m.id, result: null });
        }
      } catch (e) {
        parentPort.postMessage({ id: m.id, error: fields(e) });
      }
    });
  });
})();
`;
