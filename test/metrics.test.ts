/**
 * Metrics are prepared statements of their session (src/probe/metrics.ts):
 * they must read exactly as a plain query would — n/a while their objects do
 * not exist, the new value after a view is replaced (even with another
 * result type), n/a again once the object is dropped — on PGlite and on a
 * real PostgreSQL server.
 */
import { describe, expect, it } from 'vitest';
import { openDb } from '../src/db/open-db.js';
import type { Queryable } from '../src/db/port.js';
import { readCatalog } from '../src/probe/catalog.js';
import { jitScope, keepJitOff, withoutJit } from '../src/probe/jit.js';
import { readGate } from '../src/engine/gate.js';
import type { Plan } from '../src/plan/plan.js';
import { readMetrics, readNumber } from '../src/probe/metrics.js';
import { freshDatabase, testTargets } from './helpers/targets.js';

describe.each(testTargets())('metrics read through prepared statements (%s)', (kind) => {
  it('follow objects that appear, change type, disappear; refuse nothing a plain query takes', async () => {
    const t = await freshDatabase(kind, 'postgres');
    const db = await openDb(t.url);
    try {
      const metrics = {
        n: 'select n from m_view',
        total: 'select coalesce(sum(x), 0) from m_table',
        shown: 'show max_connections',
      };
      const read = () => db.transaction((tx) => readMetrics(tx, metrics));
      expect(await read()).toMatchObject({ n: null, total: null });
      // only a missing object reads as n/a: any other error is the metric's, named
      await expect(db.transaction((tx) => readMetrics(tx, { broken: 'select 1/0' }))).rejects.toThrow(/reading metric 'broken': division by zero/);
      await db.exec('create table m_table (x int); insert into m_table values (1), (2); create view m_view as select count(*)::int as n from m_table');
      expect(await read()).toMatchObject({ n: 2, total: 3 });
      expect((await read()).shown).toBeGreaterThan(0);
      // replaced with another result type: the prepared statement must be planned again, not fail
      await db.exec('drop view m_view; create view m_view as select count(*) * 10 as n from m_table; insert into m_table values (4)');
      expect(await read()).toMatchObject({ n: 30, total: 7 });
      // inside a transaction that rolls back, then after it
      let inside: Record<string, number | null> = {};
      await db
        .transaction(async (tx) => {
          await tx.exec('insert into m_table values (100)');
          inside = await readMetrics(tx, metrics);
          throw new Error('roll back');
        })
        .catch(() => undefined);
      expect(inside).toMatchObject({ n: 40, total: 107 });
      expect(await read()).toMatchObject({ n: 30, total: 7 });
      await db.exec('drop view m_view; drop table m_table');
      expect(await read()).toMatchObject({ n: null, total: null });
      // statements thrown away behind tiergate's back (DEALLOCATE ALL in a tier file) are prepared again
      await db.exec('create table m_table (x int); insert into m_table values (5); create view m_view as select 1 as n');
      expect(await read()).toMatchObject({ n: 1, total: 5 });
      await db.exec('deallocate all');
      expect(await read()).toMatchObject({ n: 1, total: 5 });
      // read-only transactions (verify, status) read them too
      expect(await db.transaction((tx) => readMetrics(tx, metrics), { readOnly: true })).toMatchObject({ n: 1, total: 5 });
    } finally {
      await db.close();
      await t.drop();
    }
  });

  it('a set of metrics is read in one statement, with the same values as one by one', async () => {
    const t = await freshDatabase(kind, 'postgres');
    const db = await openDb(t.url);
    try {
      const metrics = {
        n: 'select n from s_view',
        total: 'select coalesce(sum(x), 0) from s_table -- a comment ends the line',
        big: 'select 9007199254740991::bigint',
        yes: 'select true',
        none: 'select 1 where false',
      };
      const sent: string[] = [];
      const read = (m: Record<string, string> = metrics) =>
        db.transaction((tx) => {
          const seen: Queryable = {
            query: (sql, params) => (sent.push(sql), tx.query(sql, params)),
            exec: (script) => (sent.push(script), tx.exec(script)),
          };
          return readMetrics(seen, m);
        });
      const together = () => sent.filter((s) => /^execute tiergate_metrics_/m.test(s)).length;
      // objects missing: n/a, the others read together without them
      expect(await read()).toEqual({ n: null, total: null, big: 9007199254740991, yes: 1, none: null });
      await db.exec('create table s_table (x int); insert into s_table values (1), (2); create view s_view as select count(*)::int as n from s_table');
      sent.length = 0;
      expect(await read()).toEqual({ n: 2, total: 3, big: 9007199254740991, yes: 1, none: null });
      expect(together()).toBe(1);
      expect(sent.filter((s) => /^execute tiergate_metric_/m.test(s))).toEqual([]);
      // another result type, a statement thrown away, several rows: the same values as a plain query
      await db.exec('drop view s_view; create view s_view as select count(*) * 10 as n from s_table');
      expect(await read()).toMatchObject({ n: 20, total: 3 });
      expect(await read()).toMatchObject({ n: 20, total: 3 });
      await db.exec('deallocate all');
      expect(await read()).toMatchObject({ n: 20, total: 3 });
      await db.exec('drop view s_view; create view s_view as select x as n from s_table order by x desc');
      expect(await read()).toMatchObject({ n: 2, total: 3 });
      // a metric that fails is named, as when read alone
      await expect(read({ ...metrics, broken: 'select 1/(count(*) - count(*)) from s_table' })).rejects.toThrow(/reading metric 'broken': division by zero/);
    } finally {
      await db.close();
      await t.drop();
    }
  });

  it('a set with metrics over relations that do not exist yet: those read n/a without being sent, the others together', async () => {
    const t = await freshDatabase(kind, 'postgres');
    const db = await openDb(t.url);
    try {
      await db.exec(`create table p_table (x int); insert into p_table values (1), (2), (3); create table "P Table" (y int); insert into "P Table" values (7)`);
      const metrics = {
        gone: 'select count(*) from p_missing',
        elsewhere: 'select count(*) from p_schema_missing.p_table',
        // a CTE of a missing relation's name is the CTE: read, not n/a
        cte: 'with p_missing as (select 1 as x) select count(*) from p_missing',
        a: 'select count(*) from p_table',
        b: 'select count(*) from p_table where x > 1',
        c: 'select sum(x) from p_table',
        quoted: 'select count(*) from "P Table" where y = 7',
        sub: 'select (select count(*) from p_table) + (select count(*) from public."P Table")',
      };
      const sent: string[] = [];
      const read = (m: Record<string, string>) =>
        db.transaction((tx) => readMetrics({ query: (sql, params) => (sent.push(sql), tx.query(sql, params)), exec: (script) => (sent.push(script), tx.exec(script)) }, m));
      const oneByOne = () => sent.filter((s) => /(prepare|execute) tiergate_metric_/.test(s));
      expect(await read(metrics)).toEqual({ gone: null, elsewhere: null, cte: 1, a: 3, b: 2, c: 6, quoted: 1, sub: 4 });
      expect(oneByOne()).toEqual([]);
      // the others in one statement: a and b in one pass of p_table
      const executed = sent.filter((s) => /execute tiergate_metrics_/.test(s));
      expect(executed).toHaveLength(1);
      expect(sent.find((s) => /^prepare tiergate_metrics_/.test(s) && !/p_missing from|p_schema_missing/.test(s))).toMatch(/count\(\*\) filter \(where true\) as c0, count\(\*\) filter/);
      // a missing function is no missing relation: the set without the missing relations fails too, and is read one by one
      sent.length = 0;
      expect(await read({ gone: metrics.gone, a: metrics.a, fn: 'select p_missing_fn()' })).toEqual({ gone: null, a: 3, fn: null });
      expect(oneByOne().some((s) => /p_missing_fn/.test(s))).toBe(true);
      expect(oneByOne().some((s) => /from p_missing/.test(s))).toBe(false);
      // once the relations exist, the whole set at once
      await db.exec('create table p_missing (z int); create schema p_schema_missing; create table p_schema_missing.p_table (x int); insert into p_schema_missing.p_table values (1)');
      sent.length = 0;
      expect(await read(metrics)).toEqual({ gone: 0, elsewhere: 1, cte: 1, a: 3, b: 2, c: 6, quoted: 1, sub: 4 });
      expect(sent.filter((s) => /to_regclass/.test(s))).toEqual([]);
    } finally {
      await db.close();
      await t.drop();
    }
  });

  it('aggregates of one relation (counts, sums) are read in one pass, with the same values as one by one', async () => {
    const t = await freshDatabase(kind, 'postgres');
    const db = await openDb(t.url);
    try {
      const metrics = {
        all: 'select count(*) from c_view',
        high: "SELECT COUNT(*) FROM public.c_view WHERE level = 'high' -- a comment ends the line",
        flagged: 'select count(*) from "public"."c_view" where flag;',
        unknown: 'select count(*) from c_view where flag is null or level in (select level from c_table where false)',
        // a NULL condition counts nothing, as a WHERE does
        nothing: 'select count(*) from c_view where null',
        // not a count of one relation: read as it is
        joined: 'select count(*) from c_table a, c_table b where a.id = b.id',
        // a condition with a parenthesis in a literal: not merged, the same value
        odd: "select count(*) from c_view where level <> ')'",
        // other aggregates of one relation, in the same pass
        total: 'select sum(id) from c_view where flag',
        total0: "select coalesce(sum(id), 0) from c_view where level = 'none'",
        levels: 'select count(distinct level) from c_view',
        // not one of them: read as it is
        biggest: 'select max(id) from c_view',
      };
      const statements: string[] = [];
      const read = () =>
        db.transaction((tx) =>
          readMetrics({ query: (sql, params) => (statements.push(sql), tx.query(sql, params)), exec: (script) => (statements.push(script), tx.exec(script)) }, metrics),
        );
      // the view is missing: the set fails as a whole, each count reads n/a one by one
      expect(await read()).toEqual({ all: null, high: null, flagged: null, unknown: null, nothing: null, joined: null, odd: null, total: null, total0: null, levels: null, biggest: null });
      await db.exec(`create table c_table (id serial primary key, level text, flag boolean);
        insert into c_table (level, flag) select case when i % 3 = 0 then 'high' else 'low' end, case when i % 4 = 0 then null else i % 2 = 0 end from generate_series(1, 30) i;
        create view c_view as select * from c_table`);
      const oneByOne: Record<string, number | null> = {};
      for (const [name, sql] of Object.entries(metrics)) oneByOne[name] = Number(Object.values((await db.query(sql.replace(/;$/, ''))).rows[0]!)[0]);
      expect(oneByOne).toEqual({ all: 30, high: 10, flagged: 8, unknown: 7, nothing: 0, joined: 30, odd: 30, total: 128, total0: 0, levels: 2, biggest: 30 });
      statements.length = 0;
      expect(await read()).toEqual(oneByOne);
      const prepared = statements.find((s) => /^prepare tiergate_metrics_/.test(s))!;
      // one pass per spelling of the view (c_view is found on the search path; public.c_view is named): 3 counts and 3 other aggregates, then 2
      expect(prepared.match(/count\(\*\) filter/g)).toHaveLength(5);
      expect(prepared).toContain('sum(id) filter (where (\nflag\n)) as c3');
      expect(prepared).toContain("coalesce(sum(id) filter (where (\nlevel = 'none'\n)), 0) as c4");
      expect(prepared).toContain('count(distinct level) filter (where true) as c5');
      expect(prepared).toMatch(/as c5 from c_view\) as g0, \(select /);
      expect(prepared).toMatch(/as c1 from public\.c_view\) as g1$/);
      expect(statements.filter((s) => /^execute tiergate_metric_/m.test(s))).toEqual([]);
    } finally {
      await db.close();
      await t.drop();
    }
  });

  it('a metric or gate query of several statements, or one that writes, is refused before it is sent: nothing runs', async () => {
    const t = await freshDatabase(kind, 'postgres');
    const db = await openDb(t.url);
    try {
      await db.exec('create table h (x int); insert into h values (1), (2)');
      const left = async () => Number((await db.query<{ n: number }>('select count(*)::int as n from h')).rows[0]!.n);
      const hostile: [string, string, RegExp][] = [
        ['two', 'select count(*) from h; delete from h', /metric 'two': refused before it was sent: it holds 2 statements/],
        ['cte', 'with d as (delete from h returning 1) select count(*) from d', /metric 'cte': refused before it was sent: it changes h/],
        ['block', 'do $$ begin delete from h; end $$', /metric 'block': refused before it was sent: it changes h/],
      ];
      for (const [name, sql, message] of hostile) {
        // alone, and in a set with a metric that reads
        await expect(db.transaction((tx) => readMetrics(tx, { [name]: sql }))).rejects.toThrow(message);
        await expect(db.transaction((tx) => readMetrics(tx, { fine: 'select count(*) from h', [name]: sql }))).rejects.toThrow(message);
        // the gate's queries too (readNumber, readText, readRows)
        await expect(db.transaction((tx) => readNumber(tx, `gate '${name}'`, sql))).rejects.toThrow(/refused before it was sent/);
        // and the gate's lock, run first in a gated tier
        const plan = { gate: { name: 'g', sql: 'select 1', lock: sql, min: 1 } } as unknown as Plan;
        await expect(db.transaction((tx) => readGate(tx, plan, { lockRows: true }))).rejects.toThrow(/the lock of gate 'g': refused before it was sent/);
        expect(await left()).toBe(2);
      }
      // a query that only reads, a literal with a semicolon in it, and a call: read as before
      expect(await db.transaction((tx) => readMetrics(tx, { n: "select count(*) from h where x::text <> ';'", f: 'select abs(-3)' }))).toEqual({ n: 2, f: 3 });
    } finally {
      await db.close();
      await t.drop();
    }
  });

  it('the catalog read is prepared once a session, and prepared again when a tier file threw it away (DEALLOCATE ALL)', async () => {
    const t = await freshDatabase(kind, 'postgres');
    const db = await openDb(t.url);
    try {
      await db.exec(`create schema "odd's \\ schema"; create table "odd's \\ schema".t (x int primary key)`);
      const sent: string[] = [];
      const names = (rows: { kind: string; name: string }[]) => rows.map((o) => `${o.kind} ${o.name}`).sort();
      const inTier = await db.transaction(async (tx) => {
        const watched: Queryable = { query: (sql, params) => (sent.push(sql), tx.query(sql, params)), exec: (script) => (sent.push(script), tx.exec(script)) };
        const first = names(await readCatalog(watched, { only: ["odd's \\ schema"] }));
        const again = names(await readCatalog(watched, { only: ["odd's \\ schema"] }));
        // a tier file's DEALLOCATE ALL: the next read prepares it again, and the transaction goes on
        await tx.exec('deallocate all; create table "odd\'s \\ schema".u (y int)');
        const after = names(await readCatalog(watched, { only: ["odd's \\ schema"] }));
        return { first, again, after };
      });
      expect(inTier.first).toEqual(['constraint odd\'s \\ schema.t.t_pkey', 'index odd\'s \\ schema.t_pkey', "schema odd's \\ schema", "table odd's \\ schema.t"]);
      expect(inTier.again).toEqual(inTier.first);
      expect(inTier.after).toEqual([...inTier.first, "table odd's \\ schema.u"].sort());
      expect(sent.filter((x) => /^prepare tiergate_catalog_/.test(x))).toHaveLength(2);
      expect(sent.filter((x) => /^execute tiergate_catalog_/.test(x))).toHaveLength(3);
      // the same objects as the read by relations (the incremental one) and the read of every schema but some
      const [table] = (await db.query<{ oid: string }>(`select '"odd''s \\ schema".t'::regclass::oid::text as oid`)).rows;
      expect(names(await readCatalog(db, { except: ['public'] }, [Number(table!.oid)]))).toEqual(
        expect.arrayContaining(['constraint odd\'s \\ schema.t.t_pkey', "table odd's \\ schema.t", "schema odd's \\ schema"]),
      );
    } finally {
      await db.close();
      await t.drop();
    }
  });

  it('run with JIT compilation off, and leave the setting as it was', async () => {
    const t = await freshDatabase(kind, 'postgres');
    const db = await openDb(t.url);
    try {
      const metrics = { jit_off: `select (current_setting('jit') = 'off')::int` };
      const out = await db.transaction(async (tx) => {
        await tx.query(`select set_config('jit', 'on', true)`);
        const read = await readMetrics(tx, metrics);
        const after = (await tx.query<{ jit: string }>(`select current_setting('jit') as jit`)).rows[0]?.jit;
        return { read, after };
      });
      expect(out).toEqual({ read: { jit_off: 1 }, after: 'on' });
      // tiergate's catalog reads too (each tier's snapshots, the fingerprint), in a transaction or on the session itself
      await db.exec(`create table jit_t (x int)`);
      const seen = async (q: Queryable) => (await readCatalog(q, { only: ['public'] })).some((o) => o.name === 'public.jit_t');
      const jitNow = async (q: Queryable) => (await q.query<{ jit: string }>(`select current_setting('jit') as jit`)).rows[0]?.jit;
      await db.exec(`set jit = on`);
      expect(await withoutJit(db, () => jitNow(db))).toBe('off');
      expect(await jitNow(db)).toBe('on');
      // nested: the inner one leaves it off, the outer one gives it back
      expect(await withoutJit(db, async () => [await withoutJit(db, () => jitNow(db)), await jitNow(db)])).toEqual(['off', 'off']);
      expect(await jitNow(db)).toBe('on');
      expect(await seen(db)).toBeTruthy();
      expect(await jitNow(db)).toBe('on');
      const inTx = await db.transaction(async (tx) => {
        await seen(tx);
        return jitNow(tx);
      });
      expect(inTx).toBe('on');
      expect(await jitNow(db)).toBe('on');
      // a read that fails inside a transaction leaves the setting to the rollback
      await expect(
        db.transaction(async (tx) => {
          await readMetrics(tx, { broken: 'select 1/0' });
        }),
      ).rejects.toThrow(/division by zero/);
      expect(await jitNow(db)).toBe('on');
      // a connection of tiergate's own (a fingerprint's lane): turned off at its first read, once, and left off
      const lane = await db.sibling();
      try {
        const sent: string[] = [];
        const watched: Queryable = { query: (sql, params) => (sent.push(sql), lane.query(sql, params)), exec: (script) => (sent.push(script), lane.exec(script)) };
        await watched.exec('set jit = on');
        keepJitOff(watched);
        expect(await withoutJit(watched, () => jitNow(watched))).toBe('off');
        expect(await jitScope(watched, () => withoutJit(watched, () => seen(watched)))).toBeTruthy();
        expect(await jitNow(watched)).toBe('off');
        expect(sent.filter((x) => /set_config\('jit'/.test(x))).toHaveLength(1);
      } finally {
        await lane.close();
      }
    } finally {
      await db.close();
      await t.drop();
    }
  });
});

