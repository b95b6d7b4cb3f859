/**
 * Small, direct tests of guarantees that the mutation suite
 * (`npm run test:guarantees`) showed were caught on one backend only, or by
 * luck: each asserted on PGlite and on PostgreSQL wherever the guarantee
 * exists on both.
 *
 * - one tier, one transaction: the ledger row commits with the tier or not at all;
 * - row-level-security policies are part of a fingerprint, and a rollback that
 *   leaves one behind fails the rehearsal's rollback proof;
 * - stage A's "fingerprint unchanged" is a real check: a change to the clone
 *   while a gated tier is blocked fails the rehearsal (PostgreSQL: a second
 *   session is the only way to change a clone behind the rehearsal's back);
 * - metrics read n/a while their objects do not exist;
 * - passwords are redacted where tiergate prints a URL.
 */
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { openDb, withDb } from '../src/db/open-db.js';
import type { Db } from '../src/db/port.js';
import { apply } from '../src/engine/apply.js';
import { loadPlan } from '../src/plan/load-plan.js';
import { diffFingerprints, fingerprint } from '../src/probe/fingerprint.js';
import { bindEvidence, DEFAULT_MAX_EVIDENCE_AGE_MS, diffDeltas } from '../src/rehearsal/bind-evidence.js';
import { markClone } from '../src/rehearsal/clone.js';
import { EvidenceRefusedError } from '../src/errors.js';
import { evidenceFile } from './helpers/rollout.js';
import { openGate, rehearse } from '../src/rehearsal/rehearse.js';
import { runCli } from './helpers/cli.js';
import { startCli } from './helpers/cli-live.js';
import { ENGINE_PLAN, prepareGate } from './helpers/engine-fixture.js';
import { freshDatabase, serverUrl, testTargets, type TargetKind, type TestDatabase } from './helpers/targets.js';

const tmp = (prefix: string) => mkdtempSync(join(tmpdir(), prefix));

/** A writable copy of the engine plan with `edit` applied to the files named. */
function enginePlanWith(edits: Record<string, (text: string) => string>): string {
  const dir = join(tmp('tiergate-plan-'), 'plan');
  cpSync(ENGINE_PLAN, dir, { recursive: true });
  for (const [file, edit] of Object.entries(edits)) writeFileSync(join(dir, file), edit(readFileSync(join(dir, file), 'utf8')));
  return dir;
}

/** The engine plan rehearsed on a source of this kind (the gate closed there). */
async function rehearseEnginePlan(kind: TargetKind, planDir: string, source: TestDatabase) {
  const plan = loadPlan(planDir);
  const openSource = () => openDb(source.url);
  return kind === 'pglite'
    ? rehearse(plan, { kind: 'pglite', url: source.url }, { kind: 'pglite', location: source.url, openSource })
    : rehearse(plan, { kind: 'postgres', url: source.url, scratchUrl: serverUrl('postgres') }, { kind: 'postgres', location: source.url, openSource });
}

describe.each(testTargets())('guarantees, directly (%s)', (kind) => {
  let t: TestDatabase | null = null;
  afterEach(async () => {
    await t?.drop();
    t = null;
  });

  it('one tier, one transaction: a COMMIT that fails takes the ledger row with it', async () => {
    // a deferred foreign key is checked at COMMIT: the tier has run, its ledger row is written, then COMMIT fails
    const dir = enginePlanWith({
      'tiers/03_view.sql': (s) => `${s}\nCREATE TABLE app.late (item integer REFERENCES app.item (id) DEFERRABLE INITIALLY DEFERRED);\nINSERT INTO app.late VALUES (999);\n`,
      'tiers/99_rollback.sql': (s) => `DROP TABLE app.late;\n${s}`,
    });
    t = await freshDatabase(kind, 'postgres');
    await withDb(t.url, async (db) => {
      await prepareGate(db, true);
      const r = await apply(db, loadPlan(dir));
      const t3 = r.tiers.find((x) => x.id === 3)!;
      expect(t3.status).toBe('Failed');
      expect(t3.error?.sqlstate).toBe('23503');
      const ledger = await db.query<{ tier_id: number }>('select tier_id from tiergate.ledger order by id');
      expect(ledger.rows.map((x) => x.tier_id)).toEqual([1, 2]);
      expect((await db.query(`select to_regclass('app.late') as t`)).rows[0]).toEqual({ t: null });
      const attempts = await db.query<{ tier_id: number; sqlstate: string }>(`select tier_id, sqlstate from tiergate.attempt where outcome = 'failed'`);
      expect(attempts.rows).toEqual([{ tier_id: 3, sqlstate: '23503' }]);
    });
  });

  it('metrics read n/a while their objects do not exist, and a number once they do', async () => {
    t = await freshDatabase(kind, 'postgres');
    await withDb(t.url, async (db) => {
      await prepareGate(db, false);
      const r = await apply(db, loadPlan(ENGINE_PLAN));
      expect(r.tiers.find((x) => x.id === 0)?.delta?.metrics.items).toEqual({ before: null, after: null });
      expect(r.tiers.find((x) => x.id === 1)?.delta?.metrics.items).toEqual({ before: null, after: 0 });
    });
  });

  it('a row-level-security policy is part of the fingerprint: added, altered, dropped', async () => {
    t = await freshDatabase(kind, 'postgres');
    await withDb(t.url, async (db: Db) => {
      await db.exec('create schema app; create table app.doc (id int primary key, owner text); alter table app.doc enable row level security;');
      const none = await fingerprint(db);
      await db.exec(`create policy mine on app.doc using (owner = current_user)`);
      const one = await fingerprint(db);
      expect(diffFingerprints(none, one).objects).toEqual(['policy app.doc.mine']);
      await db.exec(`alter policy mine on app.doc using (owner = session_user)`);
      const altered = await fingerprint(db);
      expect(diffFingerprints(one, altered).objects).toEqual(['policy app.doc.mine']);
      await db.exec('drop policy mine on app.doc');
      expect((await fingerprint(db)).hash).toBe(none.hash);
    });
  });

  it('the rehearsal opens a gate only on a clone it marked: on any other database it refuses, writing nothing', async () => {
    t = await freshDatabase(kind, 'postgres');
    await withDb(t.url, async (db) => {
      await prepareGate(db, false);
      const plan = loadPlan(ENGINE_PLAN);
      await expect(openGate(db, plan)).rejects.toThrow(/refusing to open the gate on .*: it is not a clone made by tiergate \(no tiergate\.clone_mark\)/);
      expect((await db.query('select count(*)::int as n from gate.approval')).rows[0]).toEqual({ n: 0 });
      await markClone(db, 'postgres');
      expect(await openGate(db, plan)).toBe(true);
      expect((await db.query('select count(*)::int as n from gate.approval')).rows[0]).toEqual({ n: 1 });
      // an open gate is left as it is
      expect(await openGate(db, plan)).toBe(false);
    });
  });

  it("a guard proof takes only the first statement's error: the gate's own message raised later is not the guard", async () => {
    // tier 2's guard lets a closed gate through; its last statement raises the guard's SQLSTATE and message
    const dir = enginePlanWith({
      'tiers/02_seed.sql': (s) =>
        s.replace('WHERE valid) < 1 THEN', 'WHERE valid) < 0 THEN').replace(
          "IF (SELECT count(*) FROM app.item) <> 3 THEN\n    RAISE EXCEPTION 'post-condition failed: items <> 3';",
          "IF (SELECT count(*) FROM gate.approval WHERE valid) < 1 THEN\n    RAISE EXCEPTION 'gate approvals is closed: tier 2 refused';",
        ),
    });
    expect(readFileSync(join(dir, 'tiers/02_seed.sql'), 'utf8')).toMatch(/< 0 THEN[\s\S]*INSERT[\s\S]*< 1 THEN/);
    t = await freshDatabase(kind, 'postgres');
    await withDb(t.url, (db) => prepareGate(db, false));
    const e = await rehearseEnginePlan(kind, dir, t);
    const a2 = e.stages.find((s) => s.name === 'A')!.tiers.find((x) => x.id === 2)!;
    expect(a2.guardProven).toBe(false);
    expect(e.verdict.rehearsal).toBe('FAIL');
    expect(e.verdict.failures.join('\n')).toMatch(/A: tier 2 stops itself with the gate closed: aborted, but not by its guard: statement 3 failed \(the guard is statement 1\)/);
  });

  it('a source whose gate is closed rehearses PASS: the second clone opens its gate where stage B opened the first', async () => {
    // the engine plan's rollback keeps only ungated tiers: before the fix, the second clone never opened its gate and
    // the rollback proof failed on "table contents differ: gate.approval"
    t = await freshDatabase(kind, 'postgres');
    await withDb(t.url, (db) => prepareGate(db, false));
    const e = await rehearseEnginePlan(kind, ENGINE_PLAN, t);
    expect(e.verdict.failures).toEqual([]);
    expect(e.verdict.rehearsal).toBe('PASS');
    expect(e.rollback?.matchesKeptTiers).toBe(true);
    expect(e.verdict.execution).toBe('NO-GO');
  });

  it('a re-apply that does not reproduce stage B fails the rehearsal, naming the table', async () => {
    // tier 3 snapshots what tier 2 wrote: in stage A it runs before tier 2 (0 items), in the re-apply after it (3)
    const dir = enginePlanWith({
      'tiers/03_view.sql': (s) => `${s}\nCREATE TABLE app.snap AS SELECT count(*) AS n FROM app.item;\n`,
      'tiers/99_rollback.sql': (s) => `DROP TABLE app.snap;\n${s}`,
    });
    t = await freshDatabase(kind, 'postgres');
    await withDb(t.url, (db) => prepareGate(db, false));
    const e = await rehearseEnginePlan(kind, dir, t);
    expect(e.verdict.rehearsal).toBe('FAIL');
    expect(e.rollback?.matchesKeptTiers).toBe(true);
    expect(e.rollback?.reapplyMatches).toBe(false);
    expect(e.rollback?.reapplyDiff).toEqual({ objects: [], tables: ['app.snap'] });
    expect(e.verdict.failures.join('\n')).toMatch(/C: re-applying the reverted tiers reproduces stage B: table contents differ: app\.snap/);
  });

  it('a rollback that leaves a policy behind fails the rehearsal: the clone is not a clean apply of the kept tiers', async () => {
    const dir = enginePlanWith({
      // tier 3 adds a policy that rollback 99 (which reverts 3) forgets
      'tiers/03_view.sql': (s) => `${s}\nALTER TABLE app.item ENABLE ROW LEVEL SECURITY;\nCREATE POLICY everyone ON app.item USING (true);\n`,
      'tiers/99_rollback.sql': (s) => `${s}\nALTER TABLE app.item DISABLE ROW LEVEL SECURITY;\n`,
    });
    t = await freshDatabase(kind, 'postgres');
    await withDb(t.url, (db) => prepareGate(db, false));
    const e = await rehearseEnginePlan(kind, dir, t);
    expect(e.verdict.rehearsal).toBe('FAIL');
    expect(e.rollback?.matchesKeptTiers).toBe(false);
    expect(e.rollback?.keptDiff?.objects).toEqual(['policy app.item.everyone']);
    expect(e.rollback?.keptDiff?.tables).toEqual([]);
    expect(e.verdict.failures.join('\n')).toMatch(/C: after rollback the clone equals a clean apply of the kept tiers: objects differ: .*policy app\.item\.everyone/);
  });
});

describe.each(testTargets())('production does what was rehearsed (%s)', (kind) => {
  it("evidence applies to its own database, each tier compared; another database's apply is refused, touching nothing", async () => {
    const source = await freshDatabase(kind, 'postgres');
    const other = await freshDatabase(kind, 'postgres');
    try {
      for (const d of [source, other]) await withDb(d.url, (db) => prepareGate(db, true));
      const plan = loadPlan(ENGINE_PLAN);
      const e = await rehearseEnginePlan(kind, ENGINE_PLAN, source);
      expect(e.verdict).toMatchObject({ rehearsal: 'PASS', execution: 'GO' });
      const bind = () => bindEvidence(evidenceFile(e), plan, { maxAgeMs: DEFAULT_MAX_EVIDENCE_AGE_MS, acceptDifferences: false }).binding;
      const refused = await withDb(other.url, (db) => apply(db, plan, { binding: bind() })).catch((x: unknown) => x);
      expect(refused).toBeInstanceOf(EvidenceRefusedError);
      expect((refused as Error).message).toMatch(
        kind === 'postgres'
          ? new RegExp(`it rehearses database '${source.database}', and the target is '${other.database}'`)
          : /it rehearses PGlite directory [0-9a-f-]{36}, and the target is [0-9a-f-]{36}/,
      );
      await withDb(other.url, async (db) => expect((await db.query(`select to_regclass('app.item') as t`)).rows[0]).toEqual({ t: null }));
      const r = await withDb(source.url, (db) => apply(db, plan, { binding: bind() }));
      expect(r.outcome).toBe('ok');
      expect(r.tiers.filter((t) => t.status === 'Applied').map((t) => [t.id, t.differences ?? []])).toEqual([[1, []], [2, []], [3, []]]);
    } finally {
      await source.drop();
      await other.drop();
    }
  });

  it('a tier whose delta differs from its rehearsal is named, kind by kind', () => {
    const d = (added: number, views: string[], after: number) => ({
      objects: { views: { added: views, removed: [], changed: [] } },
      rows: { 'app.item': { added, removed: 0, changed: 0 } },
      metrics: { items: { before: 0, after } },
    });
    expect(diffDeltas(d(3, ['app.v'], 3), d(3, ['app.v'], 3))).toEqual([]);
    expect(diffDeltas(d(3, ['app.v'], 3), d(4, ['app.w'], 4))).toEqual([
      { what: 'views added', rehearsal: 'app.v', production: 'app.w' },
      { what: 'rows app.item', rehearsal: '+3 −0 ~0', production: '+4 −0 ~0' },
      { what: 'metric items after', rehearsal: '3', production: '4' },
    ]);
  });
});

describe.runIf(testTargets().includes('postgres'))('stage A: a gated tier that is blocked leaves the clone unchanged, or the rehearsal fails', () => {
  it('a change to the clone while the gated tier is blocked fails the rehearsal with "the fingerprint changed"', async () => {
    const source = await freshDatabase('postgres', 'postgres');
    try {
      await withDb(source.url, async (db) => {
        await prepareGate(db, false);
        // a table of the source: on the clone, the change log vouches for it (app.item, made by tier 1, is hashed)
        await db.exec('create table public.side (v int)');
      });
      const out = tmp('tiergate-evidence-');
      // the hook stops tier 2 in each stage: the first time (stage A) the test acts, later ones go on at once
      let atHook = () => {};
      const hook = new Promise<void>((resolve) => (atHook = resolve));
      let seen = 0;
      const run = runCli(['rehearse', '--plan', ENGINE_PLAN, '--source', source.url, '--scratch', serverUrl('postgres'), '--out', out], {
        env: { TIERGATE_TEST_HOOK: 'tier-begin:2', TIERGATE_TEST_HOOK_WAIT_MS: '120000' },
        timeoutMs: 300_000,
        onStderr: (text) => {
          const n = text.split('tiergate-test-hook tier-begin:2').length - 1;
          if (n === seen) return;
          seen = n;
          if (n === 1) atHook();
          else process.kill(run.pid!, 'SIGUSR2');
        },
      });
      await hook;
      // the gated tier 2 waits in its guard proof: change its clone from another session meanwhile
      const clone = await waitForClone(source.database);
      const c = new pg.Client({ connectionString: serverUrl(clone) });
      await c.connect();
      try {
        await c.query(`insert into app.item (id, label) values (42, 'behind the rehearsal''s back')`);
        await c.query('insert into public.side values (1)');
      } finally {
        await c.end();
      }
      process.kill(run.pid!, 'SIGUSR2');
      const r = await run;
      expect(r.code, r.stdout + r.stderr).toBe(1);
      expect(r.stdout).toMatch(/A: tier 2 stops itself with the gate closed: its guard aborted it, but the fingerprint changed: tables written: public\.side; table contents differ: app\.item/);
    } finally {
      await source.drop();
    }
  });
});

/** The rehearsal's clone of `source` where tier 1 has applied and a session waits in a transaction (at the test hook). */
async function waitForClone(source: string): Promise<string> {
  const c = new pg.Client({ connectionString: serverUrl('postgres') });
  await c.connect();
  try {
    const r = await c.query<{ datname: string }>(
      // (the first clone: the second, `…_2`, may be inside one of its own reference run's transactions just then)
      `select datname from pg_stat_activity where datname like $1 and datname !~ '_2$' and state = 'idle in transaction'`,
      [`tiergate_clone_${source.toLowerCase().replace(/[^a-z0-9_]+/g, '_').slice(0, 32)}%`],
    );
    for (const { datname } of r.rows) {
      const d = new pg.Client({ connectionString: serverUrl(datname) });
      await d.connect();
      try {
        if ((await d.query(`select to_regclass('app.item') is not null as ok`)).rows[0]?.ok) return datname;
      } finally {
        await d.end();
      }
    }
    throw new Error(`no clone session waits at the test hook: ${JSON.stringify(r.rows)}`);
  } finally {
    await c.end();
  }
}

describe.runIf(testTargets().includes('postgres'))('gated means gated: the approvals a tier was let through by cannot be revoked while it runs', () => {
  it('an approval revoked from another session during tier 2 waits for the tier (lock_not_available within its lock_timeout)', async () => {
    // PostgreSQL only: PGlite has one session, so nothing can revoke an approval behind a running tier there
    const t = await freshDatabase('postgres', 'postgres');
    try {
      await withDb(t.url, (db) => prepareGate(db, true));
      const run = startCli(['apply', '--yes', '--plan', ENGINE_PLAN, '--target', t.url], { env: { TIERGATE_TEST_HOOK: 'tier-begin:2', TIERGATE_TEST_HOOK_WAIT_MS: '120000' }, timeoutMs: 300_000 });
      await run.waitFor(/tiergate-test-hook tier\-begin:2/, 'stderr');
      const c = new pg.Client({ connectionString: t.url });
      await c.connect();
      try {
        await c.query(`set lock_timeout = '500ms'`);
        const revoked = await c.query('update gate.approval set valid = false').catch((e: { code?: string }) => e);
        expect((revoked as { code?: string }).code).toBe('55P03');
      } finally {
        await c.end();
      }
      run.kill('SIGUSR2');
      const r = await run.done;
      expect(r.code, r.stdout + r.stderr).toBe(0);
      await withDb(t.url, async (db) => {
        expect((await db.query('select count(*)::int as n from app.item')).rows[0]).toEqual({ n: 3 });
        expect((await db.query('select count(*)::int as n from gate.approval where valid')).rows[0]).toEqual({ n: 1 });
      });
    } finally {
      await t.drop();
    }
  });
});

describe.runIf(testTargets().includes('postgres'))('gated means gated: the engine reads the gate again in each gated tier', () => {
  it('an approval revoked after the run began blocks tier 2 in its own transaction: Blocked, NO-GO (exit 3), not a failure', async () => {
    const t = await freshDatabase('postgres', 'postgres');
    try {
      await withDb(t.url, (db) => prepareGate(db, true));
      // tier 1 has committed; tier 2 has not begun: the engine's first reading of the gate (open) is behind it
      const run = startCli(['apply', '--yes', '--plan', ENGINE_PLAN, '--target', t.url], { env: { TIERGATE_TEST_HOOK: 'tier-committed:1', TIERGATE_TEST_HOOK_WAIT_MS: '120000' }, timeoutMs: 300_000 });
      await run.waitFor(/tiergate-test-hook tier\-committed:1/, 'stderr');
      await withDb(t.url, (db) => db.exec('update gate.approval set valid = false'));
      run.kill('SIGUSR2');
      const r = await run.done;
      expect(r.code, r.stdout + r.stderr).toBe(3);
      expect(r.stdout).toMatch(/2 +Seed +data +Blocked .*gate closed \(approvals=0, needs ≥ 1\)/);
      await withDb(t.url, async (db) => {
        expect((await db.query('select count(*)::int as n from app.item')).rows[0]).toEqual({ n: 0 });
        expect((await db.query(`select count(*)::int as n from tiergate.attempt where outcome = 'failed'`)).rows[0]).toEqual({ n: 0 });
      });
    } finally {
      await t.drop();
    }
  });
});

describe.runIf(testTargets().includes('postgres'))('bounded waiting: a blocked tier fails within its lock_timeout, naming what blocked it', () => {
  it('tier 2 behind a session holding app.item fails with 55P03 and the blocker, and leaves no trace', async () => {
    const t = await freshDatabase('postgres', 'postgres');
    const c = new pg.Client({ connectionString: t.url });
    try {
      await withDb(t.url, (db) => prepareGate(db, true));
      const run = startCli(['apply', '--yes', '--plan', ENGINE_PLAN, '--target', t.url], { env: { TIERGATE_TEST_HOOK: 'tier-begin:2', TIERGATE_TEST_HOOK_WAIT_MS: '120000' }, timeoutMs: 300_000 });
      await run.waitFor(/tiergate-test-hook tier\-begin:2/, 'stderr');
      await c.connect();
      await c.query(`set application_name = 'the blocker'`);
      await c.query('begin');
      await c.query('lock table app.item in access exclusive mode');
      const started = performance.now();
      run.kill('SIGUSR2');
      const r = await run.done;
      const waited = performance.now() - started;
      await c.query('rollback');
      expect(r.code, r.stdout + r.stderr).toBe(1);
      expect(r.stdout + r.stderr).toMatch(/55P03[\s\S]*blocked by .*the blocker/);
      // the plan's lock_timeout is 2 s: it gave up well before any test timeout (a wide bound: no timing assertion)
      expect(waited).toBeLessThan(60_000);
      await withDb(t.url, async (db) => {
        expect((await db.query('select count(*)::int as n from app.item')).rows[0]).toEqual({ n: 0 });
      });
    } finally {
      await c.end().catch(() => undefined);
      await t.drop();
    }
  });
});

describe.runIf(testTargets().includes('postgres'))('passwords are redacted where tiergate prints a URL', () => {
  it('a password in the URL shows as *** in the header and in --json, and appears nowhere', async () => {
    const name = `redact_${Date.now()}`;
    const admin = new pg.Client({ connectionString: serverUrl('postgres') });
    await admin.connect();
    try {
      await admin.query(`create role ${name} login password 'canary-Redact-77'`);
      const t = await freshDatabase('postgres', 'postgres');
      try {
        await withDb(t.url, (db) => prepareGate(db, false));
        await admin.query(`grant all on database ${t.database} to ${name}; `);
        await withDb(t.url, (db) => db.exec(`grant usage on schema gate to ${name}; grant select on all tables in schema gate to ${name}`));
        const u = new URL(t.url);
        u.username = name;
        u.password = 'canary-Redact-77';
        const r = await runCli(['status', '--plan', ENGINE_PLAN, '--target', u.toString()]);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toMatch(new RegExp(`status of plan engine-test on postgres://${name}:\\*\\*\\*@`));
        expect(r.stdout + r.stderr).not.toContain('canary-Redact-77');
        const j = await runCli(['status', '--plan', ENGINE_PLAN, '--target', u.toString(), '--json']);
        expect(JSON.parse(j.stdout).target).toMatch(new RegExp(`^postgres://${name}:\\*\\*\\*@`));
        expect(j.stdout).not.toContain('canary-Redact-77');
      } finally {
        await t.drop();
      }
    } finally {
      await admin.query(`drop role if exists ${name}`).catch(() => undefined);
      await admin.end();
    }
  });
});
