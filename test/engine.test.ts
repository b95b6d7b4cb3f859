import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDb, withDb } from '../src/db/open-db.js';
import type { Db, Queryable, TransactionOptions } from '../src/db/port.js';
import { apply } from '../src/engine/apply.js';
import { ensureLedger } from '../src/engine/ledger.js';
import { Carry, runCheckTier, runTier } from '../src/engine/run-tier.js';
import { rollback } from '../src/engine/rollback.js';
import { status } from '../src/engine/status.js';
import { verify } from '../src/engine/verify.js';
import { planLockKey } from '../src/engine/rollout-lock.js';
import { DriftError, LockHeldError, TargetError } from '../src/errors.js';
import { loadPlan } from '../src/plan/load-plan.js';
import { queryInSavepoint } from '../src/probe/metrics.js';
import { startCli } from './helpers/cli-live.js';
import { copyEnginePlan, ENGINE_PLAN, prepareGate, stateOf } from './helpers/engine-fixture.js';
import { freshDatabase, testTargets, type TestDatabase } from './helpers/targets.js';

const statuses = (r: { tiers: { id: number; status: string }[] }) => Object.fromEntries(r.tiers.map((t) => [t.id, t.status]));

describe.each(testTargets())('engine on %s', (kind) => {
  let target: TestDatabase;
  let db: Db;
  beforeEach(async () => {
    target = await freshDatabase(kind, 'postgres');
    db = await openDb(target.url);
  });
  afterEach(async () => {
    await db.close();
    await target.drop();
  });

  it('with the gate closed: structure tiers apply, the gated tier is blocked, NO-GO', async () => {
    await prepareGate(db, false);
    const r = await apply(db, loadPlan(ENGINE_PLAN));
    expect(r.outcome).toBe('no-go');
    expect(statuses(r)).toEqual({ 0: 'Passed', 1: 'Applied', 2: 'Blocked', 3: 'Applied', 90: 'Skipped' });
    expect(r.gate).toMatchObject({ name: 'approvals', value: 0, open: false });
    expect((await db.query('select * from app.item')).rows).toEqual([]);
    const ledger = await db.query<{ tier_id: number }>('select tier_id from tiergate.ledger order by id');
    expect(ledger.rows.map((x) => x.tier_id)).toEqual([1, 3]);
    const t1 = r.tiers.find((t) => t.id === 1)!;
    expect(t1.delta?.objects.tables?.added).toEqual(['app.item']);
    expect(t1.delta?.metrics.app_tables).toEqual({ before: 0, after: 1 });
    expect(t1.expectations?.every((x) => x.ok)).toBe(true);
  });

  it('interrupted before its tiers: an applied tier says it is applied, the others that Ctrl-C stopped them', async () => {
    await prepareGate(db, false);
    const plan = loadPlan(ENGINE_PLAN);
    await apply(db, plan);
    const controller = new AbortController();
    controller.abort();
    const r = await apply(db, plan, { signal: controller.signal });
    const reasons = Object.fromEntries(r.tiers.map((t) => [t.id, t.reason]));
    expect(reasons[1]).toMatch(/^already applied /);
    expect(reasons[3]).toMatch(/^already applied /);
    expect(reasons[2]).toBe('interrupted (Ctrl-C) before it started');
  });

  it("the gated file run by hand with the gate closed aborts at its guard and leaves no trace", async () => {
    await prepareGate(db, false);
    await apply(db, loadPlan(ENGINE_PLAN));
    const before = await stateOf(db);
    const file = readFileSync(join(ENGINE_PLAN, 'tiers/02_seed.sql'), 'utf8');
    await expect(db.transaction((tx) => tx.exec(file))).rejects.toThrow(/gate approvals is closed/);
    expect(await stateOf(db)).toEqual(before);
  });

  it('with the gate open: every tier applies, verify passes, a re-run changes nothing', async () => {
    await prepareGate(db, true);
    const plan = loadPlan(ENGINE_PLAN);
    const r = await apply(db, plan);
    expect(r.outcome).toBe('ok');
    expect(statuses(r)).toEqual({ 0: 'Passed', 1: 'Applied', 2: 'Applied', 3: 'Applied', 90: 'Passed' });
    const seed = r.tiers.find((t) => t.id === 2)!;
    expect(seed.delta?.rows['app.item']).toEqual({ added: 3, removed: 0, changed: 0 });
    expect(seed.delta?.metrics.items).toEqual({ before: 0, after: 3 });
    expect(seed.post).toEqual([{ expr: 'items = 3', ok: true, value: 3 }]);
    const state = await stateOf(db);
    const again = await apply(db, plan);
    expect(statuses(again)).toEqual({ 0: 'Passed', 1: 'Skipped', 2: 'Skipped', 3: 'Skipped', 90: 'Passed' });
    expect(again.outcome).toBe('ok');
    expect(await stateOf(db)).toEqual(state);
    expect((await verify(db, plan)).outcome).toBe('ok');
  });

  it("each metric is read once per transaction: a tier's before is what the previous one left", async () => {
    await prepareGate(db, true);
    const plan = loadPlan(ENGINE_PLAN);
    const metricSql = new Set(Object.values(plan.metrics));
    let reads = 0;
    // statements that read a whole set of metrics at once → how many of the plan's metrics each reads
    const together = new Map<string, number>();
    // a metric read: its savepoint, then its PREPARE / EXECUTE, or the metric itself (the gate's read is not one);
    // a set read at once (its EXECUTE) counts each metric it reads
    const count = (sql: string) => {
      const prepared = /^prepare (tiergate_metrics_\w+) as ([\s\S]*)$/.exec(sql);
      if (prepared) together.set(prepared[1]!, [...metricSql].filter((m) => prepared[2]!.includes(`(\n${m}\n)`)).length);
      // a read is one script: savepoint, the statement (EXECUTE of a prepared one), release
      const set = /^execute (tiergate_metrics_\w+)/m.exec(sql)?.[1];
      const alone = queryInSavepoint(sql);
      if (set) reads += together.get(set) ?? 0;
      // (a metric's first read on the session is its PREPARE, then EXECUTE without a savepoint of its own)
      else if (/^prepare tiergate_metric_/.test(sql) || (alone !== null && (/^execute tiergate_metric_/.test(alone) || metricSql.has(alone)))) reads++;
    };
    // the same wrapper for every transaction, as the adapters pass the same session each time
    const tx: Queryable = {
      query: (sql, params) => (count(sql), db.query(sql, params)),
      exec: (script) => (count(script), db.exec(script)),
    };
    const counting: Db = Object.create(db, {
      transaction: { value: <T>(fn: (q: Queryable) => Promise<T>, options?: TransactionOptions) => db.transaction(() => fn(tx), options) },
    });
    const r = await apply(counting, plan);
    expect(statuses(r)).toEqual({ 0: 'Passed', 1: 'Applied', 2: 'Applied', 3: 'Applied', 90: 'Passed' });
    // preflight, the three tiers (after only) and verify: 5 sets of 2 metrics, not 8 — less the preflight's
    // `items`, whose table tier 1 creates: a metric over a relation that does not exist is n/a, unsent
    expect(reads).toBe(5 * 2 - 1);
    const measured = r.tiers.filter((t) => t.delta);
    for (let i = 1; i < measured.length; i++) {
      for (const name of Object.keys(plan.metrics)) expect(measured[i]!.delta!.metrics[name]!.before).toBe(measured[i - 1]!.delta!.metrics[name]!.after);
    }
    expect(r.tiers.find((t) => t.id === 2)!.delta?.metrics.items).toEqual({ before: 0, after: 3 });
  });

  it("the catalog is read once per tier: a tier's before is what the previous one left, and the deltas are those of fresh reads", async () => {
    await prepareGate(db, true);
    const plan = loadPlan(ENGINE_PLAN);
    let snapshots = 0;
    const tx: Queryable = {
      query: (sql, params) => {
        // (the catalog read is a prepared statement of its session: each read one EXECUTE)
        if (/^execute tiergate_catalog_/.test(sql)) snapshots++;
        return db.query(sql, params);
      },
      exec: (script) => db.exec(script),
    };
    const counting: Db = Object.create(db, {
      transaction: { value: <T>(fn: (q: Queryable) => Promise<T>, options?: TransactionOptions) => db.transaction(() => fn(tx), options) },
    });
    const r = await apply(counting, plan);
    expect(statuses(r)).toEqual({ 0: 'Passed', 1: 'Applied', 2: 'Applied', 3: 'Applied', 90: 'Passed' });
    // tier 1's before, then each of the three tiers' after: 4, not 6; and verify's, comparing the plan's objects with the ledger's record of them
    expect(snapshots).toBe(5);

    // the same tiers on a second database, each with its own before read: the same object deltas
    await onSecondDatabase(async (db2) => {
      for (const id of [1, 2, 3]) {
        const fresh = await runTier(db2, plan, plan.tiers.find((t) => t.id === id)!);
        expect(fresh.status).toBe('Applied');
        expect(r.tiers.find((t) => t.id === id)!.delta!.objects).toEqual(fresh.delta!.objects);
      }
    });
  });

  /** A second fresh database, the gate open and the ledger made, for `fn`; dropped after. */
  async function onSecondDatabase(fn: (db2: Db) => Promise<void>): Promise<void> {
    const other = await freshDatabase(kind, 'postgres');
    const db2 = await openDb(other.url);
    try {
      await prepareGate(db2, true);
      await ensureLedger(db2);
      await fn(db2);
    } finally {
      await db2.close();
      await other.drop();
    }
  }

  it("a reference run (the rehearsal's second clone) leaves the state a full run leaves, reads only its post-conditions' metrics, and still enforces them", async () => {
    await prepareGate(db, true);
    const plan = loadPlan(ENGINE_PLAN);
    await ensureLedger(db);
    await onSecondDatabase(async (db2) => {
      for (const id of [1, 2, 3]) {
        const tier = plan.tiers.find((t) => t.id === id)!;
        const full = await runTier(db, plan, tier);
        const ref = await runTier(db2, plan, tier, { reference: true });
        expect([full.status, ref.status]).toEqual(['Applied', 'Applied']);
        expect(ref.delta!.objects).toEqual({});
        expect(ref.delta!.rows).toEqual({});
        expect(Object.keys(ref.delta!.metrics).sort()).toEqual([...new Set(tier.post.map((p) => p.metric))].sort());
      }
      expect(await stateOf(db2)).toEqual(await stateOf(db));
      // a post-condition that does not hold rolls the reference run back too
      const seed = plan.tiers.find((t) => t.id === 2)!;
      const failing = await runTier(db2, plan, { ...seed, id: 60, sql: 'delete from app.item;' }, { reference: true });
      expect(failing.status).toBe('Failed');
      expect((await db2.query<{ n: string }>('select count(*)::text as n from app.item')).rows[0]!.n).not.toBe('0');
    });
  });

  it('a Carry that was not forgotten is trusted: a change between two tiers shows in the next delta', async () => {
    // what the Carry's contract rests on: whoever changes the database between tiers forgets it (as opening the gate does)
    await prepareGate(db, true);
    const plan = loadPlan(ENGINE_PLAN);
    await ensureLedger(db);
    const carry = new Carry();
    expect((await runTier(db, plan, plan.tiers.find((t) => t.id === 1)!, { carry })).status).toBe('Applied');
    expect(carry.catalog).toBeDefined();
    await db.exec('create table app.between (id int)');
    const t2 = await runTier(db, plan, plan.tiers.find((t) => t.id === 2)!, { carry });
    expect(t2.delta!.objects.tables?.added).toEqual(['app.between']);
    // forgotten after a change: the next tier reads afresh and shows only its own
    await db.exec('create table app.again (id int)');
    carry.forget();
    const t3 = await runTier(db, plan, plan.tiers.find((t) => t.id === 3)!, { carry });
    expect(t3.delta!.objects.tables?.added ?? []).not.toContain('app.again');
  });

  it("a tier that writes through the plan's own functions shows those rows, whatever the function's name", async () => {
    await prepareGate(db, true);
    const plan = loadPlan(ENGINE_PLAN);
    await ensureLedger(db);
    expect((await runTier(db, plan, plan.tiers.find((t) => t.id === 1)!)).status).toBe('Applied');
    // the parser sees a call, not the write: every table of the plan's schemas is watched
    await db.exec(`
      create function app.bump() returns void language sql as $$ insert into app.item (id, label, tag) values (10, 'x', 'F') $$;
      create function app."odd.name"() returns void language sql as $$ update app.item set label = 'y' where id = 10 $$;`);
    const base = plan.tiers.find((t) => t.id === 3)!;
    const viaCall = (id: number, sql: string) => runTier(db, plan, { ...base, id, sql, post: [], figures: [], expect: undefined });
    const inserted = await viaCall(50, 'select app.bump();');
    expect(inserted.status).toBe('Applied');
    expect(inserted.delta!.rows).toEqual({ 'app.item': { added: 1, removed: 0, changed: 0 } });
    const updated = await viaCall(51, 'select app."odd.name"();');
    expect(updated.status).toBe('Applied');
    expect(updated.delta!.rows).toEqual({ 'app.item': { added: 0, removed: 0, changed: 1 } });
  });

  it("a tier's session settings (a pg_dump header) hold for its own statements only, as with psql -f per file", async () => {
    await prepareGate(db, true);
    await db.exec('create table public.thing (x int); insert into public.thing values (1), (2)');
    const dir = copyEnginePlan();
    const yaml = join(dir, 'tiergate.yaml');
    writeFileSync(
      yaml,
      readFileSync(yaml, 'utf8')
        .replace('metrics:\n', 'metrics:\n  things: select count(*) from thing\n')
        .replace('expect: { objects: { views: +1 } }', 'expect: { objects: { views: +1, tables: +1 } }'),
    );
    // a view printed relative to the search_path: `thing`, or `public.thing` once the path is empty
    appendFileSync(join(dir, 'tiers/01_schema.sql'), '\nCREATE VIEW app.v_thing AS SELECT x FROM thing;\n');
    const view = join(dir, 'tiers/03_view.sql');
    writeFileSync(
      view,
      [
        'SET statement_timeout = 0;',
        'SET lock_timeout = 0;',
        "SET client_encoding = 'UTF8';",
        "SELECT pg_catalog.set_config('search_path', '', false);",
        'SET check_function_bodies = false;',
        'SET client_min_messages = warning;',
        readFileSync(view, 'utf8'),
        "CREATE TABLE app.seen AS SELECT current_setting('search_path') AS sp, current_setting('statement_timeout') AS st;",
        '',
      ].join('\n'),
    );
    const session = async () =>
      (await db.query<{ sp: string; st: string; lt: string }>(`select current_setting('search_path') as sp, current_setting('statement_timeout') as st, current_setting('lock_timeout') as lt`)).rows[0];
    const outside = await session();
    const r = await apply(db, loadPlan(dir));
    expect(statuses(r)).toEqual({ 0: 'Passed', 1: 'Applied', 2: 'Applied', 3: 'Applied', 90: 'Passed' });
    // the file's own statements ran with its settings
    expect((await db.query('select sp, st from app.seen')).rows).toEqual([{ sp: '', st: '0' }]);
    // tiergate's reads after it did not: the unqualified metric still resolves, and no view reads as changed for being printed another way
    const t3 = r.tiers.find((t) => t.id === 3)!;
    expect(t3.delta!.metrics.things).toEqual({ before: 2, after: 2 });
    expect(t3.delta!.objects).toEqual({ views: { added: ['app.v_item'], removed: [], changed: [] }, tables: { added: ['app.seen'], removed: [], changed: [] } });
    // nor did what came after it: the session is as the run set it (its search_path, the plan's bounds)
    expect(await session()).toEqual({ sp: outside!.sp, st: '1min', lt: '2s' });
  });

  it('SET ROLE in a tier file ends with the file: the ledger records the run\'s user, the tiers after it run as it', async () => {
    await prepareGate(db, true);
    const role = `tg_weak_${Math.random().toString(36).slice(2, 8)}`;
    await db.exec(`create role ${role} nologin; grant usage on schema gate to ${role}`);
    try {
      const me = (await db.query<{ u: string }>('select current_user as u')).rows[0]!.u;
      const dir = copyEnginePlan();
      // as psql -1 -f would run it: the role holds for the rest of the file only
      appendFileSync(join(dir, 'tiers/01_schema.sql'), `\nSET ROLE ${role};\n`);
      appendFileSync(join(dir, 'tiers/03_view.sql'), `\nSELECT set_config('role', '${role}', false);\n`);
      const r = await apply(db, loadPlan(dir));
      expect(statuses(r)).toEqual({ 0: 'Passed', 1: 'Applied', 2: 'Applied', 3: 'Applied', 90: 'Passed' });
      expect((await db.query<{ u: string }>('select distinct applied_by as u from tiergate.ledger')).rows).toEqual([{ u: me }]);
      expect((await db.query<{ u: string }>('select current_user as u')).rows[0]!.u).toBe(me);
    } finally {
      await db.exec(`drop owned by ${role}; drop role ${role}`);
    }
  });

  it("tiergate's own step failing after the file (its row snapshots dropped by DISCARD TEMP) is said as that step, not as the file's statement", async () => {
    await prepareGate(db, true);
    const dir = copyEnginePlan();
    const seed = join(dir, 'tiers/02_seed.sql');
    // before the file's closing assertion: DISCARD TEMP drops tiergate's row snapshot of app.item too
    writeFileSync(seed, readFileSync(seed, 'utf8').replace("INSERT INTO app.item", 'DISCARD TEMP;\nINSERT INTO app.item'));
    const r = await apply(db, loadPlan(dir));
    const t2 = r.tiers.find((t) => t.id === 2)!;
    expect(t2.status).toBe('Failed');
    expect(t2.error?.message).toMatch(/^reading the rows the file wrote \(tiergate's row snapshots\): relation "tiergate_rows_\w+" does not exist/);
    expect(t2.error?.file).toBeNull();
    expect(t2.error?.hint).toMatch(/tiergate's own step after tiers\/02_seed\.sql ran; a file that changes its session \(DISCARD/);
    expect((await db.query('select count(*)::int as n from app.item')).rows).toEqual([{ n: 0 }]);
  });

  it('a tier that releases the rollout lock (pg_advisory_unlock_all() in a function lint cannot see) is rolled back, and the run stops', async () => {
    await prepareGate(db, true);
    const dir = copyEnginePlan();
    appendFileSync(join(dir, 'tiers/01_schema.sql'), `\nCREATE FUNCTION app.release() RETURNS boolean LANGUAGE sql AS 'SELECT pg_advisory_unlock_all() IS NULL';\nSELECT app.release();\n`);
    const r = await apply(db, loadPlan(dir));
    expect(r.outcome).toBe('failed');
    const t1 = r.tiers.find((t) => t.id === 1)!;
    expect(t1.status).toBe('Failed');
    expect(t1.error?.message).toMatch(/^the rollout lock was released during tier 1 .*another run may have started meanwhile; nothing of tier 1 was committed/);
    expect(statuses(r)).toMatchObject({ 2: 'Skipped', 3: 'Skipped' });
    expect((await db.query<{ ok: boolean }>(`select to_regclass('app.item') is null as ok`)).rows[0]!.ok).toBe(true);
    expect((await db.query('select tier_id from tiergate.ledger')).rows).toEqual([]);
    // said where it stands, lint refuses it written in the file itself
    appendFileSync(join(dir, 'tiers/03_view.sql'), `\nSELECT pg_advisory_unlock_all();\n`);
    const { lintPlan } = await import('../src/plan/lint.js');
    expect((await lintPlan(loadPlan(dir))).filter((f) => f.severity === 'error').map((f) => f.message)).toEqual([
      expect.stringMatching(/^pg_advisory_unlock_all\(\) releases every session advisory lock, tiergate's rollout lock too/),
    ]);
  });

  it("a tier file runs with the session's JIT setting; tiergate's reads around it with JIT off", async () => {
    await prepareGate(db, true);
    const plan = loadPlan(ENGINE_PLAN);
    await ensureLedger(db);
    expect((await runTier(db, plan, plan.tiers.find((t) => t.id === 1)!)).status).toBe('Applied');
    await db.exec('set jit = on');
    const base = plan.tiers.find((t) => t.id === 3)!;
    const metrics = { ...plan.metrics, jit_off: `select (current_setting('jit') = 'off')::int` };
    const r = await runTier(db, { ...plan, metrics }, { ...base, id: 52, sql: `create table app.jit_seen as select current_setting('jit') as jit`, post: [], figures: [], expect: undefined });
    expect(r.status).toBe('Applied');
    expect(r.delta!.metrics.jit_off).toEqual({ before: 1, after: 1 });
    expect((await db.query<{ jit: string }>('select jit from app.jit_seen')).rows).toEqual([{ jit: 'on' }]);
    expect((await db.query<{ jit: string }>(`select current_setting('jit') as jit`)).rows).toEqual([{ jit: 'on' }]);
    // JIT off for the reads after the file lasts as long as the transaction: the next tier's file runs with it on again
    const next = await runTier(db, { ...plan, metrics }, { ...base, id: 53, sql: `insert into app.jit_seen select current_setting('jit')`, post: [], figures: [], expect: undefined });
    expect(next.status).toBe('Applied');
    expect(next.delta!.metrics.jit_off).toEqual({ before: 1, after: 1 });
    expect((await db.query<{ jit: string }>('select jit from app.jit_seen')).rows).toEqual([{ jit: 'on' }, { jit: 'on' }]);
    // and so does a check tier's (its metrics read before its transaction ends)
    const verify = plan.tiers.find((t) => t.kind === 'verify')!;
    const checked = await runCheckTier(db, { ...plan, metrics }, { ...verify, sql: `select 1`, post: [] });
    expect(checked.delta!.metrics.jit_off).toEqual({ before: 1, after: 1 });
    expect((await db.query<{ jit: string }>(`select current_setting('jit') as jit`)).rows).toEqual([{ jit: 'on' }]);
  });

  it('a tier whose SQL fails halfway leaves no trace and names file:line', async () => {
    await prepareGate(db, true);
    const dir = copyEnginePlan();
    const seed = join(dir, 'tiers/02_seed.sql');
    writeFileSync(seed, readFileSync(seed, 'utf8').replace("(3, 'three', 'T2');", "(3, 'three', 'T2');\nUPDATE app.item SET label = 'x';\nINSERT INTO app.nope VALUES (1);"));
    const plan = loadPlan(dir);
    await apply(db, plan, { structureOnly: true });
    const before = await stateOf(db);
    const r = await apply(db, plan);
    expect(r.outcome).toBe('failed');
    const t2 = r.tiers.find((t) => t.id === 2)!;
    expect(t2.status).toBe('Failed');
    expect(t2.error).toMatchObject({ sqlstate: '42P01', file: 'tiers/02_seed.sql', line: 12 });
    expect(t2.error?.message).toMatch(/app\.nope/);
    expect(t2.error?.excerpt).toContain('INSERT INTO app.nope');
    expect(statuses(r)[90]).toBe('Skipped');
    expect(await stateOf(db)).toEqual(before);
    const attempts = await db.query<{ tier_id: number; sqlstate: string; line: number }>("select tier_id, sqlstate, line from tiergate.attempt where outcome = 'failed'");
    expect(attempts.rows).toEqual([{ tier_id: 2, sqlstate: '42P01', line: 12 }]);
  });

  it('a post-condition that fails rolls back the whole tier', async () => {
    await prepareGate(db, true);
    const dir = copyEnginePlan();
    const yaml = join(dir, 'tiergate.yaml');
    writeFileSync(yaml, readFileSync(yaml, 'utf8').replace('post: ["items = 3"]\n    expect', 'post: ["items = 4"]\n    expect'));
    const plan = loadPlan(dir);
    await apply(db, plan, { structureOnly: true });
    const before = await stateOf(db);
    const r = await apply(db, plan);
    const t2 = r.tiers.find((t) => t.id === 2)!;
    expect(t2.status).toBe('Failed');
    expect(t2.post).toEqual([{ expr: 'items = 4', ok: false, value: 3 }]);
    expect(t2.error?.message).toMatch(/post-condition 'items = 4' does not hold/);
    // it names where the post-condition is declared
    const line = readFileSync(yaml, 'utf8').split('\n').findIndex((l) => l.includes('post: ["items = 4"]')) + 1;
    expect(t2.error).toMatchObject({ file: 'tiergate.yaml', line });
    expect(await stateOf(db)).toEqual(before);
  });

  it('an edited applied file is refused as drift, before touching anything', async () => {
    await prepareGate(db, true);
    const dir = copyEnginePlan();
    await apply(db, loadPlan(dir));
    appendFileSync(join(dir, 'tiers/01_schema.sql'), '\n-- edited\n');
    const before = await stateOf(db);
    const err = await apply(db, loadPlan(dir)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DriftError);
    expect((err as DriftError).message).toMatch(/tier 1 'Schema' was applied from tiers\/01_schema.sql with sha256 [0-9a-f]{64}, but the file now has sha256 [0-9a-f]{64}/);
    // no rollback tier reverts tier 1: the way to change it is not a rollback
    expect((err as DriftError).message).toMatch(/No rollback tier of the plan reverts tier 1: to change what it does, restore it and make the change in a new tier of the plan\.$/);
    expect((err as DriftError).message).not.toMatch(/tiergate rollback/);
    // tier 3, which rollback tier 99 reverts, edited too: the rollback that undoes it is named
    appendFileSync(join(dir, 'tiers/03_view.sql'), '\n-- edited\n');
    const both = (await apply(db, loadPlan(dir)).catch((e: unknown) => e)) as DriftError;
    expect(both.drifted.map((d) => d.tier)).toEqual([1, 3]);
    expect(both.message).toMatch(/To change what tier 3 does, restore it, roll it back \(tiergate rollback: tier 3 is reverted by rollback tier 99\), then edit it\. No rollback tier of the plan reverts tier 1:/);
    expect(await stateOf(db)).toEqual(before);
  });

  it("a revision the plan says replaces the applied file is not drift: the tier stays applied, its ledger keeps the sha256 it applied", async () => {
    await prepareGate(db, true);
    const dir = copyEnginePlan();
    const first = loadPlan(dir);
    await apply(db, first);
    const applied = first.tiers.find((t) => t.id === 1)!.sha256;
    appendFileSync(join(dir, 'tiers/01_schema.sql'), '\n-- the same schema, revised\n');
    const yaml = join(dir, 'tiergate.yaml');
    const spec = readFileSync(yaml, 'utf8');
    // another revision listed instead: still drift
    writeFileSync(yaml, spec.replace('    file: tiers/01_schema.sql\n', `    file: tiers/01_schema.sql\n    replaces: ['${'0'.repeat(64)}']\n`));
    expect(await apply(db, loadPlan(dir)).catch((e: unknown) => e)).toBeInstanceOf(DriftError);
    writeFileSync(yaml, spec.replace('    file: tiers/01_schema.sql\n', `    file: tiers/01_schema.sql\n    replaces: ['${applied}']\n`));
    const revised = loadPlan(dir);
    const before = await stateOf(db);
    const r = await apply(db, revised);
    expect(r.outcome).toBe('ok');
    expect(r.tiers.find((t) => t.id === 1)?.status).toBe('Skipped');
    expect(await stateOf(db)).toEqual(before);
    const line = (await status(db, revised)).tiers.find((t) => t.id === 1)!;
    expect(line.state).toBe('applied');
    expect(line.appliedSha256).toBe(applied);
    expect(line.note).toMatch(new RegExp(`earlier revision \\(sha256 ${applied.slice(0, 12)}\\) that the plan says this file replaces`));
  });

  it('a second rollout while the lock is held fails at once, touching nothing', async () => {
    await prepareGate(db, true);
    const plan = loadPlan(ENGINE_PLAN);
    if (kind === 'postgres') {
      // another session holds the plan's advisory lock
      const other = await db.sibling();
      try {
        const pid = (await other.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
        await other.query('select pg_advisory_lock($1, $2)', [0x7467_0001, planLockKey(plan.name)]);
        const before = await stateOf(db);
        const started = performance.now();
        const err = await apply(db, plan).catch((e: unknown) => e);
        expect(performance.now() - started).toBeLessThan(5_000);
        expect(err).toBeInstanceOf(LockHeldError);
        expect((err as Error).message).toMatch(new RegExp(`rollout lock of plan 'engine-test'.*held by another run \\(backend pid ${pid}\\b`));
        expect(await stateOf(db)).toEqual(before);
      } finally {
        await other.close();
      }
      return;
    }
    // PGlite: one process per directory. Another process (a tiergate apply held at a hook inside tier 1 until SIGUSR2) holds it.
    await db.close();
    const dir = target.url.replace(/^pglite:\/\//, '');
    const holder = startCli(['apply', '--yes', '--plan', ENGINE_PLAN, '--target', target.url], { env: { TIERGATE_TEST_HOOK: 'tier-begin:1' } });
    try {
      await holder.waitFor(/tiergate-test-hook tier-begin:1/);
      const lockFile = readFileSync(join(dir, '.tiergate.lock'), 'utf8');
      const started = performance.now();
      const err = await openDb(target.url).then(async (d) => (await d.close(), null), (e: unknown) => e);
      expect(performance.now() - started).toBeLessThan(5_000);
      expect(err).toBeInstanceOf(LockHeldError);
      expect((err as Error).message).toMatch(new RegExp(`PGlite directory .* is held by another run \\(pid ${holder.pid}, tiergate apply`));
      // the holder's lock is untouched, and so is its run
      expect(readFileSync(join(dir, '.tiergate.lock'), 'utf8')).toBe(lockFile);
      expect(holder.exited()).toBe(false);
    } finally {
      holder.kill('SIGUSR2');
    }
    const held = await holder.done;
    expect(held.code).toBe(0);
    db = await openDb(target.url);
    expect(((await stateOf(db)) as { ledger: { tier_id: number }[] }).ledger.map((r) => r.tier_id)).toEqual([1, 2, 3]);
  });

  it('rollback then apply returns to the same state; rollback refuses when a tier is not applied', async () => {
    await prepareGate(db, true);
    const plan = loadPlan(ENGINE_PLAN);
    const refused = await rollback(db, plan).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(TargetError);
    expect((refused as Error).message).toMatch(/tiers 3, 2 are not applied/);
    await apply(db, plan);
    const full = await stateOf(db) as { catalog: unknown; items: unknown };
    const rb = await rollback(db, plan);
    expect(rb.outcome).toBe('ok');
    expect(statuses(rb)).toMatchObject({ 99: 'Applied', 3: 'Reverted', 2: 'Reverted' });
    const t99 = rb.tiers.find((t) => t.id === 99)!;
    expect(t99.delta?.rows['app.item']).toEqual({ added: 0, removed: 3, changed: 0 });
    expect(t99.delta?.objects.views?.removed).toEqual(['app.v_item']);
    const s = await status(db, plan);
    expect(Object.fromEntries(s.tiers.map((t) => [t.id, t.state]))).toMatchObject({ 1: 'applied', 2: 'reverted', 3: 'reverted' });
    // verify passed before the rollback: said so, and failing now on the metrics (items = 0), not shown as if it held
    expect(s.tiers.find((t) => t.id === 90)).toMatchObject({
      state: 'failing',
      note: expect.stringMatching(/^passed before tier \d+ was reverted \(.*\); the metrics read now fail its post-conditions: items = 0 \(needs items = 3\) — run tiergate verify for every failing assertion$/),
    });
    const again = await apply(db, plan);
    expect(statuses(again)).toMatchObject({ 1: 'Skipped', 2: 'Applied', 3: 'Applied', 90: 'Passed' });
    expect((await status(db, plan)).tiers.find((t) => t.id === 90)?.note).toBeNull();
    const back = await stateOf(db) as { catalog: unknown; items: unknown };
    expect(back.catalog).toEqual(full.catalog);
    expect(back.items).toEqual(full.items);
  });
});

/**
 * A fresh PostgreSQL database with the engine plan's gate (open) and a login
 * role `prefix_<random>`, given `setup` (SQL run as the superuser, the role
 * and the database named); `fn` gets the superuser's URL and the role's.
 * The role and the database are dropped after.
 */
async function withRole(prefix: string, setup: (role: string, database: string) => string, fn: (t: { url: string; asRole: string; role: string; database: string }) => Promise<void>): Promise<void> {
  const target = await freshDatabase('postgres', 'postgres');
  const role = `${prefix}_${Math.random().toString(36).slice(2, 8)}`;
  try {
    const { editPostgresUrl } = await import('../src/db/pg-url.js');
    const database = new URL(target.url.replace(/^postgres:/, 'http:')).pathname.slice(1);
    await withDb(target.url, async (db) => {
      await prepareGate(db, true);
      await db.exec(`create role ${role} login; ${setup(role, database)}`);
    });
    await fn({ url: target.url, asRole: editPostgresUrl(target.url, (u) => void (u.username = role)), role, database });
  } finally {
    await withDb(target.url, (db) => db.exec(`drop owned by ${role}; drop role if exists ${role}`)).catch(() => undefined);
    await target.drop();
  }
}

describe.runIf(testTargets().includes('postgres'))('a target tiergate cannot write (postgres)', () => {
  it('read-only sessions, or no right to create the ledger schema: apply refuses before touching anything (exit 2), and --dry-run says why', async () => {
    const target = await freshDatabase('postgres', 'postgres');
    const role = `tg_nocreate_${Math.random().toString(36).slice(2, 8)}`;
    try {
      const { editPostgresUrl } = await import('../src/db/pg-url.js');
      const { dryRun } = await import('../src/engine/dry-run.js');
      await withDb(target.url, (db) => prepareGate(db, true));
      const plan = loadPlan(ENGINE_PLAN);
      // a role that may connect but not create a schema in the database
      await withDb(target.url, (db) => db.exec(`create role ${role} login; grant usage on schema gate to ${role}; grant select on all tables in schema gate to ${role}`));
      const asRole = editPostgresUrl(target.url, (u) => void (u.username = role));
      await withDb(asRole, async (db) => {
        await expect(apply(db, plan)).rejects.toThrow(new RegExp(`cannot change .*: user ${role} may not create tiergate's ledger schema \\(no CREATE privilege on database .*\\): GRANT CREATE ON DATABASE`));
        const d = await dryRun(db, plan);
        expect(d.unwritable).toMatch(/may not create tiergate's ledger schema/);
        expect(d.tiers.every((t) => t.action === 'stop' && /may not create tiergate's ledger schema/.test(t.reason))).toBe(true);
      });
      // the CLI's dry run: apply would stop, exit 1
      const { runCli } = await import('./helpers/cli.js');
      const dry = await runCli(['apply', '--dry-run', '--plan', ENGINE_PLAN, '--target', asRole]);
      expect(dry.code, dry.stdout + dry.stderr).toBe(1);
      expect(dry.stdout).toMatch(/cannot be written — apply would stop before touching anything: user \w+ may not create tiergate's ledger schema/);
      // read-only sessions (a database set so)
      const database = new URL(target.url.replace(/^postgres:/, 'http:')).pathname.slice(1);
      await withDb(target.url, (db) => db.exec(`alter database "${database}" set default_transaction_read_only = on`));
      await withDb(target.url, async (db) => {
        const err = await apply(db, plan).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(TargetError);
        expect((err as Error).message).toMatch(/its sessions are read-only \(default_transaction_read_only = on, .*\): point --target at a writable database.*; nothing was touched$/);
      });
      await withDb(target.url, async (db) => {
        await db.exec('set default_transaction_read_only = off');
        expect(await db.query(`select to_regclass('tiergate.ledger') as t`)).toMatchObject({ rows: [{ t: null }] });
        await db.exec(`alter database "${database}" reset default_transaction_read_only`);
      });
    } finally {
      await withDb(target.url, (db) => db.exec(`drop owned by ${role}; drop role if exists ${role}`)).catch(() => undefined);
      await target.drop();
    }
  });

  it("a user or database whose settings unsettle a session: a first statement that runs out of the role's statement_timeout is exit 2 saying so (the process once hung), and a DateStyle of 'SQL, DMY' does not turn the ledger's times into 1970", async () => {
    const { runCli } = await import('./helpers/cli.js');
    // every statement JIT-compiled (tens of ms), and 1 ms for each of the role's
    const setup = (role: string, database: string) =>
      `alter database "${database}" set jit = on; alter database "${database}" set jit_above_cost = 0; alter role ${role} in database "${database}" set statement_timeout = '1ms'`;
    await withRole('tg_slow', setup, async ({ url, asRole, database }) => {
      await withDb(url, async (db) => expect((await db.query<{ ok: boolean }>('select pg_jit_available() as ok')).rows[0]!.ok).toBe(true));
      const slow = await runCli(['status', '--plan', ENGINE_PLAN, '--target', asRole], { timeoutMs: 60_000 });
      expect(slow.code, slow.stdout + slow.stderr).toBe(2);
      expect(slow.stderr).toMatch(/cannot connect to .*: canceling statement due to statement timeout \(SQLSTATE 57014\); its first statement ran out of the statement_timeout the server sets for this user or database/);
      await withDb(url, (db) => db.exec(`alter database "${database}" reset jit_above_cost; alter database "${database}" set datestyle = 'SQL, DMY'`));
      const applied = await runCli(['apply', '--yes', '--plan', ENGINE_PLAN, '--target', url]);
      expect(applied.code, applied.stdout + applied.stderr).toBe(0);
      const st = await runCli(['status', '--json', '--plan', ENGINE_PLAN, '--target', url]);
      const at = (JSON.parse(st.stdout) as { tiers: { id: number; at: string | null }[] }).tiers.find((t) => t.id === 1)!.at!;
      expect(Math.abs(Date.parse(at) - Date.now())).toBeLessThan(10 * 60_000);
      // the tiers' own sessions keep the day-month order the database sets (only dates' output is ISO)
      await withDb(url, async (db) => expect((await db.query<{ d: string }>(`select current_setting('datestyle') as d`)).rows[0]!.d).toBe('ISO, DMY'));
    });
  });

  it('a user with row_security off reading a table with row-level security: exit 2 naming the setting, not a GRANT that cannot help', async () => {
    const { runCli } = await import('./helpers/cli.js');
    const setup = (role: string) =>
      `grant usage on schema gate to ${role}; grant select on gate.approval to ${role}; alter role ${role} set row_security = off;
       alter table gate.approval enable row level security; create policy valid_only on gate.approval for select using (valid)`;
    await withRole('tg_rls', setup, async ({ asRole, role }) => {
      const r = await runCli(['status', '--plan', ENGINE_PLAN, '--target', asRole]);
      expect(r.code, r.stdout + r.stderr).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`table approval has row-level security and user ${role} has row_security off.*ALTER ROLE ${role} SET row_security = on.*BYPASSRLS`));
    });
  });

  it("a deploying user that may read the approvals but not lock them: apply refuses before any tier naming the gate's lock and its GRANT; the lock refused in a tier is the plan's query's failure, with a hint; granted, apply goes on", async () => {
    const { runCli } = await import('./helpers/cli.js');
    const setup = (role: string, database: string) => `grant create on database "${database}" to ${role}; grant usage on schema gate to ${role}; grant select on gate.approval to ${role}`;
    await withRole('tg_nolock', setup, async ({ url, asRole, role }) => {
      const r = await runCli(['apply', '--yes', '--plan', ENGINE_PLAN, '--target', asRole]);
      expect(r.code, r.stdout + r.stderr).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`user ${role} lacks what the tiers need: the gate's lock \\(gate\\.lock in tiergate\\.yaml, taken by each gated tier\\) needs UPDATE on gate\\.approval; no structure or data tier was run — GRANT UPDATE ON gate\\.approval TO ${role}`));
      // a lock the check cannot see coming (here: the tier run on its own): the tier fails at the plan's query, tiergate.yaml, with the GRANT
      const plan = loadPlan(ENGINE_PLAN);
      const seeded = await withDb(asRole, (db) => runTier(db, plan, plan.tiers.find((t) => t.id === 2)!, { noLedger: true }));
      expect(seeded).toMatchObject({ status: 'Failed', error: { file: 'tiergate.yaml', sqlstate: '42501', message: "reading the lock of gate 'approvals': permission denied for table approval" } });
      expect(seeded.error!.hint).toMatch(/the gate's lock takes the approval rows FOR SHARE.*GRANT UPDATE ON approval TO the deploying user/);
      await withDb(url, (db) => db.exec(`grant update on gate.approval to ${role}`));
      const again = await runCli(['apply', '--yes', '--plan', ENGINE_PLAN, '--target', asRole]);
      expect(again.code, again.stdout + again.stderr).toBe(0);
      await withDb(url, async (db) => expect(Number((await db.query<{ n: string }>('select count(*) as n from app.item')).rows[0]!.n)).toBe(3));
    });
  });

  it('a role without privileges on the ledger another user made: every command says what to grant (exit 2), not the bare refusal; granted, it works', async () => {
    const target = await freshDatabase('postgres', 'postgres');
    const role = `tg_reader_${Math.random().toString(36).slice(2, 8)}`;
    try {
      const { editPostgresUrl } = await import('../src/db/pg-url.js');
      const { runCli } = await import('./helpers/cli.js');
      await withDb(target.url, (db) => prepareGate(db, true));
      const first = await runCli(['apply', '--yes', '--plan', ENGINE_PLAN, '--target', target.url]);
      expect(first.code, first.stderr).toBe(0);
      await withDb(target.url, (db) => db.exec(`create role ${role} login; grant usage on schema gate to ${role}; grant select on all tables in schema gate to ${role}`));
      const asRole = editPostgresUrl(target.url, (u) => void (u.username = role));
      const run = (args: string[]) => runCli([...args, '--plan', ENGINE_PLAN, '--target', asRole]);
      const readGrants = `GRANT USAGE ON SCHEMA tiergate TO ${role}; GRANT SELECT ON ALL TABLES IN SCHEMA tiergate TO ${role}`;
      // status names at once all it reads: the ledger and the plan's metrics
      const status = await run(['status']);
      expect(status.code, status.stderr).toBe(2);
      expect(status.stderr).toMatch(
        new RegExp(`cannot read the status on .*: user ${role} lacks privileges it needs: tiergate's ledger needs USAGE on schema tiergate; SELECT on tiergate.ledger, tiergate.attempt; metric 'items' needs USAGE on schema app; SELECT on app.item; nothing was changed — GRANT USAGE ON SCHEMA tiergate, app TO ${role}; GRANT SELECT ON tiergate.ledger, tiergate.attempt, app.item TO ${role}`),
      );
      for (const command of [['log'], ['apply', '--dry-run']]) {
        const r = await run(command);
        expect(r.code, `${command.join(' ')}: ${r.stderr}`).toBe(2);
        expect(r.stderr).toMatch(new RegExp(`permission denied for schema tiergate: user ${role} may not read it — ${readGrants} \\(as its owner, or a superuser\\); nothing was changed`));
      }
      const applied = await run(['apply', '--yes']);
      expect(applied.code).toBe(2);
      expect(applied.stderr).toMatch(new RegExp(`user ${role} may not write tiergate's ledger \\(schema tiergate, created by \\w+\\): GRANT USAGE ON SCHEMA tiergate TO ${role}; GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA tiergate TO ${role}; GRANT USAGE ON ALL SEQUENCES IN SCHEMA tiergate TO ${role}, or run as \\w+; nothing was touched`));
      // verify reads the plan's schema: what to grant there, not "FAILED"
      const verified = await run(['verify']);
      expect(verified.code).toBe(2);
      // (and tiergate's ledger: verify compares the plan's objects with the record of them its tiers keep there)
      expect(verified.stderr).toMatch(
        new RegExp(`cannot verify on .*: user ${role} lacks privileges it needs: .*nothing was changed — GRANT USAGE ON SCHEMA app, tiergate TO ${role}; GRANT SELECT ON app.item, tiergate.ledger TO ${role}`),
      );
      expect(verified.stdout).not.toMatch(/FAILED/);
      // granted as said, the reads work
      await withDb(target.url, (db) => db.exec(`${readGrants}; GRANT USAGE ON SCHEMA app TO ${role}; GRANT SELECT ON ALL TABLES IN SCHEMA app TO ${role}`));
      expect((await run(['status'])).code).toBe(0);
      expect((await run(['verify'])).code).toBe(0);
    } finally {
      await withDb(target.url, (db) => db.exec(`drop owned by ${role}; drop role if exists ${role}`)).catch(() => undefined);
      await target.drop();
    }
  });
});
