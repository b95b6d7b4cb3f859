/**
 * A tier's row delta (src/probe/rows.ts): rows added, removed and changed
 * per relation it writes — by primary key, or as a multiset of row hashes
 * without one — and relations the tier creates, renames or drops, on PGlite
 * and on a real PostgreSQL server.
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
});
