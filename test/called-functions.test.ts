/**
 * What a function call runs, for the privilege check of SQL that is one (a
 * plan's scanner): the bodies of the PL/pgSQL and SQL functions it calls,
 * and of those they call; not a SECURITY DEFINER function's (its owner's
 * privileges), not a built string's.
 */
import { describe, expect, it } from 'vitest';
import { withDb } from '../src/db/open-db.js';
import { calledFunctionSql } from '../src/engine/called-functions.js';
import { freshDatabase, testTargets } from './helpers/targets.js';

describe.each(testTargets())('the functions a call runs (%s)', (kind) => {
  it('follows PERFORM, expressions and SQL functions three levels deep; leaves out SECURITY DEFINER and EXECUTE', async () => {
    const t = await freshDatabase(kind);
    try {
      await withDb(t.url, async (db) => {
        await db.exec(`
          create schema s;
          create table s.a (n int); create table s.b (n int); create table s.c (n int); create table s.d (n int); create table s.e (n int);
          create function s.leaf() returns int language sql as $$ insert into s.c values (1) returning n $$;
          create function s.owner_writes() returns void language plpgsql security definer as $$ begin insert into s.d values (1); end $$;
          create function s.middle() returns boolean language plpgsql as $$
            begin update s.b set n = 2; perform s.owner_writes(); return s.leaf() > 0; end $$;
          create function s.top() returns int language plpgsql as $$
            declare x int;
            begin
              insert into s.a values (1) returning n into x;
              if s.middle() then delete from s.a where n = x; end if;
              execute 'truncate s.e';
              return x;
            end $$;`);
        const sql = await calledFunctionSql(db, 'select s.top()');
        const text = sql.join('\n').toLowerCase();
        for (const written of ['insert into s.a', 'update s.b', 'insert into s.c', 'delete from s.a']) expect(text, written).toContain(written);
        expect(text).not.toContain('s.d');
        // (a built string is an expression: its text is a constant, no statement)
        expect(sql.some((x) => /^\s*truncate/i.test(x))).toBe(false);
        // nothing a call of a built-in runs
        expect(await calledFunctionSql(db, 'select now(), count(*) from s.a')).toEqual([]);
        // a DO block's statements are the SQL's own (a verify tier's assertions), and what they call is followed;
        // a dollar tag the body holds does not end it, another language's block is left out
        const done = (await calledFunctionSql(db, `select 1; do $x$ declare k int; begin select count(*) into k from s.e; if s.middle() then raise notice '$do$'; end if; end $x$; do language sql $$ select 1 from s.d $$;`))
          .join('\n')
          .toLowerCase();
        expect(done).toMatch(/select count\(\*\)\s+from s\.e/);
        for (const written of ['update s.b', 'insert into s.c']) expect(done, written).toContain(written);
        expect(done).not.toContain('s.d');
      });
    } finally {
      await t.drop();
    }
  });
});
