/**
 * "What an operator sees is true": what the CLI prints and the exit code it
 * gives match what happened in the target. Each test here guards a defect
 * that was real once; see operator-tty.test.ts for the prompt and Ctrl-C.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { openDb, withDb } from '../src/db/open-db.js';
import type { Db } from '../src/db/port.js';
import { apply } from '../src/engine/apply.js';
import { rollback } from '../src/engine/rollback.js';
import { planLockKey } from '../src/engine/rollout-lock.js';
import { runTier } from '../src/engine/run-tier.js';
import { PlanError } from '../src/errors.js';
import { renderJson } from '../src/evidence/evidence-json.js';
import { loadPlan } from '../src/plan/load-plan.js';
import { runCli } from './helpers/cli.js';
import { startCli, type LiveCli } from './helpers/cli-live.js';
import { ENGINE_PLAN, stateOf } from './helpers/engine-fixture.js';
import { cliRuns, dropTemplates, gateTarget, ids, inspect, planWith } from './helpers/operator.js';
import { freshDatabase, testTargets, type TestDatabase } from './helpers/targets.js';
import { axisGovernanceEvidence } from './fixtures/evidence-sample.js';

/** The gated tier's INSERT misspelt, after its guard: the file does not parse (tiers/02_seed.sql:10:8). */
const gatedTypo = () => planWith({ 'tiers/02_seed.sql': (s) => s.replace('INSERT INTO app.item', 'INSERT INTOO app.item') });
/** A syntax error in the last structure tier (tiers/03_view.sql:2:8). */
const lastTierTypo = () => planWith({ 'tiers/03_view.sql': (s) => s.replace('CREATE VIEW', 'CREATE VIEWW') });
/** Tier 3 fails at run time (syntax-valid): division by zero at tiers/03_view.sql:3. */
const tier3Fails = () => planWith({ 'tiers/03_view.sql': (s) => `${s}select 1/0;\n` });

/** A closed port: anything that tries to connect fails with "cannot connect". */
const NOWHERE = 'postgres://u:canary-pw@127.0.0.1:1/x';

afterAll(dropTemplates);

describe.concurrent('operator: without a database', () => {
  it("a tier file that does not parse: lint exits 1, apply and rollback exit 2 naming file:line, before any connection or question", async () => {
    const typo = gatedTypo();
    const broken = lastTierTypo();
    const [lint, applyTypo, applyLast, rollbackLast, applyAsking] = await Promise.all([
      runCli(['lint', '--plan', typo]),
      runCli(['apply', '--yes', '--plan', typo, '--target', NOWHERE]),
      runCli(['apply', '--yes', '--plan', broken, '--target', NOWHERE]),
      runCli(['rollback', '--yes', '--plan', broken, '--target', NOWHERE]),
      // without --yes and without a terminal: the plan is refused first, not the missing confirmation
      runCli(['apply', '--plan', broken, '--target', NOWHERE]),
    ]);
    expect(lint.code).toBe(1);
    expect(lint.stdout).toMatch(/^tiers\/02_seed\.sql:10:8: error \[parse\] tier 2: syntax error at or near "INTOO"/m);
    expect(applyTypo.code).toBe(2);
    expect(applyTypo.stderr).toMatch(/tiers\/02_seed\.sql:10:8: syntax error at or near "INTOO".*nothing was run/);
    for (const r of [applyLast, rollbackLast, applyAsking]) {
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/tiers\/03_view\.sql:2:8: syntax error at or near "VIEWW"/);
    }
    for (const r of [applyTypo, applyLast, rollbackLast, applyAsking]) {
      expect(r.stderr).not.toMatch(/cannot connect|refusing without confirmation/);
      expect(r.stdout).toBe('');
      expect(r.stdout + r.stderr).not.toContain('canary-pw');
    }
  });

  it('a plan outside the working directory is named by the path given, not by a climb of ../', async () => {
    const bad = planWith({ 'tiergate.yaml': () => 'plan: x\ntiers: 3\n' });
    expect(isAbsolute(bad)).toBe(true);
    const r = await runCli(['plan', '--plan', bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`plan '${bad}' is invalid`);
    expect(r.stderr).not.toContain("'../");
  });

  it('a typo in a PGlite path: status, apply and rollback exit 2 saying the folder does not exist, and do not create it', async () => {
    const typo = join(mkdtempSync(join(tmpdir(), 'tiergate-typo-')), 'typo-dir');
    const runs = await Promise.all(
      [['status'], ['apply', '--yes'], ['rollback', '--yes']].map((cmd) => runCli([...cmd, '--plan', ENGINE_PLAN, '--target', `pglite:${typo}`])),
    );
    for (const r of runs) {
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`the folder ${typo} does not exist`);
    }
    expect(existsSync(typo)).toBe(false);
  });

  it('plan: every column of the table stands apart (two spaces at least), nothing runs together', async () => {
    const r = await runCli(['plan']);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(/viewsstructure|\dtiers\/|datatiers|[a-z]tiers\/\d/);
    const lines = r.stdout.split('\n');
    const header = lines.findIndex((l) => /^id\s{2,}name\s{2,}kind\s{2,}gate\s{2,}requires \/ reverts\s{2,}file\s{2,}sha256$/.test(l));
    expect(header).toBeGreaterThan(-1);
    const rows = lines.slice(header + 1).filter((l) => l.trim());
    const plan = loadPlan();
    expect(rows).toHaveLength(plan.tiers.length);
    plan.tiers.forEach((t, i) => {
      const row = rows[i]!;
      // seven cells, each apart from the next by two spaces or more, each the plan's
      const cells = row.trim().split(/ {2,}/);
      expect(cells, row).toHaveLength(7);
      const [id, name, kind, gate, requires, file, sha] = cells as [string, string, string, string, string, string, string];
      expect(id, row).toBe(String(t.id));
      expect(t.name.startsWith(name.replace(/…$/, '')), row).toBe(true);
      expect(kind, row).toBe(t.kind);
      expect(gate, row).toBe(t.gated ? plan.gate!.name : '—');
      expect(requires, row).toBe(t.kind === 'rollback' ? `reverts ${t.reverts.join(', ')}` : t.requires.join(', ') || '—');
      expect(file, row).toBe(t.file);
      expect(sha, row).toBe(`${t.sha256.slice(0, 16)}…`);
    });
  });

  it('--json with an unknown flag prints one JSON object (ok false, kind usage) and exits 2', async () => {
    const r = await runCli(['status', '--json', '--bogus']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as { ok: boolean; error: { kind: string; message: string } };
    expect(out).toEqual({ ok: false, error: { kind: 'usage', message: expect.stringContaining("unknown option '--bogus'") } });
  });

  it('report --json gives the verdict; --out into a missing folder is exit 2 in words, not ENOENT', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tiergate-report-'));
    const file = join(dir, 'evidence.json');
    writeFileSync(file, renderJson(axisGovernanceEvidence()));
    const missing = join(dir, 'missing', 'dir');
    const [json, toMissing] = await Promise.all([runCli(['report', file, '--json']), runCli(['report', file, '--format', 'html', '--out', join(missing, 'x.html')])]);
    expect(json.code).toBe(0);
    const out = JSON.parse(json.stdout) as { ok: boolean; verdict: { rehearsal: string; execution: string; reason: string } };
    expect(out.ok).toBe(true);
    expect(out.verdict).toMatchObject({ rehearsal: 'PASS', execution: 'NO-GO', reason: 'ospa=0' });
    expect(toMissing.code).toBe(2);
    expect(toMissing.stderr).toContain(`the folder ${missing} does not exist`);
    expect(toMissing.stdout + toMissing.stderr).not.toMatch(/ENOENT|at .*\.ts:\d+/);
    expect(existsSync(missing)).toBe(false);
  });
});

// Concurrent: each test has a target of its own (a PGlite CLI run is seconds of mostly waiting).
describe.concurrent.each(testTargets())('operator on %s', (kind) => {
  /** Runs `fn` on a fresh target of this kind, dropped after. */
  const onTarget = (fn: (target: TestDatabase) => Promise<void>) => async () => {
    const target = await gateTarget(kind);
    try {
      await fn(target);
    } finally {
      await target.drop();
    }
  };

  it('DDL a data tier runs through EXECUTE of a built string: a lint warning, and the tier is rolled back when it runs (exit 1)', onTarget(async (target) => {
    const plan = planWith({
      'tiers/02_seed.sql': (s) => s.replace('INSERT INTO app.item', () => "DO $$ BEGIN EXECUTE format('create table app.%I (id int)', 'hidden'); END $$;\n\nINSERT INTO app.item"),
    });
    const lint = await runCli(['lint', '--plan', plan]);
    expect(lint.code, lint.stdout + lint.stderr).toBe(0);
    expect(lint.stdout).toMatch(/tiers\/02_seed\.sql:\d+:\d+: warning \[opaque-in-data\] tier 2: EXECUTE of a string built at run time in data tier 2/);
    await withDb(target.url, (db) => db.exec('insert into gate.approval (valid) values (true)'));
    const r = await runCli(['apply', '--yes', '--plan', plan, '--target', target.url]);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toMatch(/data tier 2 changed the schema \(tables \+app\.hidden\): data tiers change rows only/);
    expect(await withDb(target.url, (db) => db.query(`select to_regclass('app.hidden') as t`).then((x) => x.rows[0]))).toEqual({ t: null });
  }));

  it('a broken tier file anywhere stops apply before anything: exit 2 with file:line, no tier applied, no ledger', onTarget(async (target) => {
    const typo = gatedTypo();
    const broken = lastTierTypo();
    // (the last structure tier broken: the CLI's refusal is tested without a database above)
    const a = await runCli(['apply', '--yes', '--plan', typo, '--target', target.url]);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/tiers\/02_seed\.sql:10:8: syntax error at or near "INTOO"/);
    expect(a.stdout).toBe('');
    await withDb(target.url, async (db) => {
      // the engine refuses them too (a library caller has no CLI in front of it), with the gate open
      await db.exec('insert into gate.approval (valid) values (true)');
      for (const [dir, where] of [[typo, 'tiers/02_seed.sql:10:8'], [broken, 'tiers/03_view.sql:2:8']] as const) {
        const err = await apply(db, loadPlan(dir)).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(PlanError);
        expect((err as PlanError).issues.map((i) => i.path)).toEqual([where]);
      }
      // tier 1, before the broken files, was not applied, and no ledger was made
      expect(await inspect(target.url, db)).toEqual({ schemas: [], ledger: [], items: null });
    });
  }));

  it("guard proof: only the guard's own error, from the file's first statement, proves it", onTarget(async (target) => {
    const declareTG009 = (s: string) => s.replace('  min: 1\n', '  min: 1\n  guard: { sqlstate: TG009, message: gate approvals is closed }\n');
    const plans = {
      // the fixture: no gate.guard, so the guard's SQLSTATE is P0001 (RAISE EXCEPTION's)
      real: ENGINE_PLAN,
      // the plan declares TG009, the file's guard raises P0001: not the guard's error
      wrongSqlstate: planWith({ 'tiergate.yaml': declareTG009 }),
      // the plan declares TG009 and the guard raises it
      realTG009: planWith({ 'tiergate.yaml': declareTG009, 'tiers/02_seed.sql': (s) => s.replace("tier 2 refused';", "tier 2 refused' USING ERRCODE = 'TG009';") }),
      // a syntax-correct guard on a table that does not exist: 42P01
      missingTable: planWith({ 'tiers/02_seed.sql': (s) => s.replace('FROM gate.approval WHERE valid) < 1', 'FROM gate.nope WHERE valid) < 1') }),
      // the file does not parse: no statement can be told to be its guard
      typo: gatedTypo(),
    };
    await withDb(target.url, async (db) => {
      const before = await stateOf(db);
      const proof = async (dir: string) => {
        const plan = loadPlan(dir);
        return runTier(db, plan, plan.tiers.find((t) => t.id === 2)!, { proveGuard: true });
      };
      const real = await proof(plans.real);
      expect(real).toMatchObject({ status: 'Blocked', guardProven: true });
      const raiseLine = readFileSync(join(ENGINE_PLAN, 'tiers/02_seed.sql'), 'utf8').split('\n').findIndex((l) => l.includes('RAISE EXCEPTION')) + 1;
      expect(real.error).toMatchObject({ sqlstate: 'P0001', file: 'tiers/02_seed.sql', line: raiseLine });
      expect(real.reason).toMatch(/^its own guard aborted it: gate approvals is closed/);

      const realTG009 = await proof(plans.realTG009);
      expect(realTG009).toMatchObject({ status: 'Blocked', guardProven: true });
      expect(realTG009.error?.sqlstate).toBe('TG009');

      const wrong = await proof(plans.wrongSqlstate);
      expect(wrong).toMatchObject({ status: 'Failed', guardProven: false });
      expect(wrong.reason).toMatch(/not by its guard: SQLSTATE P0001 .*not the guard's TG009/);

      const missing = await proof(plans.missingTable);
      expect(missing).toMatchObject({ status: 'Failed', guardProven: false });
      expect(missing.error?.sqlstate).toBe('42P01');
      expect(missing.reason).toMatch(/not by its guard: SQLSTATE 42P01 .*gate\.nope/);

      const typo = await proof(plans.typo);
      expect(typo).toMatchObject({ status: 'Failed', guardProven: false });
      expect(typo.reason).toMatch(/the file does not parse/);
      // a proof is always rolled back and leaves no record
      expect(await stateOf(db)).toEqual(before);
      expect((await inspect(target.url, db)).schemas).toEqual([]);
    });
  }));

  it.runIf(kind === 'postgres')('a gate read under a lock is an error naming the blocker (exit 1), never a closed gate (exit 3)', onTarget(async (target) => {
    const holder = new pg.Client({ connectionString: target.url });
    await holder.connect();
    try {
      const pid = (await holder.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
      await holder.query('begin');
      await holder.query('lock table gate.approval in access exclusive mode');
      const args = ['--plan', ENGINE_PLAN, '--target', target.url];
      const [status, applied, dry] = await Promise.all([runCli(['status', ...args]), runCli(['apply', '--yes', ...args]), runCli(['apply', '--dry-run', ...args])]);
      expect(status.code).toBe(1);
      expect(status.stderr).toMatch(/reading the gate and metrics on .*lock timeout/);
      expect(applied.code).toBe(1);
      expect(applied.stderr).toMatch(/reading gate 'approvals'.*lock timeout/);
      expect(dry.code).toBe(1);
      for (const r of [status, applied, dry]) {
        expect(r.stderr).toMatch(new RegExp(`blocked by pid ${pid} .*AccessExclusiveLock on gate\\.approval`));
        expect(r.stdout).not.toMatch(/NO-GO|CLOSED|gate closed/);
      }
      // a user without pg_read_all_stats sees the blocker's pid and user, not what it does: named all the same, with the GRANT that shows more
      const role = `tg_peer_${Math.random().toString(36).slice(2, 8)}`;
      await withDb(target.url, (db) => db.exec(`create role ${role} login; grant usage on schema gate to ${role}; grant select on gate.approval to ${role};
        do $$ begin if to_regnamespace('tiergate') is not null then execute 'grant usage on schema tiergate to ${role}; grant select on all tables in schema tiergate to ${role}'; end if; end $$`));
      try {
        const { editPostgresUrl } = await import('../src/db/pg-url.js');
        const peer = await runCli(['status', '--plan', ENGINE_PLAN, '--target', editPostgresUrl(target.url, (u) => void (u.username = role))]);
        expect(peer.code, peer.stderr).toBe(1);
        expect(peer.stderr).toMatch(new RegExp(`blocked by pid ${pid} .*AccessExclusiveLock on gate\\.approval \\(what it is doing is hidden from this user: GRANT pg_read_all_stats TO ${role} shows it\\)`));
      } finally {
        await withDb(target.url, (db) => db.exec(`drop owned by ${role}; drop role ${role}`));
      }
    } finally {
      await holder.query('rollback').catch(() => undefined);
      await holder.end();
    }
    const after = await inspect(target.url);
    expect(after.schemas).not.toContain('app');
    expect(after.ledger).toEqual([]);
  }));

  it('a metric that is not one read query: status, verify and apply refuse the plan (exit 2, kind plan) naming its line, as apply does; nothing runs', onTarget(async (target) => {
    const bad = planWith({ 'tiergate.yaml': (s) => s.replace('metrics:\n', 'metrics:\n  sneaky: select count(*) from app.item; delete from gate.approval\n') });
    const approvals = async () => withDb(target.url, (db) => db.query<{ n: number }>('select count(*)::int as n from gate.approval').then((r) => r.rows[0]!.n));
    const before = await approvals();
    for (const command of ['status', 'verify', 'apply']) {
      const r = await runCli([command, '--json', '--yes', '--plan', bad, '--target', target.url].filter((a) => command === 'apply' || a !== '--yes'));
      expect(r.code, `${command}: ${r.stdout}`).toBe(2);
      const out = JSON.parse(r.stdout) as { ok: boolean; error: { kind: string; message: string } };
      expect(out.error.kind, command).toBe('plan');
      expect(out.error.message, command).toMatch(/tiergate\.yaml:\d+:1: metric 'sneaky' is not one query that only reads: .*\[plan-query\]/);
    }
    expect(await approvals()).toBe(before);
  }));

  it('a gate whose query names a column that does not exist reads no value: apply (NO-GO, exit 3) and status say why, and that approvals cannot open it', onTarget(async (target) => {
    const typo = planWith({ 'tiergate.yaml': (s) => s.replace('from gate.approval where valid\n', 'from gate.approval where validd\n') });
    await withDb(target.url, (db) => db.exec('insert into gate.approval (valid) values (true)'));
    const r = await runCli(['apply', '--yes', '--plan', typo, '--target', target.url]);
    expect(r.code, r.stdout + r.stderr).toBe(3);
    expect(r.stdout).toMatch(/^ +2 +Seed +data +Blocked .*gate closed \(approvals=n\/a, needs ≥ 1; it reads no value: its query fails here: column "validd" does not exist \(SQLSTATE 42703\)\)/m);
    expect(r.stdout).toMatch(/^apply: NO-GO \(approvals=n\/a\)/m);
    expect(r.stdout).toMatch(/^ +the gate reads no value, so no approval can open it: its query fails here: column "validd" does not exist \(SQLSTATE 42703\) — create what gate\.sql reads, or correct it in tiergate\.yaml$/m);
    const s = await runCli(['status', '--plan', typo, '--target', target.url]);
    expect(s.stdout).toMatch(/^gate approvals = n\/a \(needs ≥ 1\): CLOSED$/m);
    expect(s.stdout).toMatch(/^ +the gate reads no value, so no approval can open it: its query fails here: column "validd" does not exist/m);
    const json = JSON.parse((await runCli(['status', '--json', '--plan', typo, '--target', target.url])).stdout) as { gate: { value: null; unread: string } };
    expect(json.gate).toMatchObject({ value: null, open: false, unread: 'its query fails here: column "validd" does not exist (SQLSTATE 42703)' });
  }));

  it("tiergate's attempt table renamed by hand: status and log say which table is missing and what to do (exit 2); apply creates it anew and records its runs", onTarget(async (target) => {
    await withDb(target.url, (db) => db.exec('insert into gate.approval (valid) values (true)'));
    expect((await runCli(['apply', '--yes', '--plan', ENGINE_PLAN, '--target', target.url])).code).toBe(0);
    await withDb(target.url, (db) => db.exec('alter table tiergate.attempt rename to attempt_old'));
    for (const command of ['status', 'log']) {
      const r = await runCli([command, '--plan', ENGINE_PLAN, '--target', target.url]);
      expect(r.code, command).toBe(2);
      expect(r.stderr, command).toMatch(/tiergate's table tiergate\.attempt is missing on this database, while tiergate\.ledger is there \(renamed or dropped by hand\?\): .*rename it back, or let the next apply create it anew/);
    }
    const again = await runCli(['apply', '--yes', '--plan', ENGINE_PLAN, '--target', target.url]);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    const attempts = await withDb(target.url, (db) => db.query<{ tier_id: number; outcome: string }>('select tier_id, outcome from tiergate.attempt order by id'));
    expect(attempts.rows).toEqual([{ tier_id: 0, outcome: 'passed' }, { tier_id: 90, outcome: 'passed' }]);
    expect((await runCli(['status', '--plan', ENGINE_PLAN, '--target', target.url])).code).toBe(0);
  }));

  it('apply --dry-run of a plan whose gate query does not parse lists the lint error and sends the query nowhere', onTarget(async (target) => {
    const typo = planWith({ 'tiergate.yaml': (s) => s.replace('sql: select count(*) from gate.approval where valid\n', 'sql: selec count(*) from gate.approval where valid\n') });
    const r = await runCli(['apply', '--dry-run', '--plan', typo, '--target', target.url]);
    expect(r.stdout + r.stderr).toMatch(/tiergate\.yaml:8:1: .*gate 'approvals' does not parse: syntax error at or near "selec"/);
    expect(r.stdout).toMatch(/apply would refuse the plan: lint error at tiergate\.yaml:8/);
    expect(r.stdout + r.stderr).not.toMatch(/reading gate|internal/);
    // (1: apply would not run, as for any plan it refuses)
    expect(r.code, r.stdout + r.stderr).toBe(1);
  }));

  it('a ledger row of a tier the plan does not have (written by hand): status says so, and does not date the verify by it', onTarget(async (target) => {
    await withDb(target.url, (db) => db.exec('insert into gate.approval (valid) values (true)'));
    expect((await runCli(['apply', '--yes', '--plan', ENGINE_PLAN, '--target', target.url])).code).toBe(0);
    await withDb(target.url, (db) =>
      db.exec(`insert into tiergate.ledger select (json_populate_record(null::tiergate.ledger, (to_jsonb(l) || jsonb_build_object('id', (select max(id) + 1 from tiergate.ledger), 'tier_id', 42, 'applied_at', now() + interval '1 minute'))::json)).*
                 from tiergate.ledger l where tier_id = 3`),
    );
    const r = await runCli(['status', '--plan', ENGINE_PLAN, '--target', target.url]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/the ledger also has rows of plan engine-test for tier 42, which this plan does not have \(another revision of the plan, or rows written by hand\)/);
    expect(r.stdout).not.toMatch(/before tier 42/);
    const json = JSON.parse((await runCli(['status', '--json', '--plan', ENGINE_PLAN, '--target', target.url])).stdout) as { unknownTiers: number[] };
    expect(json.unknownTiers).toEqual([42]);
  }));

  it.runIf(kind === 'postgres')('a read that runs out its statement_timeout with nobody in its way says it was slow, not blocked (exit 1), whatever other databases of the server hold', onTarget(async (target) => {
    const slow = planWith({
      'tiergate.yaml': (s) => s.replace('statement_timeout: 1min', 'statement_timeout: 300ms').replace('metrics:\n', 'metrics:\n  slow: select count(*) from (select pg_sleep(2)) x\n'),
    });
    // an open transaction in another database of the server, holding a table's lock and one on a catalog's toast table
    // (same oid in every database, as a pg_restore into a clone holds it): neither is in this read's way (CI once said so)
    const elsewhere = await freshDatabase('postgres', 'bystander');
    const holder = new pg.Client({ connectionString: elsewhere.url });
    await holder.connect();
    const r = await (async () => {
      try {
        await holder.query('create table held (id int)');
        const wide = Array.from({ length: 400 }, (_, i) => `${i} as "${createHash('md5').update(String(i)).digest('hex')}"`).join(', ');
        await holder.query(`begin; lock table held; create view wide as select ${wide}`);
        const toast = await holder.query<{ n: number }>(
          `select count(*)::int as n from pg_locks where pid = pg_backend_pid() and relation in ('held'::regclass, (select reltoastrelid from pg_class where oid = 'pg_rewrite'::regclass))`,
        );
        expect(toast.rows[0]!.n).toBe(2);
        return await runCli(['status', '--plan', slow, '--target', target.url]);
      } finally {
        await holder.end();
        await elsewhere.drop();
      }
    })();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/canceling statement due to statement timeout \(no other session held a lock it waited for: the query itself ran that long here\)/);
    expect(r.stderr).toMatch(/defaults\.statement_timeout bounds it/);
    expect(r.stderr).not.toMatch(/end that transaction/);
  }));

  it('status and log say what happened: checks passed, a failed tier with its SQLSTATE, a superseded rollback; --exit-code follows', onTarget(async (target) => {
    const failing = tier3Fails();
    const plan = loadPlan(ENGINE_PLAN);
    await withDb(target.url, async (db) => {
      await db.exec('insert into gate.approval (valid) values (true)');
      expect(ids(await apply(db, loadPlan(failing)))).toMatchObject({ 2: 'Applied', 3: 'Failed' });
    });
    const [st, log] = await cliRuns(kind, [
      ['status', '--json', '--exit-code', '--plan', failing, '--target', target.url],
      ['log', '--plan', failing, '--target', target.url],
    ]);
    expect(st.code).toBe(1);
    type Line = { id: number; state: string; at: string | null; by: string | null; version: string | null; note: string | null; error: { sqlstate: string; file: string; line: number } | null };
    const s1 = JSON.parse(st.stdout) as { ok: boolean; tiers: Line[]; unfinished: number[] };
    const t1 = Object.fromEntries(s1.tiers.map((t) => [t.id, t]));
    expect(s1.ok).toBe(false);
    expect(s1.unfinished).toEqual([3]);
    expect(t1[0]).toMatchObject({ state: 'passed', by: expect.any(String), version: expect.stringMatching(/^\d+\.\d+\.\d+/) });
    expect(t1[0]!.at).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(t1[2]!.state).toBe('applied');
    expect(t1[3]).toMatchObject({ state: 'failed', error: { sqlstate: '22012', file: 'tiers/03_view.sql', line: 3 } });
    expect(t1[90]!.state).toBe('not run');
    expect(t1[99]!.state).toBe('not run');

    expect(log.code).toBe(0);
    expect(log.stdout).toMatch(/: 4 events/);
    expect(log.stdout).toMatch(/ {2}0 Preflight {2,}passed {2,}apply {2,}/);
    expect(log.stdout).toMatch(/ {2}1 Schema {2,}applied {2,}apply {2,}/);
    expect(log.stdout).toMatch(/ {2}2 Seed {2,}applied {2,}apply {2,}/);
    expect(log.stdout).toMatch(/ {2}3 View {2,}failed {2,}apply {2,}.*22012 division by zero \(tiers\/03_view\.sql:3\)/);

    // the fixed tier 3 applied, then rolled back, then applied again
    await withDb(target.url, async (db) => {
      expect(ids(await apply(db, plan))).toMatchObject({ 3: 'Applied', 90: 'Passed' });
      expect((await rollback(db, plan)).outcome).toBe('ok');
      expect(ids(await apply(db, plan))).toMatchObject({ 2: 'Applied', 3: 'Applied', 90: 'Passed' });
    });
    const done = await runCli(['status', '--json', '--exit-code', '--plan', ENGINE_PLAN, '--target', target.url]);
    expect(done.code).toBe(0);
    const s2 = JSON.parse(done.stdout) as { ok: boolean; tiers: Line[]; unfinished: number[] };
    const t2 = Object.fromEntries(s2.tiers.map((t) => [t.id, t]));
    expect(s2.ok).toBe(true);
    expect(s2.unfinished).toEqual([]);
    for (const id of [0, 90]) expect(t2[id]).toMatchObject({ state: 'passed', at: expect.any(String), by: expect.any(String), version: expect.any(String), error: null });
    for (const id of [1, 2, 3]) expect(t2[id]!.state).toBe('applied');
    expect(t2[99]).toMatchObject({ state: 'superseded', note: 'tier 3, 2 applied again since' });
    // the database changed since verify passed: its post-condition fails on the metrics read now, so it is failing, and --exit-code says so
    await withDb(target.url, (db) => db.exec(`insert into app.item (id, label, tag) values (40, 'added by hand', null)`));
    const drifted = await runCli(['status', '--json', '--exit-code', '--plan', ENGINE_PLAN, '--target', target.url]);
    expect(drifted.code, drifted.stderr).toBe(1);
    const s3 = JSON.parse(drifted.stdout) as { ok: boolean; tiers: Line[]; unfinished: number[] };
    expect(s3.ok).toBe(false);
    expect(s3.unfinished).toEqual([90]);
    expect(s3.tiers.find((t) => t.id === 90)).toMatchObject({ state: 'failing', note: 'passed then; the metrics read now fail its post-conditions: items = 4 (needs items = 3) — run tiergate verify for every failing assertion' });
    const shown = await runCli(['status', '--exit-code', '--plan', ENGINE_PLAN, '--target', target.url]);
    expect(shown.code).toBe(1);
    expect(shown.stdout).toMatch(/^not done: tier 90 \(failing\)$/m);
    // verify --json names the failure in error, as every other failure does
    const verified = await runCli(['verify', '--json', '--plan', ENGINE_PLAN, '--target', target.url]);
    expect(verified.code).toBe(1);
    expect(JSON.parse(verified.stdout)).toMatchObject({ ok: false, outcome: 'failed', error: { kind: 'failed', message: expect.stringMatching(/^tier 90 'Verify' failed/) } });
  }));

  it("status of a database that is not the plan's exits 2; rollback of tiers not applied says so (exit 2) before asking; --exit-code while pending", onTarget(async (target) => {
    const [wrong, rb, pending] = await cliRuns(kind, [
      // the bundled plan is for database 'directus'
      ['status', '--target', target.url],
      // no --yes, no terminal: the "not applied" check comes before the question
      ['rollback', '--plan', ENGINE_PLAN, '--target', target.url],
      ['status', '--exit-code', '--plan', ENGINE_PLAN, '--target', target.url],
    ]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(new RegExp(`target database is '${target.database}', but plan 'axis-governance' is for database 'directus'`));
    // said to be the plan's database here (a fleet's tenant, plan_database: from_targets): read
    const told = await runCli(['status', '--target', target.url, '--plan-database', target.database]);
    expect(told.code, told.stderr).toBe(0);
    expect(told.stdout).toMatch(/^status of plan axis-governance on /m);
    expect(rb.code).toBe(2);
    expect(rb.stderr).toMatch(/rollback tier 99 reverts tiers 3, 2, but tiers 3, 2 are not applied on .*nothing was changed/);
    expect(rb.stderr).not.toMatch(/refusing without confirmation/);
    expect(pending.code).toBe(1);
    expect(pending.stdout).toMatch(/^not done: tier 1 \(pending\), 2 \(pending\), 3 \(pending\)$/m);
    expect(pending.stdout).toMatch(/^99 {2}Rollback {2,}rollback {2,}not run /m);
    expect((await inspect(target.url)).schemas).toEqual([]);
  }));

  it('apply --dry-run: the per-tier table, nothing written; exit 3 while the gate is closed, 0 when open', onTarget(async (target) => {
    const args = ['apply', '--dry-run', '--plan', ENGINE_PLAN, '--target', target.url];
    const closed = await runCli(args);
    expect(closed.code).toBe(3);
    // --json: ok exactly when the exit code is 0
    expect(JSON.parse((await runCli([...args, '--json'])).stdout)).toMatchObject({ ok: false, wouldStop: false, wouldBlock: true });
    expect(closed.stdout).toMatch(/^ledger: none yet/m);
    expect(closed.stdout).toMatch(/^gate: approvals = 0 \(needs ≥ 1\): CLOSED$/m);
    expect(closed.stdout).toMatch(/^ 1 {2}Schema {2}structure {2}would apply {2}not applied yet$/m);
    expect(closed.stdout).toMatch(/^ 2 {2}Seed {4}data {7}would block {2}gate closed \(approvals=0, needs ≥ 1\)$/m);
    expect(closed.stdout).toMatch(/^ 3 {2}View {4}structure {2}would apply {2}not applied yet$/m);
    // tiers 1 and 3 applied with the gate closed (the dry run wrote nothing before), then the gate opens
    const ledger = await withDb(target.url, async (db) => {
      expect(await inspect(target.url, db)).toEqual({ schemas: [], ledger: [], items: null });
      expect((await apply(db, loadPlan(ENGINE_PLAN))).outcome).toBe('no-go');
      await db.exec('insert into gate.approval (valid) values (true)');
      return (await inspect(target.url, db)).ledger;
    });
    expect(ledger.map((r) => r.tier_id)).toEqual([1, 3]);
    const open = await runCli(args);
    expect(open.code).toBe(0);
    expect(open.stdout).toMatch(/^ledger: present$/m);
    expect(open.stdout).toMatch(/^ 1 {2}Schema {2}structure {2}would skip {3}already applied /m);
    expect(open.stdout).toMatch(/^ 2 {2}Seed {4}data {7}would apply {2}gate open \(approvals=1\)$/m);
    expect(open.stdout).toMatch(/^ 3 {2}View {4}structure {2}would skip {3}already applied /m);
    expect(open.stdout).toMatch(/^verify: would run after the last tier$/m);
    expect(open.stdout).toMatch(kind === 'postgres' ? /^target: database postgres_\w+, PostgreSQL 1\d\.\d+, cluster \d+$/m : /^target: database postgres, PGlite 1\d\.\d+, cluster \d+$/m);
    // a plan apply would refuse: no tier would run, whatever the gate says
    const refused = await runCli(['apply', '--dry-run', '--plan', gatedTypo(), '--target', target.url]);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toMatch(/^lint: 1 error\(s\) — apply would refuse the plan$/m);
    expect(refused.stdout).toMatch(/^ {2}tiers\/02_seed\.sql:10:8: \[parse\] syntax error at or near "INTOO"/m);
    for (const [id, name] of [[1, 'Schema'], [2, 'Seed'], [3, 'View']] as const) {
      expect(refused.stdout).toMatch(new RegExp(`^ ${id} {2}${name} +\\w+ +would not run {2}apply would refuse the plan: lint error at tiers/02_seed\\.sql:10$`, 'm'));
    }
    expect(refused.stdout).not.toMatch(/would apply|would skip/);
    expect(await inspect(target.url)).toEqual({ schemas: ['app', 'tiergate'], ledger, items: 0 });
  }));

  // a PGlite folder is open to one process at a time: a reader waits for it with --wait as apply does
  it.skipIf(kind !== 'pglite')('status of a PGlite folder another process holds: exit 4 at once, or --wait until it is free', onTarget(async (target) => {
    const holder: Db = await openDb(target.url);
    let patient: LiveCli | null = null;
    try {
      const args = ['status', '--plan', ENGINE_PLAN, '--target', target.url];
      const now = await runCli(args);
      expect(now.code).toBe(4);
      patient = startCli([...args, '--wait', '30s']);
      await patient.waitFor(/^tiergate: waiting up to 30 s for PGlite directory/m);
      await holder.close();
      const waited = await patient.done;
      expect(waited.code, waited.stderr).toBe(0);
      expect(waited.stdout).toMatch(/^status of plan /m);
    } finally {
      await holder.close().catch(() => undefined);
      if (patient && !patient.exited()) patient.kill('SIGKILL');
      await patient?.done;
    }
  }));

  it('another rollout holds the lock: exit 4 naming it; --wait 1s exits 4 saying it waited; --wait 30s runs once it is free', onTarget(async (target) => {
    const plan = loadPlan(ENGINE_PLAN);
    const lockKey = [0x7467_0001, planLockKey(plan.name)];
    // on a server the rollout lock is the plan's advisory lock; a PGlite directory is locked by opening it
    const holder: Db = await openDb(target.url);
    let patient: LiveCli | null = null;
    try {
      await holder.exec('insert into gate.approval (valid) values (true)');
      let holderName = `pid ${process.pid}`;
      if (kind === 'postgres') {
        holderName = `backend pid ${(await holder.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid}`;
        await holder.query('select pg_advisory_lock($1, $2)', lockKey);
      }
      const args = ['apply', '--yes', '--plan', ENGINE_PLAN, '--target', target.url];
      patient = startCli([...args, '--wait', '30s']);
      const [now, brief] = await Promise.all([runCli(args), runCli([...args, '--wait', '1s'])]);
      expect(now.code).toBe(4);
      expect(now.stderr).toMatch(new RegExp(`is held by another run \\(${holderName}\\b`));
      expect(now.stderr).not.toMatch(/waited|waiting/);
      expect(brief.code).toBe(4);
      expect(brief.stderr).toMatch(new RegExp(`^tiergate: waiting up to 1 s for .*, held by another run \\(${holderName}\\b`, 'm'));
      expect(brief.stderr).toMatch(new RegExp(`\\(waited 1 s\\) is held by another run \\(${holderName}\\b`));
      // the patient one says it waits, and does
      await patient.waitFor(/^tiergate: waiting up to 30 s for /m);
      expect(patient.exited()).toBe(false);
      // the holder does the work, then lets go: the waiting apply finds it done
      expect(ids(await apply(holder, plan))).toMatchObject({ 1: 'Applied', 2: 'Applied', 3: 'Applied' });
      if (kind === 'postgres') await holder.query('select pg_advisory_unlock($1, $2)', lockKey);
      else await holder.close();
      const waited = await patient.done;
      expect(waited.stderr).toMatch(new RegExp(`^tiergate: waiting up to 30 s for .*, held by another run \\(${holderName}\\b.*Ctrl-C to stop waiting\n$`));
      expect(waited.code).toBe(0);
      for (const id of [1, 2, 3]) expect(waited.stdout).toMatch(new RegExp(`^ +${id} .* Skipped .*already applied`, 'm'));
      expect(waited.stdout).toMatch(/^apply: OK/m);
    } finally {
      await holder.close();
      if (patient && !patient.exited()) patient.kill('SIGKILL');
      await patient?.done;
    }
    expect((await inspect(target.url)).ledger).toEqual([1, 2, 3].map((tier_id) => ({ tier_id, status: 'applied' })));
  }));
}, 240_000); // the tests run side by side: on a busy machine one may take longer than the default
