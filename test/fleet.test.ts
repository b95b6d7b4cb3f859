/**
 * Fleet rollouts (`tiergate fleet`), driven through the CLI as users do, on
 * tenant databases spread over two PostgreSQL clusters (the test server and
 * one started here), with a scratch server for the clones: the canary rule,
 * NO-GO targets reported while the rest are applied and verified, the
 * per-server limit, a coordinator killed and resumed (no tier applied
 * twice), worker processes sharing a PostgreSQL control database, and the
 * zero-setup path (PGlite targets, embedded control).
 */
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../scripts/pg-cluster.js';
import { writeSample } from '../fixtures/directus-sample/generate.js';
import { withDb } from '../src/db/open-db.js';
import { editPostgresUrl } from '../src/db/pg-url.js';
import { bundledPlanDir } from '../src/plan/plan.js';
import { runCli } from './helpers/cli.js';
import { startCli } from './helpers/cli-live.js';
import { approveAs } from './helpers/rollout.js';
import { freshDatabase, serverUrl, testTargets, type TestDatabase } from './helpers/targets.js';

const hasServer = testTargets().includes('postgres');

interface Tenant {
  name: string;
  url: string;
  cluster: 'a' | 'b';
  /** the environment variable the target's password comes from */
  passwordEnv?: string;
}

/** Runs SQL on `url`. */
async function sql<T = Record<string, unknown>>(url: string, text: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(text)).rows as T[];
  } finally {
    await c.end();
  }
}

/** Every tier's applied rows on a tenant: tier id → how many times it was applied. */
async function appliedCounts(url: string): Promise<Record<number, number>> {
  const exists = await sql<{ ok: boolean }>(url, `select to_regclass('tiergate.ledger') is not null as ok`);
  if (!exists[0]!.ok) return {};
  const rows = await sql<{ tier_id: number; n: number }>(url, `select tier_id, count(*)::int as n from tiergate.ledger where status = 'applied' and kind <> 'rollback' group by tier_id`);
  return Object.fromEntries(rows.map((r) => [r.tier_id, r.n]));
}

/** The most steps that ran at the same moment on each server, from the control's step records. */
function maxOverlap(steps: { server: string; started_at: string; finished_at: string | null }[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const server of new Set(steps.map((s) => s.server))) {
    const events = steps
      .filter((s) => s.server === server)
      .flatMap((s) => [
        [Date.parse(s.started_at), 1],
        [Date.parse(s.finished_at ?? new Date().toISOString()), -1],
      ] as [number, number][])
      .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let now = 0;
    let max = 0;
    for (const [, d] of events) max = Math.max(max, (now += d));
    out[server] = max;
  }
  return out;
}

describe.runIf(hasServer)('tiergate fleet on two PostgreSQL clusters', () => {
  let second: Cluster;
  let work: string;
  const made: TestDatabase[] = [];

  beforeAll(() => {
    second = startCluster({ label: 'fleet-b', settings: { fsync: 'off', autovacuum: 'off' } });
    work = mkdtempSync(join(tmpdir(), 'tiergate-fleet-'));
  }, 120_000);
  afterAll(async () => {
    for (const d of made) await d.drop().catch(() => undefined);
    second?.destroy();
    rmSync(work, { recursive: true, force: true });
  });

  /** `n` sample tenants alternating between the two clusters; `closed` names those left unapproved, `broken` those whose Directus is broken (preflight fails). */
  async function tenants(prefix: string, n: number, options: { closed?: number[]; broken?: number[] } = {}): Promise<Tenant[]> {
    const out: Tenant[] = [];
    for (let i = 0; i < n; i++) {
      const cluster = i % 2 === 0 ? 'a' : 'b';
      let url: string;
      const name = `${prefix}${i}`;
      if (cluster === 'a') {
        const d = await freshDatabase('postgres', name);
        made.push(d);
        url = d.url;
      } else {
        await sql(second.url('postgres'), `drop database if exists "${name}" with (force)`);
        await sql(second.url('postgres'), `create database "${name}"`);
        url = second.url(name);
      }
      await withDb(url, async (db) => {
        await writeSample(db);
        if (!options.closed?.includes(i)) await approveAs(db, 'admin@northwind.example');
        if (options.broken?.includes(i)) await db.exec('drop table directus_relations cascade');
      });
      out.push({ name, url, cluster });
    }
    return out;
  }

  function targetsFile(name: string, ts: Tenant[], waves: string, concurrency = '{ total: 4, per_server: 2 }'): string {
    const file = join(work, `${name}.yaml`);
    writeFileSync(
      file,
      [
        'plan_database: from_targets',
        `concurrency: ${concurrency}`,
        `scratch: ${JSON.stringify(serverUrl('postgres'))}`,
        'targets:',
        ...ts.map((t) => `  - { name: ${t.name}, url: ${JSON.stringify(t.url)}, labels: { cluster: ${t.cluster} }${t.passwordEnv ? `, password_env: ${t.passwordEnv}` : ''} }`),
        'waves:',
        waves,
      ].join('\n'),
    );
    return file;
  }

  const fleet = (args: string[], timeoutMs = 600_000) => runCli(['fleet', ...args], { cwd: work, timeoutMs });

  it('a failing canary stops the rollout: no other target is touched', async () => {
    const ts = await tenants('canary', 3, { broken: [0] });
    const file = targetsFile('canary', ts, '  - { name: canary, count: 1 }\n  - { name: rest }');
    const control = `pglite:${join(work, 'ctl-canary')}`;
    const r = await fleet(['apply', '--targets', file, '--control', control, '--yes']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/canary0: failed .*preflight/);
    expect(r.stdout).toContain("STOPPED — 3 targets: 0 applied, 1 failed, 2 not run (wave 'canary' failed: 1 failed, its budget allows 0)");
    for (const t of ts) expect(await appliedCounts(t.url), t.name).toEqual({});
    const s = await fleet(['status', '--control', control, '--json']);
    const status = JSON.parse(s.stdout);
    expect(s.code).toBe(1);
    expect(status.waves.map((w: { name: string; state: string }) => [w.name, w.state])).toEqual([
      ['canary', 'failed'],
      ['rest', 'not started'],
    ]);
    expect(status.steps.map((x: { target: string }) => x.target)).toEqual(['canary0']);
  }, 600_000);

  it('fleet plan finds one database listed under two URLs the targets file cannot tell apart (a symbolic link to its socket folder): that target would not run, exit 1', async () => {
    const [one] = await tenants('alias', 1);
    const socket = new URL(one!.url).searchParams.get('host')!;
    const link = join(work, 'alias-socket');
    if (!existsSync(link)) symlinkSync(socket, link);
    const alias = { name: 'alias-again', url: editPostgresUrl(one!.url, (u) => void u.searchParams.set('host', link)), cluster: one!.cluster };
    const planned = await fleet(['plan', '--targets', targetsFile('alias', [one!, alias], '  - { name: all }')]);
    expect(planned.code, planned.stdout + planned.stderr).toBe(1);
    expect(planned.stdout).toMatch(/alias0 .*would apply 1, 5, 6, 7, 8, 2, 3, 4/);
    expect(planned.stdout).toMatch(/alias-again .*would not run: the same database as target 'alias0' \(the server says so, under another URL\)/);
  }, 300_000);

  it('a target whose database does not exist fails at once; one whose server does not answer fails after the retries; the rollout ends instead of waiting', async () => {
    const [ok, other] = await tenants('errs', 2);
    const missing = { name: 'errs-missing', url: editPostgresUrl(ok!.url, (u) => void (u.pathname = '/tiergate_no_such_database')), cluster: 'a' as const };
    const down = { name: 'errs-down', url: editPostgresUrl(ok!.url, (u) => void u.searchParams.set('host', join(work, 'no-server-here'))), cluster: 'a' as const };
    const noPassword = { name: 'errs-nopw', url: other!.url, cluster: other!.cluster, passwordEnv: 'TIERGATE_TEST_PASSWORD_NOT_SET' };
    const file = targetsFile('errs', [ok!, missing, down, noPassword], '  - { name: all, on_error: continue }');
    const control = `pglite:${join(work, 'ctl-errs')}`;
    // planned first: the target apply would fail is named, exit 1
    const planned = await fleet(['plan', '--targets', file]);
    expect(planned.code, planned.stdout + planned.stderr).toBe(1);
    expect(planned.stdout).toMatch(/2 targets cannot be read: apply would fail them; fix what each names before applying/);
    expect(planned.stdout).toMatch(/no failure allowed \(once over it, the wave's other targets still run, and later waves do not start/);
    const r = await fleet(['apply', '--targets', file, '--control', control, '--yes'], 300_000);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    // the server refused the database name: every try would meet the same refusal
    expect(r.stdout).toMatch(/errs-missing: failed .*tiergate_no_such_database" does not exist/);
    expect(r.stdout).not.toMatch(/errs-missing: failed .*failed 6 times/);
    // no answer at all may pass: retried, then failed with the last error
    expect(r.stdout).toMatch(/errs-down: failed .*its rehearse step failed 6 times, the last time because the server did not answer: .*no-server-here/);
    expect(r.stdout).toMatch(/errs0: applied/);
    expect(await appliedCounts(ok!.url)).not.toEqual({});
    const status = JSON.parse((await fleet(['status', '--control', control, '--json'])).stdout) as { steps: { target: string }[] };
    expect(status.steps.filter((x) => x.target === 'errs-missing')).toHaveLength(1);
    // each try is counted where the message says how many there were
    const targets = (status as unknown as { targets: { name: string; state: string; attempts: number }[] }).targets;
    expect(targets.find((t) => t.name === 'errs-down')?.attempts).toBe(6);
    // a password_env this environment does not set: the connection goes ahead as libpq's would (this server asks for no password), as fleet plan's did
    expect(planned.stdout).toMatch(/errs-nopw .*would apply 1, 5, 6, 7, 8, 2, 3, 4/);
    expect(targets.find((t) => t.name === 'errs-nopw')?.state).toBe('applied');
  }, 300_000);

  it('closed gates on 3 targets are reported NO-GO, every other target is applied and verified, at most M steps per server', async () => {
    // TIERGATE_FLEET_TEST_TARGETS=40: the README's 40-target figure (npm test: 6)
    const n = Number(process.env.TIERGATE_FLEET_TEST_TARGETS ?? 6);
    const closed = [1, 4, n - 1];
    const ts = await tenants('gate', n, { closed });
    const file = targetsFile('gate', ts, '  - { name: canary, labels: { cluster: a }, count: 1 }\n  - { name: rest }', '{ total: 4, per_server: 2 }');
    const control = `pglite:${join(work, 'ctl-gate')}`;
    // sample both clusters' sessions while it runs: tiergate's apply connections per server
    let sampling = true;
    const seen: Record<string, number> = { a: 0, b: 0 };
    const sampler = (async () => {
      while (sampling) {
        for (const [k, url] of [['a', serverUrl('postgres')], ['b', second.url('postgres')]] as const) {
          const rows = await sql<{ n: number }>(url, `select count(distinct application_name)::int as n from pg_stat_activity where application_name like 'tiergate fleet % (apply)'`).catch(() => [{ n: 0 }]);
          seen[k] = Math.max(seen[k]!, rows[0]!.n);
        }
        await new Promise((r) => setTimeout(r, 150));
      }
    })();
    const r = await fleet(['apply', '--targets', file, '--control', control, '--yes']);
    sampling = false;
    await sampler;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(3);
    expect(r.stdout).toContain(`COMPLETED, NO-GO ON SOME TARGETS — ${n} targets: ${n - 3} applied, 3 NO-GO`);
    for (const [i, t] of ts.entries()) {
      const counts = await appliedCounts(t.url);
      if (closed.includes(i)) expect(counts, t.name).toEqual({});
      else expect(counts, t.name).toEqual({ 1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1, 7: 1, 8: 1 });
    }
    const status = JSON.parse((await fleet(['status', '--control', control, '--json'])).stdout);
    expect(status.targets.map((t: { name: string; state: string }) => [t.name, t.state])).toEqual(ts.map((t, i) => [t.name, closed.includes(i) ? 'no-go' : 'applied']));
    expect(status.targets[1].error).toContain('no accountable approval of proposal OS-AXIS');
    // 'applied' is reached only after the fleet's verify passed on the target (README: Fleet)
    expect(status.steps.filter((s: { step: string; outcome: string }) => s.step === 'apply').map((s: { outcome: string }) => s.outcome)).toEqual(Array(n - 3).fill('applied'));
    // the canary ran alone, before any other target began
    const canaryEnd = Math.max(...status.steps.filter((s: { target: string }) => s.target === 'gate0').map((s: { finished_at: string }) => Date.parse(s.finished_at)));
    const othersStart = Math.min(...status.steps.filter((s: { target: string }) => s.target !== 'gate0').map((s: { started_at: string }) => Date.parse(s.started_at)));
    expect(othersStart).toBeGreaterThanOrEqual(canaryEnd);
    // at most per_server = 2 steps on any server at once, by the control's records and by the servers' own sessions
    const overlap = maxOverlap(status.steps);
    expect(Math.max(...Object.values(overlap))).toBeLessThanOrEqual(2);
    expect(Object.keys(overlap).length).toBe(2);
    expect(Math.max(seen.a!, seen.b!)).toBeLessThanOrEqual(2);
    // each target's evidence is linked from the fleet report, and no password anywhere
    const report = readFileSync(join(work, 'tiergate-fleet-evidence', status.rollout.id, 'fleet-report.html'), 'utf8');
    for (const t of ts) expect(report).toContain(`${t.name}/evidence.html`);
    console.info(`fleet of ${n} targets on 2 clusters: ${(status.steps.length)} steps, at most ${JSON.stringify(overlap)} at once per server (control records), ${JSON.stringify(seen)} apply sessions (pg_stat_activity)`);
  }, 1_800_000);

  it('reads its targets from an inventory query (other columns are labels) and plans them with a dry run each', async () => {
    const ts = await tenants('inv', 2, { closed: [1] });
    const inv = await freshDatabase('postgres', 'inventory');
    made.push(inv);
    await sql(inv.url, `create table tenants (name text, url text, region text, active boolean)`);
    await sql(inv.url, `insert into tenants values ('${ts[0]!.name}', '${ts[0]!.url}', 'eu', true), ('${ts[1]!.name}', '${ts[1]!.url}', 'us', true), ('gone', 'postgres://nowhere/x', 'eu', false)`);
    const file = join(work, 'inventory.yaml');
    writeFileSync(file, `plan_database: from_targets\ninventory: { url: ${JSON.stringify(inv.url)}, query: "select name, url, region from tenants where active order by name" }\nwaves:\n  - { name: us, labels: { region: us } }\n  - { name: rest }\n`);
    const r = await fleet(['plan', '--targets', file, '--json']);
    expect(r.code).toBe(0);
    const planned = JSON.parse(r.stdout);
    expect(planned.waves.map((w: { name: string; targets: { name: string; labels: object }[] }) => [w.name, w.targets.map((t) => [t.name, t.labels])])).toEqual([
      ['us', [[ts[1]!.name, { region: 'us' }]]],
      ['rest', [[ts[0]!.name, { region: 'eu' }]]],
    ]);
    const us = planned.waves[0].targets[0].dryRun;
    expect(us.gate).toMatchObject({ name: 'ospa', value: 0, open: false });
    expect(us.tiers.filter((t: { action: string }) => t.action === 'block').map((t: { id: number }) => t.id)).toEqual([2, 3, 4]);
    writeFileSync(file, `inventory: { url: ${JSON.stringify(inv.url)}, query: "select name, url from no_such_table" }\n`);
    const bad = await fleet(['plan', '--targets', file]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/inventory\.query failed on .*: relation "no_such_table" does not exist/);
  }, 600_000);

  it('a coordinator killed mid-rollout is resumed by the same command: every tier applied exactly once', async () => {
    const ts = await tenants('kill', 3);
    const file = targetsFile('kill', ts, '  - { name: all }', '{ total: 2, per_server: 2 }');
    const control = `pglite:${join(work, 'ctl-kill')}`;
    const first = startCli(['fleet', 'apply', '--targets', file, '--control', control, '--yes'], { cwd: work, timeoutMs: 600_000 });
    await first.waitFor(/: applying/, 'stdout');
    first.kill('SIGKILL');
    await first.done;
    const again = await fleet(['apply', '--targets', file, '--control', control, '--yes']);
    expect(again.stderr).toBe('');
    expect(again.stdout).toMatch(/resuming/);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('COMPLETED — 3 targets: 3 applied');
    for (const t of ts) expect(await appliedCounts(t.url), t.name).toEqual({ 1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1, 7: 1, 8: 1 });
    // every target's applied tiers, those the killed run applied included (its ledger rows bound to the same evidence)
    const status = JSON.parse((await fleet(['status', '--control', control, '--json'])).stdout) as { targets: { name: string; applied: number[] }[] };
    for (const t of status.targets) expect(t.applied, t.name).toEqual([1, 5, 6, 7, 8, 2, 3, 4]);
  }, 900_000);

  it('worker processes on a shared PostgreSQL control database share the work; a third joins mid-rollout', async () => {
    const ts = await tenants('workers', 5);
    const file = targetsFile('workers', ts, '  - { name: all }', '{ total: 3, per_server: 3 }');
    const ctl = await freshDatabase('postgres', 'fleet_control');
    made.push(ctl);
    const coordinator = startCli(['fleet', 'apply', '--targets', file, '--control', ctl.url, '--workers', '0', '--yes'], { cwd: work, timeoutMs: 900_000 });
    const workerArgs = ['fleet', 'worker', '--control', ctl.url, '--workers', '1'];
    // (one with --json: stopped, it prints its one result object)
    const w1 = startCli([...workerArgs, '--json'], { cwd: work, timeoutMs: 900_000 });
    const w2 = startCli(workerArgs, { cwd: work, timeoutMs: 900_000 });
    await coordinator.waitFor(/: apply-queued|: applying/, 'stdout');
    const w3 = startCli(workerArgs, { cwd: work, timeoutMs: 900_000 });
    await w3.waitFor(/working on rollout/, 'stdout');
    const done = await coordinator.done;
    for (const w of [w1, w2, w3]) w.kill('SIGINT');
    const [r1] = await Promise.all([w1.done, w2.done, w3.done]);
    expect(r1.code).toBe(130);
    expect(JSON.parse(r1.stdout)).toMatchObject({ ok: false, outcome: 'interrupted', worker: expect.any(Number), runningStepsFinished: true });
    expect(done.stderr).toBe('');
    expect(done.code).toBe(0);
    const status = JSON.parse((await fleet(['status', '--control', ctl.url, '--json'])).stdout);
    const workers = new Set(status.steps.map((s: { worker: string }) => s.worker));
    expect(workers.size).toBeGreaterThanOrEqual(2);
    for (const t of ts) expect(await appliedCounts(t.url), t.name).toEqual({ 1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1, 7: 1, 8: 1 });
  }, 900_000);
});

describe.runIf(testTargets().includes('postgres'))('a fleet worker that dies mid-step', () => {
  it('its step runs again on another worker once its heartbeat stops; the dead attempt is closed as abandoned; every tier applied once', async () => {
    const work = mkdtempSync(join(tmpdir(), 'tiergate-fleet-dead-'));
    const made: TestDatabase[] = [];
    try {
      const t = await freshDatabase('postgres', 'deadw');
      made.push(t);
      await withDb(t.url, async (db) => {
        await writeSample(db);
        await approveAs(db, 'admin@northwind.example');
      });
      const ctl = await freshDatabase('postgres', 'fleet_dead');
      made.push(ctl);
      const file = join(work, 'fleet.yaml');
      writeFileSync(file, ['plan_database: from_targets', `scratch: ${JSON.stringify(serverUrl('postgres'))}`, 'targets:', `  - { name: deadw, url: ${JSON.stringify(t.url)} }`, 'waves:', '  - { name: all }'].join('\n'));
      // the shortest heartbeat: a dead worker's step is another's within seconds, not after pg-boss's minute
      const env = { TIERGATE_FLEET_HEARTBEAT_SECONDS: '10' };
      const coordinator = startCli(['fleet', 'apply', '--targets', file, '--control', ctl.url, '--workers', '0', '--yes'], { cwd: work, env, timeoutMs: 600_000 });
      const doomed = startCli(['fleet', 'worker', '--control', ctl.url, '--workers', '1'], { cwd: work, env, timeoutMs: 600_000 });
      await coordinator.waitFor(/deadw: rehearsing/, 'stdout');
      doomed.kill('SIGKILL');
      await doomed.done;
      const rescuer = startCli(['fleet', 'worker', '--control', ctl.url, '--workers', '1'], { cwd: work, env, timeoutMs: 600_000 });
      const done = await coordinator.done;
      rescuer.kill('SIGINT');
      await rescuer.done;
      expect(done.code, done.stdout + done.stderr).toBe(0);
      const steps = await sql<{ step: string; finished: boolean; outcome: string | null }>(ctl.url, `select step, finished_at is not null as finished, outcome from tiergate_fleet.step order by id`);
      expect(steps.every((s) => s.finished)).toBe(true);
      expect(steps.map((s) => [s.step, s.outcome])).toEqual([
        ['rehearse', 'abandoned: its worker stopped (no heartbeat); the step ran again'],
        ['rehearse', 'rehearsed'],
        ['apply', 'applied'],
      ]);
      const ledger = await sql<{ tier_id: number; n: number }>(t.url, `select tier_id, count(*)::int as n from tiergate.ledger where status = 'applied' group by 1 order by 1`);
      expect(ledger.every((r) => r.n === 1)).toBe(true);
    } finally {
      for (const d of made) await d.drop();
      rmSync(work, { recursive: true, force: true });
    }
  }, 600_000);
});

describe.runIf(testTargets().includes('postgres'))('Ctrl-C of fleet apply while a target applies', () => {
  it('the running tier rolls back and no further tier starts: exit 130; the same command then completes it, every tier once', async () => {
    const work = mkdtempSync(join(tmpdir(), 'tiergate-fleet-int-'));
    const made: TestDatabase[] = [];
    try {
      // the bundled plan with a tier 1 that takes a few seconds (a Ctrl-C lands inside it)
      const planDir = join(work, 'plan');
      cpSync(bundledPlanDir(), planDir, { recursive: true });
      const tier1 = join(planDir, 'tiers', '01_base_substrate.sql');
      writeFileSync(tier1, `select pg_sleep(3);\n${readFileSync(tier1, 'utf8')}`);
      const t = await freshDatabase('postgres', 'intw');
      made.push(t);
      await withDb(t.url, async (db) => {
        await writeSample(db);
        await approveAs(db, 'admin@northwind.example');
      });
      const ctl = await freshDatabase('postgres', 'fleet_int');
      made.push(ctl);
      const file = join(work, 'fleet.yaml');
      writeFileSync(file, ['plan_database: from_targets', `scratch: ${JSON.stringify(serverUrl('postgres'))}`, 'targets:', `  - { name: intw, url: ${JSON.stringify(t.url)} }`, 'waves:', '  - { name: all }'].join('\n'));
      const args = ['fleet', 'apply', '--plan', planDir, '--targets', file, '--control', ctl.url, '--workers', '1', '--yes'];
      const run = startCli(args, { cwd: work, timeoutMs: 600_000 });
      await run.waitFor(/intw: applying/, 'stdout');
      // inside tier 1 on the target itself
      const sleeping = async () => (await sql<{ n: number }>(t.url, `select count(*)::int as n from pg_stat_activity where datname = current_database() and query like 'select pg_sleep(3)%'`))[0]!.n;
      for (let i = 0; i < 200 && (await sleeping()) === 0; i++) await new Promise((r) => setTimeout(r, 50));
      run.kill('SIGINT');
      const r = await run.done;
      expect(r.code, r.stdout + r.stderr).toBe(130);
      expect(r.stderr).toMatch(/the running ones stop after their current statement/);
      // nothing of the plan committed on the target: tier 1 rolled back, no tier after it started
      expect(await appliedCounts(t.url)).toEqual({});
      const again = await runCli(args, { cwd: work, timeoutMs: 600_000 });
      expect(again.code, again.stdout + again.stderr).toBe(0);
      const counts = await appliedCounts(t.url);
      expect(Object.keys(counts).map(Number).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      expect(Object.values(counts).every((n) => n === 1)).toBe(true);
    } finally {
      for (const d of made) await d.drop();
      rmSync(work, { recursive: true, force: true });
    }
  }, 600_000);
});

describe('tiergate fleet refuses bad input before touching anything', () => {
  it('a bad targets file, a missing one, no scratch server for PostgreSQL targets, no control yet: exit 2, no control folder made', async () => {
    const work = mkdtempSync(join(tmpdir(), 'tiergate-fleet-bad-'));
    try {
      writeFileSync(join(work, 'bad.yaml'), 'targets:\n  - { name: "a b", url: "postgres://u:s3cret-pw@h/db" }\nwaves:\n  - { name: x, on_error: maybe }\n');
      const bad = await runCli(['fleet', 'apply', '--targets', 'bad.yaml', '--yes'], { cwd: work });
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain("targets[0].name: must be a name of letters, digits, '.', '_' or '-'");
      expect(bad.stderr).toContain('waves[0].on_error: must be stop or continue');
      expect(bad.stderr + bad.stdout).not.toContain('s3cret-pw');
      const missing = await runCli(['fleet', 'plan', '--targets', 'nope.yaml'], { cwd: work });
      expect(missing.code).toBe(2);
      expect(missing.stderr).toMatch(/targets file 'nope.yaml' does not exist/);
      writeFileSync(join(work, 'pg.yaml'), 'targets:\n  - { name: a, url: "postgres://u@h/db" }\n');
      const noScratch = await runCli(['fleet', 'apply', '--targets', 'pg.yaml', '--yes'], { cwd: work });
      expect(noScratch.code).toBe(2);
      expect(noScratch.stderr).toContain('must be rehearsed on a clone: pass --scratch URL');
      const status = await runCli(['fleet', 'status'], { cwd: work });
      expect(status.code).toBe(2);
      expect(status.stderr).toContain("run 'tiergate fleet apply' first");
      expect(existsSync(join(work, '.tiergate-fleet'))).toBe(false);
      const worker = await runCli(['fleet', 'worker'], { cwd: work });
      expect(worker.code).toBe(2);
      expect(worker.stderr).toContain('pass --control postgres://');
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});

describe('tiergate fleet with nothing to set up (PGlite targets, embedded control)', () => {
  it('plans, applies and reports two PGlite tenants: one applied, one NO-GO', async () => {
    const work = mkdtempSync(join(tmpdir(), 'tiergate-fleet-pglite-'));
    try {
      for (const [dir, approve] of [['t1', true], ['t2', false]] as const) {
        const s = await runCli(['sample', '--pglite', join(work, dir)], { cwd: work });
        expect(s.code).toBe(0);
        if (approve) expect((await runCli(['approve', '--target', `pglite:${join(work, dir)}`, '--as', 'admin@northwind.example', '--yes'], { cwd: work })).code).toBe(0);
      }
      writeFileSync(join(work, 'fleet.yaml'), 'targets:\n  - { name: t1, url: "pglite:./t1" }\n  - { name: t2, url: "pglite:./t2" }\n');
      const planned = await runCli(['fleet', 'plan', '--targets', 'fleet.yaml'], { cwd: work });
      expect(planned.code).toBe(0);
      expect(planned.stdout).toMatch(/t1 +pglite:\.\/t1 +would apply 1, 5, 6, 7, 8, 2, 3, 4/);
      expect(planned.stdout).toMatch(/t2 +pglite:\.\/t2 +NO-GO \(gate ospa = 0, needs ≥ 1\): nothing would be applied; with the gate open, 1, 5, 6, 7, 8, 2, 3, 4/);
      const r = await runCli(['fleet', 'apply', '--targets', 'fleet.yaml', '--yes'], { cwd: work, timeoutMs: 600_000 });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(3);
      expect(r.stdout).toContain('2 targets: 1 applied, 1 NO-GO');
      const status = JSON.parse((await runCli(['fleet', 'status', '--json'], { cwd: work })).stdout);
      expect(status.targets.map((t: { name: string; state: string; applied: number[] }) => [t.name, t.state, t.applied])).toEqual([
        ['t1', 'applied', [1, 5, 6, 7, 8, 2, 3, 4]],
        ['t2', 'no-go', []],
      ]);
      const v = await runCli(['verify', '--target', 'pglite:./t1'], { cwd: work });
      expect(v.code).toBe(0);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }, 600_000);
});

describe('a rollout whose files changed since it started', () => {
  it('is closed as superseded by the new rollout of the same plan and targets file, not left running', async () => {
    const work = mkdtempSync(join(tmpdir(), 'tiergate-fleet-superseded-'));
    try {
      const { openControl } = await import('../src/fleet/control.js');
      const { createOrResume } = await import('../src/fleet/rollout.js');
      const { readFleetFile, resolveFleet } = await import('../src/fleet/targets.js');
      const { loadPlan } = await import('../src/plan/load-plan.js');
      const { bundledPlanDir } = await import('../src/plan/plan.js');
      writeFileSync(join(work, 'fleet.yaml'), 'targets:\n  - { name: t1, url: "pglite:./t1" }\n');
      const cwd = process.cwd();
      process.chdir(work);
      try {
        const spec = await resolveFleet(await readFleetFile('fleet.yaml'));
        const plan = loadPlan(bundledPlanDir());
        const control = await openControl(`pglite:${join(work, 'ctl')}`, { create: true });
        try {
          const first = await createOrResume(control, spec, plan, null);
          expect(first.resumed).toBe(false);
          expect((await createOrResume(control, spec, plan, null)).resumed).toBe(true);
          // the plan's files changed (a new tiergate's, an edit): a new rollout, and the old one closed, saying why
          const second = await createOrResume(control, spec, { ...plan, sha256: 'f'.repeat(64) }, null);
          expect(second).toMatchObject({ resumed: false, superseded: [first.rollout.id] });
          const [old] = await control.sql<{ state: string; reason: string }>('select state, reason from tiergate_fleet.rollout where id = $1', [first.rollout.id]);
          expect(old).toEqual({ state: 'stopped', reason: expect.stringMatching(new RegExp(`^superseded by rollout ${second.rollout.id}: the plan's files or the targets file changed since it started`)) });
        } finally {
          await control.close();
        }
      } finally {
        process.chdir(cwd);
      }
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }, 120_000);
});
