/**
 * `npm run bench`: tiergate's performance, measured as ratios against
 * baselines run in the same script (interleaved, several repetitions,
 * medians), on a PostgreSQL cluster the benchmark starts itself.
 *
 *   npm run bench                 # full: scales 1, 10, 100 (and 1000 for the scanner); 26 min on 2 cores, 9 of them the first-clone rows (results.json)
 *   npm run bench -- --quick      # scales 1 and 10, 3 repetitions: for development
 *   npm run bench -- --plan DIR   # another copy of the plan (default: the bundled plans/axis-governance)
 *   npm run bench -- rehearsal    # only the rehearsal rows, scales 10 and 100 (bench/rehearsal-results.json)
 *   npm run bench -- fleet        # the fleet against a shell loop (bench/fleet.ts)
 *
 * Prints a table (measurement | baseline | subject | ratio | target | met?)
 * and writes bench/results.json (a quick run: bench/work/results.quick.json).
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadPlan } from '../src/plan/load-plan.js';
import { packageRoot } from '../src/package-root.js';
import { startCluster, type Cluster } from './cluster.js';
import { Server } from './databases.js';
import { engineOverhead, firstClone, mustNotGrow, pgliteClone, rehearsal, scanner, sqitchPeer, startup, type Context } from './measurements.js';
import { machineInfo, markdownTable, textTable } from './report.js';
import { round } from './stats.js';

const { values: args, positionals } = parseArgs({
  options: { quick: { type: 'boolean', default: false }, plan: { type: 'string' }, targets: { type: 'string' }, workers: { type: 'string' } },
  allowPositionals: true,
});
if (positionals[0] === 'fleet') {
  // npm run bench -- fleet [--targets N] [--workers 1,2,4]: the fleet against a shell loop (bench/fleet.ts)
  const { fleetBench } = await import('./fleet.js');
  await fleetBench({ targets: Number(args.targets ?? 200), workers: (args.workers ?? '1,2,4').split(',').map(Number) });
  process.exit(0);
}
if (positionals.length && positionals[0] !== 'rehearsal') throw new Error(`npm run bench: unknown measurement '${positionals[0]}' (known: fleet, rehearsal)`);
/** `npm run bench -- rehearsal`: only the rehearsal rows (scales 10 and 100), written to bench/rehearsal-results.json */
const onlyRehearsal = positionals[0] === 'rehearsal';
const quick = Boolean(args.quick);
const root = packageRoot();
const started = performance.now();
const loadAtStart = loadavg();
const elapsed = () => `${((performance.now() - started) / 1000).toFixed(0)} s`;
const log = (m: string) => console.log(`[${elapsed().padStart(5)}] ${m}`);

log(`tiergate bench (${quick ? 'quick' : 'full'}), load average ${loadAtStart.map((x) => x.toFixed(2)).join(' ')} on this machine`);
log('building the compiled CLI (tsc -p tsconfig.json) …');
execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', join(root, 'tsconfig.json')], { stdio: 'inherit' });

// a snapshot of the plan: psql and Sqitch read the files from disk while the benchmark runs
const planSnapshot = mkdtempSync(join(tmpdir(), 'tiergate-bench-plan-'));
cpSync(args.plan ?? join(root, 'plans', 'axis-governance'), planSnapshot, { recursive: true });
process.once('exit', () => rmSync(planSnapshot, { recursive: true, force: true }));
const plan = loadPlan(planSnapshot);
const gitHead = (() => {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
  } catch {
    return null;
  }
})();
if (!plan.rehearsal?.open_gate) throw new Error(`plan '${plan.name}' has no rehearsal.open_gate: the benchmark opens the gate with it`);
const cluster = startCluster();
log(`PostgreSQL ${cluster.version} started on ${cluster.socket} (fsync=off, synchronous_commit=off, full_page_writes=off, autovacuum=off, max_locks_per_transaction=256: a benchmark server, never a real one)`);
const server = new Server(cluster);
const ctx: Context = { root, cluster, server, plan, quick, log, rows: [], details: {} };
const builds: Record<string, number> = {};
const build = async (name: string, f: () => Promise<void>) => {
  const t = performance.now();
  await f();
  builds[name] = round(performance.now() - t, 0);
  log(`  ${name}: ${(builds[name]! / 1000).toFixed(1)} s, ${((await server.size(name)) / 1e6).toFixed(0)} MB`);
};

try {
  if (onlyRehearsal) {
    for (const s of quick ? [10] : [10, 100]) {
      await build(`tpl_s${s}`, () => server.buildSample(`tpl_s${s}`, s));
      await rehearsal(ctx, s);
      await inMemory((scratch) => rehearsal(ctx, s, scratch));
      await server.drop(`tpl_s${s}`);
    }
  } else await everything();
} catch (e) {
  cluster.stop();
  throw e;
}

/**
 * Runs `f` with a second cluster, its directory in memory (`/dev/shm`), as
 * the rehearsal's scratch server; skipped, saying why, where the machine has
 * no such folder with 4 GB free. A scratch server holds only throwaway
 * copies: memory is where an operator may well put one, and on this
 * machine's disk creating a file costs 26–548 µs on average, up to 2.2 ms
 * (a clone of scale 100 creates about 20,000).
 */
async function inMemory(f: (scratch: { cluster: Cluster; where: string }) => Promise<void>): Promise<void> {
  const parent = '/dev/shm';
  let free = 0;
  try {
    const st = statfsSync(parent);
    free = st.bavail * st.bsize;
  } catch {
    free = 0;
  }
  if (free < 4e9) {
    log(`rehearsal with the scratch server in memory: skipped (${parent} ${free ? `has ${(free / 1e9).toFixed(1)} GB free, needs 4` : 'is missing'})`);
    return;
  }
  const scratch = startCluster({ label: 'bench-scratch', parent });
  try {
    await f({ cluster: scratch, where: `in memory (${parent})` });
  } finally {
    scratch.stop();
  }
}

async function everything(): Promise<void> {
  await startup(ctx);

  const scales = quick ? [1, 10] : [1, 10, 100];
  const bigRows = quick ? 1_000_000 : 5_000_000;
  log(`building the sample templates (scales ${scales.join(', ')}; scale 1 with ${bigRows.toLocaleString('en')} extra rows in orders) …`);
  for (const s of scales) await build(`tpl_s${s}`, () => server.buildSample(`tpl_s${s}`, s));
  await build('tpl_s1_big', async () => {
    await server.buildSample('tpl_s1_big', 1);
    await server.growOrders('tpl_s1_big', bigRows);
  });

  await engineOverhead(ctx, scales);
  await mustNotGrow(ctx, bigRows);
  await server.drop('tpl_s1_big');
  await sqitchPeer(ctx, [1, 10]);
  await pgliteClone(ctx);
  await firstClone(ctx, scales);
  for (const s of quick ? [10] : [10, 100]) await rehearsal(ctx, s);
  for (const s of quick ? [10] : [10, 100]) await inMemory((scratch) => rehearsal(ctx, s, scratch));

  const scanScales = quick ? [1, 10] : [10, 100, 1000];
  if (!quick) {
    log('building the scale-1000 sample (65,000 collections) for the scanner …');
    await build('tpl_s1000', () => server.buildSample('tpl_s1000', 1000));
  }
  await scanner(ctx, scanScales, new Set(quick ? [] : [1000]));
}

const results = {
  generatedAt: new Date().toISOString(),
  command: `npm run bench${onlyRehearsal || quick ? ' --' : ''}${onlyRehearsal ? ' rehearsal' : ''}${quick ? ' --quick' : ''}`,
  mode: quick ? 'quick' : 'full',
  durationS: round((performance.now() - started) / 1000, 0),
  machine: machineInfo(cluster.version, loadAtStart),
  server: { settings: cluster.settings, note: 'fsync, synchronous_commit and full_page_writes off: a benchmark server; both sides of every ratio run on it' },
  plan: { name: plan.name, sha256: plan.sha256, dir: args.plan ?? 'plans/axis-governance', gitHead },
  method:
    'Each row: baseline and subject interleaved (baseline, subject, baseline, subject, …) on fresh copies (CREATE DATABASE … TEMPLATE) of the same template, ' +
    'medians of the repetitions, ratio = median(subject) / median(baseline). Applies cover tiers ' +
    plan.tiers.filter((t) => t.kind !== 'rollback').map((t) => t.id).join(', ') +
    ' (preflight and verify read-only), with the gate opened beforehand by the plan\'s rehearsal.open_gate; the rollback tiers are not run. ' +
    'The engine-overhead rows rotate the order of their contenders from one repetition to the next.',
  templateBuildMs: builds,
  rows: ctx.rows,
  details: ctx.details,
};
const out = onlyRehearsal
  ? join(root, 'bench', quick ? 'work' : '', quick ? 'rehearsal-results.quick.json' : 'rehearsal-results.json')
  : quick
    ? join(root, 'bench', 'work', 'results.quick.json')
    : join(root, 'bench', 'results.json');
mkdirSync(join(root, 'bench', 'work'), { recursive: true });
writeFileSync(out, JSON.stringify(results, null, 2) + '\n');
writeFileSync(join(root, 'bench', 'work', `table${onlyRehearsal ? '.rehearsal' : ''}${quick ? '.quick' : ''}.md`), markdownTable(ctx.rows) + '\n');

console.log('\n' + textTable(ctx.rows) + '\n');
const breakdown = ctx.details.applyBreakdown as Record<string, { medianMs: Record<string, number>; wallMs: number }> | undefined;
if (breakdown) {
  console.log('where apply(db, plan) spends its time (medians, ms):');
  for (const [scale, b] of Object.entries(breakdown)) {
    console.log(`  ${scale} (wall ${b.wallMs}): ` + Object.entries(b.medianMs).map(([k, v]) => `${k} ${v}`).join(' · '));
  }
}
// last: removing the cluster's directory (gigabytes at scale 1000) takes minutes and measures nothing
log('stopping the cluster (its directory is removed in the background) …');
cluster.stop({ background: true });
const missed = ctx.rows.filter((r) => r.met === false);
console.log(`\n${ctx.rows.length} rows, ${missed.length} target(s) missed; load average ${results.machine.loadAverage.start.join(' ')} → ${results.machine.loadAverage.end.join(' ')}; ${results.durationS} s; written to ${out}`);
