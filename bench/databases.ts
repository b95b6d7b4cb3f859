/**
 * Template databases of the sample Directus database and fresh copies of
 * them (`CREATE DATABASE … TEMPLATE`), plus a psql runner — everything the
 * measurements do to the server that is not itself measured.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import pg from 'pg';
import { sampleScripts } from '../fixtures/directus-sample/generate.js';
import type { Cluster } from './cluster.js';

/** The database name every copy gets: the plan's preflight refuses any other (plan `database: directus`). */
export const TARGET_DB = 'directus';

export class Server {
  constructor(readonly cluster: Cluster) {}

  /** Runs statements on a fresh connection to `db` (maintenance only, never timed). */
  async sql<R extends pg.QueryResultRow = Record<string, unknown>>(db: string, text: string): Promise<R[]> {
    const c = new pg.Client({ connectionString: this.cluster.url(db) });
    await c.connect();
    try {
      return (await c.query<R>(text)).rows;
    } finally {
      await c.end();
    }
  }

  /**
   * Builds the sample at `scale` into a new database `name`. The chunks of
   * repetitions are independent of each other (see generate.ts: each creates
   * its own tables and metadata rows with deterministic ids), so they run on
   * `workers` connections; the first (system tables) and last (proposals,
   * ANALYZE) chunks run alone.
   */
  async buildSample(name: string, scale: number, workers = 2): Promise<void> {
    await this.sql('postgres', `drop database if exists ${name}`);
    await this.sql('postgres', `create database ${name}`);
    const chunks = [...sampleScripts({ scale })];
    const clients = await Promise.all(
      Array.from({ length: Math.max(1, workers) }, async () => {
        const c = new pg.Client({ connectionString: this.cluster.url(name) });
        await c.connect();
        return c;
      }),
    );
    try {
      await clients[0]!.query(chunks[0]!);
      const middle = chunks.slice(1, -1);
      let next = 0;
      await Promise.all(
        clients.map(async (c) => {
          while (next < middle.length) await c.query(middle[next++]!);
        }),
      );
      await clients[0]!.query(chunks[chunks.length - 1]!);
    } finally {
      for (const c of clients) await c.end();
    }
    // every later read of the copies would otherwise set hint bits (writes) on first touch
    await this.sql(name, 'vacuum (freeze, analyze)');
  }

  /**
   * Adds `rows` rows to the sample's `orders` collection: a large table no
   * tier touches. Foreign-key triggers are skipped for the bulk insert
   * (session_replication_role = replica); every value is valid anyway.
   */
  async growOrders(name: string, rows: number): Promise<void> {
    await this.sql(
      name,
      `set session_replication_role = replica;
       insert into orders (status, customer, total, currency, date_created)
       select o.status, o.customer, o.total + g % 1000, o.currency, o.date_created + g * interval '1 second'
         from generate_series(1, ${rows}) g
         join orders o on o.id = 1 + g % 5;
       set session_replication_role = origin;`,
    );
    await this.sql(name, 'vacuum (freeze, analyze) orders');
  }

  /** A fresh copy of `template` named `as` (dropped first if left over). Not timed. */
  async copy(template: string, as = TARGET_DB, strategy: 'file_copy' | 'wal_log' = 'file_copy'): Promise<void> {
    await this.drop(as);
    await this.sql('postgres', `create database ${as} template ${template} strategy ${strategy}`);
  }

  async drop(name: string): Promise<void> {
    await this.sql('postgres', `drop database if exists ${name} with (force)`);
  }

  /** Drops every database whose name is LIKE `pattern` (what a run left on the server: tiergate's snapshots). */
  async dropLike(pattern: string): Promise<void> {
    const rows = await this.sql<{ d: string }>('postgres', `select datname as d from pg_database where datname like '${pattern.replace(/'/g, "''")}'`);
    for (const r of rows) await this.drop(`"${r.d.replace(/"/g, '""')}"`);
  }

  async size(name: string): Promise<number> {
    const r = await this.sql<{ n: string }>('postgres', `select pg_database_size('${name}')::text as n`);
    return Number(r[0]?.n ?? 0);
  }

  /** psql -X -q -1 -v ON_ERROR_STOP=1 -f FILE against `db`; throws on a non-zero exit. */
  psqlFile(db: string, file: string): Promise<void> {
    return run(join(this.cluster.bin, 'psql'), ['-X', '-q', '-1', '-v', 'ON_ERROR_STOP=1', '-f', file], this.cluster.env(db));
  }
}

/** Runs a program, stdout discarded; rejects with its stderr on a non-zero exit. */
export function run(file: string, args: string[], env: Record<string, string> = {}, cwd?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: { ...process.env, ...env }, cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      if (err.length < 20_000) err += d;
    });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${file} ${args.join(' ')} exited ${code}:\n${err.trim().split('\n').slice(-15).join('\n')}`))));
  });
}

/** Runs a program and returns its exit code and stdout (stderr discarded). */
export function capture(file: string, args: string[], env: Record<string, string> = {}, cwd?: string): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: { ...process.env, ...env }, cwd, stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      out += d;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout: out }));
  });
}
