/**
 * The control database of a fleet rollout: pg-boss's tables (the queue, its
 * retries and heartbeats, the per-server group limits) and tiergate's own
 * (rollout, wave, target, step) in schema `tiergate_fleet`. A real
 * PostgreSQL (`--control postgres://…`) is shared by workers on several
 * machines; without it, an embedded PGlite folder serves one machine (one
 * process at a time: the folder is locked).
 */
import { resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { isPostgresUrl } from '../db/pg-url.js';
import { sslConnectionString } from '../db/pg-adapter.js';
import { redactUrl, scrub } from '../secrets.js';
import type { PgBoss } from 'pg-boss';

export const DEFAULT_CONTROL_DIR = '.tiergate-fleet';
const BOSS_SCHEMA = 'tiergate_boss';

export interface Control {
  boss: PgBoss;
  kind: 'pglite' | 'postgres';
  /** for messages: the control URL, password redacted, or the PGlite folder */
  shown: string;
  sql<R = Record<string, unknown>>(text: string, values?: unknown[]): Promise<R[]>;
  close(): Promise<void>;
}

const SCHEMA = `
create schema if not exists tiergate_fleet;
create table if not exists tiergate_fleet.rollout (
  id text primary key,
  key text not null,
  plan_name text not null,
  plan_sha256 text not null,
  targets_file text not null,
  targets_sha256 text not null,
  scratch text,
  total int not null,
  per_server int not null,
  plan_database text not null default 'plan',
  state text not null default 'running',
  reason text,
  created_at timestamptz not null default now(),
  finished_at timestamptz
);
alter table tiergate_fleet.rollout add column if not exists plan_database text not null default 'plan';
create unique index if not exists rollout_running on tiergate_fleet.rollout (key) where state = 'running';
create table if not exists tiergate_fleet.wave (
  rollout text not null references tiergate_fleet.rollout (id),
  idx int not null,
  name text not null,
  failure_budget int not null,
  on_error text not null,
  no_go text not null,
  state text not null default 'waiting',
  started_at timestamptz,
  finished_at timestamptz,
  primary key (rollout, idx)
);
create table if not exists tiergate_fleet.target (
  rollout text not null references tiergate_fleet.rollout (id),
  name text not null,
  ord int not null,
  wave int not null,
  url text not null,
  password_env text,
  server text not null,
  labels jsonb not null default '{}',
  state text not null default 'planned',
  attempts int not null default 0,
  worker text,
  started_at timestamptz,
  finished_at timestamptz,
  rehearsal text,
  execution text,
  applied int[],
  evidence text,
  evidence_sha256 text,
  error text,
  primary key (rollout, name)
);
create table if not exists tiergate_fleet.step (
  id bigserial primary key,
  rollout text not null,
  target text not null,
  step text not null,
  server text not null,
  worker text not null,
  started_at timestamptz not null default clock_timestamp(),
  finished_at timestamptz,
  outcome text
);
alter table tiergate_fleet.step add column if not exists clones text[] not null default '{}';
`;

/** pg-boss's errors and warnings (a start retried, a queue backlog) go to stderr, scrubbed: never silent, never a crash. */
function listen(boss: PgBoss): void {
  const say = (kind: string) => (e: unknown) => process.stderr.write(`tiergate: pg-boss ${kind}: ${scrub(String((e as { message?: string })?.message ?? e))}\n`);
  boss.on('error', say('error'));
  boss.on('warning', say('warning'));
}

/** How long opening the control database may take before it is an error (pg-boss retries a start that fails). */
const OPEN_TIMEOUT_MS = 120_000;

function bounded<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${OPEN_TIMEOUT_MS / 1000} s`)), OPEN_TIMEOUT_MS);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Seconds without a heartbeat after which pg-boss takes a step's worker for dead and retries the step elsewhere. */
export function heartbeatSeconds(): number {
  const v = Number(process.env.TIERGATE_FLEET_HEARTBEAT_SECONDS);
  return Number.isInteger(v) && v >= 10 ? v : 30;
}

/**
 * Opens the control database: `url` a postgres:// URL, `pglite:DIR`, or
 * nothing (the PGlite folder ./.tiergate-fleet, created when missing).
 * Installs pg-boss's schema and tiergate's fleet tables when they are not
 * there.
 */
export async function openControl(url: string | undefined, options: { create?: boolean } = {}): Promise<Control> {
  const { PgBoss, fromPglite } = await import('pg-boss');
  // pg-boss fails a job whose heartbeat stopped in its monitor pass: every monitorIntervalSeconds (its default 60 s
  // retried a dead worker's step ~64 s after the worker died, with a heartbeat of 10 s); a third of the heartbeat
  // keeps the retry within the heartbeat and a third of it
  const quiet = { superviseIntervalSeconds: 5, maintenanceIntervalSeconds: 120, monitorIntervalSeconds: Math.max(5, Math.floor(heartbeatSeconds() / 3)) } as const;
  if (url && isPostgresUrl(url)) {
    // every wait on the control database is bounded: a connection not had within 30 s, a lock not had within 30 s, a
    // statement not done within 60 s is an error with a message, never a silent hang
    // its sslmode as libpq reads it: the connection string of the attempt that connects (src/db/ssl-mode.ts)
    const connectionString = await sslConnectionString(url);
    const boss = new PgBoss({
      connectionString,
      schema: BOSS_SCHEMA,
      max: 6,
      connectionTimeoutMillis: 30_000,
      options: '-c lock_timeout=30000 -c statement_timeout=60000',
      application_name: 'tiergate fleet (control)',
      ...quiet,
    });
    const shown = redactUrl(url);
    listen(boss);
    try {
      await bounded(boss.start(), `starting pg-boss on the control database ${shown}`);
    } catch (e) {
      await boss.stop({ graceful: false, timeout: 1000 }).catch(() => undefined);
      throw new UsageError(`control database ${shown} cannot be used: ${(e as Error).message}`);
    }
    const db = boss.getDb();
    // one statement, one transaction, under a lock: processes starting together do not race on CREATE SCHEMA
    await bounded(db.executeSql(`do $install$ begin perform pg_advisory_xact_lock(hashtext('tiergate_fleet install')); ${SCHEMA.replace(/;\s*$/, ';')} end $install$`), `creating tiergate's fleet tables on ${shown}`);
    return {
      boss,
      kind: 'postgres',
      shown,
      sql: async (text, values) => ((await db.executeSql(text, values)) as { rows: never[] }).rows,
      close: () => boss.stop({ graceful: false, timeout: 2000 }),
    };
  }
  if (url && !url.startsWith('pglite:')) throw new UsageError(`--control '${redactUrl(url)}': give a postgres:// URL (shared by workers on several machines) or pglite:DIR (this machine only)`);
  const dir = resolve(url ? url.slice('pglite:'.length).replace(/^\/\/(?=\/)/, '') : DEFAULT_CONTROL_DIR);
  const { existsSync } = await import('node:fs');
  if (!options.create && !existsSync(dir)) throw new UsageError(`no fleet control folder ${dir}: run 'tiergate fleet apply' first (or pass --control where it ran)`);
  const { acquireDirLock } = await import('../db/dir-lock.js');
  const lock = acquireDirLock(dir, { create: true, command: 'fleet' });
  try {
    const { PGlite } = await import('@electric-sql/pglite');
    const pg = await PGlite.create(dir);
    const boss = new PgBoss({ db: fromPglite(pg), backend: 'pglite', schema: BOSS_SCHEMA, ...quiet });
    listen(boss);
    await bounded(boss.start(), `starting pg-boss in ${dir}`);
    await pg.exec(SCHEMA);
    return {
      boss,
      kind: 'pglite',
      shown: `pglite:${dir}`,
      sql: async (text, values) => (await pg.query(text, values ?? [])).rows as never[],
      async close() {
        try {
          await boss.stop({ graceful: false, timeout: 2000 });
          await pg.close();
        } finally {
          lock.release();
        }
      },
    };
  } catch (e) {
    lock.release();
    throw e;
  }
}
