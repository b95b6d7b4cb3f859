/**
 * "What an operator sees is true", at a terminal: the confirmation prompt
 * (declining changes nothing, exit 5) and Ctrl-C (exit 130, the message says
 * what was committed, the running tier rolls back, a wait for another
 * run's lock ends having changed nothing, a rehearsal leaves no
 * clone behind). The processes are driven by what they print, never by
 * sleeping: a run held at an engine test hook goes on when sent SIGUSR2.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDb, withDb } from '../src/db/open-db.js';
import { apply } from '../src/engine/apply.js';
import { planLockKey } from '../src/engine/rollout-lock.js';
import { loadPlan } from '../src/plan/load-plan.js';
import { runCli } from './helpers/cli.js';
import { inTerminal, startCli } from './helpers/cli-live.js';
import { ENGINE_PLAN, stateOf } from './helpers/engine-fixture.js';
import { dropTemplates, gateTarget, ids, inspect, planWith } from './helpers/operator.js';
import { testTargets, type TestDatabase } from './helpers/targets.js';

afterAll(dropTemplates);

/** How many sessions of the server of `url`, other than the one asking, match `where` (a condition on pg_stat_activity). */
const sessionsWhere = (url: string, where: string) =>
  withDb(url, (db) => db.query<{ n: number }>(`select count(*)::int as n from pg_stat_activity where ${where} and pid <> pg_backend_pid()`).then((x) => x.rows[0]!.n));

/** Reads `count` every 100 ms, at most `tries` times more, until `done` holds of it; the last reading. */
async function pollUntil(count: () => Promise<number>, done: (n: number) => boolean, tries = 150): Promise<number> {
  let n = await count();
  for (let i = 0; i < tries && !done(n); i++) {
    await new Promise((r) => setTimeout(r, 100));
    n = await count();
  }
  return n;
}

describe.each(testTargets())('operator at a terminal on %s', (kind) => {
  const onTarget = (fn: (target: TestDatabase) => Promise<void>) => async () => {
    const target = await gateTarget(kind);
    try {
      await fn(target);
    } finally {
      await target.drop();
    }
  };

  it('rollback asks on a terminal; declining is exit 5 and changes nothing', onTarget(async (target) => {
    const plan = loadPlan(ENGINE_PLAN);
    const before = await withDb(target.url, async (db) => {
      await db.exec('insert into gate.approval (valid) values (true)');
      expect((await apply(db, plan)).outcome).toBe('ok');
      return { state: await stateOf(db), attempts: (await db.query('select * from tiergate.attempt order by id')).rows };
    });
    const tty = inTerminal(['rollback', '--plan', ENGINE_PLAN, '--target', target.url]);
    await tty.waitFor(/\[y\/N\] *$/, 'stdout');
    expect(tty.output().stdout).toMatch(/roll back plan 'engine-test' on .*: tier 99 reverts tiers 3 'View', 2 'Seed'\? \[y\/N\]/);
    tty.write('n\r');
    const r = await tty.done;
    expect(r.code).toBe(5);
    expect(r.stdout).toMatch(/tiergate: declined: nothing was changed/);
    expect(r.stdout).not.toMatch(/Reverted|rollback: OK/);
    await withDb(target.url, async (db) => {
      expect(await stateOf(db)).toEqual(before.state);
      expect((await db.query('select * from tiergate.attempt order by id')).rows).toEqual(before.attempts);
    });
  }));

  /** apply (the gate open) held at a hook as tier 3 begins, Ctrl-C there, then let go on to its first statement: its run. */
  async function ctrlCAsTier3Begins(target: TestDatabase, ...args: string[]) {
    await withDb(target.url, (db) => db.exec('insert into gate.approval (valid) values (true)'));
    const run = startCli(['apply', '--yes', ...args, '--plan', ENGINE_PLAN, '--target', target.url], { env: { TIERGATE_TEST_HOOK: 'tier-begin:3' } });
    await run.waitFor(/tiergate-test-hook tier-begin:3/);
    run.kill('SIGINT');
    await run.waitFor(/interrupted — stopping after the current statement/);
    run.kill('SIGUSR2');
    const r = await run.done;
    expect(r.code).toBe(130);
    return r;
  }

  it('Ctrl-C during apply: exit 130, the tiers before it committed, the running tier rolled back, and the output says so', onTarget(async (target) => {
    const r = await ctrlCAsTier3Begins(target);
    expect(r.stderr).toMatch(/interrupted — stopping after the current statement/);
    expect(r.stdout).toMatch(/^ +3 +View +structure +Failed .*interrupted \(Ctrl-C\) during tier 3: its transaction was rolled back/m);
    expect(r.stdout).toMatch(/^ +90 +Verify +verify +Skipped /m);
    expect(r.stdout).toMatch(/^apply: INTERRUPTED — tier 1, 2 committed before the interruption; tier 3, which was running, rolled back\. Run apply again to continue\.$/m);
    await withDb(target.url, async (db) => {
      expect((await inspect(target.url, db)).ledger).toEqual([
        { tier_id: 1, status: 'applied' },
        { tier_id: 2, status: 'applied' },
      ]);
      expect((await db.query<{ v: string | null }>(`select to_regclass('app.v_item')::text as v`)).rows[0]?.v).toBeNull();
      const attempts = await db.query<{ tier_id: number; outcome: string; message: string }>(`select tier_id, outcome, message from tiergate.attempt where tier_id = 3`);
      expect(attempts.rows).toEqual([{ tier_id: 3, outcome: 'failed', message: expect.stringMatching(/^interrupted \(Ctrl-C\) during tier 3/) }]);
      // and the next apply continues from there
      expect(ids(await apply(db, loadPlan(ENGINE_PLAN)))).toMatchObject({ 1: 'Skipped', 2: 'Skipped', 3: 'Applied', 90: 'Passed' });
    });
  }));

  it('Ctrl-C during apply --json: the one object says it was interrupted and what it left, in error, as every other failure does', onTarget(async (target) => {
    const r = await ctrlCAsTier3Begins(target, '--json');
    const result = JSON.parse(r.stdout) as { ok: boolean; outcome: string; error: { kind: string; message: string } | null };
    expect(result).toMatchObject({ ok: false, outcome: 'interrupted', error: { kind: 'interrupted', message: 'tier 1, 2 committed before the interruption; tier 3, which was running, rolled back. Run apply again to continue.' } });
  }));

  // no test hook here: nothing gives the event loop a turn but tiergate itself (on PGlite every query runs on this thread)
  it('Ctrl-C in the middle of a long tier, without any pause: the tier rolls back, exit 130', onTarget(async (target) => {
    await withDb(target.url, (db) => db.exec('insert into gate.approval (valid) values (true)'));
    const plan = planWith({ 'tiers/03_view.sql': (s) => `${'select count(*) from generate_series(1, 300000);\n'.repeat(150)}${s}` });
    const run = startCli(['apply', '--yes', '--plan', plan, '--target', target.url]);
    await run.waitFor(/^ +2 +Seed +data +Applied/m, 'stdout');
    run.kill('SIGINT');
    const r = await run.done;
    expect(r.code, r.stdout + r.stderr).toBe(130);
    expect(r.stderr).toMatch(/interrupted — stopping after the current statement/);
    expect(r.stdout).toMatch(/^ +3 +View +structure +Failed .*interrupted \(Ctrl-C\) during tier 3/m);
    expect((await inspect(target.url)).ledger.map((l) => l.tier_id)).toEqual([1, 2]);
  }));

  it('SIGTERM and SIGHUP stop a run as Ctrl-C does: the running tier rolls back, exit 130, the output says so', onTarget(async (target) => {
    await withDb(target.url, (db) => db.exec('insert into gate.approval (valid) values (true)'));
    for (const signal of ['SIGTERM', 'SIGHUP'] as const) {
      const run = startCli(['apply', '--yes', '--plan', ENGINE_PLAN, '--target', target.url], { env: { TIERGATE_TEST_HOOK: 'tier-begin:3' } });
      await run.waitFor(/tiergate-test-hook tier-begin:3/);
      run.kill(signal);
      await run.waitFor(/interrupted — stopping after the current statement/);
      run.kill('SIGUSR2');
      const r = await run.done;
      expect(r.code, `${signal}: ${r.stdout}${r.stderr}`).toBe(130);
      expect(r.stdout).toMatch(/^apply: INTERRUPTED — .*tier 3, which was running, rolled back\./m);
      // the records name what stopped the run: a service manager's SIGTERM is no Ctrl-C
      expect(r.stdout).toMatch(new RegExp(`^ +3 +View +structure +Failed .*interrupted \\(${signal}\\) during tier 3: its transaction was rolled back`, 'm'));
      expect((await inspect(target.url)).ledger.map((l) => l.tier_id)).toEqual([1, 2]);
    }
  }));

  /** An apply (gate open) whose tier 3 sleeps 60 s (its statement_timeout is the plan's 1 min), once the sleep runs on the server; `sleeping` counts it. */
  async function applySleepingInTier3(target: TestDatabase) {
    await withDb(target.url, (db) => db.exec('insert into gate.approval (valid) values (true)'));
    const plan = planWith({ 'tiers/03_view.sql': (s) => `select pg_sleep(60);\n${s}` });
    const run = startCli(['apply', '--yes', '--plan', plan, '--target', target.url]);
    await run.waitFor(/^ +2 +Seed +data +Applied/m, 'stdout');
    const sleeping = () => sessionsWhere(target.url, "query like 'select pg_sleep(60)%'");
    expect(await pollUntil(sleeping, (n) => n > 0)).toBe(1);
    return { run, sleeping };
  }

  it.runIf(kind === 'postgres')('a run killed in the middle of a statement: the server ends it within seconds, and the rollout lock with it', onTarget(async (target) => {
    const { run, sleeping } = await applySleepingInTier3(target);
    run.kill('SIGKILL');
    await run.done;
    // (without client_connection_check_interval the statement, its locks and the rollout lock would stay for the minute)
    expect(await pollUntil(sleeping, (n) => n === 0)).toBe(0);
    const again = await runCli(['apply', '--yes', '--plan', ENGINE_PLAN, '--target', target.url]);
    expect(again.code, again.stderr).toBe(0);
  }));

  it.runIf(kind === 'postgres')("Ctrl-C during a tier's long statement on a server: the statement is cancelled then, not waited for; the tier rolls back, exit 130", onTarget(async (target) => {
    const { run, sleeping } = await applySleepingInTier3(target);
    run.kill('SIGINT');
    // the statement ends on the server (waiting for it would be the rest of the minute)
    expect(await pollUntil(sleeping, (n) => n === 0)).toBe(0);
    const r = await run.done;
    expect(r.code, r.stdout + r.stderr).toBe(130);
    expect(r.stderr).toMatch(/on a server a tier's statement is cancelled now/);
    expect(r.stdout).toMatch(/^ +3 +View +structure +Failed .*interrupted \(Ctrl-C\) during tier 3: its transaction was rolled back/m);
    expect(r.stdout).toMatch(/^apply: INTERRUPTED — tier 1, 2 committed before the interruption; tier 3, which was running, rolled back\./m);
    await withDb(target.url, async (db) => {
      expect((await inspect(target.url, db)).ledger.map((l) => l.tier_id)).toEqual([1, 2]);
      const attempts = await db.query<{ outcome: string; message: string }>(`select outcome, message from tiergate.attempt where tier_id = 3`);
      expect(attempts.rows).toEqual([{ outcome: 'failed', message: expect.stringMatching(/^interrupted \(Ctrl-C\) during tier 3/) }]);
    });
    // nothing of the run is left on the server: the rollout lock is free, the next apply goes on from tier 3
    const again = await runCli(['apply', '--yes', '--plan', ENGINE_PLAN, '--target', target.url]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/^ +3 +View +structure +Applied/m);
  }));

  it.runIf(kind === 'postgres')('Ctrl-C during the preflight or the verify tier on a server: its statement is cancelled too, exit 130, nothing committed by it', onTarget(async (target) => {
    await withDb(target.url, (db) => db.exec('insert into gate.approval (valid) values (true)'));
    for (const file of ['tiers/00_preflight.sql', 'tiers/90_verify.sql']) {
      const plan = planWith({ [file]: (s: string) => `select pg_sleep(61);\n${s}` });
      const run = startCli(['apply', '--yes', '--plan', plan, '--target', target.url]);
      const sleeping = () => sessionsWhere(target.url, "query like 'select pg_sleep(61)%'");
      expect(await pollUntil(sleeping, (n) => n > 0, 300), file).toBe(1);
      run.kill('SIGINT');
      expect(await pollUntil(sleeping, (n) => n === 0), file).toBe(0);
      const r = await run.done;
      expect(r.code, r.stdout + r.stderr).toBe(130);
      const id = file.startsWith('tiers/00') ? 0 : 90;
      expect(r.stdout, file).toMatch(new RegExp(`^ +${id} +(Preflight|Verify) +\\w+ +Failed .*interrupted \\(Ctrl-C\\) during tier ${id}`, 'm'));
    }
    // the preflight's interruption stopped the first run before any tier; the second applied every tier, then its verify was interrupted
    expect((await inspect(target.url)).ledger.map((l) => l.tier_id)).toEqual([1, 2, 3]);
    // tiergate verify alone: the same, and it says it stopped
    const slowVerify = planWith({ 'tiers/90_verify.sql': (s: string) => `select pg_sleep(61);\n${s}` });
    const run = startCli(['verify', '--plan', slowVerify, '--target', target.url]);
    const sleeping = () => sessionsWhere(target.url, "query like 'select pg_sleep(61)%'");
    expect(await pollUntil(sleeping, (n) => n > 0, 300)).toBe(1);
    run.kill('SIGINT');
    expect(await pollUntil(sleeping, (n) => n === 0)).toBe(0);
    const r = await run.done;
    expect(r.code, r.stdout + r.stderr).toBe(130);
    expect(r.stderr).toMatch(/interrupted \(Ctrl-C\): verify of engine-test on .* stopped before it finished; it only reads, nothing was changed/);
  }));

  it.runIf(kind === 'postgres')("Ctrl-C while a gated tier waits for its gate's lock on a server: the wait ends then, not at the lock_timeout; exit 130, nothing of the tier", onTarget(async (target) => {
    await withDb(target.url, (db) => db.exec('insert into gate.approval (valid) values (true)'));
    const plan = planWith({ 'tiergate.yaml': (s) => s.replace('lock_timeout: 2s', 'lock_timeout: 1min') });
    const holder = await openDb(target.url);
    try {
      // another session's lock on the gate's table: the gate's FOR SHARE waits for it
      await holder.exec('begin; lock table gate.approval in exclusive mode');
      const run = startCli(['apply', '--yes', '--plan', plan, '--target', target.url]);
      const waiting = () => sessionsWhere(target.url, "wait_event_type = 'Lock' and query like '%gate.approval%for share%'");
      expect(await pollUntil(waiting, (n) => n > 0)).toBe(1);
      run.kill('SIGINT');
      expect(await pollUntil(waiting, (n) => n === 0)).toBe(0);
      const r = await run.done;
      expect(r.code, r.stdout + r.stderr).toBe(130);
      expect(r.stdout).toMatch(/^ +2 +Seed +data +Failed .*interrupted \(Ctrl-C\) during tier 2: its transaction was rolled back/m);
      expect(r.stdout + r.stderr).not.toMatch(/canceling statement|statement timeout|blocked by/);
    } finally {
      await holder.exec('rollback').catch(() => undefined);
      await holder.close();
    }
    expect((await inspect(target.url)).ledger.map((l) => l.tier_id)).toEqual([1]);
  }));

  // the signal is checked between a tier's statements and once more before its COMMIT
  it('Ctrl-C after the last statement of a tier, before its COMMIT: the tier rolls back', onTarget(async (target) => {
    await withDb(target.url, (db) => db.exec('insert into gate.approval (valid) values (true)'));
    const run = startCli(['apply', '--yes', '--plan', ENGINE_PLAN, '--target', target.url], { env: { TIERGATE_TEST_HOOK: 'tier-before-commit:3' } });
    await run.waitFor(/tiergate-test-hook tier-before-commit:3/);
    run.kill('SIGINT');
    await run.waitFor(/interrupted — stopping after the current statement/);
    run.kill('SIGUSR2');
    const r = await run.done;
    expect(r.code).toBe(130);
    expect(r.stdout).toMatch(/^apply: INTERRUPTED — tier 1, 2 committed before the interruption; tier 3, which was running, rolled back\./m);
    expect((await inspect(target.url)).ledger.map((l) => l.tier_id)).toEqual([1, 2]);
  }));
});

describe.each(testTargets())('Ctrl-C while waiting for the lock on %s', (kind) => {
  let target: TestDatabase;
  beforeEach(async () => {
    target = await gateTarget(kind);
  });
  afterEach(async () => target.drop());

  it('apply --wait: says it waits, and Ctrl-C ends the wait: exit 130, nothing changed', async () => {
    const plan = loadPlan(ENGINE_PLAN);
    // another run holds the lock: on a server the plan's advisory lock, a PGlite directory by being open
    const holder = await openDb(target.url);
    try {
      if (kind === 'postgres') await holder.query('select pg_advisory_lock($1, $2)', [0x7467_0001, planLockKey(plan.name)]);
      const run = startCli(['apply', '--yes', '--wait', '30s', '--plan', ENGINE_PLAN, '--target', target.url]);
      await run.waitFor(/^tiergate: waiting up to 30 s for .*, held by another run .*; Ctrl-C to stop waiting$/m);
      run.kill('SIGINT');
      const r = await run.done;
      expect(r.code).toBe(130);
      expect(r.stderr).toMatch(/^tiergate: interrupted \(Ctrl-C\) while waiting for .*, held by another run \(.*\): nothing was changed$/m);
      expect(r.stderr).not.toMatch(/waited 30 s|is held by another run/);
      expect(r.stdout).not.toMatch(/Applied|Preflight/);
    } finally {
      await holder.close();
    }
    // nothing was changed: no ledger, no tier
    expect(await inspect(target.url)).toEqual({ schemas: [], ledger: [], items: null });
  });
});

describe('Ctrl-C during a rehearsal of the embedded sample', () => {
  it('exit 130, no clone folder left behind, no evidence written', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tiergate-rehearse-int-'));
    // the child's own temporary folder: nothing else writes there
    const temp = join(root, 'tmp');
    mkdirSync(temp);
    const out = join(root, 'evidence');
    const clones = () => readdirSync(temp).filter((n) => n.startsWith('tiergate-'));
    const run = startCli(['rehearse', '--out', out], { env: { TMPDIR: temp } });
    // the clones are being made (the sample built, or copied from tiergate's cache): their folders exist
    await run.waitFor(/(building|copying) (the sample Directus database|it) .*tiergate-clone-/, 'stdout');
    expect(clones().length).toBeGreaterThan(0);
    run.kill('SIGINT');
    const r = await run.done;
    expect(r.code).toBe(130);
    // (while the clones are made: nothing of the rehearsal runs after them)
    expect(r.stderr).toMatch(/rehearsal interrupted \(Ctrl-C\)(: the clones were dropped| while its clones were made: nothing was rehearsed; the clones and any incomplete snapshot were dropped \(.*\)); the source was only read/);
    expect(r.stdout).not.toMatch(/Rehearsal (PASS|FAIL)/);
    expect(clones()).toEqual([]);
    expect(existsSync(join(out, 'evidence.json'))).toBe(false);
  }, 240_000); // the sample is built in full before Ctrl-C takes effect (then no stage runs): slow on a busy machine
});

describe('Ctrl-C during the rollback tier of stage C', () => {
  it('exit 130 as in any stage: not a FAIL, the evidence already in --out left as it was', async () => {
    const out = mkdtempSync(join(tmpdir(), 'tiergate-rehearse-c-'));
    writeFileSync(join(out, 'evidence.json'), '{"earlier": true}\n');
    const run = startCli(['rehearse', '--out', out], { env: { TIERGATE_TEST_HOOK: 'tier-begin:99' } });
    await run.waitFor(/tiergate-test-hook tier-begin:99/);
    run.kill('SIGINT');
    await run.waitFor(/interrupted — stopping after the current statement/);
    run.kill('SIGUSR2');
    const r = await run.done;
    expect(r.code, r.stdout + r.stderr).toBe(130);
    expect(r.stderr).toMatch(/rehearsal interrupted \(Ctrl-C\): the clones were dropped/);
    expect(r.stdout).not.toMatch(/Rehearsal (PASS|FAIL)/);
    expect(readFileSync(join(out, 'evidence.json'), 'utf8')).toBe('{"earlier": true}\n');
  }, 240_000);
});

describe('a second Ctrl-C during a rehearsal of the embedded sample', () => {
  it('exits at once (130), removes the clone folders, and --json still prints its one object', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tiergate-rehearse-int2-'));
    const temp = join(root, 'tmp');
    mkdirSync(temp);
    const clones = () => readdirSync(temp).filter((n) => n.startsWith('tiergate-clone-'));
    // held as tier 1 begins on the clone (stage A) until SIGUSR2, which never comes: the first Ctrl-C cannot finish
    const run = startCli(['rehearse', '--out', join(root, 'evidence'), '--json'], { env: { TMPDIR: temp, TIERGATE_TEST_HOOK: 'tier-begin:1' } });
    await run.waitFor(/tiergate-test-hook tier-begin:1/);
    expect(clones().length).toBeGreaterThan(0);
    run.kill('SIGINT');
    await run.waitFor(/interrupted — stopping after the current statement/);
    run.kill('SIGINT');
    const r = await run.done;
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/tiergate: interrupted again — exited at once; .*\d+ temporary folders? removed \(clones, dump files\)/);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, error: { kind: 'interrupted' } });
    expect(clones()).toEqual([]);
  }, 240_000);
});

describe('progress of a step that takes seconds', () => {
  it('moves on a terminal (the sample built table by table, the clones copied part by part); plain output keeps its lines', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tiergate-progress-'));
    // a cache of its own, empty: the sample is built, then copied
    const env = { TERM: 'xterm', TIERGATE_CACHE_DIR: join(root, 'cache'), TIERGATE_CACHE: '' };
    const tty = inTerminal(['rehearse', '--out', join(root, 'evidence')], { env, timeoutMs: 300_000 });
    const r = await tty.done;
    expect(r.code, r.stdout).toBe(0);
    // each status rewrites its line in place (carriage return, erase line), and the next line replaces it
    expect(r.stdout).toMatch(/\r\x1b\[2K {2}initialising PostgreSQL in PGlite \(initdb\) … \d+\.\d s/);
    expect(r.stdout).toMatch(/\r\x1b\[2K {2}building the sample: 30 of 65 tables created/);
    expect(r.stdout).toMatch(/\r\x1b\[2K {2}copying 2 clones: \d+ of \d+ parts/);
    expect(r.stdout).toMatch(/\r\x1b\[2K {2}clone 1 of 2 ready in/);
    expect(r.stdout).toMatch(/Rehearsal PASS · Execution NO-GO \(ospa=0\)/);

    const plain = await runCli(['sample', '--pglite', join(root, 'db')], { env, timeoutMs: 300_000 });
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).not.toMatch(/\r|\x1b|tables created/);
    expect(plain.stdout).toMatch(/^done in \d+\.\d s: anchors 30/m);
  }, 300_000);
});
