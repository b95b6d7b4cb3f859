/**
 * The benchmark's measurements. Each one interleaves a baseline and its
 * subjects on fresh copies of the same template database and adds rows
 * (medians and their ratio) to the report.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { openDb } from '../src/db/open-db.js';
import { apply } from '../src/engine/apply.js';
import { ensureLedger } from '../src/engine/ledger.js';
import { runTier } from '../src/engine/run-tier.js';
import { runScript } from '../src/engine/run-script.js';
import { loadPlan, type Plan, type Tier } from '../src/plan/load-plan.js';
import { withClones } from '../src/rehearsal/clone.js';
import type { Cluster } from './cluster.js';
import { capture, run, Server, TARGET_DB } from './databases.js';
import { ensureSqitch, sqitchDeploy, writeSqitchProject } from './sqitch.js';
import { interleave, median, round } from './stats.js';
import { CATEGORIES, Tracer, type Trace } from './trace-db.js';

export interface Side {
  label: string;
  ms: number[];
}

export interface Row {
  group: string;
  measurement: string;
  baseline: Side;
  subject: Side;
  /** median(subject) / median(baseline) */
  ratio: number;
  target: string | null;
  met: boolean | null;
  note?: string;
}

export interface Context {
  root: string;
  cluster: Cluster;
  server: Server;
  plan: Plan;
  quick: boolean;
  log: (m: string) => void;
  rows: Row[];
  details: Record<string, unknown>;
}

/** Adds a row; `met` judges the medians (subject, baseline, ratio). */
function addRow(
  ctx: Context,
  r: { group: string; measurement: string; baseline: Side; subject: Side; target?: string; met?: (s: number, b: number, ratio: number) => boolean; note?: string },
): Row {
  const b = median(r.baseline.ms);
  const s = median(r.subject.ms);
  const ratio = s / b;
  const row: Row = {
    group: r.group,
    measurement: r.measurement,
    baseline: { label: r.baseline.label, ms: r.baseline.ms.map((x) => round(x, 1)) },
    subject: { label: r.subject.label, ms: r.subject.ms.map((x) => round(x, 1)) },
    ratio: round(ratio, 2),
    target: r.target ?? null,
    met: r.met ? r.met(s, b, ratio) : null,
    ...(r.note ? { note: r.note } : {}),
  };
  ctx.rows.push(row);
  return row;
}

const appliedTiers = (plan: Plan) => plan.tiers.filter((t) => t.kind !== 'rollback');
const bodyTiers = (plan: Plan) => plan.tiers.filter((t) => t.kind === 'structure' || t.kind === 'data');

/** A fresh copy of `template` as `directus`, with the plan's gate opened (its rehearsal.open_gate SQL). */
async function freshGateOpen(ctx: Context, template: string): Promise<void> {
  await ctx.server.copy(template);
  await ctx.server.sql(TARGET_DB, ctx.plan.rehearsal!.open_gate!);
}

/** psql -1 -f of each file of `tiers`, in plan order: the baseline of every apply. */
async function psqlApply(ctx: Context, tiers: Tier[], db = TARGET_DB): Promise<void> {
  for (const t of tiers) await ctx.server.psqlFile(db, join(ctx.plan.dir, t.file));
}

/** `n` times `psql -c 'select 1'`: what one psql per file costs before it runs any SQL. */
async function psqlStartups(ctx: Context, n: number, db = TARGET_DB): Promise<void> {
  for (let i = 0; i < n; i++) await run(join(ctx.cluster.bin, 'psql'), ['-X', '-q', '-c', 'select 1'], ctx.cluster.env(db));
}

/** Turns tiergate's cache off: a CLI run as the first run of a plan (every other run finds its plan and tier files parsed). */
const CACHE_OFF = { TIERGATE_CACHE: 'off' };

async function cliApply(ctx: Context, url: string, env: Record<string, string> = {}): Promise<void> {
  const r = await capture(process.execPath, [join(ctx.root, 'bin', 'tiergate.js'), 'apply', '--yes', '--json', '--target', url, '--plan', ctx.plan.dir], env);
  const outcome = (() => {
    try {
      return (JSON.parse(r.stdout) as { outcome?: string }).outcome;
    } catch {
      return undefined;
    }
  })();
  if (r.code !== 0 || outcome !== 'ok') throw new Error(`tiergate apply exited ${r.code} (outcome ${outcome}): ${r.stdout.slice(0, 2000)}`);
}

// ------------------------------------------------------------------ start-up

export async function startup(ctx: Context): Promise<void> {
  ctx.log('start-up: node -e 0 vs tiergate --help vs tiergate plan (compiled build)');
  const bin = join(ctx.root, 'bin', 'tiergate.js');
  const node = (args: string[], env: Record<string, string> = {}) => async () => {
    const r = await capture(process.execPath, args, env);
    if (r.code !== 0) throw new Error(`node ${args.join(' ')} exited ${r.code}`);
  };
  const reps = ctx.quick ? 5 : 9;
  const t = await interleave(reps, [
    { name: 'node -e 0', run: node(['-e', '0']) },
    { name: 'tiergate --help', run: node([bin, '--help']) },
    { name: 'tiergate plan', run: node([bin, 'plan', '--plan', ctx.plan.dir]) },
    { name: 'tiergate plan (cache off)', run: node([bin, 'plan', '--plan', ctx.plan.dir], CACHE_OFF) },
  ]);
  const under300 = (s: number) => s < 300;
  addRow(ctx, { group: 'start-up', measurement: 'tiergate --help (wall)', baseline: { label: 'node -e 0', ms: t['node -e 0']! }, subject: { label: 'tiergate --help', ms: t['tiergate --help']! }, target: '< 300 ms', met: under300 });
  addRow(ctx, { group: 'start-up', measurement: 'tiergate plan (wall)', baseline: { label: 'node -e 0', ms: t['node -e 0']! }, subject: { label: 'tiergate plan', ms: t['tiergate plan']! }, target: '< 300 ms', met: under300 });
  addRow(ctx, { group: 'start-up', measurement: 'tiergate plan, first run of a plan (cache off: YAML parser and schema loaded)', baseline: { label: 'node -e 0', ms: t['node -e 0']! }, subject: { label: 'tiergate plan', ms: t['tiergate plan (cache off)']! } });
}

// ------------------------------------------------------------------ engine overhead

export async function engineOverhead(ctx: Context, scales: number[]): Promise<void> {
  const tracer = await Tracer.forPlan(ctx.plan);
  const url = ctx.cluster.url(TARGET_DB);
  const breakdown: Record<string, unknown> = {};
  for (const scale of scales) {
    const reps = ctx.quick || scale >= 100 ? 3 : 5;
    // at scale 100 the CLI would add only its start-up, measured at scales 1 and 10: the library call alone, to stay within the time budget
    const withCli = scale < 100;
    ctx.log(`engine overhead at scale ${scale}: psql -1 -f of each file vs tiergate apply (CLI) vs apply() in process, ${reps} reps, order rotating`);
    const tpl = `tpl_s${scale}`;
    const traces: Trace[] = [];
    const fresh = () => freshGateOpen(ctx, tpl);
    const t = await interleave(
      reps,
      [
        { name: 'psql -1 -f', prepare: fresh, run: () => psqlApply(ctx, appliedTiers(ctx.plan)) },
        // the baseline's fixed cost: a process and a server session per file, which a CLI run pays once and the library not at all
        { name: 'psql fixed cost', prepare: fresh, run: () => psqlStartups(ctx, appliedTiers(ctx.plan).length) },
        ...(withCli ? [{ name: 'tiergate apply (CLI)', prepare: fresh, run: () => cliApply(ctx, url) }] : []),
        ...(withCli && scale === 1 ? [{ name: 'tiergate apply (CLI, cache off)', prepare: fresh, run: () => cliApply(ctx, url, CACHE_OFF) }] : []),
        {
          name: 'apply() in process',
          prepare: fresh,
          run: async () => {
            const started = performance.now();
            const db = tracer.wrap(await openDb(url));
            try {
              const r = await apply(db, ctx.plan);
              if (r.outcome !== 'ok') throw new Error(`apply(): outcome ${r.outcome}: ${JSON.stringify(r.tiers.filter((x) => x.error).map((x) => x.error))}`);
            } finally {
              await db.close();
            }
            const ms = performance.now() - started;
            traces.push(tracer.take());
            return ms;
          },
        },
      ],
      ctx.log,
      { rotate: true },
    );
    await ctx.server.drop(TARGET_DB);
    const files = appliedTiers(ctx.plan).length;
    const base = { label: `psql -1 -f (${files} files)`, ms: t['psql -1 -f']! };
    addRow(ctx, {
      group: 'engine overhead',
      measurement: `apply, scale ${scale}: the baseline's fixed cost (one psql process and server session per file, psql -c 'select 1' × ${files}) vs psql -1 -f`,
      baseline: base,
      subject: { label: `psql -c 'select 1' × ${files}`, ms: t['psql fixed cost']! },
      note: "report only: the part of the baseline that is process and session start-up; a machine that starts processes slowly inflates the baseline and flatters every apply ratio (the CLI starts one process, the library none)",
    });
    // the issue's goals: ≤ 1.3× at scale 10, ≤ 1.1× at scale 100 (scale 1 is reported, with no goal)
    const target = scale === 10 ? '≤ 1.3×' : scale >= 100 ? '≤ 1.1×' : undefined;
    const limit = scale === 10 ? 1.3 : 1.1;
    const met = target ? (_s: number, _b: number, ratio: number) => ratio <= limit : undefined;
    if (withCli) addRow(ctx, { group: 'engine overhead', measurement: `apply, whole plan, scale ${scale}: CLI`, baseline: base, subject: { label: 'tiergate apply', ms: t['tiergate apply (CLI)']! }, target, met });
    if (t['tiergate apply (CLI, cache off)']) {
      addRow(ctx, { group: 'engine overhead', measurement: `apply, whole plan, scale ${scale}: CLI, first run of a plan (cache off: YAML, schema and SQL parser loaded)`, baseline: base, subject: { label: 'tiergate apply', ms: t['tiergate apply (CLI, cache off)']! } });
    }
    addRow(ctx, { group: 'engine overhead', measurement: `apply, whole plan, scale ${scale}: library call`, baseline: base, subject: { label: 'apply(db, plan)', ms: t['apply() in process']! }, target, met });
    breakdown[`scale ${scale}`] = summarise(traces, t['apply() in process']!);
    // the ratio split: the tier files' own SQL and the plan's own metric queries are the plan's; the rest is the engine's
    const walls = t['apply() in process']!;
    const metricsMs = traces.map((x) => x.byCategory.metrics ?? 0);
    addRow(ctx, {
      group: 'engine overhead',
      measurement: `apply, scale ${scale}: the plan's own metric queries (library call, traced) vs psql -1 -f`,
      baseline: base,
      subject: { label: 'metrics', ms: metricsMs },
      note: "report only: what the plan's metrics cost, measured inside the library apply; part of the apply ratio that the plan, not the engine, decides",
    });
    addRow(ctx, {
      group: 'engine overhead',
      measurement: `apply, scale ${scale}: the engine's own share (library wall − tier SQL − metrics) vs psql -1 -f`,
      baseline: base,
      subject: { label: 'engine', ms: walls.map((w, i) => w - (traces[i]?.byCategory['tier SQL'] ?? 0) - (metricsMs[i] ?? 0)) },
      target: '≤ 0.1×',
      met: (_s, _b, ratio) => ratio <= 0.1,
      note: 'snapshots, deltas, gate, ledger, lock, transaction control, parsing and the driver: what the engine adds to the tier files and the metrics',
    });
  }
  ctx.details.applyBreakdown = breakdown;
}

/** Medians per category of the traced library applies, and JavaScript time (wall − SQL). */
function summarise(traces: Trace[], walls: number[]): Record<string, unknown> {
  const cats = [...CATEGORIES, 'other SQL'];
  const byCategory: Record<string, number> = {};
  for (const c of cats) byCategory[c] = round(median(traces.map((t) => t.byCategory[c] ?? 0)), 1);
  const sql = traces.map((t) => Object.values(t.byCategory).reduce((a, b) => a + b, 0));
  byCategory['JavaScript, parser, driver (wall − SQL)'] = round(median(walls.map((w, i) => w - (sql[i] ?? 0))), 1);
  return { medianMs: byCategory, wallMs: round(median(walls), 1), queries: traces[0]?.queries ?? 0, topEngineQueries: traces[Math.floor(traces.length / 2)]?.top ?? [] };
}

// ------------------------------------------------------------------ cost that must not grow

/**
 * The engine's own work per tier on the plain sample and on the sample with
 * a large unrelated table: per tier, runTier() minus the same statements in
 * a bare transaction (same connection type, same statement splitting), each
 * on its own fresh copy; plus the traced snapshot / delta / ledger time.
 */
export async function mustNotGrow(ctx: Context, bigRows: number): Promise<void> {
  const reps = ctx.quick ? 3 : 4;
  ctx.log(`cost that must not grow: engine work per tier, sample vs sample + ${bigRows.toLocaleString('en')} rows in orders, ${reps} reps`);
  const tracer = await Tracer.forPlan(ctx.plan);
  const tiers = bodyTiers(ctx.plan);
  const url = ctx.cluster.url(TARGET_DB);
  const dbs = [
    { key: 'plain', template: 'tpl_s1' },
    { key: 'big', template: 'tpl_s1_big' },
  ];
  // [db][mode][tier] → ms per rep
  const samples: Record<string, Record<string, Record<number, number[]>>> = {};
  const traced: Record<string, Record<number, number[]>> = {};
  for (const d of dbs) {
    samples[d.key] = { raw: {}, engine: {} };
    traced[d.key] = {};
  }
  for (let r = 0; r < reps; r++) {
    for (const d of dbs) {
      for (const mode of ['raw', 'engine'] as const) {
        await freshGateOpen(ctx, d.template);
        const db = mode === 'engine' ? tracer.wrap(await openDb(url)) : await openDb(url);
        try {
          if (mode === 'engine') await ensureLedger(db);
          tracer.take();
          for (const tier of tiers) {
            const t = performance.now();
            if (mode === 'raw') await db.transaction((tx) => runScript(tx, tier, tier.file));
            else {
              const res = await runTier(db, ctx.plan, tier);
              if (res.status !== 'Applied') throw new Error(`tier ${tier.id}: ${res.status} ${res.error?.message ?? res.reason ?? ''}`);
            }
            const ms = performance.now() - t;
            (samples[d.key]![mode]![tier.id] ??= []).push(ms);
            if (mode === 'engine') {
              const tr = tracer.take().byCategory;
              const own = (tr['catalog snapshots'] ?? 0) + (tr['row snapshots + deltas'] ?? 0) + (tr['gate'] ?? 0) + (tr['ledger, lock, transaction'] ?? 0);
              (traced[d.key]![tier.id] ??= []).push(own);
            }
          }
        } finally {
          await db.close();
        }
        ctx.log(`    ${d.key.padEnd(6)} ${mode.padEnd(7)} rep ${r + 1}/${reps}`);
      }
    }
  }
  await ctx.server.drop(TARGET_DB);
  // per rep: Σ tiers (engine − raw), and Σ tiers of the traced snapshot/delta/ledger work
  const perRep = (key: string) =>
    Array.from({ length: reps }, (_, r) => tiers.reduce((sum, t) => sum + samples[key]!.engine![t.id]![r]! - samples[key]!.raw![t.id]![r]!, 0));
  const tracedRep = (key: string) => Array.from({ length: reps }, (_, r) => tiers.reduce((sum, t) => sum + traced[key]![t.id]![r]!, 0));
  // must not GROW: at most the noise band above the plain sample (a reading below 1 is noise too: it shows the band)
  const within = (_s: number, _b: number, ratio: number) => ratio <= 1.15;
  const label = `+${(bigRows / 1e6).toLocaleString('en')}M rows in orders`;
  addRow(ctx, {
    group: 'must not grow',
    measurement: `engine work, 6 tiers (runTier − same SQL bare), ${label} vs plain`,
    baseline: { label: 'plain sample', ms: perRep('plain') },
    subject: { label, ms: perRep('big') },
    target: '≤ 1.15× (no growth)',
    met: within,
  });
  addRow(ctx, {
    group: 'must not grow',
    measurement: `snapshots + deltas + gate + ledger (traced), ${label} vs plain`,
    baseline: { label: 'plain sample', ms: tracedRep('plain') },
    subject: { label, ms: tracedRep('big') },
    target: '≤ 1.15× (no growth)',
    met: within,
  });
  const perTier: Record<string, unknown> = {};
  for (const t of tiers) {
    const m = (key: string, mode: string) => round(median(samples[key]![mode]![t.id]!), 1);
    perTier[`tier ${t.id}`] = {
      plain: { rawMs: m('plain', 'raw'), engineMs: m('plain', 'engine'), tracedOwnMs: round(median(traced.plain![t.id]!), 1) },
      big: { rawMs: m('big', 'raw'), engineMs: m('big', 'engine'), tracedOwnMs: round(median(traced.big![t.id]!), 1) },
    };
  }
  ctx.details.mustNotGrow = { bigRows, perTier };
}

// ------------------------------------------------------------------ Sqitch

export async function sqitchPeer(ctx: Context, scales: number[]): Promise<void> {
  ctx.log('peer: Sqitch');
  const status = ensureSqitch(ctx.log);
  ctx.details.sqitch = status;
  if (!status.available) {
    ctx.log(`  skipped: ${status.note}`);
    return;
  }
  ctx.log(`  ${status.version} (${status.note})`);
  const dir = mkdtempSync(join(tmpdir(), 'tiergate-bench-sqitch-'));
  try {
    const changes = writeSqitchProject(dir, ctx.plan, ctx.cluster, (file) => readFileSync(join(ctx.plan.dir, file), 'utf8'));
    const url = ctx.cluster.url(TARGET_DB);
    for (const scale of scales) {
      const reps = 3;
      ctx.log(`  scale ${scale}: sqitch deploy --verify vs tiergate apply (CLI), ${reps} reps`);
      const fresh = () => freshGateOpen(ctx, `tpl_s${scale}`);
      const t = await interleave(
        reps,
        [
          { name: 'sqitch deploy --verify', prepare: fresh, run: () => sqitchDeploy(dir, ctx.cluster, TARGET_DB) },
          { name: 'tiergate apply (CLI)', prepare: fresh, run: () => cliApply(ctx, url) },
        ],
        ctx.log,
      );
      await ctx.server.drop(TARGET_DB);
      addRow(ctx, {
        group: 'peer',
        measurement: `scale ${scale}: tiergate apply vs sqitch deploy --verify (${changes.length} changes)`,
        baseline: { label: 'sqitch deploy --verify', ms: t['sqitch deploy --verify']! },
        subject: { label: 'tiergate apply', ms: t['tiergate apply (CLI)']! },
        note: 'report only: tiergate also checks the gate, post-conditions, metrics and snapshots deltas',
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------ rehearsal and clones

/**
 * The plan's `expect` figures are the sample's at scale 1; at a larger scale
 * every expectation would miss and stop the rehearsal before stage C. The
 * rehearsal is measured on a copy of the plan without `expect` (same files,
 * same work: deltas are still measured, only not compared).
 */
function planWithoutExpectations(plan: Plan, dir: string): Plan {
  cpSync(plan.dir, dir, { recursive: true });
  const raw = parseYaml(readFileSync(join(plan.dir, 'tiergate.yaml'), 'utf8')) as { tiers: { expect?: unknown }[] };
  for (const t of raw.tiers) delete t.expect;
  writeFileSync(join(dir, 'tiergate.yaml'), stringifyYaml(raw));
  return loadPlan(dir);
}

/**
 * Waits until the scratch server has no ready copy of a snapshot in the
 * making (tiergate rehearse starts one as it exits: src/rehearsal/clone-postgres.ts),
 * so that its work lands in no measurement.
 */
async function readyCopiesDone(scratchUrl: string): Promise<void> {
  const c = new pg.Client({ connectionString: scratchUrl });
  await c.connect();
  try {
    for (let i = 0; i < 1200; i++) {
      const r = await c.query<{ n: number }>("select count(*)::int as n from pg_stat_activity where application_name = 'tiergate rehearse (ready copy)'");
      if (r.rows[0]!.n === 0) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error('a ready copy is still being made after 2 min');
  } finally {
    await c.end();
  }
}

/**
 * A rehearsal of the sample at `scale` against one psql apply of the plan:
 * the full rehearsal (pg_dump, pg_restore, stages A–C, report), what comes
 * after the first clone (the evidence's durationMs less its clone's
 * copyMs: stages, fingerprints, the second clone, the report), and a
 * repeated rehearsal of the same source reusing the scratch server's
 * snapshot (`--reuse-snapshot 1h`, end to end: the CLI's wall time).
 */
export async function rehearsal(ctx: Context, scale: number, scratch?: { cluster: Cluster; where: string }): Promise<void> {
  // a rehearsal at scale 100 is minutes: two rounds keep the full run near its budget
  const reps = 2;
  // the scratch server: the benchmark's own cluster, or another one (in memory), the source and the psql apply staying on this one
  const scratchUrl = scratch ? scratch.cluster.url('postgres') : ctx.cluster.url('postgres');
  const on = scratch ? `, scratch server ${scratch.where}` : '';
  ctx.log(`rehearsal at scale ${scale}${on}: tiergate rehearse --source --scratch (fresh, then --reuse-snapshot) vs one psql apply; clone cost; ${reps} reps`);
  const work = mkdtempSync(join(tmpdir(), 'tiergate-bench-rehearse-'));
  const plan = scale === 1 ? ctx.plan : planWithoutExpectations(ctx.plan, join(work, 'plan'));
  const tpl = `tpl_s${scale}`;
  const copies: number[] = [];
  const cloneMs: number[] = [];
  const afterClone: number[] = [];
  /** a repeated rehearsal's two clones, copied from the kept snapshot at once */
  const reusedCopyMs: number[] = [];
  const evidence: unknown[] = [];
  const rehearse = async (extra: string[]) => {
    const out = join(work, 'evidence');
    const r = await capture(process.execPath, [
      join(ctx.root, 'bin', 'tiergate.js'), 'rehearse', '--plan', plan.dir,
      '--source', ctx.cluster.url(TARGET_DB), '--scratch', scratchUrl, '--out', out, '--json', ...extra,
    ]);
    const e = JSON.parse(readFileSync(join(out, 'evidence.json'), 'utf8')) as {
      verdict: { rehearsal: string; failures: string[] };
      clone: { copyMs: number; snapshot?: { reused: boolean; readyCopy?: boolean } };
      rollback: { reference?: { reused: boolean } } | null;
      durationMs: number;
      stages: { name: string; tiers: { id: number; durationMs: number }[] }[];
    };
    if (r.code !== 0 || e.verdict.rehearsal !== 'PASS') throw new Error(`tiergate rehearse ${extra.join(' ')} exited ${r.code}: ${e.verdict.failures.join('; ')}`);
    evidence.push({ args: extra, durationMs: e.durationMs, cloneCopyMs: e.clone.copyMs, snapshot: e.clone.snapshot ?? null, reference: e.rollback?.reference ?? null, stages: e.stages.map((s) => ({ name: s.name, tierMs: s.tiers.reduce((a, x) => a + x.durationMs, 0) })) });
    return e;
  };
  try {
    const t = await interleave(
      reps,
      [
        { name: 'psql -1 -f (one apply)', prepare: () => freshGateOpen(ctx, tpl), run: () => psqlApply(ctx, appliedTiers(plan)) },
        ...(scratch ? [] : [{
          name: 'CREATE DATABASE … TEMPLATE',
          prepare: () => ctx.server.drop('bench_floor'),
          // the default strategy, as tiergate's further clones use it (WAL_LOG on PostgreSQL 15)
          run: async () => {
            const t0 = performance.now();
            await ctx.server.sql('postgres', `create database bench_floor template ${tpl}`);
            copies.push(performance.now() - t0);
          },
          cleanup: () => ctx.server.drop('bench_floor'),
        }]),
        {
          name: 'tiergate rehearse',
          prepare: () => ctx.server.copy(tpl),
          run: async () => {
            const e = await rehearse(['--fresh']);
            cloneMs.push(e.clone.copyMs);
            afterClone.push(e.durationMs - e.clone.copyMs);
          },
          // the ready copy the scratch server makes after the CLI exits: finished before anything else is measured
          cleanup: () => readyCopiesDone(scratchUrl),
        },
        {
          // the same source again (same name, same cluster): the snapshot the run before kept is reused
          name: 'tiergate rehearse --reuse-snapshot',
          run: async () => {
            const e = await rehearse(['--reuse-snapshot', '1h']);
            if (!e.clone.snapshot?.reused) throw new Error('tiergate rehearse --reuse-snapshot 1h did not reuse the snapshot the run before kept');
            if (!e.clone.snapshot.readyCopy || !e.rollback?.reference?.reused) throw new Error('tiergate rehearse --reuse-snapshot 1h did not take the ready copy and the stored reference the run before made');
            reusedCopyMs.push(e.clone.copyMs);
          },
          cleanup: async () => {
            await readyCopiesDone(scratchUrl);
            await ctx.server.drop(TARGET_DB);
          },
        },
      ],
      ctx.log,
    );
    const apply = { label: 'one psql apply', ms: t['psql -1 -f (one apply)']! };
    const note = scale > 1 ? "plan copy without `expect` (the plan's figures are scale 1's)" : undefined;
    const full = scale >= 100 ? '≤ 4×' : undefined;
    addRow(ctx, {
      group: 'rehearsal',
      measurement: `full rehearsal (clone + stages A–C + report), scale ${scale}${on}`,
      baseline: apply,
      subject: { label: 'tiergate rehearse', ms: t['tiergate rehearse']! },
      target: full,
      met: full ? (_s, _b, ratio) => ratio <= 4 : undefined,
      note,
    });
    const after = scale >= 100 ? '≤ 3×' : undefined;
    addRow(ctx, {
      group: 'rehearsal',
      measurement: `after the first clone (stages A–C, fingerprints, second clone, report), scale ${scale}${on}`,
      baseline: apply,
      subject: { label: 'rehearsal − first clone', ms: afterClone },
      target: after,
      met: after ? (_s, _b, ratio) => ratio <= 3 : undefined,
      note: "the evidence's durationMs less its clone's copyMs",
    });
    const limit = scale >= 100 ? 5 : 4;
    addRow(ctx, {
      group: 'rehearsal',
      measurement: `repeated rehearsal of the same source (--reuse-snapshot 1h, end to end), scale ${scale}${on}`,
      baseline: apply,
      subject: { label: 'tiergate rehearse --reuse-snapshot', ms: t['tiergate rehearse --reuse-snapshot']! },
      target: `≤ ${limit}×`,
      met: (_s, _b, ratio) => ratio <= limit,
      note: "the CLI's wall time: no pg_dump; the first clone is the copy made ready after the run before (renamed), the rollback proof's reference the one it stored (no second clone); the next ready copy, which the scratch server makes after the CLI exits, is waited for outside the measurement",
    });
    addRow(ctx, {
      group: 'rehearsal',
      measurement: `repeated rehearsal: its clones made ready (the ready copy renamed; a second clone copied only when the reference is not stored), scale ${scale}${on}`,
      baseline: apply,
      subject: { label: 'clones ready', ms: reusedCopyMs },
      note: "the clone's copyMs in each repeated rehearsal's evidence",
    });
    if (!scratch) addRow(ctx, {
      group: 'clone',
      measurement: `clone of scale ${scale}: pg_dump | pg_restore (tiergate's first clone) vs CREATE DATABASE TEMPLATE`,
      baseline: { label: 'CREATE DATABASE … TEMPLATE', ms: copies },
      subject: { label: 'pg_dump + pg_restore', ms: cloneMs },
      note: "the subject is the clone's copyMs from each fresh rehearsal's evidence (pg_dump --format=custom --compress=0, pg_restore as restoreMode chooses, clone mark, the snapshot's copies)",
    });
    ctx.details[`rehearsal scale ${scale}${on}`] = evidence;
  } finally {
    // (a scratch server of its own is removed whole by its caller)
    await ctx.server.dropLike('tiergate_snap_%').catch(() => undefined);
    await ctx.server.dropLike('tiergate_spare_%').catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * The first clone of a PostgreSQL source, per method, against the floor
 * (`CREATE DATABASE … TEMPLATE` of the same database on the same server), at
 * each scale. Each method dumps the template database `tpl_sN` and restores
 * it into a new empty database on the same server, timed from the start of
 * pg_dump to the end of pg_restore:
 *
 * - custom archive (`pg_dump --format=custom --compress=0`), restored in one
 *   transaction, or with two jobs: tiergate's two modes before this
 *   measurement;
 * - directory archive dumped by N jobs (`pg_dump -Fd -j N`, N = this
 *   machine's cores), restored with N jobs, or in one transaction;
 * - tiergate's own first clone (`withClones`, the clone's copyMs: its
 *   connections, its choice of method, the clone mark).
 *
 * Two jobs of pg_dump lock every table twice (the leader and the worker
 * that dumps it), so on a server whose lock table holds each table once but
 * not twice the directory dump fails: such a run is recorded, not timed.
 */
export async function firstClone(ctx: Context, scales: number[]): Promise<void> {
  const jobs = Math.max(2, cpus().length);
  const bin = ctx.cluster.bin;
  const details: Record<string, unknown> = {};
  for (const scale of scales) {
    const reps = scale >= 100 ? 2 : 3;
    const tpl = `tpl_s${scale}`;
    ctx.log(`first clone of scale ${scale}: pg_dump + pg_restore methods vs CREATE DATABASE … TEMPLATE, ${reps} reps`);
    const work = mkdtempSync(join(tmpdir(), 'tiergate-bench-clone-'));
    const phases: Record<string, { dumpMs: number; restoreMs: number }[]> = {};
    const failed: Record<string, string> = {};
    const into = 'bench_clone';
    const method = (name: string, dumpArgs: (out: string) => string[], restoreArgs: string[]) => ({
      name,
      prepare: () => ctx.server.drop(into),
      run: async () => {
        if (failed[name]) return Number.NaN;
        const out = join(work, 'dump');
        const t0 = performance.now();
        try {
          await run(join(bin, 'pg_dump'), [...dumpArgs(out), '--no-sync', `--dbname=${tpl}`], ctx.cluster.env(tpl));
          const t1 = performance.now();
          await ctx.server.sql('postgres', `create database ${into} template template0`);
          await run(join(bin, 'pg_restore'), [...restoreArgs, '--no-owner', '--no-privileges', `--dbname=${into}`, out], ctx.cluster.env(into));
          const t2 = performance.now();
          (phases[name] ??= []).push({ dumpMs: round(t1 - t0, 0), restoreMs: round(t2 - t1, 0) });
          return t2 - t0;
        } catch (e) {
          failed[name] = (e as Error).message.split('\n').filter((l) => /error|ERROR/.test(l)).slice(0, 3).join(' / ') || (e as Error).message.slice(0, 300);
          ctx.log(`    ${name}: failed, not timed: ${failed[name]}`);
          return Number.NaN;
        }
      },
      cleanup: async () => {
        rmSync(join(work, 'dump'), { recursive: true, force: true });
        await ctx.server.drop(into);
      },
    });
    const custom = (out: string) => ['--format=custom', '--compress=0', `--file=${out}`];
    const directory = (out: string) => ['--format=directory', `--jobs=${jobs}`, '--compress=0', `--file=${out}`];
    const tiergate: number[] = [];
    const t = await interleave(
      reps,
      [
        {
          name: 'CREATE DATABASE … TEMPLATE',
          prepare: () => ctx.server.drop(into),
          run: () => ctx.server.sql('postgres', `create database ${into} template ${tpl}`).then(() => undefined),
          cleanup: () => ctx.server.drop(into),
        },
        method('custom, one transaction', custom, ['--single-transaction']),
        method('custom, 2 jobs', custom, ['--jobs=2']),
        method(`directory, ${jobs} jobs`, directory, [`--jobs=${jobs}`]),
        method(`directory ${jobs} jobs, one transaction`, directory, ['--single-transaction']),
        {
          name: 'tiergate (first clone)',
          run: async () => {
            await withClones({ kind: 'postgres', url: ctx.cluster.url(tpl), scratchUrl: ctx.cluster.url('postgres') }, 1, async ([c]) => {
              tiergate.push(c!.copyMs);
            });
            return tiergate[tiergate.length - 1]!;
          },
        },
      ],
      ctx.log,
    );
    rmSync(work, { recursive: true, force: true });
    const floor = { label: 'CREATE DATABASE … TEMPLATE', ms: t['CREATE DATABASE … TEMPLATE']! };
    for (const name of Object.keys(t)) {
      if (name === floor.label) continue;
      if (failed[name]) continue;
      addRow(ctx, {
        group: 'clone',
        measurement: `first clone of scale ${scale}: ${name} vs CREATE DATABASE TEMPLATE`,
        baseline: floor,
        subject: { label: name === 'tiergate (first clone)' ? 'tiergate first clone' : `pg_dump + pg_restore, ${name}`, ms: t[name]! },
        note: name === 'tiergate (first clone)' ? "the clone's copyMs (tiergate's own choice of method, its connections and clone mark)" : 'pg_dump of the template database, CREATE DATABASE, pg_restore --no-owner --no-privileges',
      });
    }
    details[`scale ${scale}`] = { jobs, phases, failed, tables: await ctx.server.sql<{ n: number }>(tpl, "select count(*)::int as n from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema')").then((r) => r[0]?.n), sizeMb: round((await ctx.server.size(tpl)) / 1e6, 0) };
  }
  ctx.details.firstClone = details;
}

/** The embedded default's clones: the sample built in PGlite (first clone) and a copy of its data directory (each further clone). */
export async function pgliteClone(ctx: Context): Promise<void> {
  const reps = 2;
  ctx.log(`PGlite: the embedded sample's clones vs CREATE DATABASE TEMPLATE at scale 1, ${reps} reps`);
  const build: number[] = [];
  const copy: number[] = [];
  const t = await interleave(
    reps,
    [
      {
        name: 'CREATE DATABASE … TEMPLATE',
        prepare: () => ctx.server.drop('bench_floor'),
        run: () => ctx.server.sql('postgres', 'create database bench_floor template tpl_s1').then(() => undefined),
        cleanup: () => ctx.server.drop('bench_floor'),
      },
      {
        name: 'PGlite sample clones',
        run: async () => {
          await withClones({ kind: 'pglite-sample', scale: 1 }, 2, async ([first, second]) => {
            build.push(first!.copyMs);
            copy.push(second!.copyMs);
          });
        },
      },
    ],
    ctx.log,
  );
  addRow(ctx, {
    group: 'clone',
    measurement: 'PGlite: copy of the sample data dir (each further clone) vs CREATE DATABASE TEMPLATE, scale 1',
    baseline: { label: 'CREATE DATABASE … TEMPLATE', ms: t['CREATE DATABASE … TEMPLATE']! },
    subject: { label: 'PGlite dir copy', ms: copy },
  });
  addRow(ctx, {
    group: 'clone',
    measurement: 'PGlite: build of the sample (first clone) vs CREATE DATABASE TEMPLATE, scale 1',
    baseline: { label: 'CREATE DATABASE … TEMPLATE', ms: t['CREATE DATABASE … TEMPLATE']! },
    subject: { label: 'PGlite sample build', ms: build },
  });
}

// ------------------------------------------------------------------ scanner

/** fn_governance_scan() after a full apply (tiers 1, 5, 6, 2, 3, 4 with psql) at each scale; one new connection per call. */
export async function scanner(ctx: Context, scales: number[], inPlace: Set<number>): Promise<void> {
  const reps = ctx.quick ? 3 : 5;
  ctx.log(`scanner: axis.fn_governance_scan() after a full apply at scales ${scales.join(', ')}, ${reps} reps`);
  const dbOf = (s: number) => (inPlace.has(s) ? `tpl_s${s}` : `scan_s${s}`);
  const applyMs: Record<string, number> = {};
  for (const s of scales) {
    if (!inPlace.has(s)) await ctx.server.copy(`tpl_s${s}`, dbOf(s));
    await ctx.server.sql(dbOf(s), ctx.plan.rehearsal!.open_gate!);
    const t0 = performance.now();
    await psqlApply(ctx, bodyTiers(ctx.plan), dbOf(s));
    applyMs[`scale ${s}`] = round(performance.now() - t0, 0);
    ctx.log(`  scale ${s}: tiers ${bodyTiers(ctx.plan).map((t) => t.id).join(', ')} applied with psql in ${applyMs[`scale ${s}`]} ms`);
    await ctx.server.sql(dbOf(s), 'analyze');
  }
  const scan = (s: number) => async () => {
    const c = new pg.Client({ connectionString: ctx.cluster.url(dbOf(s)) });
    await c.connect();
    try {
      const t0 = performance.now();
      await c.query('select axis.fn_governance_scan()');
      return performance.now() - t0;
    } finally {
      await c.end();
    }
  };
  const t = await interleave(reps, scales.map((s) => ({ name: `scale ${s}`, run: scan(s) })), ctx.log);
  for (let i = 1; i < scales.length; i++) {
    const a = scales[i - 1]!;
    const b = scales[i]!;
    const factor = b / a;
    addRow(ctx, {
      group: 'scanner',
      measurement: `fn_governance_scan(), scale ${b} vs ${a} (×${factor} collections)`,
      baseline: { label: `scale ${a}`, ms: t[`scale ${a}`]! },
      subject: { label: `scale ${b}`, ms: t[`scale ${b}`]! },
      target: `near linear: ≤ ${round(factor * 1.3, 1)}×`,
      met: (_s, _b, ratio) => ratio <= factor * 1.3,
    });
  }
  const top = scales[scales.length - 1]!;
  if (top >= 1000) {
    addRow(ctx, {
      group: 'scanner',
      measurement: `fn_governance_scan() at scale ${top} (65,000 collections), absolute`,
      baseline: { label: `scale ${scales[0]}`, ms: t[`scale ${scales[0]}`]! },
      subject: { label: `scale ${top}`, ms: t[`scale ${top}`]! },
      target: '< 2 s',
      met: (s) => s < 2000,
    });
  }
  ctx.details.scannerSetup = { psqlApplyMs: applyMs };
  for (const s of scales) if (!inPlace.has(s)) await ctx.server.drop(dbOf(s));
}

export { run };
