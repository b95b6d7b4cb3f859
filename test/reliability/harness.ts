/**
 * Shared pieces of the reliability campaign: the campaign's own PostgreSQL
 * cluster (started by test/reliability/setup.ts), trial databases copied
 * from templates, the CLI as a child process that a test can kill, and the
 * consistency check every fault is judged by.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { writeSample, type SampleVariant } from '../../fixtures/directus-sample/generate.js';
import { openDb } from '../../src/db/open-db.js';
import { markClone } from '../../src/rehearsal/clone.js';
import { loadPlan, type Plan } from '../../src/plan/load-plan.js';
import { fingerprint } from '../../src/probe/fingerprint.js';

export const ROOT = join(import.meta.dirname, '..', '..');

/** Environment the global setup hands to the test files. */
export const REL_ENV = {
  url: 'TIERGATE_REL_URL',
  socket: 'TIERGATE_REL_SOCKET',
  port: 'TIERGATE_REL_PORT',
  log: 'TIERGATE_REL_LOG',
  refs: 'TIERGATE_REL_REFS',
} as const;

/** Templates on the campaign's cluster: each a tiergate-marked clone of `directus`, its gate open (one approval). */
export const TEMPLATES = {
  /** the sample at scale 10, nothing applied */
  s10: 'rel_tpl_s10',
  /** the sample at scale 1, nothing applied */
  s1: 'rel_tpl_s1',
  /** s10 with the structure tiers (1, 5, 6) applied */
  structure: 'rel_tpl_structure',
  /** s10 with every tier applied */
  full: 'rel_tpl_full',
} as const;

/** The secrets canary: a role that logs in with this password (scram-sha-256). */
export const CANARY_USER = 'canary';
export const CANARY_PASSWORD = 'Cn4ry-tg#pw/Zq7!x9';

/** The plan under test: TIERGATE_PLAN (as the CLI reads it) or the bundled one. */
export const bundledPlan = (): Plan => (process.env.TIERGATE_PLAN ? loadPlan(process.env.TIERGATE_PLAN) : loadPlan());

/** Structure and data tiers in plan (= apply) order: 1, 5, 6, 2, 3, 4. */
export function applyOrderIds(plan: Plan = bundledPlan()): number[] {
  return plan.tiers.filter((t) => t.kind === 'structure' || t.kind === 'data').map((t) => t.id);
}

/** The key of a state: the applied tiers, sorted ('' for none). */
export const stateKey = (applied: Iterable<number>) => [...applied].sort((a, b) => a - b).join(',');

function env(key: string): string {
  const v = process.env[key];
  if (!v) throw new Error(`${key} is not set: run the campaign with npm run test:reliability (test/reliability/setup.ts)`);
  return v;
}

/** A URL on the campaign's cluster (Unix socket). */
export function relUrl(database = 'postgres', user = 'postgres', password?: string): string {
  const auth = password === undefined ? encodeURIComponent(user) : `${encodeURIComponent(user)}:${encodeURIComponent(password)}`;
  return `postgres://${auth}@localhost:${env(REL_ENV.port)}/${encodeURIComponent(database)}?host=${encodeURIComponent(env(REL_ENV.socket))}`;
}

export const serverLog = () => env(REL_ENV.log);

/** Runs `fn` on a plain `pg` connection to the campaign's cluster. */
export async function onRel<T>(fn: (c: pg.Client) => Promise<T>, database = 'postgres', url = relUrl(database)): Promise<T> {
  const c = new pg.Client({ connectionString: url, application_name: 'reliability-harness' });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

export interface TrialDb {
  name: string;
  url: string;
  /** a URL of the maintenance database beside it (for watching sessions) */
  adminUrl?: string;
  drop(): Promise<void>;
}

/** A new database copied from a template (CREATE DATABASE … TEMPLATE): one per trial. */
export async function trialDb(template: string, prefix = 'trial', makeUrl: (db: string) => string = (db) => relUrl(db), adminUrl?: string): Promise<TrialDb> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  const admin = adminUrl ?? makeUrl('postgres');
  // FILE_COPY: a checkpoint and a copy of the files, faster than WAL-logging a 700-table template block by block
  await onRel((c) => c.query(`create database "${name}" template "${template}" strategy file_copy`), 'postgres', admin);
  return {
    name,
    url: makeUrl(name),
    adminUrl: admin,
    drop: () => onRel((c) => c.query(`drop database if exists "${name}" with (force)`), 'postgres', admin).then(() => undefined),
  };
}

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** wall time from spawn to exit */
  ms: number;
}

export interface CliHandle {
  child: ChildProcess;
  readonly stdout: string;
  readonly stderr: string;
  done: Promise<CliRun>;
  /** resolves when stdout or stderr matches (rejects after timeoutMs or when the process ends first) */
  waitFor(re: RegExp, timeoutMs?: number): Promise<void>;
  kill(signal?: NodeJS.Signals): void;
}

/**
 * Starts the CLI from source (tsx) as a user would; a hard timeout (default
 * 120 s) kills it so that nothing in the campaign waits forever.
 */
export function startCli(args: string[], options: { env?: Record<string, string>; timeoutMs?: number } = {}): CliHandle {
  const started = performance.now();
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/bin.ts'), ...args], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: '1', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const watchers = new Set<() => void>();
  const notify = () => watchers.forEach((w) => w());
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
    notify();
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    notify();
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, options.timeoutMs ?? 120_000);
  let ended = false;
  const done = new Promise<CliRun>((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      ended = true;
      notify();
      resolve({ code, signal, stdout, stderr: stderr + (timedOut ? '\n[reliability: killed after its hard timeout]' : ''), ms: Math.round(performance.now() - started) });
    });
  });
  return {
    child,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    done,
    waitFor(re: RegExp, timeoutMs = 60_000) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (re.test(stdout) || re.test(stderr)) {
            cleanup();
            resolve();
          } else if (ended) {
            cleanup();
            reject(new Error(`the CLI ended before printing ${re}: ${stderr.slice(-500)}`));
          }
        };
        const t = setTimeout(() => {
          cleanup();
          reject(new Error(`timeout waiting for ${re}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(t);
          watchers.delete(check);
        };
        watchers.add(check);
        check();
      });
    },
    kill(signal: NodeJS.Signals = 'SIGKILL') {
      child.kill(signal);
    },
  };
}

/** Runs the CLI to the end. */
export function runCli(args: string[], options: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CliRun> {
  return startCli(args, options).done;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until no tiergate session is connected to `database` (a killed
 * client's backend ends once the server notices), up to `timeoutMs`.
 * Returns how long that took.
 */
export async function waitBackendsGone(database: string, timeoutMs = 15_000, adminUrl = relUrl('postgres')): Promise<number> {
  const started = performance.now();
  return onRel(
    async (c) => {
      for (;;) {
        const r = await c.query<{ n: number }>(
          `select count(*)::int as n from pg_stat_activity where datname = $1 and application_name like 'tiergate%' and pid <> pg_backend_pid()`,
          [database],
        );
        if (r.rows[0]!.n === 0) return Math.round(performance.now() - started);
        if (performance.now() - started > timeoutMs) throw new Error(`tiergate sessions still connected to ${database} after ${timeoutMs} ms`);
        await sleep(25);
      }
    },
    'postgres',
    adminUrl,
  );
}

/** The tiers whose latest ledger row is `applied` (none when tiergate never ran there). */
export async function appliedTiers(url: string, plan = bundledPlan()): Promise<number[]> {
  const kept = new Set(applyOrderIds(plan));
  return onRel(
    async (c) => {
      const exists = await c.query<{ ok: boolean }>(`select to_regclass('tiergate.ledger') is not null as ok`);
      if (!exists.rows[0]!.ok) return [];
      const r = await c.query<{ tier_id: number; status: string }>(
        `select distinct on (tier_id) tier_id, status from tiergate.ledger where plan = $1 order by tier_id, id desc`,
        [plan.name],
      );
      // the rollback tier's own row records that it ran; the state is the structure and data tiers
      return r.rows.filter((x) => x.status === 'applied' && kept.has(x.tier_id)).map((x) => x.tier_id);
    },
    'postgres',
    url,
  );
}

/**
 * Fingerprint hash of a database (tiergate's own schema left out). `scope:
 * 'plan'` hashes only the plan's schemas (axis): the catalog and rows a tier
 * can change, at a tenth of the cost of the whole database.
 */
export async function fingerprintOf(url: string, scope: 'plan' | 'database' = 'database', plan = bundledPlan()): Promise<string> {
  const db = await openDb(url, { applicationName: 'reliability-fingerprint' });
  try {
    let excludeSchemas: string[] = [];
    if (scope === 'plan') {
      const r = await db.query<{ n: string }>(
        `select nspname as n from pg_namespace where nspname not like 'pg\\_%' and nspname <> 'information_schema' and nspname <> all ($1::text[])`,
        [plan.schemas],
      );
      excludeSchemas = r.rows.map((x) => x.n);
    }
    return (await fingerprint(db, { excludeSchemas })).hash;
  } finally {
    await db.close();
  }
}

/** Reference fingerprints per state key, of the plan's schemas and of the whole database, computed once by the global setup. */
export interface References {
  plan: Record<string, string>;
  database: Record<string, string>;
}

export function references(): References {
  return JSON.parse(readFileSync(env(REL_ENV.refs), 'utf8')) as References;
}

/**
 * The consistency rule every fault is judged by: the ledger names a state
 * tiergate can legitimately be in (a plan-order prefix of the tiers, or the
 * state after the rollback), and the database's fingerprint (catalog and
 * rows) is exactly the reference fingerprint of that state — every applied
 * tier's objects and rows present, nothing of an unapplied tier.
 */
export async function consistency(url: string, scope: 'plan' | 'database' = 'plan', refs = references()): Promise<{ key: string; problems: string[] }> {
  const key = stateKey(await appliedTiers(url));
  const expected = refs[scope][key];
  if (expected === undefined) return { key, problems: [`the ledger says tiers [${key}] are applied: not a state an apply or rollback can leave`] };
  const actual = await fingerprintOf(url, scope);
  return {
    key,
    problems: actual === expected ? [] : [`the ledger says tiers [${key}] are applied, but the ${scope === 'plan' ? "plan schemas'" : "database's"} fingerprint is not that state's`],
  };
}

/** Output that must never appear: a stack trace line. */
export const STACK_LINE = /^\s{4}at .+/m;

export const percentile = (xs: number[], p: number) => {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

/**
 * A seeded random generator (mulberry32): the seed is printed in the
 * results, TIERGATE_RELIABILITY_SEED replays a run's moments.
 */
export function seededRandom(label: string): { seed: number; next: () => number } {
  const base = process.env.TIERGATE_RELIABILITY_SEED ? Number(process.env.TIERGATE_RELIABILITY_SEED) : Date.now() % 1_000_000;
  let a = (base ^ [...label].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7)) >>> 0;
  return {
    seed: base,
    next() {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    },
  };
}

/**
 * Creates a template database holding the sample Directus database at
 * `scale`, marked as a tiergate clone of `directus` (so any name passes the
 * plan's identity check) and with its gate open (the plan's
 * `rehearsal.open_gate`: one approval of the current payload).
 */
export async function buildSampleTemplate(makeUrl: (db: string) => string, name: string, scale: number, options: { variant?: SampleVariant; openGate?: boolean } = {}): Promise<void> {
  const plan = bundledPlan();
  await onRel((c) => c.query(`create database "${name}"`), 'postgres', makeUrl('postgres'));
  const db = await openDb(makeUrl(name), { applicationName: 'reliability-setup' });
  try {
    await db.transaction((tx) => writeSample(tx, { scale, variant: options.variant ?? 'standard' }));
    await markClone(db, 'directus');
    if (options.openGate ?? true) await db.exec(plan.rehearsal!.open_gate!);
  } finally {
    await db.close();
  }
}

/**
 * Replays the ledger in id order: a tier applied while already applied, or
 * reverted while not applied, is a double application (two runs at once).
 * Returns the problems and the number of `applied` rows per tier.
 */
export async function ledgerHistory(url: string, plan = bundledPlan()): Promise<{ problems: string[]; appliedRows: Map<number, number> }> {
  const rows = await onRel(
    (c) => c.query<{ id: number; tier_id: number; status: string }>('select id, tier_id, status from tiergate.ledger where plan = $1 order by id', [plan.name]),
    'postgres',
    url,
  );
  const kept = new Set(applyOrderIds(plan));
  const state = new Map<number, string>();
  const appliedRows = new Map<number, number>();
  const problems: string[] = [];
  for (const r of rows.rows) {
    if (!kept.has(r.tier_id)) continue;
    const prior = state.get(r.tier_id) ?? 'pending';
    if (r.status === 'applied' && prior === 'applied') problems.push(`ledger row ${r.id}: tier ${r.tier_id} applied again while applied`);
    if (r.status === 'reverted' && prior !== 'applied') problems.push(`ledger row ${r.id}: tier ${r.tier_id} reverted while ${prior}`);
    if (r.status === 'applied') appliedRows.set(r.tier_id, (appliedRows.get(r.tier_id) ?? 0) + 1);
    state.set(r.tier_id, r.status);
  }
  return { problems, appliedRows };
}
