import type pg from 'pg';
import { ConnectionError } from '../errors.js';
import { redactUrl } from '../secrets.js';
import { toDbError } from './db-error.js';
import type { Capabilities, Db, QueryResult, Queryable, TransactionOptions } from './port.js';

/** node-postgres adapter: one `pg.Client` per Db (sessions matter: advisory locks, SET). */
export class PgDb implements Db {
  readonly displayUrl: string;
  private dead = false;

  private constructor(
    private readonly client: pg.Client,
    private readonly url: string,
    readonly capabilities: Capabilities,
  ) {
    this.displayUrl = redactUrl(url);
    // A server-side termination emits 'error' on an idle client: without a
    // listener node would crash the process. Mark the connection dead instead.
    client.on('error', () => {
      this.dead = true;
    });
    client.on('end', () => {
      this.dead = true;
    });
  }

  static async connect(url: string, applicationName = 'tiergate'): Promise<PgDb> {
    const { default: pgModule } = await import('pg');
    // bigint (int8) and numeric come back as strings by default; counts are safe as numbers here
    pgModule.types.setTypeParser(20, (v: string) => Number(v));
    pgModule.types.setTypeParser(1700, (v: string) => Number(v));
    const client = new pgModule.Client({ connectionString: url, application_name: applicationName, connectionTimeoutMillis: 15_000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
    } catch (e) {
      await client.end().catch(() => undefined);
      throw connectionError(url, e);
    }
    const v = await client.query<{ v: string }>('select current_setting($1) as v', ['server_version_num']);
    return new PgDb(client, url, { driver: 'pg', singleConnection: false, pgDump: true, serverVersion: Number(v.rows[0]?.v ?? 0) });
  }

  async query<R = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<QueryResult<R>> {
    try {
      const r = await this.client.query(sql, params);
      return { rows: r.rows as R[], rowCount: r.rowCount ?? r.rows.length };
    } catch (e) {
      throw toDbError(e);
    }
  }

  async exec(script: string): Promise<void> {
    try {
      // no parameters: the simple query protocol, so a script may hold many statements
      await this.client.query(script);
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
      if (!this.dead) await this.exec('rollback').catch(() => undefined);
      throw e;
    }
  }

  sibling(): Promise<Db> {
    return PgDb.connect(this.url);
  }

  alive(): boolean {
    return !this.dead;
  }

  async close(): Promise<void> {
    this.dead = true;
    await this.client.end().catch(() => undefined);
  }
}

function connectionError(url: string, e: unknown): ConnectionError {
  const err = toDbError(e);
  const where = redactUrl(url);
  const advice =
    err.sqlstate === '28P01' || err.sqlstate === '28000'
      ? 'check the user and password (URL or PGPASSWORD / ~/.pgpass)'
      : err.sqlstate === '3D000'
        ? 'check the database name in the URL'
        : 'check that the server is running and the host, port and sslmode are right';
  return new ConnectionError(`cannot connect to ${where}: ${err.message}${err.sqlstate ? ` (SQLSTATE ${err.sqlstate})` : ''}; ${advice}`);
}
