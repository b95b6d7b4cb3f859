/**
 * The server's transaction mark (src/probe/xact-mark.ts): stage A of a
 * rehearsal takes a blocked tier to have changed nothing, without reading a
 * seal, only when every transaction since the mark aborted. A commit — in
 * this database or another, by a transaction begun before the mark or
 * after — is never clean; an abort (with its subtransactions) is.
 *
 * The PostgreSQL test server is shared by the test files running at once,
 * whose commits make any window inconclusive: a clean reading is asserted
 * as "clean at least once in a number of tries", a commit as "never clean";
 * the test beside other sessions runs on a server of its own.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { withDb } from '../src/db/open-db.js';
import type { Db } from '../src/db/port.js';
import { nothingCommittedSince, readXactMark } from '../src/probe/xact-mark.js';
import { startCluster } from '../scripts/pg-cluster.js';
import { freshDatabase, testTargets } from './helpers/targets.js';

/** Whether `act` between a mark and its check reads clean in one of `tries` tries. */
async function cleanInSomeTry(db: Db, act: () => Promise<void>, tries = 200): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    const mark = await readXactMark(db);
    await act();
    if ((await nothingCommittedSince(db, mark)).clean) return true;
  }
  return false;
}

/** Whether `act` between a mark and its check read clean (a commit must never). */
async function cleanAfter(db: Db, act: () => Promise<void>): Promise<boolean> {
  const mark = await readXactMark(db);
  await act();
  return (await nothingCommittedSince(db, mark)).clean;
}

const aborted = (db: Db, sql: string) => db.transaction(async (tx) => {
  await tx.exec(sql);
  throw new Error('rolled back on purpose');
}).catch((e: Error) => {
  if (e.message !== 'rolled back on purpose') throw e;
});

describe.each(testTargets())('the server transaction mark on %s', (kind) => {
  it('reads clean after aborted transactions only; any commit, of data or of the catalog, is never clean', { timeout: 120_000 }, async () => {
    const t = await freshDatabase(kind);
    try {
      await withDb(t.url, async (db) => {
        await db.exec('create table side (v int primary key)');
        // an aborted transaction that wrote rows and the catalog, with a subtransaction
        expect(await cleanInSomeTry(db, () => aborted(db, 'insert into side values (1); savepoint s; insert into side values (2); create table gone (x int)'))).toBe(true);
        // nothing at all, and read-only work (no transaction id)
        expect(await cleanInSomeTry(db, async () => void (await db.query('select count(*) from side')))).toBe(true);
        // every kind of commit
        for (const sql of ['insert into side values (3)', 'update side set v = 4 where v = 3', 'delete from side', 'create table side2 (x int)', "comment on table side is 'x'", 'drop table side2']) {
          expect(await cleanAfter(db, async () => void (await db.exec(sql))), sql).toBe(false);
        }
        // a transaction that commits after aborted ones, all since one mark
        const mark = await readXactMark(db);
        await aborted(db, 'insert into side values (5)');
        await db.exec('insert into side values (6)');
        await aborted(db, 'insert into side values (7)');
        const after = await nothingCommittedSince(db, mark);
        expect(after.clean).toBe(false);
        // the mark moves on with the transactions assigned
        expect(BigInt(after.mark.xmax)).toBeGreaterThan(BigInt(mark.xmax));
        expect((await db.query<{ n: string }>('select count(*)::text as n from side')).rows[0]!.n).toBe('1');
      });
    } finally {
      await t.drop();
    }
  });

});

// a second session and a second database: PostgreSQL only (PGlite is one session)
describe.runIf(testTargets().includes('postgres'))('the server transaction mark on postgres, beside other sessions', () => {
  it('a commit in another database, or by a transaction already running at the mark, is never clean', { timeout: 120_000 }, async () => {
    // a server of its own: "clean at least once" needs windows in which no other test file commits (on the shared server
    // they commit all the time while the suite runs, and 200 tries all read a commit)
    const cluster = startCluster({ label: 'xact-mark', settings: { fsync: 'off', autovacuum: 'off' } });
    const t = { url: cluster.url('side_db'), drop: async () => cluster.destroy() };
    await withDb(cluster.url('postgres'), (db) => db.exec('create database side_db'));
    const elsewhere = new pg.Client({ connectionString: cluster.url('postgres') });
    const beside = new pg.Client({ connectionString: t.url });
    try {
      await elsewhere.connect();
      await beside.connect();
      await withDb(t.url, async (db) => {
        await db.exec('create table side (v int)');
        // another database of the server: it cannot be told apart, so it counts
        expect(await cleanAfter(db, async () => void (await elsewhere.query('select pg_current_xact_id()')))).toBe(false);
        // a mark with a transaction of this database running (a later one completed before the mark, so the
        // running one's id is below the mark's xmax, among the mark's running ones)
        const runningAtMark = async (v: number, later: number) => {
          await beside.query('begin');
          await beside.query('insert into side values ($1)', [v]);
          await db.exec(`insert into side values (${later})`);
          const mark = await readXactMark(db);
          expect(mark.running.length).toBeGreaterThan(0);
          return mark;
        };
        // one that commits after the mark
        const mark = await runningAtMark(1, 100);
        await beside.query('commit');
        expect((await nothingCommittedSince(db, mark)).clean).toBe(false);
        // one running at the mark that aborts is no change
        let abortedClean = false;
        for (let i = 0; i < 200 && !abortedClean; i++) {
          const m = await runningAtMark(2, 101);
          await beside.query('rollback');
          abortedClean = (await nothingCommittedSince(db, m)).clean;
          await db.exec('delete from side where v = 101');
        }
        expect(abortedClean).toBe(true);
      });
    } finally {
      await beside.end().catch(() => undefined);
      await elsewhere.end().catch(() => undefined);
      await t.drop();
    }
  });
});
