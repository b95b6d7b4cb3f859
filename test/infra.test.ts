import { describe, expect, it } from 'vitest';
import { withDb } from '../src/db/open-db.js';
import { freshDatabase, testTargets } from './helpers/targets.js';

describe.each(testTargets())('database port on %s', (kind) => {
  it('runs queries, scripts and transactions on a fresh database', async () => {
    const t = await freshDatabase(kind);
    try {
      await withDb(t.url, async (db) => {
        const r = await db.query<{ d: string; n: number }>('select current_database() as d, $1::int + 1 as n', [41]);
        expect(r.rows[0]).toEqual({ d: t.database, n: 42 });
        await db.exec('create table t(x int); insert into t values (1), (2);');
        await expect(db.transaction(async (tx) => {
          await tx.exec('insert into t values (3)');
          throw new Error('boom');
        })).rejects.toThrow('boom');
        const c = await db.query<{ n: number }>('select count(*)::int as n from t');
        expect(c.rows[0]?.n).toBe(2);
        await expect(db.query('select * from nope')).rejects.toMatchObject({ sqlstate: '42P01' });
      });
    } finally {
      await t.drop();
    }
  });
});
