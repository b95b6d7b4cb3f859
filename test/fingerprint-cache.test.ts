/**
 * The fingerprint's shortcut, proven against the full fingerprint: after
 * each change below — most of them ones the SQL parser cannot see (a
 * trigger, a function, a rule, a cascading key, TRUNCATE, COPY, a write
 * through a view, a sequence, a renamed enum value, a disabled change
 * trigger, replica mode, a tampered log) — a fingerprint that reuses cached
 * hashes equals one that hashes every table, and the tables the change
 * touched were hashed again. A change that writes nothing rehashes nothing.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { copyDir } from '../src/db/copy-dir.js';
import { withDb, writeDatabaseFile } from '../src/db/open-db.js';
import type { Db } from '../src/db/port.js';
import { diffFingerprints, fingerprint, FingerprintCache, fingerprintClone, loadBaseline, recordBaseline, sameSeal, sealOf } from '../src/probe/fingerprint.js';
import { markClone } from '../src/rehearsal/clone.js';
import { freshDatabase, onServer, serverUrl, testTargets } from './helpers/targets.js';

const SCHEMA = `
create schema app;
create type app.status as enum ('draft', 'published');
create table app.customers (id serial primary key, name text not null unique, date_created timestamptz default now());
create table app.orders (
  id integer generated always as identity primary key,
  customer integer references app.customers(id) on delete cascade,
  note text, status app.status not null default 'draft', due timestamp default '2026-01-01 10:00');
create table app.audit (what text, n int);
create table app.tags ("Tag name" text primary key, weight int);
create table app.events (id int, kind text) partition by list (kind);
create table app.events_a partition of app.events for values in ('a');
create table app.events_b partition of app.events for values in ('b');
create table app.base (v int);
create table app.derived (extra text) inherits (app.base);
create table app.ruled (v int);
create table app.ruled_copy (v int);
create rule ruled_also as on insert to app.ruled do also insert into app.ruled_copy values (new.v);
create view app.v_tags as select * from app.tags;
create sequence app.invoice_no;
create function app.audit_orders() returns trigger language plpgsql as $$
  begin insert into app.audit values ('orders ' || tg_op, 1); return null; end $$;
create trigger orders_audit after insert or update on app.orders for each statement execute function app.audit_orders();
create function app.bump() returns void language plpgsql as $$ begin update app.tags set weight = coalesce(weight, 0) + 1; end $$;
insert into app.customers (name) values ('Ada'), ('Grace');
insert into app.orders (customer, note, status) select id, 'order of ' || name, 'published' from app.customers;
insert into app.tags values ('a', 1), ('b', null);
insert into app.events values (1, 'a'), (2, 'b');
insert into app.base values (1); insert into app.derived values (2, 'x');
insert into app.ruled values (1);
`;

describe.each(testTargets())('the fingerprint cache on %s', (kind) => {
  it('equals the full fingerprint after every kind of change, and hashes again only what changed', { timeout: 120_000 }, async () => {
    const t = await freshDatabase(kind);
    try {
      await withDb(t.url, async (db) => {
        await db.exec(SCHEMA);
        await markClone(db, t.database);
        const cache = new FingerprintCache();
        const first = await fingerprint(db, { cache });
        expect(cache.last).toEqual({ hashed: 10, reused: 0 });
        expect(first).toEqual(await fingerprint(db));
        // our change triggers are not part of the database
        expect(Object.keys(first.catalog).some((k) => k.includes('tiergate_touched'))).toBe(false);

        // every other step on a second connection kept from one fingerprint to the next, as a rehearsal keeps it
        const lane = db.capabilities.singleConnection ? undefined : await db.sibling();
        let steps = 0;
        /**
         * runs `sql`, then: the cached fingerprint equals the full one, and exactly `rehashed` tables were hashed again;
         * and the seal (what stage A compares instead of two fingerprints) is the same only if the full fingerprint is
         */
        let sealed: boolean | null = null;
        const step = async (sql: string | ((db: Db) => Promise<void>), rehashed: string[] | 'all', changed: string[] = []) => {
          const before = await fingerprint(db);
          const sealBefore = await sealOf(db);
          if (typeof sql === 'string') await db.exec(sql);
          else await sql(db);
          const sealAfter = sealBefore && (await sealOf(db, { previous: sealBefore }));
          sealed = sealBefore && sealAfter ? sameSeal(sealBefore, sealAfter) : null;
          // fingerprintClone names the database: its catalog read is reused too while the catalog's version holds
          const cached = await fingerprintClone(db, { cache, lane: steps++ % 2 ? lane : undefined });
          const full = await fingerprint(db);
          expect(cached, typeof sql === 'string' ? sql : 'step').toEqual(full);
          expect(diffFingerprints(before, full).tables).toEqual(changed);
          if (sealed) expect(full, `${typeof sql === 'string' ? sql : 'step'}: same seal, so the same fingerprint`).toEqual(before);
          if (changed.length) expect(sealed, typeof sql === 'string' ? sql : 'step').not.toBe(true);
          if (rehashed === 'all') expect(cache.last.hashed).toBe(10);
          else expect(cache.lastHashed, typeof sql === 'string' ? sql : 'step').toEqual([...rehashed].sort());
        };

        // nothing written: nothing hashed again, the catalog not read again; a transaction rolled back leaves no trace in the log either
        await step('select 1', []);
        expect(sealed).toBe(true);
        await step('select 1', []);
        expect(cache.lastCatalog).toBe('reused');
        // DDL changes the catalog's version: read again, and what it changed is seen
        // (a new CHECK constraint updates its table's pg_class row: that table is hashed again, the same content)
        for (const [ddl, rehashed] of [
          ['create index tags_weight on app.tags (weight)', []],
          [`create or replace view app.v_tags as select "Tag name", weight from app.tags where weight is not null`, []],
          [`create or replace function app.bump() returns void language plpgsql as $$ begin update app.tags set weight = coalesce(weight, 0) + 2; end $$`, []],
          ['alter table app.ruled alter column v set default 3', []],
          ['alter table app.ruled add constraint ruled_positive check (v > 0)', ['app.ruled']],
        ] as const) {
          const before = await fingerprint(db);
          await step(ddl, [...rehashed]);
          expect(cache.lastCatalog, ddl).toBe('read');
          expect(sealed, ddl).toBe(false);
          expect(diffFingerprints(before, await fingerprint(db)).objects.length, ddl).toBeGreaterThan(0);
        }
        await step(`begin; create table app.gone (x int); rollback`, []);
        expect(cache.lastCatalog).toBe('reused');
        expect(sealed).toBe(true);
        // (what a blocked tier is: its writes rolled back, the seal the same)
        await step(`begin; insert into app.tags values ('gone', 9); rollback`, []);
        expect(sealed).toBe(true);
        // a user trigger writes another table
        await step(`insert into app.orders (customer, note) select id, 'second' from app.customers where name = 'Ada'`, ['app.orders', 'app.audit'], ['app.audit', 'app.orders']);
        // a function writes
        await step('select app.bump()', ['app.tags'], ['app.tags']);
        // TRUNCATE, COPY from a file, a write through a view
        await step('truncate app.audit', ['app.audit'], ['app.audit']);
        const file = `/tmp/tiergate-copy-${randomBytes(4).toString('hex')}.csv`;
        await step(`copy (select 'copied', 7) to '${file}'; copy app.audit from '${file}'`, ['app.audit'], ['app.audit']);
        await step(`update app.v_tags set weight = 40 where "Tag name" = 'a'`, ['app.tags'], ['app.tags']);
        // a rule writes a second table; a cascading foreign key deletes from another
        await step('insert into app.ruled values (2)', ['app.ruled', 'app.ruled_copy'], ['app.ruled', 'app.ruled_copy']);
        // (orders dereferences customers' serial id: its hash reads customers' rows, so it is hashed again with it)
        await step(`delete from app.customers where name = 'Grace'`, ['app.customers', 'app.orders'], ['app.customers', 'app.orders']);
        // a sequence moved: no table changes
        await step(`select setval('app.invoice_no', 100), nextval('app.invoice_no')`, []);
        expect(sealed).toBe(true);
        // a referenced row changes: the referencing table's content (its dereferenced key) changes with it
        await step(`update app.customers set name = 'Ada L.' where name = 'Ada'`, ['app.customers', 'app.orders'], ['app.customers', 'app.orders']);
        // a write through a partitioned parent fires the parent's trigger only: its partitions are hashed again
        await step(`update app.events set id = id + 10`, ['app.events_a', 'app.events_b'], ['app.events_a', 'app.events_b']);
        // an inheritance parent's content includes its children's rows
        await step(`update app.derived set v = 3`, ['app.base', 'app.derived'], ['app.base', 'app.derived']);
        // a writable CTE and MERGE
        await step(`with d as (delete from app.audit returning *) insert into app.tags select 'from audit ' || what, n from d`, ['app.audit', 'app.tags'], ['app.audit', 'app.tags']);
        await step(`merge into app.tags t using (select 'm' k) s on t."Tag name" = s.k when not matched then insert values ('m', 1)`, ['app.tags'], ['app.tags']);
        // replica mode: the change trigger is ENABLE ALWAYS
        await step(`set session_replication_role = replica; insert into app.audit values ('replica', 1); set session_replication_role = origin`, ['app.audit'], ['app.audit']);
        // the change trigger disabled around a write, then enabled again: its row changed, so the table is hashed again
        await step(
          `alter table app.tags disable trigger tiergate_touched; update app.tags set weight = 0; alter table app.tags enable always trigger tiergate_touched`,
          ['app.tags'],
          ['app.tags'],
        );
        // dropped: hashed every time from then on
        await step(`drop trigger tiergate_touched on app.base; update app.base set v = 5 where v = 1`, ['app.base', 'app.derived'], ['app.base']);
        // (a table without the change trigger: a seal holds its rows' digest)
        expect(Object.keys((await sealOf(db))!.tables)).toEqual(['app.base']);
        await step('select 1', ['app.base', 'app.derived']);
        expect(sealed).toBe(true);
        // a write the log cannot see: the seal's digest of the table's rows sees it
        await step('update app.base set v = 6 where v = 5', ['app.base', 'app.derived'], ['app.base']);
        expect(sealed).toBe(false);
        // a rewrite without a write (VACUUM FULL): new storage, hashed again, same content
        await step('vacuum full app.ruled', ['app.base', 'app.derived', 'app.ruled']);
        // an enum value renamed: no row written, the text of orders' rows changed
        await step(`alter type app.status rename value 'published' to 'live'`, 'all', ['app.orders']);
        // the settings that shape a value's text, in this session
        await step(`set datestyle = 'SQL, DMY'`, 'all', ['app.orders']);
        await step(`set datestyle = 'ISO, MDY'`, 'all', ['app.orders']);
        // the log tampered with (its guard disabled to delete from it): nothing is trusted
        await step(
          `alter table tiergate.touched disable trigger tiergate_append_only; delete from tiergate.touched where seq > 1; alter table tiergate.touched enable always trigger tiergate_append_only`,
          'all',
        );
        // the log refuses edits while its guard stands
        await expect(db.exec('delete from tiergate.touched')).rejects.toThrow(/append-only/);
        await expect(db.exec('truncate tiergate.touched')).rejects.toThrow(/append-only/);
        await lane?.close();
      });
    } finally {
      await t.drop();
    }
  });

  it('a table created by a tier is hashed every time and costs the others nothing; a column typed as a table row follows that table', { timeout: 120_000 }, async () => {
    const t = await freshDatabase(kind);
    try {
      await withDb(t.url, async (db) => {
        await db.exec(`create schema app; create table app.tags (k text primary key, w int); insert into app.tags values ('a', 1);
          create table app.holder (t app.tags); insert into app.holder select t from app.tags t;
          create table app.other (v int); insert into app.other values (1);`);
        await markClone(db, t.database);
        const cache = new FingerprintCache();
        await fingerprintClone(db, { cache });
        const step = async (sql: string, rehashed: string[]) => {
          await db.exec(sql);
          expect(await fingerprintClone(db, { cache }), sql).toEqual(await fingerprint(db));
          expect(cache.lastHashed, sql).toEqual(rehashed);
        };
        // (app.holder has a column of app.tags' row type: hashed every time, and a seal holds its rows' digest)
        await step('select 1', ['app.holder']);
        expect(Object.keys((await sealOf(db))!.tables)).toEqual(['app.holder']);
        // a new table (no change trigger: hashed every time) changes no other table's key
        await step('create table app.fresh (x int); insert into app.fresh values (1)', ['app.fresh', 'app.holder']);
        // a new column of app.tags changes how app.holder's rows print, though nobody wrote app.holder
        const before = await fingerprint(db);
        await step('alter table app.tags add column colour text', ['app.fresh', 'app.holder', 'app.tags']);
        expect(Object.keys(diffTables(before, await fingerprint(db)))).toContain('app.holder');
      });
    } finally {
      await t.drop();
    }
  });

  it('a baseline stored in the clone when it is made is the first entry of a rehearsal of it: nothing is hashed twice', { timeout: 120_000 }, async () => {
    const t = await freshDatabase(kind);
    try {
      await withDb(t.url, async (db) => {
        await db.exec(SCHEMA);
        await markClone(db, t.database);
        await recordBaseline(db);
        const cache = new FingerprintCache();
        expect(await loadBaseline(db, cache)).toBe(true);
        expect(await fingerprintClone(db, { cache })).toEqual(await fingerprint(db));
        expect(cache.lastHashed).toEqual([]);
        await db.exec(`update app.tags set weight = 5`);
        expect(await fingerprintClone(db, { cache })).toEqual(await fingerprint(db));
        expect(cache.lastHashed).toEqual(['app.tags']);
        // a database without one: nothing loaded
        await db.exec('drop table tiergate.fingerprint_baseline');
        expect(await loadBaseline(db, new FingerprintCache())).toBe(false);
      });
    } finally {
      await t.drop();
    }
  });

  it('holds for a copy of the clone: the copy reuses what its log proves, and neither copy is mistaken for the other', { timeout: 120_000 }, async () => {
    const t = await freshDatabase(kind);
    // a copy as the rehearsal makes one: CREATE DATABASE … TEMPLATE on a server, a copied data directory in PGlite
    let copyUrl = '';
    const copies: (() => Promise<void>)[] = [];
    try {
      await withDb(t.url, async (db) => {
        await db.exec(SCHEMA);
        await markClone(db, t.database);
      });
      if (kind === 'postgres') {
        const copy = `${t.database}_copy`;
        await onServer((c) => c.query(`create database "${copy}" template "${t.database}"`));
        copies.push(() => onServer((c) => c.query(`drop database if exists "${copy}" with (force)`)).then(() => undefined));
        copyUrl = serverUrl(copy);
      } else {
        const dir = mkdtempSync(join(tmpdir(), 'tiergate-fp-copy-'));
        copies.push(async () => rmSync(dir, { recursive: true, force: true }));
        await copyDir(t.url.replace(/^pglite:\/\//, ''), dir);
        writeDatabaseFile(dir, t.database);
        copyUrl = `pglite://${dir}`;
      }
      const cache = new FingerprintCache();
      // the copy's baseline, then the original: everything reused
      const baseline = await withDb(copyUrl, (db) => fingerprintClone(db, { cache }));
      await withDb(t.url, async (db) => {
        expect(await fingerprintClone(db, { cache })).toEqual(baseline);
        expect(cache.last.hashed).toBe(0);
        await db.exec(`update app.tags set weight = 99`);
        const fp = await fingerprintClone(db, { cache });
        expect(cache.lastHashed).toEqual(['app.tags']);
        expect(fp).toEqual(await fingerprint(db));
      });
      // the copy wrote another table the same number of times: the original's position is not in its log, so only its own baseline holds
      await withDb(copyUrl, async (db) => {
        await db.exec(`update app.audit set n = 2`);
        const fp = await fingerprintClone(db, { cache });
        expect(fp).toEqual(await fingerprint(db));
        expect(fp.tables['app.tags']).toBe(baseline.tables['app.tags']);
        expect(cache.lastHashed).toEqual(['app.audit']);
      });
    } finally {
      for (const drop of copies) await drop();
      await t.drop();
    }
  });
});

function diffTables(a: Awaited<ReturnType<typeof fingerprint>>, b: Awaited<ReturnType<typeof fingerprint>>): Record<string, true> {
  return Object.fromEntries(diffFingerprints(a, b).tables.map((name) => [name, true]));
}
