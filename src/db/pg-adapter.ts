import type pg from 'pg';
import { CommitInDoubtError, ConnectionError, DbError, NO_PASSWORD_GIVEN } from '../errors.js';
import { redactUrl } from '../secrets.js';
import { toDbError } from './db-error.js';
import { withPgpassPassword } from './pgpass.js';
import { libpqSslUrls, wantsOtherSsl } from './ssl-mode.js';
import type { Capabilities, Db, QueryResult, Queryable, TransactionOptions } from './port.js';

/** node-postgres adapter: one `pg.Client` per Db (sessions matter: advisory locks, SET). */
export class PgDb implements Db {
  readonly displayUrl: string;
  private dead = false;
  /** why the connection died (the server's FATAL, a reset, a response timeout) */
  private lostBecause: unknown = null;
  private responseTimeoutMs: number | null = null;

  private constructor(
    private readonly client: pg.Client,
    private readonly url: string,
    readonly capabilities: Capabilities,
  ) {
    this.displayUrl = redactUrl(url);
    // A server-side termination emits 'error' on an idle client: without a
    // listener node would crash the process. Mark the connection dead instead.
    client.on('error', (e) => {
      this.dead = true;
      this.lostBecause ??= e;
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
    const { client } = await connectLibpqSsl(pgModule, url, applicationName);
    // dates printed in ISO, which the driver reads (a DateStyle of 'SQL, DMY' set for the role or database made every
    // time of the ledger 1970-01-01); only the output part: the day-month order a tier's input is read in stays the server's
    const v = await client.query<{ v: string }>(`select current_setting('server_version_num') as v, set_config('datestyle', 'ISO', false)`).catch(async (e: unknown) => {
      // (a connection whose first query fails is closed, or it keeps the process alive)
      await client.end().catch(() => undefined);
      throw connectionError(url, e);
    });
    return new PgDb(client, url, { driver: 'pg', singleConnection: false, pgDump: true, serverVersion: Number(v.rows[0]?.v ?? 0), instance: null });
  }

  async query<R = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<QueryResult<R>> {
    try {
      const r = await this.bounded(this.client.query(sql, params));
      return { rows: r.rows as R[], rowCount: r.rowCount ?? r.rows.length };
    } catch (e) {
      throw this.describe(e);
    }
  }

  async exec<R = Record<string, unknown>>(script: string): Promise<QueryResult<R>[]> {
    try {
      // no parameters: the simple query protocol, so a script may hold many statements (a result each; one alone is not in an array)
      const r = (await this.bounded(this.client.query(script))) as pg.QueryResult | pg.QueryResult[];
      return (Array.isArray(r) ? r : [r]).map((x) => ({ rows: (x.rows ?? []) as R[], rowCount: x.rowCount ?? x.rows?.length ?? 0 }));
    } catch (e) {
      throw this.describe(e);
    }
  }

  setResponseTimeout(ms: number | null): void {
    this.responseTimeoutMs = ms;
  }

  /**
   * Waits for an answer at most the response timeout: in a silent partition
   * (nothing arrives, nothing closes) the socket is destroyed, which fails
   * the pending query and marks the connection lost.
   */
  private async bounded<T>(pending: Promise<T>): Promise<T> {
    const ms = this.responseTimeoutMs;
    if (ms === null || this.dead) return pending;
    let timer: NodeJS.Timeout | undefined;
    const watchdog = new Promise<never>(() => {
      timer = setTimeout(() => {
        this.dead = true;
        this.lostBecause ??= new Error(`no answer from the server for ${Math.round(ms / 1000)} s (a network partition?)`);
        // pg keeps its socket on `connection.stream`; destroying it fails the pending query at once
        (this.client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
      }, ms);
    });
    try {
      return await Promise.race([pending, watchdog]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** A driver error as a DbError; once the connection is gone, says so, with its cause. */
  private describe(e: unknown): DbError {
    const err = toDbError(e);
    if (!this.dead && !isConnectionLoss(e)) return err;
    this.dead = true;
    const cause = this.lostBecause && this.lostBecause !== e ? toDbError(this.lostBecause) : err;
    const because = cause.message === err.message ? cause.message : `${cause.message}; ${err.message}`;
    return new DbError(
      `the connection to ${this.displayUrl} was lost (${because})`,
      cause.sqlstate ?? err.sqlstate ?? '08006',
      cause.detail ?? err.detail,
      'the server rolls back an open transaction when its connection is lost; check the network and the server, then run again',
      null,
      cause.where ?? err.where,
    );
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    await this.exec(options.readOnly ? 'begin transaction read only' : 'begin');
    let out: T;
    try {
      out = await fn(this);
    } catch (e) {
      // (once more if the first was refused: a cancel of the statement before it, sent at Ctrl-C, may land on it)
      if (!this.dead) await this.exec('rollback').catch(() => (this.dead ? undefined : this.exec('rollback'))).catch(() => undefined);
      throw e;
    }
    try {
      await this.exec('commit');
    } catch (e) {
      // COMMIT sent, no answer: whether the server committed is unknown to us
      if (this.dead && e instanceof DbError) throw new CommitInDoubtError(e);
      throw e;
    }
    return out;
  }

  async sibling(): Promise<Db> {
    const db = await PgDb.connect(this.url);
    db.setResponseTimeout(this.responseTimeoutMs);
    return db;
  }

  alive(): boolean {
    return !this.dead;
  }

  async cancelStatement(): Promise<void> {
    // the backend's pid, from the connection's start (BackendKeyData): no query on this busy connection
    const pid = (this.client as unknown as { processID?: number }).processID;
    if (!pid || this.dead) return;
    const other = await PgDb.connect(this.url, 'tiergate (cancelling a statement at Ctrl-C)');
    other.setResponseTimeout(CANCEL_ANSWER_MS);
    try {
      // only while it runs a statement, and never its COMMIT or ROLLBACK: a cancel that reached a COMMIT would leave
      // whether it committed to a race, and one that reached a ROLLBACK would leave the transaction open
      await other.query(
        `select pg_cancel_backend(pid) from pg_stat_activity where pid = $1 and state = 'active' and query !~* '^\\s*(commit|rollback|end|abort)\\M'`,
        [pid],
      );
    } finally {
      await other.close();
    }
  }

  async close(): Promise<void> {
    this.dead = true;
    await this.client.end().catch(() => undefined);
  }
}

/** How long a cancel waits for the server's answer (the cancelling connection's own bound). */
const CANCEL_ANSWER_MS = 10_000;

/** node-postgres's ways of saying the socket is gone (no SQLSTATE), and the server's FATAL shutdowns. */
function isConnectionLoss(e: unknown): boolean {
  const x = e as { code?: unknown; message?: unknown } | null;
  const code = typeof x?.code === 'string' ? x.code : '';
  if (/^08/.test(code) || /^57P0[123]$/.test(code)) return true;
  if (['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH'].includes(code)) return true;
  return typeof x?.message === 'string' && /Connection terminated|not queryable|connection error/i.test(x.message);
}

/**
 * A connected client for `url`, its sslmode read as libpq reads it
 * (src/db/ssl-mode.ts: `allow` and `prefer` may take a second attempt), and
 * the connection string that connected.
 */
export async function connectLibpqSsl(pgModule: typeof pg, url: string, applicationName: string): Promise<{ client: pg.Client; connectionString: string }> {
  const attempts = libpqSslUrls(url);
  for (const [i, connectionString] of attempts.entries()) {
    const client = new pgModule.Client({ connectionString: await withPgpassPassword(connectionString), application_name: applicationName, connectionTimeoutMillis: 15_000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      return { client, connectionString };
    } catch (e) {
      await client.end().catch(() => undefined);
      if (i < attempts.length - 1 && wantsOtherSsl(e)) continue;
      throw connectionError(url, e);
    }
  }
  throw connectionError(url, new Error('no connection attempt'));
}

/**
 * The connection string a pool should be given for `url` (pg-boss's, a
 * fleet's control): the attempt of `libpqSslUrls` that connects, found by
 * connecting once when there are two.
 */
export async function sslConnectionString(url: string): Promise<string> {
  const attempts = libpqSslUrls(url);
  if (attempts.length === 1) return withPgpassPassword(attempts[0]!);
  const { default: pgModule } = await import('pg');
  const { client, connectionString } = await connectLibpqSsl(pgModule, url, 'tiergate');
  await client.end().catch(() => undefined);
  return withPgpassPassword(connectionString);
}

function connectionError(url: string, e: unknown): ConnectionError {
  const err = toDbError(e);
  const where = redactUrl(url);
  // the server asked for a password and none was given (node-postgres says so in its own words, with no SQLSTATE)
  if (err.sqlstate === null && /client password must be a string|password must be a string|no password (was )?(supplied|given|provided)/i.test(err.message)) {
    return new ConnectionError(
      `cannot connect to ${where}: ${NO_PASSWORD_GIVEN}`,
      '28P01',
    );
  }
  const advice =
    err.sqlstate === '28000' && /no encryption/i.test(err.message)
      ? // pg_hba.conf has only hostssl lines for this user and host
        'the server accepts this user from this host only over TLS: add sslmode=require (or verify-full with sslrootcert) to the URL'
      : err.sqlstate === '28P01' || err.sqlstate === '28000'
      ? 'check the user and password (URL or PGPASSWORD / ~/.pgpass)'
      : err.sqlstate === '3D000'
        ? 'check the database name in the URL'
        : err.sqlstate === '22023' || err.sqlstate === '42704' || err.sqlstate === '42501' || err.sqlstate === '55P02'
          ? // the server refused a setting the URL's options (or PGOPTIONS) asked for at connection time
            "check the settings the URL's options (-c name=value) or PGOPTIONS ask for"
          : err.sqlstate === '57014'
            ? // the first query (server_version_num) of the session: only a statement_timeout of the role or database ends it
              'its first statement ran out of the statement_timeout the server sets for this user or database: raise it (ALTER ROLE … SET statement_timeout = …), tiergate bounds its own statements once connected'
          : err.sqlstate === '53300' || err.sqlstate === '57P03'
            ? 'the server cannot take this connection now (too many connections, or it is starting or stopping): try again in a moment'
            : 'check that the server is running and the host, port and sslmode are right';
  return new ConnectionError(`cannot connect to ${where}: ${err.message}${err.sqlstate ? ` (SQLSTATE ${err.sqlstate})` : ''}; ${advice}`, err.sqlstate);
}
