/**
 * `npm run bench -- fleet`: a fleet rollout against the same work done one
 * target after another by a shell loop (`tiergate rehearse --source …
 * --scratch …` then `tiergate apply --evidence …` per target), on two
 * PostgreSQL clusters the benchmark starts (the scratch server is the first).
 * Every run gets fresh copies of the scale-1 sample (CREATE DATABASE …
 * TEMPLATE, not timed); the fleet runs with 1, 2 and 4 workers in its own
 * process (embedded control). Reports targets per minute, each run's ratio
 * to the shell loop, and the engine's own overhead per target — the time a
 * target spends in the fleet outside its two steps (queue, admission,
 * control writes) — as a share of its apply step.
 *
 *   npm run bench -- fleet                     # 200 targets, workers 1, 2, 4 (long: 93 min on two cores, 2026-12-04)
 *   npm run bench -- fleet --targets 20        # a quick look
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startCluster as startPgCluster, type Cluster as PgCluster } from '../scripts/pg-cluster.js';
import { sampleScripts } from '../fixtures/directus-sample/generate.js';
import { loadPlan } from '../src/plan/load-plan.js';
import { packageRoot } from '../src/package-root.js';
import { SETTINGS } from './cluster.js';
import { machineInfo } from './report.js';
import { median, round } from './stats.js';

export async function fleetBench(options: { targets: number; workers: number[] }): Promise<void> {
  const root = packageRoot();
  const started = performance.now();
  const loadAtStart = loadavg();
  // the commit measured is the one built now, even if the tree moves on during a run of an hour and more
  const gitHead = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
  const log = (m: string) => console.log(`[${((performance.now() - started) / 1000).toFixed(0).padStart(5)} s] ${m}`);
  log(`tiergate fleet bench: ${options.targets} targets at scale 1 on 2 clusters; fleet with ${options.workers.join(', ')} worker(s) against a shell loop`);
  execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', join(root, 'tsconfig.json')], { stdio: 'inherit' });
  const work = mkdtempSync(join(tmpdir(), 'tiergate-bench-fleet-'));
  // the bundled plan without its database: line, so that targets of any name pass the identity check on both sides
  const planDir = join(work, 'plan');
  execFileSync('cp', ['-r', join(root, 'plans', 'axis-governance'), planDir]);
  const yamlFile = join(planDir, 'tiergate.yaml');
  writeFileSync(yamlFile, readFileSync(yamlFile, 'utf8').replace(/^database: .*$/m, ''));
  const plan = loadPlan(planDir);
  const clusters: PgCluster[] = [startPgCluster({ label: 'bench-fleet-a', settings: { ...SETTINGS, max_connections: '200' } }), startPgCluster({ label: 'bench-fleet-b', settings: { ...SETTINGS, max_connections: '200' } })];
  process.once('exit', () => clusters.forEach((c) => c.destroy()));
  const sql = async (c: PgCluster, db: string, text: string) => {
    const client = new pg.Client({ connectionString: c.url(db) });
    await client.connect();
    try {
      return (await client.query(text)).rows;
    } finally {
      await client.end();
    }
  };
  const bin = join(root, 'bin', 'tiergate.js');
  const results: Record<string, unknown> = {};
  try {
    for (const c of clusters) {
      await sql(c, 'postgres', 'create database fleet_tpl');
      for (const chunk of sampleScripts({ scale: 1 })) await sql(c, 'fleet_tpl', chunk);
      await sql(c, 'fleet_tpl', plan.rehearsal!.open_gate!);
      await sql(c, 'fleet_tpl', 'vacuum (freeze, analyze)');
    }
    const names = Array.from({ length: options.targets }, (_, i) => `t${String(i).padStart(4, '0')}`);
    const clusterOf = (i: number) => clusters[i % 2]!;
    const fresh = async () => {
      for (const [i, n] of names.entries()) {
        await sql(clusterOf(i), 'postgres', `drop database if exists ${n} with (force)`);
        await sql(clusterOf(i), 'postgres', `create database ${n} template fleet_tpl strategy file_copy`);
      }
      for (const c of clusters) {
        const left = await sql(c, 'postgres', `select datname from pg_database where datname like 'tiergate_clone_%'`);
        for (const r of left) await sql(c, 'postgres', `drop database ${r.datname as string} with (force)`);
      }
    };
    const scratch = clusters[0]!.url('postgres');

    // the baseline: the same two commands per target, one target after another, from a shell loop
    await fresh();
    const loop = join(work, 'loop.sh');
    writeFileSync(
      loop,
      [
        'set -e',
        ...names.map((n, i) => {
          const url = clusterOf(i).url(n);
          return `node ${bin} rehearse --plan ${planDir} --source '${url}' --scratch '${scratch}' --out ${join(work, 'loop', n)} > /dev/null && node ${bin} apply --plan ${planDir} --target '${url}' --evidence ${join(work, 'loop', n, 'evidence.json')} --yes > /dev/null`;
        }),
      ].join('\n'),
    );
    log(`shell loop: ${options.targets} × (rehearse, apply --evidence) …`);
    let t = performance.now();
    await sh('bash', [loop]);
    const loopMs = performance.now() - t;
    log(`  shell loop: ${(loopMs / 1000).toFixed(1)} s, ${round((options.targets / loopMs) * 60_000, 1)} targets/min`);
    results.loop = { ms: round(loopMs, 0), targetsPerMinute: round((options.targets / loopMs) * 60_000, 2) };

    const runs: Record<string, unknown>[] = [];
    for (const workers of options.workers) {
      await fresh();
      const file = join(work, `fleet-${workers}.yaml`);
      writeFileSync(
        file,
        [
          `concurrency: { total: ${workers}, per_server: ${workers} }`,
          `scratch: ${JSON.stringify(scratch)}`,
          'targets:',
          ...names.map((n, i) => `  - { name: ${n}, url: ${JSON.stringify(clusterOf(i).url(n))} }`),
        ].join('\n'),
      );
      const control = `pglite:${join(work, `control-${workers}`)}`;
      log(`fleet apply, ${workers} worker(s) …`);
      t = performance.now();
      await sh('node', [bin, 'fleet', 'apply', '--plan', planDir, '--targets', file, '--control', control, '--workers', String(workers), '--out', join(work, `out-${workers}`), '--yes']);
      const ms = performance.now() - t;
      const status = JSON.parse(execFileSync('node', [bin, 'fleet', 'status', '--control', control, '--json'], { encoding: 'utf8', maxBuffer: 1 << 28 })) as {
        targets: { state: string; name: string }[];
        steps: { target: string; step: string; started_at: string; finished_at: string }[];
      };
      const applied = status.targets.filter((x) => x.state === 'applied').length;
      if (applied !== options.targets) throw new Error(`fleet with ${workers} worker(s): ${applied} of ${options.targets} applied`);
      // per target: its span from first step start to last step end, minus the time inside steps = time between its steps (queue, admission, control)
      const byTarget = new Map<string, { start: number; end: number; inSteps: number; applyMs: number }>();
      for (const s of status.steps) {
        const a = Date.parse(s.started_at);
        const b = Date.parse(s.finished_at);
        const e = byTarget.get(s.target) ?? { start: a, end: b, inSteps: 0, applyMs: 0 };
        e.start = Math.min(e.start, a);
        e.end = Math.max(e.end, b);
        e.inSteps += b - a;
        if (s.step === 'apply') e.applyMs += b - a;
        byTarget.set(s.target, e);
      }
      const between = [...byTarget.values()].map((e) => e.end - e.start - e.inSteps);
      const applyMs = [...byTarget.values()].map((e) => e.applyMs);
      const row = {
        workers,
        ms: round(ms, 0),
        targetsPerMinute: round((options.targets / ms) * 60_000, 2),
        ratioToLoop: round(ms / loopMs, 3),
        betweenStepsMedianMs: round(median(between), 0),
        applyStepMedianMs: round(median(applyMs), 0),
        overheadShareOfApply: round(median(between) / median(applyMs), 3),
      };
      runs.push(row);
      log(`  ${workers} worker(s): ${(ms / 1000).toFixed(1)} s, ${row.targetsPerMinute} targets/min, ${row.ratioToLoop}× the shell loop's time; between a target's steps ${row.betweenStepsMedianMs} ms (median) = ${row.overheadShareOfApply}× its apply step (${row.applyStepMedianMs} ms)`);
    }
    results.fleet = runs;
    const out = { generatedAt: new Date().toISOString(), command: `npm run bench -- fleet --targets ${options.targets}`, gitHead, durationS: round((performance.now() - started) / 1000, 0), machine: machineInfo(String((await sql(clusters[0]!, 'postgres', 'show server_version'))[0]!.server_version), loadAtStart), targets: options.targets, ...results };
    mkdirSync(join(root, 'bench', 'work'), { recursive: true });
    const file = options.targets >= 200 ? join(root, 'bench', 'fleet-results.json') : join(root, 'bench', 'work', 'fleet-results.quick.json');
    writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
    log(`written to ${file}`);
  } finally {
    clusters.forEach((c) => c.destroy({ background: true }));
    rmSync(work, { recursive: true, force: true });
  }
}

function sh(file: string, args: string[], env: Record<string, string> = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${file} ${args.slice(0, 3).join(' ')} … exited ${code}: ${err}`))));
  });
}
