/**
 * What a plan's own SQL costs at scale, and whether two versions of a plan
 * compute the same thing: the bundled plan at one commit against another
 * (or any plan folders), on the sample at each scale.
 *
 *   node --import tsx bench/plan-sql.ts --ref 5ec0c57 --ref HEAD              # scales 1, 10, 100; 3 repetitions
 *   node --import tsx bench/plan-sql.ts --plan plans/axis-governance --scales 100 --reps 1
 *
 * No tiergate engine runs: on a fresh copy of the sample (its own cluster
 * with the benchmark's settings and sample templates, bench/cluster.ts and
 * bench/databases.ts; the gate opened by the plan's `rehearsal.open_gate`) each tier
 * runs in one transaction as psql would run it — first the figures its
 * `expect` reads (one statement, as tiergate reads them), then its file's
 * statements one by one, then the plan's metrics (one statement) — in the
 * order apply and a rehearsal's stage C run them: every applied tier, the
 * rollback tier, the reverted tiers again, verify. For each plan it prints
 * the time of the tiers' SQL, of the figures and of the metrics (medians of
 * the repetitions, plans interleaved), the statements over 40 ms, and two
 * hashes: of every metric value after every tier, and of the state at the
 * end (the governed collections, owners, topics, axes, containment
 * assignments, collection topics and reconcile decisions). Two plans that
 * compute the same thing show the same hashes at every scale.
 *
 * `--ref REF` takes the plan folder (`plans/axis-governance`) as it is at a
 * git commit of this repository. Writes bench/work/plan-sql.json.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { packageRoot } from '../src/package-root.js';
import { splitStatements } from '../src/plan/lint.js';
import { loadPlan, type Plan } from '../src/plan/load-plan.js';
import { setStatement } from '../src/probe/metrics.js';
import { startCluster } from './cluster.js';
import { Server, TARGET_DB } from './databases.js';
import { interleave, median } from './stats.js';

const { values: args } = parseArgs({
  options: {
    ref: { type: 'string', multiple: true },
    plan: { type: 'string', multiple: true },
    scales: { type: 'string', default: '1,10,100' },
    reps: { type: 'string', default: '3' },
  },
});
const root = packageRoot();
const log = (m: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${m}`);

/** The bundled plan's folder as it is at git commit `ref`, extracted to a temporary folder. */
function planAtRef(ref: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'tiergate-plan-'));
  const tar = execFileSync('git', ['-C', root, 'archive', ref, 'plans/axis-governance']);
  execFileSync('tar', ['-x', '-C', dir], { input: tar });
  return join(dir, 'plans', 'axis-governance');
}

const sources: { label: string; dir: string }[] = [
  ...(args.ref ?? []).map((ref) => ({ label: `${ref} (${execFileSync('git', ['-C', root, 'rev-parse', '--short', ref]).toString().trim()})`, dir: planAtRef(ref) })),
  ...(args.plan ?? []).map((dir) => ({ label: dir, dir })),
];
if (sources.length === 0) sources.push({ label: 'plans/axis-governance', dir: join(root, 'plans', 'axis-governance') });
const plans = sources.map((s) => ({ ...s, plan: loadPlan(s.dir) }));
for (const p of plans) if (!p.plan.rehearsal?.open_gate) throw new Error(`plan '${p.label}' has no rehearsal.open_gate: this script opens the gate with it`);

// the benchmark's own server settings and sample templates (bench/cluster.ts, bench/databases.ts)
const cluster = startCluster({ label: 'plan-sql' });
const server = new Server(cluster);

interface Run {
  sqlMs: number;
  figuresMs: number;
  metricsMs: number;
  slow: string[];
  metricsHash: string;
  stateHash: string;
}

const STATE = `select (select json_agg(g order by g.collection) from axis.v_governed_collection g)::text as governed,
  (select json_agg(o order by o.collection) from (select collection, owner, basis, tag from axis.ownership) o)::text as owners,
  (select json_agg(t order by t.key) from (select key, status, previous_status, status_tag from axis.topic) t)::text as topics,
  (select json_agg(x order by x.key) from (select key, status, previous_status, status_tag from axis.axis) x)::text as axes,
  (select json_agg(a order by a.collection) from (select collection, container, anchor, rule, tag from axis.containment_assignment) a)::text as assignments,
  (select json_agg(t order by t.collection, t.topic) from (select collection, topic, basis, tag from axis.collection_topic) t)::text as projections,
  (select json_agg(d order by d.collection, d.topic) from (select collection, topic, reconcile_flag, decision, rationale, tag from axis.reconcile_decision) d)::text as decisions`;

const hash = (v: unknown) => createHash('sha256').update(JSON.stringify(v)).digest('hex').slice(0, 12);

/** The tiers in the order apply runs them, then the rollback tier, the tiers it reverts and verify (stage C). */
function order(plan: Plan): number[] {
  const applied = plan.tiers.filter((t) => t.kind !== 'rollback').map((t) => t.id);
  const rollback = plan.tiers.filter((t) => t.kind === 'rollback' && t.scope !== 'subject').at(-1);
  if (!rollback) return applied;
  const verify = plan.tiers.filter((t) => t.kind === 'verify').map((t) => t.id);
  const again = applied.filter((id) => rollback.reverts.includes(id));
  return [...applied, rollback.id, ...again, ...verify];
}

/** Every tier of `plan` on the fresh copy TARGET_DB, on one connection. */
async function runPlan(plan: Plan): Promise<Run> {
  const c = new pg.Client({ connectionString: cluster.url(TARGET_DB) });
  await c.connect();
  try {
    await c.query(plan.rehearsal!.open_gate!);
    await c.query('set jit = off');
    const run: Run = { sqlMs: 0, figuresMs: 0, metricsMs: 0, slow: [], metricsHash: '', stateHash: '' };
    const values: unknown[] = [];
    for (const id of order(plan)) {
      const tier = plan.tiers.find((t) => t.id === id)!;
      await c.query('begin');
      if (tier.figures.length) {
        const t = performance.now();
        await c.query(setStatement(tier.figures.map((f) => plan.figures[f]!)));
        run.figuresMs += performance.now() - t;
      }
      for (const s of await splitStatements(tier.sql)) {
        const t = performance.now();
        await c.query(s.sql);
        const ms = performance.now() - t;
        run.sqlMs += ms;
        if (ms > 40) run.slow.push(`tier ${id} ${Math.round(ms)} ms: ${s.sql.replace(/\s+/g, ' ').trim().slice(0, 60)}`);
      }
      // a metric whose objects do not exist yet: the set reads as n/a, as tiergate would read it
      await c.query('savepoint metrics');
      try {
        const t = performance.now();
        const r = await c.query(setStatement(Object.values(plan.metrics)));
        run.metricsMs += performance.now() - t;
        values.push(r.rows[0]);
        await c.query('release savepoint metrics');
      } catch {
        await c.query('rollback to savepoint metrics');
        values.push(null);
      }
      await c.query('commit');
    }
    run.metricsHash = hash(values);
    run.stateHash = hash((await c.query(STATE)).rows[0]);
    return run;
  } finally {
    await c.end();
  }
}

const startLoad = loadavg();
const results: Record<string, unknown> = {};
for (const scale of args.scales!.split(',').map(Number)) {
  const template = `tpl_s${scale}`;
  log(`building the sample at scale ${scale} …`);
  await server.buildSample(template, scale);
  const runs = new Map<string, Run[]>(plans.map((p) => [p.label, []]));
  // plans interleaved, the order rotating; each run on a fresh copy
  await interleave(
    Number(args.reps),
    plans.map((p) => ({
      name: `scale ${scale} ${p.label}`,
      prepare: () => server.copy(template),
      run: async () => {
        const r = await runPlan(p.plan);
        runs.get(p.label)!.push(r);
        return r.sqlMs;
      },
    })),
    log,
    { rotate: true },
  );
  for (const p of plans) {
    const rs = runs.get(p.label)!;
    const row = {
      sqlMs: Math.round(median(rs.map((r) => r.sqlMs))),
      figuresMs: Math.round(median(rs.map((r) => r.figuresMs))),
      metricsMs: Math.round(median(rs.map((r) => r.metricsMs))),
      metricsHash: [...new Set(rs.map((r) => r.metricsHash))].join(' '),
      stateHash: [...new Set(rs.map((r) => r.stateHash))].join(' '),
      slow: rs.at(-1)!.slow,
    };
    results[`scale ${scale} · ${p.label}`] = row;
    console.log(`scale ${scale}  ${p.label}: tiers' SQL ${row.sqlMs} ms · figures ${row.figuresMs} ms · metrics ${row.metricsMs} ms · metrics hash ${row.metricsHash} · state hash ${row.stateHash}`);
    for (const s of row.slow) console.log(`    ${s}`);
  }
}
mkdirSync(join(root, 'bench', 'work'), { recursive: true });
writeFileSync(
  join(root, 'bench', 'work', 'plan-sql.json'),
  JSON.stringify({ generatedAt: new Date().toISOString(), loadAverage: { start: startLoad, end: loadavg() }, plans: sources, results }, null, 2),
);
