/**
 * A tier's row delta (src/probe/rows.ts): rows added, removed and changed
 * per relation it writes — by primary key, or as a multiset of row hashes
 * without one — and relations the tier creates, renames or drops, on PGlite
 * and on a real PostgreSQL server. After the tier, only the row versions it
 * wrote are hashed again when nothing else can have changed a row's text
 * (src/probe/rows.ts HORIZON): the same deltas as hashing every row, and
 * every row hashed whenever the catalog or an output setting changed.
 */
import { describe, expect, it } from 'vitest';
import { openDb } from '../src/db/open-db.js';
import { RowWatch } from '../src/probe/rows.js';
import { freshDatabase, testTargets } from './helpers/targets.js';

describe.each(testTargets())('row deltas (%s)', (kind) => {
  it('by key, by hash, created, renamed and dropped relations, each named once', async () => {
    const t = await freshDatabase(kind, 'postgres');
    const db = await openDb(t.url);
    try {
      await db.exec(`
        create schema app;
        create table app.keyed (id int primary key, label text);
        insert into app.keyed values (1, 'a'), (2, 'b'), (3, 'c');
        create table app.bag (x int);
        insert into app.bag values (1), (1), (2);
        create table app.gone (x int);
        insert into app.gone values (1), (2);
        create table app.moved (id int primary key);
        insert into app.moved values (1);
        create table app.dropped_too (x int);
        insert into app.dropped_too values (1), (2), (3);
        -- a column named like the row's alias: the hash must still cover the whole row
        create table app.shadow (id int primary key, t int, label text);
        insert into app.shadow values (1, 7, 'a'), (2, 7, 'b');
        create table app.shadow_bag (t int, label text);
        insert into app.shadow_bag values (7, 'a');`);
      const delta = await db.transaction(async (tx) => {
        // app.keyed twice (qualified and through the search_path): watched once
        await tx.exec('set local search_path = app, public');
        const watch = await RowWatch.start(tx, ['app.keyed', 'keyed', 'app.bag', 'app.gone', 'app.moved', 'app.fresh', 'app.never', 'app.shadow', 'app.shadow_bag'], ['app.dropped_too']);
        await tx.exec(`
          insert into app.keyed values (4, 'd');
          delete from app.keyed where id = 1;
          update app.keyed set label = 'B' where id = 2;
          update app.keyed set label = label where id = 3;
          delete from app.bag where x = 1 and ctid = (select min(ctid) from app.bag where x = 1);
          insert into app.bag values (5);
          drop table app.gone;
          alter table app.moved rename to renamed;
          insert into app.renamed values (2);
          create table app.fresh (x int);
          insert into app.fresh values (1), (2);
          drop table app.dropped_too;
          update app.shadow set label = 'B' where id = 2;
          update app.shadow_bag set label = 'A';`);
        return watch.finish(tx);
      });
      expect(delta).toEqual({
        'app.keyed': { added: 1, removed: 1, changed: 1 },
        'app.bag': { added: 1, removed: 1, changed: 0 },
        'app.gone': { added: 0, removed: 2, changed: 0 },
        'app.moved': { added: 1, removed: 0, changed: 0 },
        'app.fresh': { added: 2, removed: 0, changed: 0 },
        'app.dropped_too': { added: 0, removed: 3, changed: 0 },
        'app.shadow': { added: 0, removed: 0, changed: 1 },
        'app.shadow_bag': { added: 1, removed: 1, changed: 0 },
      });
      // nothing written: nothing reported
      const none = await db.transaction(async (tx) => (await RowWatch.start(tx, ['app.keyed'], [])).finish(tx));
      expect(none).toEqual({});
    } finally {
      await db.close();
      await t.drop();
    }
  });

  /**
   * Each case runs twice on the same table, rolled back in between: once
   * with the row versions' shortcut, once hashing every row; both deltas
   * must be the expected one, and the shortcut used exactly where nothing
   * but the tier's own row versions can differ.
   */
  it('rows the tier did not write are not hashed again, unless the catalog or an output setting changed', async () => {
    const t = await freshDatabase(kind, 'postgres');
    const db = await openDb(t.url);
    try {
      await db.exec(`
        create schema app;
        create type app.mood as enum ('calm', 'busy');
        create table app.bag (x int);
        insert into app.bag values (1), (2);
        create table app.k (id int primary key, label text, at timestamptz, mood app.mood, rel regclass);
        insert into app.k select g, 'l' || g, timestamptz '2026-01-01 12:00+00' + g * interval '1 day', case when g % 2 = 0 then 'busy' else 'calm' end::app.mood,
                                 'app.bag'::regclass
          from generate_series(1, 40) g;
        create function app.rename_busy() returns void language plpgsql as $$ begin alter type app.mood rename value 'busy' to 'hectic'; end $$;`);
      const cases: { name: string; sql: string; expected: Record<string, { added: number; removed: number; changed: number }>; byVersions: string[] }[] = [
        {
          name: 'rows written, deleted, updated to the same text, changed back, rolled back in a subtransaction, re-keyed; statistics gathered',
          sql: `insert into app.k values (100, 'new', null, null);
                delete from app.k where id in (1, 2);
                update app.k set label = 'changed' where id = 3;
                update app.k set label = label where id between 4 and 9;
                update app.k set label = 'x' where id = 10; update app.k set label = 'l10' where id = 10;
                savepoint s; update app.k set label = 'gone' where id between 11 and 20; delete from app.k where id = 21; rollback to savepoint s;
                update app.k set id = 200 where id = 22;
                insert into app.bag values (3);
                analyze app.k;`,
          expected: { 'app.k': { added: 2, removed: 3, changed: 1 }, 'app.bag': { added: 1, removed: 0, changed: 0 } },
          byVersions: ['app.k'],
        },
        {
          // no row written: each row's text gains the default (the catalog changed)
          name: 'a column added with a default',
          sql: `alter table app.k add column extra int default 7;`,
          expected: { 'app.k': { added: 0, removed: 0, changed: 40 } },
          byVersions: [],
        },
        {
          // DDL the parser cannot see, run by a function: the catalog's counters still move
          name: 'an enum label renamed by a function',
          sql: `select app.rename_busy(); update app.k set label = 'seen' where id = 40;`,
          expected: { 'app.k': { added: 0, removed: 0, changed: 20 } },
          byVersions: [],
        },
        {
          // a regclass value prints quoted: "app"."bag"
          name: 'identifiers quoted for the rest of the transaction',
          sql: `set local quote_all_identifiers = on; update app.k set label = 'seen' where id = 40;`,
          expected: { 'app.k': { added: 0, removed: 0, changed: 40 } },
          byVersions: [],
        },
        {
          name: 'the time zone set for the rest of the transaction',
          sql: `set local timezone = 'Asia/Kolkata'; update app.k set label = 'seen' where id = 40;`,
          expected: { 'app.k': { added: 0, removed: 0, changed: 40 } },
          byVersions: [],
        },
      ];
      for (const c of cases) {
        for (const versions of [true, false]) {
          const out = await db
            .transaction(async (tx) => {
              await tx.exec(`set local timezone = 'UTC'`);
              const watch = await RowWatch.start(tx, ['app.k', 'app.bag'], [], { versions });
              await tx.exec(c.sql);
              const delta = await watch.finish(tx);
              throw Object.assign(new Error('roll back'), { out: { delta, byVersions: watch.byVersions } });
            })
            .catch((e: { out?: unknown }) => {
              if (!e.out) throw e;
              return e.out;
            });
          expect(out, `${c.name} (shortcut ${versions ? 'allowed' : 'off'})`).toEqual({ delta: c.expected, byVersions: versions ? c.byVersions : [] });
        }
      }
    } finally {
      await db.close();
      await t.drop();
    }
  });
});
