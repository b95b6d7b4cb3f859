import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeSample } from '../fixtures/directus-sample/generate.js';
import { openDb, withDb } from '../src/db/open-db.js';
import { ConnectionError, DbError, LockHeldError, UsageError } from '../src/errors.js';
import { openWorkerCount } from '../src/db/pglite-adapter.js';
import { fingerprint, sameFingerprint, diffFingerprints } from '../src/probe/fingerprint.js';
import { isMarkedClone, markClone, withClones, type Clone } from '../src/rehearsal/clone.js';
import { DumpScanner, type DumpPiece } from '../src/rehearsal/clone-dump-scan.js';
import { cloneRoot } from '../src/rehearsal/clone-pglite.js';
import { readScratch } from '../src/rehearsal/clone-postgres.js';
import { restoreMode } from '../src/rehearsal/pg-dump-restore.js';
import { findPgTools } from '../src/rehearsal/clone-tools.js';
import { freshDatabase, onServer, serverUrl, testTargets, type TestDatabase } from './helpers/targets.js';
import { startCluster } from '../scripts/pg-cluster.js';

const hasServer = testTargets().includes('postgres');
const workersOpen = () => openWorkerCount();
const work = mkdtempSync(join(tmpdir(), 'tiergate-clone-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Content with everything a dump must carry over exactly: quotes, tabs, backslashes, NULLs, a `;` and a `\` line inside a function body. */
const TRICKY = `
create schema app;
create table app.notes (id serial primary key, body text, tags text[], meta jsonb, created_at timestamptz default now());
insert into app.notes (body, tags, meta) values
  (E'tab\\there; and a newline\\nhere', '{a,"b c"}', '{"k": "it''s"}'),
  (E'back\\\\slash \\\\. and \\\\N', null, null),
  (null, '{}', '[]');
create function app.shout(t text) returns text language plpgsql as $fn$
begin
  -- a ; in a comment, and a string with a line starting with a backslash
  return upper(t) || ';
\\. not a meta-command';
end $fn$;
create view app.v_notes as select id, app.shout(body) as loud from app.notes;
`;

/** A plain dump without the random \\restrict keys, for comparing two dumps of one database. */
function plainDump(url: string, ...args: string[]): string {
  const bin = process.env.TIERGATE_TEST_PG_BINDIR;
  const pgDump = bin ? join(bin, 'pg_dump') : 'pg_dump';
  const out = execFileSync(pgDump, [...args, `--dbname=${url}`], { encoding: 'utf8', maxBuffer: 1 << 28 });
  return out.replace(/^\\(un)?restrict .*$/gm, '');
}

async function cloneDatabases(prefix: string): Promise<string[]> {
  return onServer(async (c) => (await c.query<{ d: string }>('select datname as d from pg_database where datname like $1 order by 1', [prefix + '%'])).rows.map((r) => r.d));
}

describe('DumpScanner', () => {
  const scan = (text: string): DumpPiece[] => {
    const s = new DumpScanner();
    const out: DumpPiece[] = [];
    for (const line of text.split('\n')) out.push(...s.push(line));
    return [...out, ...s.end()];
  };

  it('splits statements where psql would, not inside quotes, dollar quotes or comments', () => {
    const pieces = scan(
      [
        '--',
        '-- PostgreSQL database dump',
        '--',
        '\\restrict abc123',
        "SET standard_conforming_strings = on; SELECT 'a;b', E'c\\';d', \"x;y\" FROM t; /* ; */",
        'CREATE FUNCTION f() RETURNS int AS $body$',
        'select 1; -- ;',
        '\\not a meta-command',
        '$body$ LANGUAGE sql;',
        'COPY public.t (a, b) FROM stdin;',
        'x\t\\N',
        'y;\tz',
        '\\.',
        '\\unrestrict abc123',
        'SELECT 1',
      ].join('\n'),
    );
    expect(pieces.map((p) => p.kind)).toEqual(['meta', 'statement', 'statement', 'statement', 'copy', 'copy-data', 'copy-end', 'meta', 'statement']);
    expect(pieces[0]).toMatchObject({ kind: 'meta', command: 'restrict', line: 4 });
    expect(pieces[2]).toMatchObject({ kind: 'statement', sql: ` SELECT 'a;b', E'c\\';d', "x;y" FROM t;` });
    expect(pieces[3]).toMatchObject({ kind: 'statement', line: 5 });
    expect((pieces[3] as { sql: string }).sql).toContain('\\not a meta-command\n$body$ LANGUAGE sql;');
    expect(pieces[4]).toMatchObject({ kind: 'copy', header: 'COPY public.t (a, b) FROM stdin;', line: 10 });
    expect(pieces[5]).toEqual({ kind: 'copy-data', rows: ['x\t\\N', 'y;\tz'] });
    expect(pieces[8]).toMatchObject({ kind: 'statement', sql: 'SELECT 1\n', line: 15 });
  });

  it('refuses an unterminated COPY block', () => {
    expect(() => scan('COPY t (a) FROM stdin;\n1\n2')).toThrow(/COPY block starting at line 1 has no terminating/);
  });
});

describe.each(testTargets())('clone mark on %s', (kind) => {
  it('marks a database as a tiergate clone, and tells marked from unmarked', async () => {
    const t = await freshDatabase(kind);
    try {
      await withDb(t.url, async (db) => {
        expect(await isMarkedClone(db)).toEqual({ marked: false, sourceDatabase: null });
        await markClone(db, 'directus');
        await markClone(db, 'directus'); // again: still one row
        expect(await isMarkedClone(db)).toEqual({ marked: true, sourceDatabase: 'directus' });
        const rows = await db.query<{ n: number; v: string }>('select count(*)::int as n, max(tiergate_version) as v from tiergate.clone_mark');
        expect(rows.rows[0]).toMatchObject({ n: 1, v: expect.stringMatching(/^\d+\.\d+\.\d+/) });
        // a fingerprint never sees tiergate's own schema
        expect(Object.keys((await fingerprint(db)).catalog).filter((k) => k.includes('tiergate'))).toEqual([]);
      });
    } finally {
      await t.drop();
    }
  });
});

describe('pglite-sample clones', () => {
  it('are marked, identical, independent, removed afterwards; keep keeps the first', async () => {
    const progress: string[] = [];
    let seen: Clone[] = [];
    await withClones(
      { kind: 'pglite-sample', scale: 1 },
      2,
      async (clones) => {
        seen = clones;
        expect(clones.map((c) => c.kind)).toEqual(['pglite', 'pglite']);
        expect(new Set(clones.map((c) => c.url)).size).toBe(2);
        const fps = [];
        for (const c of clones) {
          expect(c.url).toMatch(/^pglite:\/\/\//);
          const db = await c.open();
          try {
            expect(await isMarkedClone(db)).toEqual({ marked: true, sourceDatabase: 'directus' });
            const r = await db.query<{ d: string; n: number }>(`select current_database() as d, count(*)::int as n from directus_collections`);
            expect(r.rows[0]?.d).toBe('directus');
            expect(r.rows[0]?.n).toBeGreaterThan(60);
            fps.push(await fingerprint(db));
          } finally {
            await db.close();
          }
        }
        expect(sameFingerprint(fps[0]!, fps[1]!)).toBe(true);
        // a write to one clone is not in the other
        const a = await clones[0]!.open();
        try {
          await a.exec(`insert into os_proposal_approvals (proposal, payload_sha256) select id, payload_sha256 from os_proposals where key = 'OS-AXIS'`);
          expect(diffFingerprints(fps[0]!, await fingerprint(a)).tables).toEqual(['public.os_proposal_approvals']);
        } finally {
          await a.close();
        }
        const b = await clones[1]!.open();
        try {
          expect(sameFingerprint(fps[1]!, await fingerprint(b))).toBe(true);
        } finally {
          // left open on purpose: dropping the clone closes it
        }
        expect(clones[0]!.copyMs).toBeGreaterThan(0);
      },
      { keep: true, onProgress: (m) => progress.push(m) },
    );
    const dir = (c: Clone) => c.url.slice('pglite://'.length);
    expect(existsSync(dir(seen[0]!))).toBe(true); // kept
    expect(existsSync(dir(seen[1]!))).toBe(false);
    expect(progress.join('\n')).toMatch(/clone 2 of 2 copied/);
    // the kept clone opens by its URL, still marked
    await withDb(seen[0]!.url, async (db) => expect((await isMarkedClone(db)).marked).toBe(true));
    rmSync(dir(seen[0]!), { recursive: true, force: true });
  });

  it('a clone dropped early is removed once: every drop awaits the same removal, the clean-up included, and it opens no more', async () => {
    let second: Clone | undefined;
    let early: Promise<void> | undefined;
    await withClones({ kind: 'pglite-sample', scale: 1 }, 2, async (clones) => {
      second = clones[1]!;
      const db = await second.open(); // left open: the drop closes it
      await db.query('select 1');
      early = second.drop();
      expect(second.drop()).toBe(early);
      await expect(second.open()).rejects.toThrow(/already dropped/);
      // the first clone is untouched by it
      const main = await clones[0]!.open();
      try {
        expect((await isMarkedClone(main)).marked).toBe(true);
      } finally {
        await main.close();
      }
    });
    expect(second!.drop()).toBe(early);
    await early;
    expect(existsSync(second!.url.slice('pglite://'.length))).toBe(false);
  });

  it('are removed when the work fails', async () => {
    let urls: string[] = [];
    await expect(
      withClones({ kind: 'pglite-sample', scale: 1 }, 1, async (clones) => {
        urls = clones.map((c) => c.url);
        await clones[0]!.open(); // left open: the cleanup closes it
        throw new Error('the scenario failed');
      }, { keep: false }),
    ).rejects.toThrow('the scenario failed');
    expect(urls).toHaveLength(1);
    expect(existsSync(urls[0]!.slice('pglite://'.length))).toBe(false);
  });
});

describe("pglite-sample clones from tiergate's cache", () => {
  const env = (vars: Record<string, string | undefined>) => {
    const before = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
    for (const [k, v] of Object.entries(vars)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
    return () => { for (const [k, v] of Object.entries(before)) if (v === undefined) delete process.env[k]; else process.env[k] = v; };
  };
  /** withClones of the sample: its progress, and each clone's fingerprint and clone mark */
  const clonesOf = async (check?: (clones: Clone[]) => Promise<void>) => {
    const progress: string[] = [];
    const fps: string[] = [];
    await withClones({ kind: 'pglite-sample', scale: 1 }, 2, async (clones) => {
      await check?.(clones);
      for (const c of clones) {
        const db = await c.open();
        try {
          expect(await isMarkedClone(db)).toEqual({ marked: true, sourceDatabase: 'directus' });
          fps.push((await fingerprint(db)).hash);
        } finally {
          await db.close();
        }
      }
    }, { onProgress: (m) => progress.push(m) });
    return { progress: progress.join('\n'), fps };
  };

  it('are built once, then copied from the cache: the same sample, each clone its own; nothing cached with TIERGATE_CACHE=off', async () => {
    const cache = mkdtempSync(join(work, 'cache-'));
    const restore = env({ TIERGATE_CACHE_DIR: cache, TIERGATE_CACHE: undefined });
    try {
      const first = await clonesOf();
      expect(first.progress).toMatch(/building the sample Directus database \(scale 1\) in PGlite, once: tiergate's cache keeps it/);
      expect(first.progress).toMatch(/clone 2 of 2 copied/);
      const cached = readdirSync(cache).filter((n) => n.startsWith('sample-'));
      expect(cached).toHaveLength(1);
      // a write to a clone stays in that clone: the next clones are the sample as built
      const second = await clonesOf(async ([a]) => {
        const db = await a!.open();
        try {
          await db.exec(`insert into os_proposal_approvals (proposal, payload_sha256) select id, payload_sha256 from os_proposals where key = 'OS-AXIS'`);
        } finally {
          await db.close();
        }
      });
      expect(second.progress).toMatch(/copying the sample Directus database \(scale 1\) from tiergate's cache into the clones \(.*tiergate-clone-.*, .*tiergate-clone-/);
      expect(second.progress).not.toMatch(/building/);
      expect(second.fps[1]).toBe(first.fps[0]);
      expect(second.fps[0]).not.toBe(first.fps[0]);
      const third = await clonesOf();
      expect(third.fps).toEqual([first.fps[0], first.fps[0]]);

      // TIERGATE_CACHE=off: built in the first clone, which the second copies; the cache is not read
      const off = env({ TIERGATE_CACHE: 'off', TIERGATE_CACHE_DIR: mkdtempSync(join(work, 'cache-')) });
      try {
        const uncached = await clonesOf();
        expect(uncached.progress).toMatch(/building the sample Directus database \(scale 1\) in PGlite \(.*tiergate-clone-/);
        expect(uncached.fps).toEqual([first.fps[0], first.fps[0]]);
        expect(readdirSync(process.env.TIERGATE_CACHE_DIR!).filter((n) => n.startsWith('sample-'))).toEqual([]);
      } finally {
        off();
      }
    } finally {
      restore();
    }
  });

  it('the clones after the first run in a worker thread, with the same results and errors as the first', async () => {
    await withClones({ kind: 'pglite-sample', scale: 1 }, 2, async ([main, other]) => {
      const [a, b] = [await main!.open(), await other!.open()];
      try {
        const read = `select count(*) as n, 1.5::numeric as x, now()::date = current_date as today from directus_collections`;
        expect((await b.query(read)).rows).toEqual((await a.query(read)).rows);
        for (const db of [a, b]) {
          const e = await db.query('select 1/0').catch((x: unknown) => x);
          expect(e).toBeInstanceOf(DbError);
          expect((e as DbError).sqlstate).toBe('22012');
        }
        // a transaction that throws rolls back on the worker too
        await expect(b.transaction(async (tx) => {
          await tx.exec('create table worker_t (x int)');
          throw new Error('roll back');
        })).rejects.toThrow('roll back');
        expect((await b.query(`select to_regclass('worker_t') is null as gone`)).rows[0]).toEqual({ gone: true });
        expect(b.alive()).toBe(true);
        expect(workersOpen()).toBe(1);
      } finally {
        await a.close();
        await b.close();
      }
    });
    // dropping the clone ends its worker
    expect(workersOpen()).toBe(0);
  });

  it('are made where TIERGATE_CLONE_DIR says, else TMPDIR, else in memory (/dev/shm) when it has room, else the temporary folder', async () => {
    const here = mkdtempSync(join(work, 'clone-dir-'));
    const restore = env({ TIERGATE_CLONE_DIR: here });
    try {
      const made: string[] = [];
      await withClones({ kind: 'pglite-sample', scale: 1 }, 2, async (clones) => {
        made.push(...clones.map((c) => c.url));
        expect(clones.map((c) => readdirSync(here).includes(c.url.split('/').pop()!))).toEqual([true, true]);
      });
      expect(made).toHaveLength(2);
      expect(readdirSync(here)).toEqual([]);
    } finally {
      restore();
    }
    expect(cloneRoot(0, { TIERGATE_CLONE_DIR: '/x', TMPDIR: '/y' })).toBe('/x');
    expect(cloneRoot(0, { TMPDIR: '/y' })).toBe(tmpdir());
    const shm = existsSync('/dev/shm') ? statfsSync('/dev/shm') : null;
    const roomy = shm !== null && shm.bavail * shm.bsize >= 2 * 1024 ** 3;
    expect(cloneRoot(0, {})).toBe(roomy ? '/dev/shm' : tmpdir());
    // clones that would not fit with 2 GiB to spare go to the temporary folder
    expect(cloneRoot(Number.MAX_SAFE_INTEGER, {})).toBe(tmpdir());
  });

  it('a cached sample others could write is not copied', async () => {
    const cache = mkdtempSync(join(work, 'cache-'));
    const restore = env({ TIERGATE_CACHE_DIR: cache, TIERGATE_CACHE: undefined });
    try {
      const first = await clonesOf();
      const [name] = readdirSync(cache).filter((n) => n.startsWith('sample-'));
      // a table added to it: while the cache is this user's alone, clones are copies of it (the control)
      const { PGlite } = await import('@electric-sql/pglite');
      const pg = new PGlite(join(cache, name!), { database: 'directus' });
      await pg.exec('create table poison (id int)');
      await pg.close();
      expect((await clonesOf()).fps[0]).not.toBe(first.fps[0]);
      // poisoned: writable by everyone, so it is built anew, as the sample is
      const walk = (d: string): void => {
        chmodSync(d, 0o777);
        for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name)); else chmodSync(join(d, e.name), 0o666);
      };
      walk(join(cache, name!));
      const rebuilt = await clonesOf();
      expect(rebuilt.progress).toMatch(/building the sample/);
      expect(rebuilt.fps).toEqual([first.fps[0], first.fps[0]]);
    } finally {
      restore();
    }
  });

  it('the first clone stays open between uses: each use a new session, one user at a time', async () => {
    await withClones({ kind: 'pglite-sample', scale: 1 }, 2, async ([main]) => {
      const a = await main!.open();
      await a.exec(`set statement_timeout = '1234ms'; create temporary table scratch (x int); prepare p as select 1`);
      // a second user meets the directory's lock, as with any PGlite directory open in this process
      await expect(main!.open()).rejects.toBeInstanceOf(LockHeldError);
      await a.close();
      await expect(a.query('select 1')).rejects.toThrow(/closed/);
      expect(a.alive()).toBe(false);
      const b = await main!.open();
      try {
        const r = await b.query<{ t: string; scratch: string | null; prepared: number }>(
          `select current_setting('statement_timeout') as t, to_regclass('pg_temp.scratch')::text as scratch, (select count(*)::int from pg_prepared_statements) as prepared`,
        );
        expect(r.rows[0]).toEqual({ t: '0', scratch: null, prepared: 0 });
      } finally {
        await b.close();
      }
      // a transaction left open by a user is rolled back when it gives the connection back
      const c = await main!.open();
      await c.exec(`begin; insert into os_proposal_approvals (proposal, payload_sha256) select id, payload_sha256 from os_proposals where key = 'OS-AXIS'`);
      await c.close();
      const d = await main!.open();
      try {
        expect((await d.query<{ n: number }>('select count(*)::int as n from os_proposal_approvals')).rows[0]?.n).toBe(1);
      } finally {
        await d.close();
      }
    });
  });
});

describe('dump clones', () => {
  it('load a plain SQL dump (psql meta-commands, COPY data, owners left out) into PGlite', async () => {
    const file = join(work, 'hand.sql');
    writeFileSync(
      file,
      [
        '--\n-- PostgreSQL database dump\n--\n',
        '\\restrict k3y',
        "SET client_encoding = 'UTF8';",
        "SELECT pg_catalog.set_config('search_path', '', false);",
        'CREATE TABLE public.t (id integer NOT NULL, body text);',
        'ALTER TABLE public.t OWNER TO directus_app;',
        'COPY public.t (id, body) FROM stdin;',
        '1\ttab\\there',
        '2\t\\N',
        '3\tback\\\\slash',
        '\\.',
        '',
        'ALTER TABLE ONLY public.t ADD CONSTRAINT t_pkey PRIMARY KEY (id);',
        '\\unrestrict k3y',
        '',
      ].join('\n'),
    );
    await withClones({ kind: 'dump', file }, 1, async ([clone]) => {
      const db = await clone!.open();
      try {
        expect(await isMarkedClone(db)).toEqual({ marked: true, sourceDatabase: 'directus' });
        const r = await db.query<{ id: number; body: string | null }>('select id, body from public.t order by id');
        expect(r.rows).toEqual([
          { id: 1, body: 'tab\there' },
          { id: 2, body: null },
          { id: 3, body: 'back\\slash' },
        ]);
        // owners and privileges left out, as pg_restore --no-owner --no-privileges does: the clone's tables are its own user's
        const owner = await db.query<{ o: string; me: string }>(`select tableowner as o, current_user::text as me from pg_tables where tablename = 't'`);
        expect(owner.rows[0]?.o).toBe(owner.rows[0]?.me);
      } finally {
        await db.close();
      }
    });
  });

  it('refuses a missing file, a custom-format archive and \\connect, saying what to do', async () => {
    const nothing = async () => undefined;
    await expect(withClones({ kind: 'dump', file: join(work, 'nope.sql') }, 1, nothing)).rejects.toThrow(/does not exist: give the path of a plain SQL dump/);
    const custom = join(work, 'custom.dump');
    writeFileSync(custom, 'PGDMP\u0001\u000e\u0000');
    await expect(withClones({ kind: 'dump', file: custom }, 1, nothing)).rejects.toThrow(/custom format.*pg_restore --file/);
    const connect = join(work, 'create.sql');
    writeFileSync(connect, 'CREATE DATABASE x;\n\\connect x\nCREATE TABLE t (a int);\n');
    const err = await withClones({ kind: 'dump', file: connect }, 1, nothing).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(/line 2: the psql meta-command '\\connect'.*without --create/);
  });
});

describe.runIf(hasServer)('postgres clones (pg_dump | pg_restore onto a scratch server)', () => {
  let source: TestDatabase;
  const secret = 'not-a-real-pw-71c3';
  /** the test server trusts local connections, so a password in the URL is accepted and ignored: it must still never show */
  const withPassword = (url: string) => {
    const u = new URL(url);
    u.password = secret;
    return u.toString();
  };

  it('restores many small objects in one transaction, large tables with two jobs', async () => {
    const t = await freshDatabase('postgres');
    const dir = mkdtempSync(join(tmpdir(), 'tiergate-restore-mode-'));
    try {
      const tools = findPgTools(15);
      const dumpTo = (file: string) => execFileSync(tools.pgDump, ['--format=custom', '--compress=0', `--file=${file}`, `--dbname=${t.url}`]);
      await withDb(t.url, (db) => db.exec(`create table a (id int primary key, v text); create table b (id int primary key); insert into a values (1, 'x')`));
      dumpTo(join(dir, 'small.dump'));
      const { lockSlots } = await readScratch(serverUrl());
      expect(restoreMode(tools.pgRestore, join(dir, 'small.dump'), 2, lockSlots)).toEqual({
        args: ['--single-transaction'],
        why: expect.stringMatching(/^one transaction: \d+ small objects, lock table \d+$/),
      });
      await withDb(t.url, (db) => db.exec(`insert into a select g, repeat(md5(g::text), 20) from generate_series(2, 5000) g`));
      dumpTo(join(dir, 'large.dump'));
      expect(restoreMode(tools.pgRestore, join(dir, 'large.dump'), 2, lockSlots)).toEqual({ args: ['--jobs=2'], why: expect.stringMatching(/^two jobs: \d\.\d MB per table$/) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await t.drop();
    }
  });

  it('restores in slices of its table of contents, each one transaction within half the lock table, when one would not fit', async () => {
    // a scratch server whose lock table (16 × (20 + 0) = 320 slots) holds far fewer relations than the sample has
    const scratch = startCluster({ label: 'test-small-locks', settings: { fsync: 'off', max_locks_per_transaction: '16', max_connections: '20' } });
    const t = await freshDatabase('postgres', 'directus');
    try {
      await withDb(t.url, async (db) => {
        await writeSample(db, { scale: 1 });
        await db.exec(TRICKY);
      });
      const tools = findPgTools(15);
      const file = join(work, 'slices.dump');
      execFileSync(tools.pgDump, ['--format=custom', '--compress=0', `--file=${file}`, `--dbname=${t.url}`]);
      const { lockSlots } = await readScratch(scratch.url('postgres'));
      expect(lockSlots).toBe(320);
      const mode = restoreMode(tools.pgRestore, file, 65, lockSlots);
      expect(mode.why).toMatch(/^\d+ transactions: \d+ small objects, each transaction within half the lock table \(320\)$/);
      const entries = execFileSync(tools.pgRestore, ['--list', file], { encoding: 'utf8' }).split('\n').filter((l) => /^\d+;/.test(l));
      // every entry once, in the archive's order
      expect(mode.slices!.flat()).toEqual(entries);
      expect(mode.slices!.length).toBeGreaterThan(2);
      const sourceFp = await withDb(t.url, (db) => db.transaction((tx) => fingerprint(tx), { readOnly: true }));
      const progress: string[] = [];
      await withClones(
        { kind: 'postgres', url: t.url, scratchUrl: scratch.url('postgres') },
        1,
        async ([clone]) => {
          const db = await clone!.open();
          try {
            expect(diffFingerprints(sourceFp, await fingerprint(db))).toEqual({ objects: [], tables: [] });
          } finally {
            await db.close();
          }
        },
        { onProgress: (m) => progress.push(m) },
      );
      expect(progress.join('\n')).toMatch(/pg_restore \(\d+ transactions: \d+ small objects, each transaction within half the lock table \(320\)\)/);
    } finally {
      await t.drop();
      scratch.destroy();
    }
  });

  it('clones the source exactly, leaves it byte-identical, and drops every clone afterwards', async () => {
    source = await freshDatabase('postgres', 'directus');
    try {
      await withDb(source.url, async (db) => {
        await writeSample(db, { scale: 1 });
        await db.exec(TRICKY);
      });
      const schemaBefore = plainDump(source.url, '--schema-only');
      const dataBefore = plainDump(source.url, '--data-only');
      const sourceFp = await withDb(source.url, (db) => db.transaction((tx) => fingerprint(tx), { readOnly: true }));
      const progress: string[] = [];
      const names: string[] = [];
      await withClones(
        { kind: 'postgres', url: withPassword(source.url), scratchUrl: withPassword(serverUrl()) },
        2,
        async (clones) => {
          for (const c of clones) {
            expect(c.kind).toBe('postgres');
            expect(c.displayUrl).not.toContain(secret);
            const db = await c.open();
            try {
              names.push((await db.query<{ d: string }>('select current_database() as d')).rows[0]!.d);
              expect(await isMarkedClone(db)).toEqual({ marked: true, sourceDatabase: source.database });
              expect(diffFingerprints(sourceFp, await fingerprint(db))).toEqual({ objects: [], tables: [] });
            } finally {
              await db.close();
            }
          }
          expect(names[0]).toMatch(new RegExp(`^tiergate_clone_${source.database}_[0-9a-f]{6}$`));
          expect(names[1]).toBe(`${names[0]}_2`);
          expect(await cloneDatabases(`tiergate_clone_${source.database}_`)).toEqual(names);
          // the clones are independent of each other and of the source
          const a = await clones[0]!.open();
          try {
            await a.exec(`delete from app.notes`);
          } finally {
            await a.close();
          }
          const b = await clones[1]!.open();
          try {
            expect((await b.query<{ n: number }>('select count(*)::int as n from app.notes')).rows[0]?.n).toBe(3);
          } finally {
            await b.close();
          }
        },
        { onProgress: (m) => progress.push(m) },
      );
      expect(await cloneDatabases(`tiergate_clone_${source.database}_`)).toEqual([]);
      expect(plainDump(source.url, '--schema-only')).toBe(schemaBefore);
      expect(plainDump(source.url, '--data-only')).toBe(dataBefore);
      const text = progress.join('\n');
      expect(text).toMatch(/pg_dump: \d+ tables/);
      expect(text).toMatch(/pg_restore: \d+ objects created, \d+ of \d+ tables filled/);
      expect(text).toMatch(/pg_restore \(one transaction: \d+ small objects, lock table \d+\)/);
      expect(text).not.toContain(secret);
    } finally {
      await source.drop();
    }
  });

  it('keeps the first clone with keep, and a plain dump of the server loads into PGlite alike', async () => {
    source = await freshDatabase('postgres', 'directus');
    let kept = '';
    try {
      await withDb(source.url, (db) => db.exec(TRICKY));
      await withClones({ kind: 'postgres', url: source.url, scratchUrl: serverUrl() }, 1, async ([c]) => {
        kept = c!.url;
      }, { keep: true });
      const left = await cloneDatabases(`tiergate_clone_${source.database}_`);
      expect(left).toHaveLength(1);
      await withDb(kept, async (db) => expect((await isMarkedClone(db)).marked).toBe(true));
      await onServer((c) => c.query(`drop database "${left[0]}" with (force)`));

      // the same database as a plain pg_dump, loaded into PGlite: same rows, same function
      const file = join(work, 'server.sql');
      writeFileSync(file, plainDump(source.url));
      const expected = await withDb(source.url, (db) => db.query('select id, body, tags, meta, app.shout(body) as loud from app.notes order by id'));
      await withClones({ kind: 'dump', file }, 1, async ([clone]) => {
        const db = await clone!.open();
        try {
          const got = await db.query('select id, body, tags, meta, app.shout(body) as loud from app.notes order by id');
          expect(got.rows).toEqual(expected.rows);
          expect((await db.query<{ n: number }>(`select nextval('app.notes_id_seq')::int as n`)).rows[0]?.n).toBe(4);
        } finally {
          await db.close();
        }
      });
    } finally {
      await source.drop();
    }
  });

  it("drops the clones while its caller goes on: 'sent' settles once each DROP DATABASE is on its way, a kept clone not waited for", async () => {
    source = await freshDatabase('postgres', 'directus');
    try {
      await withDb(source.url, (db) => db.exec(TRICKY));
      const order: string[] = [];
      let cleanup: Promise<void> = Promise.resolve();
      let sent: Promise<void> = Promise.resolve();
      let names: string[] = [];
      await withClones(
        { kind: 'postgres', url: source.url, scratchUrl: serverUrl() },
        3,
        async (clones) => {
          names = await Promise.all(clones.map(async (c) => withDb(c.url, async (db) => (await db.query<{ d: string }>('select current_database() as d')).rows[0]!.d)));
        },
        {
          keep: true,
          onCleanup: (c, s) => {
            cleanup = c.then(() => void order.push('dropped'));
            sent = s.then(() => void order.push('sent'));
          },
        },
      );
      await Promise.all([sent, cleanup]);
      // both drops were sent before either was over; the first clone, kept, is still there
      expect(order).toEqual(['sent', 'dropped']);
      expect(await cloneDatabases(`tiergate_clone_${source.database}_`)).toEqual([names[0]]);
      await onServer((c) => c.query(`drop database "${names[0]}" with (force)`));
    } finally {
      await source.drop();
    }
  });

  it('names what is wrong, never a password: bad URLs, an unreachable scratch server, an old pg_dump', async () => {
    const nothing = async () => undefined;
    // a source of this test's own name: other test files rehearse sources named postgres_… on this server at the same time
    const source = await freshDatabase('postgres', 'named');
    const src = withPassword(source.url);
    await expect(withClones({ kind: 'postgres', url: src, scratchUrl: 'pglite:memory' }, 1, nothing)).rejects.toThrow(/--scratch must be a PostgreSQL server URL/);
    await expect(withClones({ kind: 'postgres', url: src, scratchUrl: 'postgres://u:p@[bad' }, 1, nothing)).rejects.toBeInstanceOf(UsageError);
    const unreachable = `postgres://postgres:${secret}@127.0.0.1:1/postgres`;
    const err = await withClones({ kind: 'postgres', url: src, scratchUrl: unreachable }, 1, nothing).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as Error).message).toMatch(/^the scratch server: cannot connect to postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/postgres/);
    expect((err as Error).message).not.toContain(secret);
    expect(() => findPgTools(99)).toThrow(/pg_dump must be at least as new as the server; install postgresql-client-99/);
    expect(findPgTools(15).major).toBeGreaterThanOrEqual(15);
    // nothing was created on the scratch server by the failed attempts
    const db = await openDb(serverUrl());
    try {
      const r = await db.query<{ n: number }>(`select count(*)::int as n from pg_database where datname like $1`, [`tiergate_clone_${source.database}%`]);
      expect(r.rows[0]?.n).toBe(0);
    } finally {
      await db.close();
      await source.drop();
    }
  });
});

describe('a hot standby as the source', () => {
  it('the rehearsal says how old the primary it copies is: the newest transaction replayed, WAL not yet replayed, none replayed', async () => {
    const { standbyNote } = await import('../src/rehearsal/clone-postgres.js');
    expect(standbyNote({ replayedAt: '2026-12-07T10:00:00.000Z', agoS: 61, caughtUp: true })).toBe(
      'the source is a hot standby: the newest transaction it has replayed committed on the primary at 2026-12-07T10:00:00.000Z (61 s ago); the copy shows the primary as of then (approvals given on the primary since are not in it)',
    );
    expect(standbyNote({ replayedAt: '2026-12-07T10:00:00.000Z', agoS: 5, caughtUp: false })).toMatch(/\(5 s ago\); it has WAL received and not yet replayed; the copy shows the primary as of then/);
    expect(standbyNote({ replayedAt: null, agoS: null, caughtUp: true })).toMatch(/^the source is a hot standby that has replayed no transaction since it started: the copy shows the primary as of its base backup or its last restart/);
  });
});

describe('a pg_dump that fails says what helps', () => {
  it('a full disk names the folder the dump file is written to, its size so far and TMPDIR; the password is not shown', async () => {
    const { dumpFailed } = await import('../src/rehearsal/pg-dump-restore.js');
    const dir = mkdtempSync(join(tmpdir(), 'tiergate-dumpfull-'));
    const file = join(dir, 'source.dump');
    writeFileSync(file, Buffer.alloc(2_500_000));
    const e = dumpFailed('postgres://reader:s3cret-pw@db.example/directus', file, { code: 1, errors: ['pg_dump: error: could not write to output file: No space left on device'], tail: [] });
    expect(e.message).toBe(
      `pg_dump of postgres://reader:***@db.example/directus failed (exit 1):\n  pg_dump: error: could not write to output file: No space left on device\n` +
        `the dump file is written to ${dir} (TMPDIR, else /tmp), uncompressed: about 1.4 times the source's database, 2.5 MB written when the room ran out; point TMPDIR at a folder with room for it, then run again`,
    );
  });
});
