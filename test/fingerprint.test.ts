import { describe, expect, it } from 'vitest';
import { withDb } from '../src/db/open-db.js';
import type { Db } from '../src/db/port.js';
import { diffFingerprints, fingerprint, fingerprintClone, sameFingerprint, type Fingerprint } from '../src/probe/fingerprint.js';
import { freshDatabase, testTargets } from './helpers/targets.js';

/** A small schema with every kind of object and every kind of volatile column the fingerprint knows. */
const SCHEMA = `
create schema app;
create type app.status as enum ('draft', 'published');
create domain app.price as numeric(10, 2) check (value >= 0);
create table app.customers (
  id serial primary key,
  name text not null unique,
  date_created timestamptz default now()
);
create table app.orders (
  id integer generated always as identity primary key,
  customer integer references app.customers(id),
  note text,
  status app.status not null default 'draft',
  total app.price,
  created_at timestamptz,
  updated_at timestamp default current_timestamp
);
create table app.tags ("Tag name" text primary key, weight int);
create view app.v_orders as select o.id, c.name, o.total from app.orders o join app.customers c on c.id = o.customer;
create function app.touch() returns trigger language plpgsql as $$ begin new.updated_at := now(); return new; end $$;
create trigger orders_touch before update on app.orders for each row execute function app.touch();
create sequence app.invoice_no;
insert into app.customers (name) values ('Ada'), ('Grace'), ('Edsger');
insert into app.orders (customer, note, status, total, created_at)
  select c.id, 'order of ' || c.name, 'published', 10.5, now() from app.customers c;
insert into app.tags values ('it''s "quoted"', 1), (E'tab\\there', null);
`;

async function withFresh<T>(kind: Parameters<typeof freshDatabase>[0], script: string, fn: (db: Db) => Promise<T>): Promise<T> {
  const t = await freshDatabase(kind);
  try {
    return await withDb(t.url, async (db) => {
      await db.exec(script);
      return fn(db);
    });
  } finally {
    await t.drop();
  }
}

describe('diffFingerprints / sameFingerprint', () => {
  const fp = (catalog: Record<string, string>, tables: Record<string, string>, hash: string): Fingerprint => ({ catalog, tables, hash });
  it('names what changed, was added or was removed', () => {
    const a = fp({ 'table public.a': '1', 'view public.v': '2', 'index public.i': '3' }, { 'public.a': '1:x', 'public.b': '2:y' }, 'h1');
    const b = fp({ 'table public.a': '1', 'view public.v': '9', 'function public.f()': '4' }, { 'public.a': '1:z' }, 'h2');
    expect(diffFingerprints(a, b)).toEqual({ objects: ['function public.f()', 'index public.i', 'view public.v'], tables: ['public.a', 'public.b'] });
    expect(diffFingerprints(a, a)).toEqual({ objects: [], tables: [] });
    expect(sameFingerprint(a, b)).toBe(false);
    expect(sameFingerprint(a, { ...a })).toBe(true);
  });
});

describe.each(testTargets())('fingerprint on %s', (kind) => {
  it('keeps whole names longer than 63 characters: two constraints sharing a long prefix are two objects', async () => {
    // a real Directus 11 has such names (directus_deployment_projects_deployment_external_id_unique …): cut to
    // PostgreSQL's name length, they collided, and which definition won depended on the order rows came in
    const ddl = `create schema app; create table app.directus_deployment_projects (id int primary key, deployment int, external_id text, other int,
      constraint directus_deployment_projects_deployment_external_id_unique unique (deployment, external_id),
      constraint directus_deployment_projects_deployment_other_unique unique (deployment, other));`;
    const fp = await withFresh(kind, ddl, (db) => fingerprint(db));
    const keys = Object.keys(fp.catalog).filter((k) => k.startsWith('constraint app.directus_deployment_projects.'));
    expect(keys.sort()).toEqual([
      'constraint app.directus_deployment_projects.directus_deployment_projects_deployment_external_id_unique',
      'constraint app.directus_deployment_projects.directus_deployment_projects_deployment_other_unique',
      'constraint app.directus_deployment_projects.directus_deployment_projects_pkey',
    ]);
  });

  it('is equal for two databases built the same way, and covers every kind of object', async () => {
    const one = await withFresh(kind, SCHEMA, (db) => fingerprint(db));
    const two = await withFresh(kind, SCHEMA + 'create schema tiergate; create table tiergate.ledger(id serial, at timestamptz default now());', (db) => fingerprint(db));
    expect(diffFingerprints(one, two)).toEqual({ objects: [], tables: [] });
    expect(two.hash).toBe(one.hash);
    expect(one.hash).toMatch(/^[0-9a-f]{64}$/);
    const keys = Object.keys(one.catalog);
    for (const key of [
      'schema app',
      'table app.orders',
      'view app.v_orders',
      'function app.touch()',
      'trigger app.orders.orders_touch',
      'index app.orders_pkey',
      'constraint app.orders.orders_customer_fkey',
      'constraint app.price.price_check',
      'sequence app.invoice_no',
      'type app.status',
      'type app.price',
    ]) {
      expect(keys).toContain(key);
    }
    expect(keys.some((k) => k.includes('tiergate'))).toBe(false);
    expect(one.tables).toMatchObject({ 'app.customers': expect.stringMatching(/^3:[0-9a-f]{32}$/), 'app.tags': expect.stringMatching(/^2:/) });
    expect(Object.keys(one.tables).sort()).toEqual(['app.customers', 'app.orders', 'app.tags']);
  });

  it('names the table after an INSERT or an UPDATE, and the object after a replaced view or a new index', async () => {
    await withFresh(kind, SCHEMA, async (db) => {
      let before = await fingerprint(db);
      const step = async (sql: string) => {
        await db.exec(sql);
        const after = await fingerprint(db);
        const diff = diffFingerprints(before, after);
        expect(sameFingerprint(before, after)).toBe(false);
        before = after;
        return diff;
      };
      expect(await step(`insert into app.customers (name) values ('Barbara')`)).toEqual({ objects: [], tables: ['app.customers'] });
      expect(await step(`update app.tags set weight = 2 where weight = 1`)).toEqual({ objects: [], tables: ['app.tags'] });
      expect(await step(`create or replace view app.v_orders as select o.id, c.name, o.total from app.orders o join app.customers c on c.id = o.customer where o.total > 0`)).toEqual({
        objects: ['view app.v_orders'],
        tables: [],
      });
      expect(await step(`create index orders_note_idx on app.orders (note)`)).toEqual({ objects: ['index app.orders_note_idx'], tables: [] });
      expect(await step(`alter table app.tags add column colour text`)).toEqual({ objects: ['table app.tags'], tables: ['app.tags'] });
      // a volatile column still counts as null / not null
      expect(await step(`update app.orders set created_at = null where id = (select min(id) from app.orders)`)).toEqual({ objects: [], tables: ['app.orders'] });
      // a reference to a serial id is compared by the referenced row's content
      expect(await step(`update app.orders set customer = (select id from app.customers where name = 'Barbara') where note = 'order of Ada'`)).toEqual({
        objects: [],
        tables: ['app.orders'],
      });
    });
  });

  it('is unchanged when only timestamps the database fills and serial ids differ (delete and re-insert the same content)', async () => {
    await withFresh(kind, SCHEMA, async (db) => {
      const before = await fingerprint(db);
      await db.exec(`
        create temp table o as select c.name, o.note, o.status, o.total, o.created_at from app.orders o join app.customers c on c.id = o.customer;
        delete from app.orders;
        delete from app.customers;
        select pg_sleep(0.01);
        insert into app.customers (name) values ('Edsger'), ('Grace'), ('Ada');
        insert into app.orders (customer, note, status, total, created_at)
          select c.id, o.note, o.status, o.total, now() from o join app.customers c on c.name = o.name;
        drop table o;`);
      const after = await fingerprint(db);
      const ids = await db.query<{ n: number }>('select min(id) as n from app.customers');
      expect(ids.rows[0]?.n).toBeGreaterThan(3); // new serial ids: the content is the same, the ids are not
      expect(diffFingerprints(before, after)).toEqual({ objects: [], tables: [] });
      expect(after.hash).toBe(before.hash);
    });
  });

  it('follows a two-column foreign key to a volatile column in key order: the same content under new ids is equal, a different referenced row is not', async () => {
    const twoColumn = `
      create table app.parts (id serial, kind text, label text, primary key (kind, id));
      create table app.uses (note text, part_id int, part_kind text, foreign key (part_kind, part_id) references app.parts (kind, id));
      insert into app.parts (kind, label) values ('bolt', 'M4'), ('bolt', 'M5'), ('nut', 'M4');
      insert into app.uses select 'uses ' || p.label, p.id, p.kind from app.parts p;`;
    await withFresh(kind, SCHEMA + twoColumn, async (db) => {
      const before = await fingerprint(db);
      // the same rows under new serial ids: each use still points at the same (kind, label)
      await db.exec(`
        create temp table u as select u.note, p.kind, p.label from app.uses u join app.parts p on p.id = u.part_id and p.kind = u.part_kind;
        delete from app.uses; delete from app.parts;
        insert into app.parts (kind, label) select kind, label from u;
        insert into app.uses select u.note, p.id, p.kind from u join app.parts p on p.kind = u.kind and p.label = u.label;`);
      expect((await db.query<{ n: number }>('select min(id) as n from app.parts')).rows[0]?.n).toBeGreaterThan(3);
      expect(diffFingerprints(before, await fingerprint(db))).toEqual({ objects: [], tables: [] });
      // one use now points at another part: its content differs, though no column of app.uses changed type or count
      await db.exec(`update app.uses set part_id = (select id from app.parts where label = 'M5') where note = 'uses M4' and part_kind = 'bolt'`);
      expect(diffFingerprints(before, await fingerprint(db))).toEqual({ objects: [], tables: ['app.uses'] });
    });
  });

  it('works in a read-only transaction, leaves nothing behind, and honours excludeSchemas', async () => {
    await withFresh(kind, SCHEMA, async (db) => {
      const countObjects = async () => (await db.query<{ n: number }>('select count(*)::int as n from pg_class')).rows[0]?.n;
      const objectsBefore = await countObjects();
      const plain = await fingerprint(db);
      const readOnly = await db.transaction((tx) => fingerprint(tx), { readOnly: true });
      expect(readOnly).toEqual(plain);
      expect(await countObjects()).toBe(objectsBefore);
      await db.exec('create schema scratch; create table scratch.t(x int); insert into scratch.t values (1)');
      const withScratch = await fingerprint(db);
      expect(diffFingerprints(plain, withScratch)).toEqual({ objects: ['schema scratch', 'table scratch.t'], tables: ['scratch.t'] });
      expect(await fingerprint(db, { excludeSchemas: ['scratch'] })).toEqual(plain);
    });
  });

  it('gives the same fingerprint on two connections at once, each hashing its share of the tables', async () => {
    const many = `create schema wide;
      do $$ begin for i in 1..600 loop
        execute format('create table wide.t%s (id int primary key, v text)', i);
        execute format('insert into wide.t%s values (%s, %L)', i, i, 'row ' || i);
      end loop; end $$;`;
    await withFresh(kind, SCHEMA + many, async (db) => {
      const one = await fingerprint(db);
      expect(Object.keys(one.tables)).toHaveLength(603);
      expect(await fingerprintClone(db)).toEqual(one);
      if (!db.capabilities.singleConnection) {
        const second = await db.sibling();
        try {
          let batches = 0;
          const lane = { query: (sql: string, params?: unknown[]) => (batches++, second.query(sql, params)), exec: (sql: string) => second.exec(sql) } as Db;
          expect(await fingerprint(db, { lanes: [lane] })).toEqual(one);
          expect(batches).toBeGreaterThan(0);
        } finally {
          await second.close();
        }
      }
      await db.exec(`update wide.t599 set v = 'changed'`);
      expect(diffFingerprints(one, await fingerprintClone(db))).toEqual({ objects: [], tables: ['wide.t599'] });
    });
  });
});

describe.each(testTargets())('a long fingerprint tells its progress and stops at Ctrl-C (%s)', (kind) => {
  const script = Array.from({ length: 40 }, (_, i) => `create table t${i} (id int primary key, v text); insert into t${i} select g, md5(g::text) from generate_series(1, 50) g;`).join('\n');

  it('each batch of tables hashed is told, the last with every table; an aborted signal throws InterruptedError before the next batch', async () => {
    await withFresh(kind, script, async (db) => {
      const told: [number, number][] = [];
      const fp = await fingerprintClone(db, { onProgress: (hashed, total) => told.push([hashed, total]) });
      expect(Object.keys(fp.tables)).toHaveLength(40);
      expect(told.length).toBeGreaterThan(1);
      expect(told.at(-1)).toEqual([40, 40]);
      expect(told.every(([h, t], i) => t === 40 && h > 0 && (i === 0 || h > told[i - 1]![0]))).toBe(true);
      const stop = new AbortController();
      stop.abort();
      const { InterruptedError } = await import('../src/errors.js');
      await expect(fingerprintClone(db, { signal: stop.signal })).rejects.toBeInstanceOf(InterruptedError);
    });
  });
});

describe.runIf(testTargets().includes('postgres'))('Ctrl-C during a long hash (postgres)', () => {
  it("cancels the statements running on the fingerprint's connections: a statement that would run 30 s ends with 57014 at once", async () => {
    const { cancelAtAbort } = await import('../src/probe/fingerprint.js');
    const t = await freshDatabase('postgres');
    try {
      await withDb(t.url, async (db) => {
        const lane = await db.sibling();
        try {
          const stop = new AbortController();
          const release = await cancelAtAbort(db, [lane], stop.signal);
          const sleeping = lane.query('select pg_sleep(30)').then(() => null, (e: unknown) => e);
          // (the sleep is running on the server before the abort)
          for (let i = 0; i < 100; i++) {
            const n = await db.query<{ n: number }>(`select count(*)::int as n from pg_stat_activity where state = 'active' and query like 'select pg_sleep(30)%'`);
            if (n.rows[0]!.n > 0) break;
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
          stop.abort();
          expect(await sleeping).toMatchObject({ sqlstate: '57014' });
          release();
        } finally {
          await lane.close();
        }
      });
    } finally {
      await t.drop();
    }
  });
});
