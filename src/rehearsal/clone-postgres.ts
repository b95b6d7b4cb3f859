import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb, parseTarget, withDb } from '../db/open-db.js';
import { editPostgresUrl } from '../db/pg-url.js';
import type { Db } from '../db/port.js';
import { ConnectionError, TargetError, UsageError } from '../errors.js';
import { redactUrl } from '../secrets.js';
import { markClone, ScopedClone, type CloneProvider } from './clone.js';
import { findPgTools, runTool, toolConnection, toolProblems } from './clone-tools.js';

/**
 * Clones of a PostgreSQL database onto a scratch server: `pg_dump
 * --format=custom` of the source (read-only by nature, and run with
 * default_transaction_read_only on), `pg_restore --no-owner --no-privileges`
 * (in one transaction or with two jobs: `restoreMode`) into a new database
 * `tiergate_clone_<source>_<random>`, marked; further clones are `CREATE
 * DATABASE … TEMPLATE` the first.
 */
export function postgresProvider(sourceUrl: string, scratchUrl: string): CloneProvider {
  requireServerUrl(sourceUrl, '--source');
  requireServerUrl(scratchUrl, '--scratch');
  return async (count, progress, register) => {
    const started = performance.now();
    const source = await readSource(sourceUrl);
    const scratch = await readScratch(scratchUrl);
    const scratchVersion = scratch.version;
    const tools = findPgTools(Math.floor(source.version / 10000));
    const base = cloneName(source.database);
    const work = mkdtempSync(join(tmpdir(), 'tiergate-dump-'));
    try {
      const file = join(work, 'source.dump');
      const snapshotAt = new Date().toISOString();
      const tables = await dump(tools.pgDump, sourceUrl, file, progress);
      const first = await createDatabase(scratchUrl, base, scratchVersion, null, register);
      first.snapshotAt = snapshotAt;
      progress(`restoring into ${first.displayUrl}`);
      await restore(tools.pgRestore, first.url, file, tables, restoreMode(tools.pgRestore, file, tables, scratch.lockSlots), progress);
      await withDb(first.url, (db) => markClone(db, source.database), { applicationName: 'tiergate rehearse (clone)' });
      first.copyMs = Math.round(performance.now() - started);
      progress(`clone 1 of ${count} ready in ${(first.copyMs / 1000).toFixed(1)} s`);
      for (let i = 1; i < count; i++) {
        const t = performance.now();
        const next = await createDatabase(scratchUrl, `${base}_${i + 1}`, scratchVersion, base, register);
        next.snapshotAt = snapshotAt;
        next.copyMs = Math.round(performance.now() - t);
        progress(`clone ${i + 1} of ${count} copied (CREATE DATABASE … TEMPLATE) in ${(next.copyMs / 1000).toFixed(1)} s`);
      }
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  };
}

/** The scratch server's version and lock table size (max_locks_per_transaction × (max_connections + max_prepared_transactions)), in one visit. */
export async function readScratch(scratchUrl: string): Promise<{ version: number; lockSlots: number }> {
  return withServer(scratchUrl, 'the scratch server', async (db) => {
    const r = await db.query<{ n: string }>(
      `select current_setting('max_locks_per_transaction')::int8 * (current_setting('max_connections')::int8 + current_setting('max_prepared_transactions')::int8) as n`,
    );
    return { version: db.capabilities.serverVersion, lockSlots: Number(r.rows[0]?.n ?? 0) };
  });
}

function requireServerUrl(url: string, flag: string): void {
  const t = parseTarget(url);
  if (t.kind !== 'postgres') throw new UsageError(`${flag} must be a PostgreSQL server URL (postgres://user@host:port/database), not '${redactUrl(url)}'`);
}

/** Name, server version and database of the source, read in a read-only transaction. */
async function readSource(url: string): Promise<{ database: string; version: number }> {
  return withServer(url, 'the source', (db) =>
    db.transaction(async (tx) => {
      const r = await tx.query<{ d: string }>('select current_database() as d');
      return { database: r.rows[0]?.d ?? 'postgres', version: db.capabilities.serverVersion };
    }, { readOnly: true }),
  );
}

/** Connects, naming which server could not be reached (the adapter's message already redacts the URL). */
async function withServer<T>(url: string, what: string, fn: (db: Db) => Promise<T>): Promise<T> {
  let db: Db;
  try {
    db = await openDb(url, { applicationName: 'tiergate rehearse (clone)' });
  } catch (e) {
    if (e instanceof ConnectionError) throw new ConnectionError(`${what}: ${e.message}`);
    throw e;
  }
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

/** `tiergate_clone_<source>_<random>`: a valid, unquoted-safe name within 63 bytes. */
function cloneName(sourceDatabase: string): string {
  const slug = sourceDatabase.toLowerCase().replace(/[^a-z0-9_]+/g, '_').slice(0, 32) || 'db';
  return `tiergate_clone_${slug}_${randomBytes(3).toString('hex')}`;
}

function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function databaseUrl(serverUrl: string, database: string): string {
  return editPostgresUrl(serverUrl, (u) => {
    u.pathname = '/' + encodeURIComponent(database);
  });
}

/**
 * Creates an empty database (from template0) or a copy of `template`,
 * registered for cleanup before it is created (its removal is `drop database
 * if exists`): a process killed at any moment leaves no clone its owner was
 * not told of.
 */
async function createDatabase(
  scratchUrl: string,
  name: string,
  scratchVersion: number,
  template: string | null,
  register: (c: ScopedClone) => void | Promise<void>,
): Promise<ScopedClone> {
  const url = databaseUrl(scratchUrl, name);
  const clone = new ScopedClone(url, redactUrl(url), 'postgres', () => dropDatabase(scratchUrl, name, scratchVersion));
  await register(clone);
  await withServer(scratchUrl, 'the scratch server', async (db) => {
    try {
      await db.exec(`create database ${ident(name)} template ${ident(template ?? 'template0')}`);
    } catch (e) {
      throw new TargetError(`cannot create the clone database '${name}' on ${redactUrl(scratchUrl)}: ${(e as Error).message}; the --scratch user needs CREATEDB`);
    }
  });
  return clone;
}

async function dropDatabase(scratchUrl: string, name: string, scratchVersion: number): Promise<void> {
  await withServer(scratchUrl, 'the scratch server', async (db) => {
    if (scratchVersion >= 130000) {
      await db.exec(`drop database if exists ${ident(name)} with (force)`);
      return;
    }
    await db.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [name]);
    await db.exec(`drop database if exists ${ident(name)}`);
  });
}

/** pg_dump of the source into `file`; returns the number of tables whose data it dumped. */
async function dump(pgDump: string, sourceUrl: string, file: string, progress: (m: string) => void): Promise<number> {
  const { dbname, env } = toolConnection(sourceUrl);
  // belt and braces: pg_dump only reads, and this session could not write even if it tried
  env.PGOPTIONS = `${process.env.PGOPTIONS ?? ''} -c default_transaction_read_only=on`.trim();
  env.PGAPPNAME = 'tiergate rehearse (pg_dump of the source)';
  progress(`pg_dump of ${redactUrl(sourceUrl)}`);
  let tables = 0;
  const report = throttle(2000, () => progress(`pg_dump: ${tables} tables, ${megabytes(file)} MB`));
  // uncompressed: the file is local and read once; compressing it cost half of
  // pg_dump's time on the sample at scale 100 (14.6 s with --compress=1, 7.8 s without)
  const run = await runTool(
    pgDump,
    ['--format=custom', '--compress=0', '--no-sync', '--lock-wait-timeout=30s', '--verbose', `--file=${file}`, `--dbname=${dbname}`],
    env,
    (line) => {
      if (/dumping contents of table/.test(line)) tables++;
      report();
    },
  );
  if (run.code !== 0) {
    const locks = run.errors.some((l) => /out of shared memory|max_locks_per_transaction/.test(l))
      ? `\npg_dump locks every table of the source in one transaction, and the source's lock table ` +
        `(max_locks_per_transaction × max_connections) is too small for its tables: raise max_locks_per_transaction on the source (a restart), then run again`
      : '';
    throw new TargetError(`pg_dump of ${redactUrl(sourceUrl)} failed (exit ${run.code}):\n  ${toolProblems(run)}${locks}`);
  }
  progress(`pg_dump: ${tables} tables, ${megabytes(file)} MB`);
  return tables;
}

/**
 * How pg_restore runs. A dump of many small objects (Directus: thousands of
 * collections of a few rows) restores fastest in ONE transaction: no commit —
 * a WAL flush on a durable server — per object; on the sample at scale 100
 * (6,500 tables) 50 s against 95 s with --jobs=2 on a busy two-core machine.
 * One transaction holds a lock on every object it creates, so it is used only
 * when they fit in half the scratch server's lock table. Large tables restore
 * faster with two jobs (COPY and index builds in parallel).
 */
export function restoreMode(pgRestore: string, file: string, tables: number, lockSlots: number): { args: string[]; why: string } {
  const list = spawnSync(pgRestore, ['--list', file], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  const entries = list.status === 0 ? list.stdout.split('\n').filter((l) => /^\d+;/.test(l)).length : Number.POSITIVE_INFINITY;
  const bytesPerTable = statSync(file).size / Math.max(tables, 1);
  if (entries <= lockSlots / 2 && bytesPerTable < 1e6) {
    return { args: ['--single-transaction'], why: `one transaction: ${entries} small objects, lock table ${lockSlots}` };
  }
  const reason = entries > lockSlots / 2 ? `${entries} objects > half the lock table (${lockSlots})` : `${(bytesPerTable / 1e6).toFixed(1)} MB per table`;
  return { args: ['--jobs=2'], why: `two jobs: ${reason}` };
}

/** pg_restore of `file` into the clone, without owners and privileges (the scratch server has other roles). */
async function restore(pgRestore: string, cloneUrl: string, file: string, tables: number, mode: { args: string[]; why: string }, progress: (m: string) => void): Promise<void> {
  const { dbname, env } = toolConnection(cloneUrl);
  env.PGAPPNAME = 'tiergate rehearse (pg_restore into the clone)';
  let created = 0;
  let restored = 0;
  const report = throttle(2000, () => progress(`pg_restore: ${created} objects created, ${restored} of ${tables} tables filled`));
  progress(`pg_restore (${mode.why})`);
  const run = await runTool(pgRestore, [...mode.args, '--no-owner', '--no-privileges', '--verbose', `--dbname=${dbname}`, file], env, (line) => {
    if (/^pg_restore: creating /.test(line)) created++;
    // one line per table in either mode (with --jobs a worker prints it, and "finished item N TABLE DATA" follows: not counted again)
    else if (/processing data for table/.test(line)) restored++;
    report();
  });
  // a clone that misses part of the source would prove nothing: any restore error fails
  if (run.code !== 0) throw new TargetError(`pg_restore into ${redactUrl(cloneUrl)} failed (exit ${run.code}):\n  ${toolProblems(run)}`);
  progress(`pg_restore: ${created} objects created, ${tables} of ${tables} tables filled`);
}

function throttle(ms: number, fn: () => void): () => void {
  let last = performance.now();
  return () => {
    if (performance.now() - last < ms) return;
    last = performance.now();
    fn();
  };
}

function megabytes(file: string): string {
  try {
    return (statSync(file).size / 1e6).toFixed(1);
  } catch {
    return '0.0';
  }
}
