/**
 * An apply-overhead figure measured independently of `npm run bench`: on a
 * plain PostgreSQL cluster (fsync off, every other setting the server's
 * default — autovacuum on), over TCP loopback, the compiled CLI and the
 * library call against `psql` running the same tier files.
 *
 *   node --import tsx bench/apply-overhead-check.ts                    # scales 1 and 10, 7 repetitions
 *   node --import tsx bench/apply-overhead-check.ts --scales 10 --reps 5 --via socket --copy file_copy
 *
 * The benchmark's apply rows once read 1.04× (CLI, scale 10) while a script
 * like this one read 1.50× and 1.79×: this is that script, kept so that the
 * benchmark's figure can always be checked against a method it does not
 * share (its own cluster settings, connection, copy strategy, psql runner,
 * order of contenders).
 *
 * Each repetition runs every contender once on its own fresh copy
 * (`CREATE DATABASE … TEMPLATE`, the server's default strategy unless
 * `--copy`), the gate opened by the plan's `rehearsal.open_gate`; the order
 * of the contenders rotates from one repetition to the next, so that none
 * always runs first (after a copy, a checkpoint …). Contenders:
 *
 * - `psql -X -q -1 -v ON_ERROR_STOP=1 -f FILE` of each applied tier file in
 *   plan order (preflight and verify included, the rollback tier not), one
 *   psql per file: one transaction per tier, as tiergate runs them;
 * - `node bin/tiergate.js apply --yes --target URL --plan DIR` (dist, built
 *   first), its cache warm as every run after a plan's first;
 * - `apply(db, plan)` from dist, in this process;
 * - the baseline's fixed cost alone: one `psql -c 'select 1'` per file (a
 *   process and a server session each), reported, never subtracted.
 *
 * Prints medians and ratios with the load averages, and writes everything to
 * bench/work/apply-overhead-check.json. Timings are this machine's at that
 * moment: run it on a quiet machine, or compare ratios only.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { sampleScripts } from '../fixtures/directus-sample/generate.js';
import { startCluster } from '../scripts/pg-cluster.js';
import { packageRoot } from '../src/package-root.js';

const { values: args } = parseArgs({
  options: {
    scales: { type: 'string', default: '1,10' },
    reps: { type: 'string', default: '7' },
    via: { type: 'string', default: 'tcp' },
    copy: { type: 'string' },
    plan: { type: 'string' },
  },
});
const scales = args.scales!.split(',').map(Number);
const reps = Number(args.reps);
const via = args.via === 'socket' ? 'socket' : 'tcp';
const copyStrategy = args.copy === 'file_copy' || args.copy === 'wal_log' ? args.copy : null;
const root = packageRoot();
const planDir = args.plan ?? join(root, 'plans', 'axis-governance');
const log = (m: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${m}`);
const load = () => loadavg().map((x) => Math.round(x * 100) / 100);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

log(`building dist (tsc -p tsconfig.json) …`);
execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', join(root, 'tsconfig.json')], { stdio: 'inherit' });
// the build measured: what bin/tiergate.js runs
const { loadPlan } = (await import(join(root, 'dist', 'src', 'plan', 'load-plan.js'))) as typeof import('../src/plan/load-plan.js');
const { openDb } = (await import(join(root, 'dist', 'src', 'db', 'open-db.js'))) as typeof import('../src/db/open-db.js');
const { apply } = (await import(join(root, 'dist', 'src', 'engine', 'apply.js'))) as typeof import('../src/engine/apply.js');
const plan = loadPlan(planDir);
const openGate = plan.rehearsal?.open_gate;
if (!openGate) throw new Error(`plan '${plan.name}' has no rehearsal.open_gate: this check opens the gate with it`);
const files = plan.tiers.filter((t) => t.kind !== 'rollback').map((t) => join(plan.dir, t.file));

const startLoad = load();
const cluster = startCluster({ label: 'apply-check', settings: { fsync: 'off' }, tcp: true });
process.once('exit', () => cluster.destroy());
const target = 'directus';
const url = (db: string) => cluster.url(db, 'postgres', undefined, via);
const libpqEnv = (db: string) => (via === 'tcp' ? { PGHOST: '127.0.0.1', PGPORT: String(cluster.port), PGUSER: 'postgres', PGDATABASE: db } : cluster.env(db));
const psqlBin = join(cluster.bin, 'psql');

async function sql(db: string, text: string): Promise<pg.QueryResultRow[]> {
  const c = new pg.Client({ connectionString: url(db) });
  await c.connect();
  try {
    return (await c.query(text)).rows;
  } finally {
    await c.end();
  }
}

function run(file: string, argv: string[], env: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${file} ${argv.join(' ')} exited ${code}: ${err.slice(-2000)}`))));
  });
}

/** The sample at `scale` as a template: built by the fixture's own scripts, then VACUUM (FREEZE, ANALYZE)d as a database in use would be. */
async function buildTemplate(scale: number): Promise<string> {
  const name = `tpl_s${scale}`;
  await sql('postgres', `create database ${name}`);
  const c = new pg.Client({ connectionString: url(name) });
  await c.connect();
  try {
    for (const chunk of sampleScripts({ scale })) await c.query(chunk);
  } finally {
    await c.end();
  }
  await sql(name, 'vacuum (freeze, analyze)');
  return name;
}

async function fresh(template: string): Promise<void> {
  await sql('postgres', `drop database if exists ${target} with (force)`);
  await sql('postgres', `create database ${target} template ${template}${copyStrategy ? ` strategy ${copyStrategy}` : ''}`);
  await sql(target, openGate!);
}

const contenders: { name: string; run: () => Promise<void> }[] = [
  { name: 'psql -1 -f, one per file', run: async () => { for (const f of files) await run(psqlBin, ['-X', '-q', '-1', '-v', 'ON_ERROR_STOP=1', '-f', f], libpqEnv(target)); } },
  {
    name: 'tiergate apply (CLI)',
    run: () => run(process.execPath, [join(root, 'bin', 'tiergate.js'), 'apply', '--yes', '--target', url(target), '--plan', plan.dir], {}),
  },
  {
    name: 'apply(db, plan) (library)',
    run: async () => {
      const db = await openDb(url(target));
      try {
        const r = await apply(db, plan);
        if (r.outcome !== 'ok') throw new Error(`apply(): outcome ${r.outcome}`);
      } finally {
        await db.close();
      }
    },
  },
  { name: 'psql -c select 1, one per file', run: async () => { for (let i = 0; i < files.length; i++) await run(psqlBin, ['-X', '-q', '-c', 'select 1'], libpqEnv(target)); } },
];

const pgVersion = String((await sql('postgres', 'show server_version'))[0]?.server_version ?? '');
const gitHead = (() => {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
  } catch {
    return null;
  }
})();
log(`PostgreSQL ${pgVersion}, fsync=off (all else default: autovacuum on), ${via === 'tcp' ? 'TCP 127.0.0.1' : 'Unix socket'}, copies ${copyStrategy ?? 'default strategy'}; ${files.length} tier files; ${reps} reps; load ${startLoad.join(' ')}`);

const results: Record<string, unknown> = {};
for (const scale of scales) {
  log(`scale ${scale}: building the sample template …`);
  const template = await buildTemplate(scale);
  // tiergate's cache warm, as for every run of a plan after its first
  await fresh(template);
  await contenders[1]!.run();
  const ms: Record<string, number[]> = Object.fromEntries(contenders.map((c) => [c.name, []]));
  for (let r = 0; r < reps; r++) {
    for (let k = 0; k < contenders.length; k++) {
      const c = contenders[(r + k) % contenders.length]!;
      await fresh(template);
      const t0 = performance.now();
      await c.run();
      const t = performance.now() - t0;
      ms[c.name]!.push(t);
      log(`  scale ${scale} rep ${r + 1}/${reps} ${c.name.padEnd(32)} ${t.toFixed(0)} ms`);
    }
  }
  await sql('postgres', `drop database if exists ${target} with (force)`);
  const base = median(ms[contenders[0]!.name]!);
  const rows = contenders.map((c) => ({ contender: c.name, medianMs: Math.round(median(ms[c.name]!)), ratio: Math.round((median(ms[c.name]!) / base) * 100) / 100, ms: ms[c.name]!.map(Math.round) }));
  results[`scale ${scale}`] = rows;
  console.log(`\nscale ${scale} (medians of ${reps}; ratio to psql):`);
  for (const row of rows) console.log(`  ${row.contender.padEnd(32)} ${String(row.medianMs).padStart(6)} ms  ${row.ratio.toFixed(2)}×   [${row.ms.join(', ')}]`);
}
const endLoad = load();
console.log(`\nload average ${startLoad.join(' ')} → ${endLoad.join(' ')} (${cpus().length} cores); commit ${gitHead ?? 'unknown'}`);
mkdirSync(join(root, 'bench', 'work'), { recursive: true });
const out = join(root, 'bench', 'work', 'apply-overhead-check.json');
writeFileSync(
  out,
  JSON.stringify(
    {
      generatedAt: new Date().toISOString(),
      gitHead,
      postgres: pgVersion,
      node: process.version,
      settings: { fsync: 'off', connection: via, copyStrategy: copyStrategy ?? 'default' },
      reps,
      loadAverage: { start: startLoad, end: endLoad },
      cores: cpus().length,
      results,
    },
    null,
    2,
  ) + '\n',
);
log(`written to ${out}`);
cluster.destroy();
