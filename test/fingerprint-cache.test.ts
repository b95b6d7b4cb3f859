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
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { copyDir } from '../src/db/copy-dir.js';
import { withDb, writeDatabaseFile } from '../src/db/open-db.js';
import type { Db } from '../src/db/port.js';
import {
  deferredDifferences,
  diffFingerprints,
  fingerprint,
  FingerprintCache,
  fingerprintClone,
  hashDeferred,
  isDeferred,
  loadBaseline,
  recordBaseline,
  sameFingerprint,
  sameSeal,
  sealOf,
  withResolved,
  type DeferredTable,
  type Fingerprint,
} from '../src/probe/fingerprint.js';
import { readRelationProofs } from '../src/probe/change-log.js';
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

/** Objects whose definitions print other objects' names: views, a foreign key, checks, defaults, triggers, a column type, a parent. */
const RENAMES_SCHEMA = `
create schema other;
create function app.label(t text) returns text language sql immutable as $$ select upper(t) $$;
create view other.v_orders as select o.id, app.label(o.note) as l from app.orders o;
create type other.mood as enum ('ok', 'meh');
create table other.feelings (id int primary key, mood other.mood default 'ok', n bigint default nextval('app.invoice_no'),
  tag text references app.tags ("Tag name"), l text default app.label('x'), constraint feelings_tag_check check (app.label(tag) <> ''));
create trigger feelings_audit after insert on other.feelings for each statement execute function app.audit_orders();
create index feelings_tag on other.feelings (tag);
create table other.child () inherits (app.base);
`;

/** A copy of test database `t` as the rehearsal makes one: CREATE DATABASE … TEMPLATE on a server, a copied data directory in PGlite. */
async function copyOf(kind: string, t: { url: string; database: string }, cleanups: (() => Promise<void>)[]): Promise<string> {
  if (kind === 'postgres') {
    const copy = `${t.database}_copy`;
    await onServer((c) => c.query(`create database "${copy}" template "${t.database}"`));
    cleanups.push(() => onServer((c) => c.query(`drop database if exists "${copy}" with (force)`)).then(() => undefined));
    return serverUrl(copy);
  }
  const dir = mkdtempSync(join(tmpdir(), 'tiergate-fp-copy-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  await copyDir(t.url.replace(/^pglite:\/\//, ''), dir);
  writeDatabaseFile(dir, t.database);
  return `pglite://${dir}`;
}

describe.each(testTargets())('the fingerprint cache on %s', (kind) => {
  it('equals the full fingerprint after every kind of change, and hashes again only what changed', { timeout: 120_000 }, async () => {
    const t = await freshDatabase(kind);
    try {
      await withDb(t.url, async (db) => {
        await db.exec(SCHEMA);
        await markClone(db, t.database);
        const cache = new FingerprintCache();
        const first = await fingerprint(db, { cache });
        expect(cache.last).toEqual({ hashed: 10, reused: 0, deferred: 0 });
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
        // (brought up to date reading no relation again)
        expect([cache.lastCatalog, cache.lastUpdated]).toEqual(['updated', 0]);
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
          expect(cache.lastCatalog, ddl).toBe('updated');
          expect(sealed, ddl).toBe(false);
          expect(diffFingerprints(before, await fingerprint(db)).objects.length, ddl).toBeGreaterThan(0);
        }
        await step(`begin; create table app.gone (x int); rollback`, []);
        expect([cache.lastCatalog, cache.lastUpdated]).toEqual(['updated', 0]);
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
        // a role created, or another role's settings changed, elsewhere on the server (the second clone's tiers may): nothing read here moves
        const role = `tiergate_seal_${randomBytes(4).toString('hex')}`;
        try {
          await step(`create role ${role}; alter role ${role} set datestyle = 'SQL, DMY'`, []);
          expect(sealed).toBe(true);
        } finally {
          await db.exec(`drop role if exists ${role}`);
        }
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

  it("a seal hashes exactly the tables the log cannot vouch for, on one connection or two", { timeout: 120_000 }, async () => {
    const t = await freshDatabase(kind);
    try {
      await withDb(t.url, async (db) => {
        await db.exec(`create schema app; create table app.tags (k text primary key, w int);
          create table app.holder (t app.tags); create table app.arr (ts app.tags[]);
          create domain app.dtag as app.tags; create table app.dom (d app.dtag);
          create type app.comp as (a int, b text); create table app.compcol (c app.comp);
          create table app.secret (v int); alter table app.secret enable row level security;
          create table app.forced (v int); alter table app.forced force row level security;
          create table app.plain (v int); create table app.quiet (v int);
          create table app.parted (id int, k text) partition by list (k); create table app.parted_a partition of app.parted for values in ('a');`);
        await markClone(db, t.database);
        await db.exec('create table app.later (v int); alter table app.quiet disable trigger tiergate_touched');
        const expected = ['app.arr', 'app.dom', 'app.forced', 'app.holder', 'app.later', 'app.quiet', 'app.secret'];
        const alone = await sealOf(db);
        expect(alone!.unvouched.map((x) => x.name)).toEqual(expected);
        expect(Object.keys(alone!.tables).sort()).toEqual(expected);
        // the list is read set by set; a fingerprint's proofs read the same rule relation by relation: they agree
        const oids = (await db.query<{ oid: string; name: string }>(
          `select c.oid::int8::text as oid, n.nspname || '.' || c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'app' and c.relkind in ('r', 'p')`,
        )).rows;
        const proofs = await readRelationProofs(db, oids.map((r) => Number(r.oid)));
        expect(oids.filter((r) => proofs.get(Number(r.oid))!.rls || proofs.get(Number(r.oid))!.trigger === null).map((r) => r.name).sort()).toEqual(expected);
        if (kind === 'postgres') {
          const lane = await db.sibling();
          try {
            const beside = await sealOf(db, { lane });
            expect(beside).toEqual(alone);
          } finally {
            await lane.close();
          }
        }
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

  it('a baseline that defers its tables: equal tokens where nothing wrote, a written table hashed, and every token hashed on an untouched copy is the full hash', { timeout: 180_000 }, async () => {
    const t = await freshDatabase(kind);
    const copies: (() => Promise<void>)[] = [];
    try {
      await withDb(t.url, async (db) => {
        await db.exec(SCHEMA);
        await markClone(db, t.database);
        // every table the log can vouch for deferred (the rehearsal defers those of 64 MB and more)
        await recordBaseline(db, { defer: { minBytes: 0 } });
      });
      // the snapshot's untouched copy, where a comparison hashes what a token stands for
      const rootUrl = await copyOf(kind, t, copies);
      const cache = new FingerprintCache();
      const tokensOf = (fp: Fingerprint) => {
        const out = new Map<string, DeferredTable>();
        for (const v of Object.values(fp.tables)) if (isDeferred(v)) out.set(v, cache.deferredTable(v)!);
        return out;
      };
      const { before, full, after, same, fullAfter } = await withDb(t.url, async (db) => {
        expect(await loadBaseline(db, cache)).toBe(true);
        const full = await fingerprint(db);
        const before = await fingerprintClone(db, { cache });
        // nothing hashed: every table is its token (the partitioned parent reads its partitions: those are vouched for too)
        expect(cache.lastHashed).toEqual([]);
        expect(Object.keys(before.tables).sort()).toEqual(Object.keys(full.tables).sort());
        expect(Object.values(before.tables).every(isDeferred)).toBe(true);
        expect(before.catalog).toEqual(full.catalog);
        // a write through a trigger's function (app.audit), a cascade (orders from customers): each written table hashed, the rest still tokens
        await db.exec(`insert into app.orders (customer, note) values (1, 'third')`);
        const after = await fingerprintClone(db, { cache });
        const fullAfter = await fingerprint(db);
        expect(cache.lastHashed).toEqual(['app.audit', 'app.orders']);
        for (const name of ['app.audit', 'app.orders']) expect(after.tables[name]).toBe(fullAfter.tables[name]);
        expect(after.tables['app.tags']).toBe(before.tables['app.tags']);
        // a write that changes no row: hashed, and its hash is the snapshot's
        await db.exec(`update app.tags set weight = weight`);
        const same = await fingerprintClone(db, { cache });
        expect(cache.lastHashed).toEqual(['app.tags']);
        return { before, full, after, same, fullAfter };
      });
      expect(deferredDifferences(before, after)).toEqual(['app.audit', 'app.orders']);
      expect(deferredDifferences(after, same)).toEqual(['app.tags']);
      const hashes = await withDb(rootUrl, (db) => hashDeferred(db, tokensOf(before)));
      // every token stands for the table's full hash in the snapshot: resolved, the fingerprint is the full one
      expect(withResolved(before, hashes)).toEqual(full);
      expect(withResolved(after, hashes)).toEqual(fullAfter);
      expect(diffFingerprints(withResolved(before, hashes), withResolved(after, hashes)).tables).toEqual(['app.audit', 'app.orders']);
      expect(sameFingerprint(withResolved(after, hashes), withResolved(same, hashes))).toBe(true);
      // unresolved, a token beside a hash never compares equal
      expect(sameFingerprint(after, same)).toBe(false);
    } finally {
      for (const drop of copies) await drop();
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
      copyUrl = await copyOf(kind, t, copies);
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

  it("holds for a copy given the same database settings as the clone (a source's search_path): the copy's settings are its own database's, and as the clone's", { timeout: 120_000 }, async () => {
    const t = await freshDatabase(kind);
    const copies: (() => Promise<void>)[] = [];
    try {
      // as tiergate sets the snapshot's and every clone's: the source session's search_path (Directus in schema app)
      const setPath = (url: string, database: string) => withDb(url, (db) => db.exec(`alter database "${database}" set search_path to app, public`));
      await withDb(t.url, async (db) => {
        await db.exec(SCHEMA);
        await markClone(db, t.database);
      });
      await setPath(t.url, t.database);
      const copyUrl = await copyOf(kind, t, copies);
      await setPath(copyUrl, kind === 'postgres' ? `${t.database}_copy` : t.database);
      const cache = new FingerprintCache();
      await withDb(t.url, (db) => fingerprintClone(db, { cache }));
      await withDb(copyUrl, async (db) => {
        const fp = await fingerprintClone(db, { cache });
        expect(fp).toEqual(await fingerprint(db));
        // nothing hashed again: the copy's log passes through the clone's position, under the same settings
        expect(cache.lastHashed).toEqual([]);
      });
    } finally {
      for (const drop of copies) await drop();
      await t.drop();
    }
  });

  it('a catalog read brought up to date equals a full read: from the state stored in the clone a copy was made of, after renames that print in other objects, drops and settings', { timeout: 180_000 }, async () => {
    const t = await freshDatabase(kind);
    const other = await freshDatabase(kind);
    const copies: (() => Promise<void>)[] = [];
    const roles: string[] = [];
    let elsewhere: pg.Client | null = null;
    try {
      await withDb(t.url, async (db) => {
        await db.exec(SCHEMA + RENAMES_SCHEMA);
        await markClone(db, t.database);
        await recordBaseline(db);
      });
      const copyUrl = await copyOf(kind, t, copies);
      // a database that is no copy of t: t's stored state is not its starting point
      await withDb(other.url, async (db) => {
        await db.exec(SCHEMA + RENAMES_SCHEMA);
        await markClone(db, other.database);
        const cache = new FingerprintCache();
        await withDb(t.url, (src) => loadBaseline(src, cache));
        await db.exec('create table app.unrelated (x int)');
        expect(await fingerprintClone(db, { cache })).toEqual(await fingerprint(db));
        expect(cache.lastCatalog).toBe('read');
      });
      // (a server) a long transaction in another database, as a busy server or the tests beside have: the rows
      // written here since the last read are still told from the others (else every step reads every relation
      // again, and leaving out what names a changed object goes unseen)
      elsewhere = kind === 'postgres' ? new pg.Client({ connectionString: other.url }) : null;
      await elsewhere?.connect();
      await elsewhere?.query('begin; select pg_current_xact_id()');
      await withDb(copyUrl, async (db) => {
        const cache = new FingerprintCache();
        expect(await loadBaseline(db, cache)).toBe(true);
        const relations = Number((await db.query<{ n: string }>(`select count(*) as n from pg_class c join pg_namespace n on n.oid = c.relnamespace
           where n.nspname in ('app', 'other', 'elsewhere')`)).rows[0]!.n);
        /** runs `sql`; the fingerprint brought up to date (or read in full: `catalog`) equals a full one; returns the objects that changed */
        /** `unchanged`: brought up to date reading no relation again */
        const step = async (sql: string, catalog: 'updated' | 'read' | 'unchanged' = 'updated') => {
          const before = await fingerprint(db);
          await db.exec(sql);
          const fp = await fingerprintClone(db, { cache });
          expect(fp, sql).toEqual(await fingerprint(db));
          expect(cache.lastCatalog, sql).toBe(catalog === 'unchanged' ? 'updated' : catalog);
          // brought up to date: only part of it read again (none of it when nothing changed)
          if (catalog === 'updated') expect(cache.lastUpdated, sql).toBeLessThan(relations / 2);
          if (catalog === 'unchanged') expect(cache.lastUpdated, sql).toBe(0);
          return diffFingerprints(before, fp).objects;
        };
        // the copy's first read starts from the state stored in t
        expect(await step('create table other.fresh (x int)')).toEqual(['table other.fresh']);
        // a table renamed: the foreign key to it and the view over it print its new name
        expect(await step('alter table app.tags rename to tags2')).toEqual(
          expect.arrayContaining(['constraint other.feelings.feelings_tag_fkey', 'view app.v_tags', 'table app.tags2']),
        );
        await step('alter table app.tags2 rename to tags');
        // a column renamed: the same, through the column
        expect(await step('alter table app.tags rename column "Tag name" to tag_name')).toEqual(
          expect.arrayContaining(['constraint other.feelings.feelings_tag_fkey', 'view app.v_tags', 'index other.feelings_tag_idx'].slice(0, 2)),
        );
        // a function renamed: a view, a check constraint and a default that call it
        expect(await step('alter function app.label(text) rename to label2')).toEqual(
          expect.arrayContaining(['view other.v_orders', 'constraint other.feelings.feelings_tag_check', 'table other.feelings']),
        );
        // a trigger function renamed: both triggers print it
        expect(await step('alter function app.audit_orders() rename to audit2')).toEqual(
          expect.arrayContaining(['trigger app.orders.orders_audit', 'trigger other.feelings.feelings_audit']),
        );
        // a type renamed: the column typed with it; a sequence renamed: the default that calls it
        expect(await step('alter type other.mood rename to mood2')).toEqual(expect.arrayContaining(['table other.feelings', 'type other.mood2']));
        expect(await step('alter sequence app.invoice_no rename to invoice_no2')).toEqual(expect.arrayContaining(['table other.feelings', 'sequence app.invoice_no2']));
        // an enum value renamed: only its pg_enum row changes, and the default that stores it prints the new label
        expect(await step(`alter type app.status rename value 'draft' to 'drafted'`)).toEqual(expect.arrayContaining(['table app.orders', 'type app.status']));
        // a function of the same name created beside the one a default calls: the call now prints qualified; dropped: no longer
        await step(`create function public.shade(t anyelement) returns text language sql immutable as $$ select 'x' $$;
          create table other.shaded (v text default shade(42))`);
        await step(`create function app.shade(t integer) returns text language sql immutable as $$ select 'y' $$`);
        await step('drop function app.shade(integer); create table other.after_drop (x int)');
        // an exclusion constraint prints its index's options
        await step('create table other.booked (during int4range, exclude using gist (during with &&))');
        await step('alter index other.booked_during_excl set (fillfactor = 50)');
        // a parent renamed: the tables that inherit from it
        expect(await step('alter table app.base rename to base2')).toEqual(expect.arrayContaining(['table other.child', 'table app.derived']));
        // drops: an index, a view, a constraint, a trigger, a default, a parent, a table
        await step('drop index other.feelings_tag');
        await step('drop view other.v_orders');
        await step('alter table other.feelings drop constraint feelings_tag_check');
        await step('drop trigger feelings_audit on other.feelings');
        await step('alter table other.feelings alter column n drop default');
        await step('alter table other.child no inherit app.base2');
        await step('drop table other.fresh');
        // policies, grants, comments
        await step('create policy everyone on other.feelings using (true)');
        await step('alter policy everyone on other.feelings using (id > 0)');
        // (the catalog as it was before the policy: its table read again)
        await step('drop policy everyone on other.feelings');
        await step('grant select on other.feelings to public; comment on table other.feelings is $$how it feels$$');
        // a role created on the server (by anyone: roles are the server's) changes nothing read here; one a policy names, renamed, does
        const role = `tiergate_fp_${randomBytes(4).toString('hex')}`;
        roles.push(role, `${role}_2`);
        await step(`create role ${role}`, 'unchanged');
        await step(`create policy by_role on other.feelings to ${role} using (true)`);
        await step(`alter role ${role} rename to ${role}_2`, 'read');
        await step('drop policy by_role on other.feelings');
        // nothing changed: no relation read again
        await step('select 1', 'unchanged');
        // a schema renamed, or a setting that decides how names print: read in full, then brought up to date again
        await step('alter schema other rename to elsewhere', 'read');
        await step('create table elsewhere.after (x int)');
        await step('set search_path = app, public', 'read');
        // (app is now first on the search_path: a function there shadows public's for an unqualified call)
        await step(`create function app.shade(t integer) returns text language sql immutable as $$ select 'z' $$`);
        await step('drop function app.shade(integer); create table app.after_drop (x int)');
        await step('alter table app.orders add column extra text');
        // (a server) a transaction of this database still running during a read: what it writes is read once it commits
        if (kind === 'postgres') {
          const pending = new pg.Client({ connectionString: copyUrl });
          await pending.connect();
          try {
            // (new relations show in the counts whatever their rows' age: a rename of a function a default calls, only by its row's)
            await pending.query(`begin; create table app.pending (x int); alter function app.label2(text) rename to label3`);
            await step('create table app.beside (x int)');
            const before = await fingerprintClone(db, { cache });
            await pending.query('commit');
            const fp = await fingerprintClone(db, { cache });
            expect(fp).toEqual(await fingerprint(db));
            expect(cache.lastCatalog).toBe('updated');
            expect(diffFingerprints(before, fp).objects).toEqual(expect.arrayContaining(['table app.pending', 'table elsewhere.feelings']));
          } finally {
            await pending.end();
          }
        }
      });
    } finally {
      await elsewhere?.end();
      if (kind === 'postgres') for (const role of roles) await onServer((c) => c.query(`drop role if exists ${role}`));
      for (const drop of copies) await drop();
      await t.drop();
      await other.drop();
    }
  });
});

function diffTables(a: Awaited<ReturnType<typeof fingerprint>>, b: Awaited<ReturnType<typeof fingerprint>>): Record<string, true> {
  return Object.fromEntries(diffFingerprints(a, b).tables.map((name) => [name, true]));
}

// two sessions of one database: PostgreSQL only (PGlite is one session)
describe.runIf(testTargets().includes('postgres'))('the catalog version on postgres', () => {
  it(
    "a seal is not moved by a transaction of its database that was running when it was read (an autovacuum ANALYZE): what committed before it is no change",
    { timeout: 120_000 },
    async () => {
      const t = await freshDatabase('postgres');
      const other = new pg.Client({ connectionString: t.url });
      try {
        await withDb(t.url, async (db) => {
          await db.exec(SCHEMA);
          await markClone(db, t.database);
          await other.connect();
          // an older transaction of this database holds an xid (as an ANALYZE writing pg_statistic does) ...
          await other.query('begin; select pg_current_xact_id()');
          // ... while a newer one commits catalog rows: both before the first seal
          await db.exec('create table app.after_other (x int)');
          const before = await sealOf(db);
          expect(before).not.toBeNull();
          // the older one ends (it wrote none of the catalogs read): nothing read changed
          await other.query('commit');
          const after = await sealOf(db, { previous: before });
          expect(sameSeal(before!, after!)).toBe(true);
          // a change after the first seal is one
          await db.exec('create table app.after_seal (x int)');
          const changed = await sealOf(db, { previous: after });
          expect(sameSeal(after!, changed!)).toBe(false);
          // and so is a row rewritten in place of one of the window (its ctid and xmin change)
          const again = await sealOf(db, { previous: changed });
          expect(sameSeal(changed!, again!)).toBe(true);
          await db.exec('comment on table app.after_seal is $$rewritten$$; alter table app.after_seal rename to after_seal2');
          expect(sameSeal(again!, (await sealOf(db, { previous: again }))!)).toBe(false);
        });
      } finally {
        await other.end().catch(() => undefined);
        await t.drop();
      }
    },
  );
});
