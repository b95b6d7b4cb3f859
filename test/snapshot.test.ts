/**
 * Kept snapshots of a PostgreSQL source (`tiergate rehearse --source URL
 * --scratch URL [--reuse-snapshot AGE | --fresh | --no-snapshot]`), driven
 * through the real CLI against the real PostgreSQL test server: what is kept
 * on the scratch server, what a reused rehearsal's clone holds, housekeeping
 * of incomplete and older snapshots, two rehearsals at once.
 */
import { createHash } from 'node:crypto';
import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Evidence } from '../src/evidence/types.js';
import { ownerMark, stopLeftChildren } from '../src/exit-cleanup.js';
import { cloneLeftBehind, snapshotPrefix } from '../src/rehearsal/clone-postgres.js';
import { runTool } from '../src/rehearsal/clone-tools.js';
import { snapshotLine } from '../src/report/index.js';
import { runCli, type CliRun } from './helpers/cli.js';
import { startCli } from './helpers/cli-live.js';
import { copyEnginePlan, ENGINE_PLAN } from './helpers/engine-fixture.js';
import { realDirectus } from './helpers/real-directus.js';
import { freshDatabase, onServer, serverUrl, testTargets, type TestDatabase } from './helpers/targets.js';

// each case is one or two whole rehearsals of a small plan: seconds, more on a loaded 2-core machine
vi.setConfig({ testTimeout: 300_000, hookTimeout: 120_000 });

const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));
const readEvidence = (dir: string) => JSON.parse(readFileSync(join(dir, 'evidence.json'), 'utf8')) as Evidence;
const said = (r: CliRun) => r.stdout + r.stderr;

/** The snapshot databases on the test server whose name starts with `prefix`, with their comments, oldest first. */
async function snapshots(prefix: string): Promise<{ name: string; comment: string | null }[]> {
  return onServer(async (c) =>
    (
      await c.query<{ name: string; comment: string | null }>(
        `select datname::text as name, shobj_description(oid, 'pg_database') as comment from pg_database where left(datname, length($1)) = $1 order by datname`,
        [prefix],
      )
    ).rows,
  );
}

/** The ready copies of the snapshots of `prefix` (`tiergate_snap_…_`), with their comments. */
async function sparesOf(prefix: string): Promise<{ name: string; comment: string | null }[]> {
  return snapshots(prefix.replace(/^tiergate_snap_/, 'tiergate_spare_'));
}

/** The ready copy of `snapshot`, once the scratch server has made it (it does after the rehearsal's exit): its name, and whether it takes connections. */
async function readyCopyOf(snapshot: string): Promise<{ name: string; allowsConnections: boolean }> {
  const name = snapshot.replace(/^tiergate_snap_/, 'tiergate_spare_');
  for (let i = 0; i < 300; i++) {
    const r = await onServer((c) => c.query<{ ok: boolean }>('select datallowconn as ok from pg_database where datname = $1', [name]));
    if (r.rows[0]) return { name, allowsConnections: r.rows[0].ok };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no ready copy ${name} after 30 s`);
}

async function clonesOf(database: string): Promise<string[]> {
  return onServer(async (c) => (await c.query<{ d: string }>('select datname::text as d from pg_database where left(datname, length($1)) = $1', [`tiergate_clone_${database}_`])).rows.map((r) => r.d));
}

async function dropDatabases(names: string[]): Promise<void> {
  for (const name of names) await onServer((c) => c.query(`drop database if exists "${name.replace(/"/g, '""')}" with (force)`));
}

/** A source for the engine plan: the gate table it reads, no approval (the rehearsal says NO-GO and passes). */
async function engineSource(name: string): Promise<TestDatabase> {
  const db = await freshDatabase('postgres', name);
  await onServer((c) => c.query('create schema gate; create table gate.approval (id serial primary key, valid boolean not null default true)'), db.database);
  return db;
}

function rehearse(source: TestDatabase, out: string, ...flags: string[]): Promise<CliRun> {
  return runCli(['rehearse', '--plan', ENGINE_PLAN, '--source', source.url, '--scratch', serverUrl('postgres'), '--out', out, ...flags], { timeoutMs: 240_000 });
}

/** Does the (kept) clone named in the evidence have this table? Drops the clone afterwards. */
async function keptCloneHas(e: Evidence, table: string): Promise<boolean> {
  const database = decodeURIComponent(new URL(e.clone.location).pathname.slice(1));
  try {
    return await onServer(async (c) => (await c.query<{ ok: boolean }>('select to_regclass($1) is not null as ok', [table])).rows[0]!.ok, database);
  } finally {
    await dropDatabases([database]);
  }
}

describe.runIf(testTargets().includes('postgres'))('rehearse keeps a snapshot of a PostgreSQL source and reuses it', () => {
  let source: TestDatabase;
  /** `tiergate_snap_<slug>_<idhash8>_` of the source, learnt from the first rehearsal */
  let prefix = '';

  beforeAll(async () => {
    source = await engineSource('snapsrc');
  });
  afterAll(async () => {
    if (prefix) await dropDatabases([...(await snapshots(prefix)), ...(await sparesOf(prefix))].map((s) => s.name));
    await dropDatabases(await clonesOf(source.database));
    await source.drop();
  });

  it('(a) keeps exactly one complete snapshot and no clone; the evidence names it', async () => {
    const out = tmp('tiergate-snap-');
    const r = await rehearse(source, out);
    expect(r.code, said(r)).toBe(0);
    const e = readEvidence(out);
    expect(e.verdict.rehearsal).toBe('PASS');
    const snap = e.clone.snapshot!;
    expect(snap).toMatchObject({ reused: false, takenAt: e.source.snapshotAt });
    expect(snap.database).toMatch(new RegExp(`^tiergate_snap_${source.database}_[0-9a-f]{8}_\\d{8}t\\d{6}$`));
    expect(Buffer.byteLength(snap.database)).toBeLessThanOrEqual(63);
    prefix = snap.database.slice(0, -'20261204t170000'.length);
    const kept = await snapshots(prefix);
    expect(kept.map((s) => s.name)).toEqual([snap.database]);
    expect(kept[0]!.comment).toMatch(/^tiergate snapshot complete \{.*"takenAt":"[^"]+".*\}$/);
    expect(kept[0]!.comment).toContain(`"sourceDatabase":"${source.database}"`);
    expect(await clonesOf(source.database)).toEqual([]);
    // and a copy of it made ready for the next rehearsal (by the server, after the run), closed to connections as the snapshot is
    expect(r.stdout).toContain(`its copy for the next rehearsal (tiergate_spare_${snap.database.slice('tiergate_snap_'.length)}) being made there`);
    expect(r.stdout).toContain(`drop database ${snap.database}; drop database tiergate_spare_`);
    expect(await readyCopyOf(snap.database)).toEqual({ name: snap.database.replace('tiergate_snap_', 'tiergate_spare_'), allowsConnections: false });
    expect((await sparesOf(prefix)).map((x) => x.name)).toEqual([snap.database.replace('tiergate_snap_', 'tiergate_spare_')]);
    expect(r.stdout).toContain(`clone: copy of snapshot ${snap.database} taken ${snap.takenAt} (new`);
    expect(readFileSync(join(out, 'evidence.md'), 'utf8')).toContain(`copy of snapshot ${snap.database}`);
    expect(readFileSync(join(out, 'evidence.html'), 'utf8')).toContain(`copy of snapshot ${snap.database}`);
  });

  it('(b) --reuse-snapshot copies the snapshot without dumping (a later change is absent); --fresh dumps again and keeps only the new one', async () => {
    expect(prefix).not.toBe('');
    const first = (await snapshots(prefix))[0]!.name;
    await onServer((c) => c.query('create table public.after_snapshot (id int)'), source.database);

    const ready = await readyCopyOf(first);
    const out = tmp('tiergate-snap-');
    const r = await rehearse(source, out, '--reuse-snapshot', '1h', '--keep', '--json');
    expect(r.code, said(r)).toBe(0);
    // the first clone is the ready copy, renamed (so it holds what the snapshot holds, below); the next one is made after the run
    expect(readEvidence(out).clone.snapshot).toMatchObject({ readyCopy: true });
    expect(await readyCopyOf(first)).toEqual(ready);
    const result = JSON.parse(r.stdout) as { snapshot: { database: string; reused: boolean } | null; snapshotAt: string };
    expect(result.snapshot).toMatchObject({ database: first, reused: true });
    const e = readEvidence(out);
    expect(e.clone.snapshot).toMatchObject({ database: first, reused: true });
    expect(e.source.snapshotAt).toBe(e.clone.snapshot!.takenAt);
    expect(await keptCloneHas(e, 'public.after_snapshot')).toBe(false);
    expect((await snapshots(prefix)).map((s) => s.name)).toEqual([first]);

    const outFresh = tmp('tiergate-snap-');
    const fresh = await rehearse(source, outFresh, '--fresh', '--keep');
    expect(fresh.code, said(fresh)).toBe(0);
    expect(said(fresh)).toMatch(/--fresh: dumping the source afresh/);
    const f = readEvidence(outFresh);
    expect(f.clone.snapshot?.reused).toBe(false);
    expect(Date.parse(f.source.snapshotAt)).toBeGreaterThan(Date.parse(e.source.snapshotAt));
    expect(await keptCloneHas(f, 'public.after_snapshot')).toBe(true);
    const left = (await snapshots(prefix)).map((s) => s.name);
    expect(left).toEqual([f.clone.snapshot!.database]);
    expect(left[0]! > first).toBe(true);
    // the old snapshot's ready copy went with it, and the new one has its own
    await readyCopyOf(left[0]!);
    expect((await sparesOf(prefix)).map((x) => x.name)).toEqual([left[0]!.replace('tiergate_snap_', 'tiergate_spare_')]);
    expect(await clonesOf(source.database)).toEqual([]);
  });

  it('(c) --reuse-snapshot 1s dumps afresh once the snapshot is older, and says why', async () => {
    const before = (await snapshots(prefix))[0]!.name;
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const out = tmp('tiergate-snap-');
    const r = await rehearse(source, out, '--reuse-snapshot', '1s');
    expect(r.code, said(r)).toBe(0);
    expect(said(r)).toMatch(new RegExp(`the newest, ${before}, is \\d+ s old, older than --reuse-snapshot 1 s: dumping the source afresh`));
    const e = readEvidence(out);
    expect(e.clone.snapshot?.reused).toBe(false);
    expect((await snapshots(prefix)).map((s) => s.name)).toEqual([e.clone.snapshot!.database]);
  });

  it('(d) an incomplete snapshot (no comment) is never reused, and is dropped', async () => {
    const complete = (await snapshots(prefix))[0]!.name;
    // newer than the complete one: a killed run's, which must not be taken for the newest
    const incomplete = `${prefix}20991231t235959`;
    await onServer((c) => c.query(`create database "${incomplete}"`));
    const out = tmp('tiergate-snap-');
    const r = await rehearse(source, out, '--reuse-snapshot', '1h');
    expect(r.code, said(r)).toBe(0);
    expect(said(r)).toContain(`dropped the incomplete snapshot ${incomplete}`);
    expect(readEvidence(out).clone.snapshot).toMatchObject({ database: complete, reused: true });
    expect((await snapshots(prefix)).map((s) => s.name)).toEqual([complete]);
  });

  it('(d1) a snapshot an earlier tiergate made (its baseline hashed rows as the md5 of their text) is not reused: dumped afresh, saying why', async () => {
    const kept = (await snapshots(prefix))[0]!;
    expect(kept.comment).toContain('"rowHash":"hashtextextended-2x64"');
    // the comment such a snapshot carries: all but the row hash
    const earlier = kept.comment!.replace(/,"rowHash":"[^"]*"/, '');
    expect(earlier).not.toContain('rowHash');
    await onServer(async (c) => {
      const sql = await c.query<{ sql: string }>(`select format('comment on database %I is %L', $1::text, $2::text) as sql`, [kept.name, earlier]);
      await c.query(sql.rows[0]!.sql);
    });
    const out = tmp('tiergate-snap-');
    const r = await rehearse(source, out, '--reuse-snapshot', '1h');
    expect(r.code, said(r)).toBe(0);
    expect(said(r)).toContain(`${kept.name} was made by an earlier tiergate, whose baseline hashes rows another way: dumping the source afresh`);
    const e = readEvidence(out);
    expect(e.verdict.rehearsal).toBe('PASS');
    expect(e.clone.snapshot?.reused).toBe(false);
    const left = await snapshots(prefix);
    expect(left.map((x) => x.name)).toEqual([e.clone.snapshot!.database]);
    expect(left[0]!.comment).toContain('"rowHash":"hashtextextended-2x64"');
  });

  it('(d2) a source dropped and created again under its name is another database: its snapshot is not reused, and tiergate says why', async () => {
    const kept = (await snapshots(prefix))[0]!;
    const oid = async () =>
      onServer(async (c) => (await c.query<{ oid: string }>('select oid::text as oid from pg_database where datname = $1', [source.database])).rows[0]!.oid);
    const before = await oid();
    expect(kept.comment).toContain(`"sourceOid":"${before}"`);
    // restored from elsewhere: same name, same cluster, another database (and a table the snapshot does not have)
    await onServer((c) => c.query(`drop database "${source.database}" with (force)`).then(() => c.query(`create database "${source.database}"`)));
    await onServer((c) => c.query('create schema gate; create table gate.approval (id serial primary key, valid boolean not null default true); create table public.recreated (id int)'), source.database);
    const after = await oid();
    const out = tmp('tiergate-snap-');
    const r = await rehearse(source, out, '--reuse-snapshot', '1h', '--keep');
    expect(r.code, said(r)).toBe(0);
    expect(said(r)).toContain(`${source.database} was dropped and created again since ${kept.name} was taken (database oid ${before}, now ${after}): dumping the source afresh`);
    const e = readEvidence(out);
    expect(e.clone.snapshot?.reused).toBe(false);
    expect(await keptCloneHas(e, 'public.recreated')).toBe(true);
    const left = await snapshots(prefix);
    expect(left.map((s) => s.name)).toEqual([e.clone.snapshot!.database]);
    expect(left[0]!.comment).toContain(`"sourceOid":"${after}"`);
  });
});

describe.runIf(testTargets().includes('postgres'))('a snapshot is reused only while the source reads the gate subject and ledger it held', () => {
  let source: TestDatabase;
  let plan = '';
  const run = (out: string, ...flags: string[]) =>
    runCli(['rehearse', '--plan', plan, '--source', source.url, '--scratch', serverUrl('postgres'), '--out', out, ...flags], { timeoutMs: 240_000 });
  const md5 = (s: string) => createHash('md5').update(s).digest('hex');

  beforeAll(async () => {
    source = await engineSource('snapstate');
    await onServer((c) => c.query("create table gate.proposal (payload text not null); insert into gate.proposal values ('v1')"), source.database);
    // the engine plan with a gate subject: what its approvals approve (here, the proposal's payload)
    plan = copyEnginePlan();
    const yaml = join(plan, 'tiergate.yaml');
    writeFileSync(yaml, readFileSync(yaml, 'utf8').replace('  min: 1\n', '  min: 1\n  subject: select md5(payload) from gate.proposal\n'));
  });
  afterAll(async () => {
    await dropDatabases([...(await snapshots(`tiergate_snap_${source.database}_`)), ...(await sparesOf(`tiergate_snap_${source.database}_`))].map((s) => s.name));
    await dropDatabases(await clonesOf(source.database));
    await source.drop();
  });

  it('(d3) a proposal changed, or tiers applied, since the snapshot: dumped afresh, saying why; the evidence rehearses what the source holds', async () => {
    const first = tmp('tiergate-snap-');
    const made = await run(first);
    expect(made.code, said(made)).toBe(0);
    const snap = readEvidence(first).clone.snapshot!;
    const [kept] = await snapshots(`tiergate_snap_${source.database}_`);
    expect(kept!.comment).toContain(`"subject":"${md5('v1')}"`);
    const again = tmp('tiergate-snap-');
    expect((await run(again, '--reuse-snapshot', '1h')).code).toBe(0);
    expect(readEvidence(again).clone.snapshot).toMatchObject({ database: snap.database, reused: true });

    // the payload amended on the source (as `propose --submit` does): the snapshot holds the old one
    await onServer((c) => c.query("update gate.proposal set payload = 'v2'"), source.database);
    const amended = tmp('tiergate-snap-');
    const r = await run(amended, '--reuse-snapshot', '1h');
    expect(r.code, said(r)).toBe(0);
    expect(said(r)).toContain(
      `the subject of gate approvals (what its approvals approve) changed on ${source.database} since ${snap.database} was taken (${md5('v1').slice(0, 12)}… then, ${md5('v2').slice(0, 12)}… now)`,
    );
    const e = readEvidence(amended);
    expect(e.clone.snapshot?.reused).toBe(false);
    expect(e.source.gate?.subject).toBe(md5('v2'));
    // unchanged since: the new snapshot is reused
    const same = tmp('tiergate-snap-');
    expect((await run(same, '--reuse-snapshot', '1h')).code).toBe(0);
    expect(readEvidence(same).clone.snapshot).toMatchObject({ database: e.clone.snapshot!.database, reused: true });

    // a tier applied on the source since: its ledger differs from the snapshot's
    const applied = await runCli(['apply', '--plan', plan, '--target', source.url, '--structure-only', '--yes']);
    expect(applied.code, said(applied)).toBe(0);
    const after = tmp('tiergate-snap-');
    const r2 = await run(after, '--reuse-snapshot', '1h');
    expect(r2.code, said(r2)).toBe(0);
    expect(said(r2)).toContain(`tiers were applied or rolled back on ${source.database} since ${e.clone.snapshot!.database} was taken: dumping the source afresh`);
    const e2 = readEvidence(after);
    expect(e2.clone.snapshot?.reused).toBe(false);
    // the rehearsal saw the source's ledger: the structure tiers are there already
    expect(e2.stages[0]!.tiers.find((t) => t.id === 1)?.status).toBe('Skipped');
  });
});

describe.runIf(testTargets().includes('postgres'))('rehearse: Ctrl-C while the source is dumped', () => {
  let source: TestDatabase;
  beforeAll(async () => {
    source = await engineSource('snapint');
  });
  afterAll(async () => {
    await dropDatabases([...(await snapshots(`tiergate_snap_${source.database}_`)), ...(await sparesOf(`tiergate_snap_${source.database}_`))].map((s) => s.name));
    await dropDatabases(await clonesOf(source.database));
    await source.drop();
  });

  /** pg_dump's sessions on the source (its application name), after waiting up to 5 s for them to end */
  const dumpSessions = async (waiting = false): Promise<number> => {
    const count = async () =>
      onServer(async (c) =>
        (
          await c.query<{ n: number }>(
            `select count(*)::int as n from pg_stat_activity where datname = $1 and application_name = 'tiergate rehearse (pg_dump of the source)'${waiting ? " and wait_event_type = 'Lock'" : ''}`,
            [source.database],
          )
        ).rows[0]!.n,
      );
    for (let i = 0; i < 50; i++) {
      const n = await count();
      if (waiting ? n > 0 : n === 0) return n;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return count();
  };

  it('(d4) stops pg_dump at once, keeps the complete snapshot it had, and leaves no session on the source', async () => {
    const first = tmp('tiergate-snap-');
    expect((await rehearse(source, first)).code).toBe(0);
    const kept = readEvidence(first).clone.snapshot!.database;
    const locker = new pg.Client({ connectionString: source.url });
    await locker.connect();
    try {
      // pg_dump of the source waits for this lock (up to its --lock-wait-timeout of 30 s)
      await locker.query('begin');
      await locker.query('lock table gate.approval in access exclusive mode');
      const cli = startCli(['rehearse', '--plan', ENGINE_PLAN, '--source', source.url, '--scratch', serverUrl('postgres'), '--out', tmp('tiergate-snap-'), '--fresh'], { timeoutMs: 120_000 });
      await cli.waitFor(/pg_dump of /, 'stdout');
      expect(await dumpSessions(true)).toBe(1);
      cli.kill('SIGINT');
      const r = await cli.done;
      // exited while the lock is still held: pg_dump did not run to its end first (it once did, then restored, copied and ran stage A)
      expect(r.code, said(r)).toBe(130);
      expect(r.stderr).toMatch(/rehearsal interrupted \(Ctrl-C\) while its clones were made: nothing was rehearsed; the clones and any incomplete snapshot were dropped/);
      expect(said(r)).not.toMatch(/pg_restore|stage A/);
      expect(await dumpSessions()).toBe(0);
      expect(await clonesOf(source.database)).toEqual([]);
      // the complete snapshot it had is kept (it was dropped once the new one was complete)
      expect((await snapshots(`tiergate_snap_${source.database}_`)).map((s) => s.name)).toEqual([kept]);
    } finally {
      await locker.query('rollback').catch(() => undefined);
      await locker.end();
    }
    // the next rehearsal drops what an abrupt exit left (an empty snapshot) and reuses the complete one
    const next = tmp('tiergate-snap-');
    const r = await rehearse(source, next, '--reuse-snapshot', '1h');
    expect(r.code, said(r)).toBe(0);
    expect(readEvidence(next).clone.snapshot).toMatchObject({ database: kept, reused: true });
  });
});

describe('a client tool at an abrupt exit', () => {
  it('a second Ctrl-C stops the pg_dump or pg_restore tiergate waits for (an orphan kept its session and locks on the source)', async () => {
    const running = runTool('/bin/sleep', ['30'], {});
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(stopLeftChildren()).toBe(1);
    const r = await running;
    expect(r.code).not.toBe(0);
    expect(stopLeftChildren()).toBe(0);
  });

  it('Ctrl-C (the signal) stops it and rejects with an InterruptedError', async () => {
    const controller = new AbortController();
    const running = runTool('/bin/sleep', ['30'], {}, () => undefined, controller.signal);
    const t = performance.now();
    controller.abort();
    await expect(running).rejects.toThrow(/interrupted \(Ctrl-C\): sleep stopped/);
    expect(performance.now() - t).toBeLessThan(10_000);
    expect(stopLeftChildren()).toBe(0);
  });
});

describe.runIf(testTargets().includes('postgres'))("a repeated rehearsal reads the rollback proof's reference from the rehearsal that made it", () => {
  let source: TestDatabase;
  let plan = '';
  /** tiergate's cache of this block alone: the references it stores, nothing else's */
  const env = { TIERGATE_CACHE_DIR: tmp('tiergate-refcache-') };
  const run = (out: string, ...flags: string[]) =>
    runCli(['rehearse', '--plan', plan, '--source', source.url, '--scratch', serverUrl('postgres'), '--out', out, ...flags], { timeoutMs: 240_000, env });

  beforeAll(async () => {
    source = await engineSource('snapref');
    plan = copyEnginePlan();
  });
  afterAll(async () => {
    await dropDatabases([...(await snapshots(`tiergate_snap_${source.database}_`)), ...(await sparesOf(`tiergate_snap_${source.database}_`))].map((s) => s.name));
    await dropDatabases(await clonesOf(source.database));
    await source.drop();
  });

  it('(g) one clone, the same proof; editing a tier the rollback reverts keeps it, and a rollback that leaves a table behind still fails', async () => {
    const first = tmp('tiergate-snap-');
    const made = await run(first);
    expect(made.code, said(made)).toBe(0);
    expect(said(made)).toContain('clones 1–2 of 2 copied');
    const a = readEvidence(first);
    expect(a.rollback).toMatchObject({ matchesKeptTiers: true, reapplyMatches: true, reference: { reused: false } });

    const again = tmp('tiergate-snap-');
    const reused = await run(again, '--reuse-snapshot', '1h');
    expect(reused.code, said(reused)).toBe(0);
    expect(said(reused)).toMatch(/clone 1 of 1 ready in [\d.]+ s: clone 1 is the copy of tiergate_snap_\w+ made ready after the last rehearsal \(tiergate_spare_\w+, renamed\)/);
    expect(said(reused)).toContain("the rollback proof's reference is stored");
    const b = readEvidence(again);
    expect(b.verdict.rehearsal).toBe('PASS');
    expect(b.rollback).toMatchObject({ matchesKeptTiers: true, reapplyMatches: true, reference: { reused: true, madeAt: a.rollback!.reference!.madeAt } });
    const check = b.stages.find((s) => s.name === 'C')!.checks.find((c) => c.name.startsWith('C: after rollback'))!;
    expect(check.detail).toContain(`stored by the rehearsal of ${a.rollback!.reference!.madeAt}`);

    // tier 3 is reverted by the only rollback tier: the reference never ran it, and is kept; a table it now
    // leaves behind (the rollback drops only the view) is what the stored reference does not have
    appendFileSync(join(plan, 'tiers', '03_view.sql'), 'CREATE TABLE app.leftover (id int);\n');
    const edited = tmp('tiergate-snap-');
    const broken = await run(edited, '--reuse-snapshot', '1h');
    expect(broken.code, said(broken)).toBe(1);
    const c = readEvidence(edited);
    expect(c.rollback).toMatchObject({ matchesKeptTiers: false, reference: { reused: true } });
    expect(c.rollback!.keptDiff!.objects).toContain('table app.leftover');

    // a kept tier edited (its sha256 is part of the key): another reference, applied on a second clone again
    appendFileSync(join(plan, 'tiers', '01_schema.sql'), '-- edited: another file, the same tier\n');
    writeFileSync(join(plan, 'tiers', '03_view.sql'), readFileSync(join(ENGINE_PLAN, 'tiers', '03_view.sql')));
    const kept = tmp('tiergate-snap-');
    const other = await run(kept, '--reuse-snapshot', '1h');
    expect(other.code, said(other)).toBe(0);
    expect(said(other)).toMatch(/clones 1–2 of 2 ready in [\d.]+ s: clone 1 is the copy .*, clone 2 copied/);
    expect(readEvidence(kept).rollback).toMatchObject({ matchesKeptTiers: true, reference: { reused: false } });

    // tiergate.yaml edited (its metrics, post-conditions and timeouts are the reference's too): another reference
    appendFileSync(join(plan, 'tiergate.yaml'), '# edited\n');
    const yamlEdited = tmp('tiergate-snap-');
    const third = await run(yamlEdited, '--reuse-snapshot', '1h');
    expect(third.code, said(third)).toBe(0);
    expect(said(third)).toMatch(/clones 1–2 of 2 ready in [\d.]+ s/);
    expect(readEvidence(yamlEdited).rollback).toMatchObject({ matchesKeptTiers: true, reference: { reused: false } });
    expect(await clonesOf(source.database)).toEqual([]);
  });

  it('(g2) a rehearsal waits, and says so, for the ready copy the scratch server is still making, then takes it', async () => {
    const [snap] = (await snapshots(`tiergate_snap_${source.database}_`)).map((x) => x.name);
    const spare = (await readyCopyOf(snap!)).name;
    await dropDatabases([spare]);
    // the ready copy in the making, as the last rehearsal's would be: its CREATE DATABASE held up by a lock on pg_database
    const locker = new pg.Client({ connectionString: serverUrl('postgres') });
    const maker = new pg.Client({ connectionString: serverUrl('postgres'), application_name: 'tiergate rehearse (ready copy)' });
    await Promise.all([locker.connect(), maker.connect()]);
    try {
      await locker.query('begin');
      await locker.query('lock table pg_catalog.pg_database in share mode');
      const making = maker.query(`create database "${spare}" template "${snap}" allow_connections false`);
      making.catch(() => undefined);
      const out = tmp('tiergate-snap-');
      const cli = startCli(['rehearse', '--plan', plan, '--source', source.url, '--scratch', serverUrl('postgres'), '--out', out, '--reuse-snapshot', '1h'], { env, timeoutMs: 240_000 });
      await cli.waitFor(/waiting for the scratch server to finish the ready copy tiergate_spare_/, 'stdout');
      await locker.query('commit');
      await making;
      const r = await cli.done;
      expect(r.code, said(r)).toBe(0);
      expect(readEvidence(out).clone.snapshot).toMatchObject({ database: snap, reused: true, readyCopy: true });
    } finally {
      await locker.query('rollback').catch(() => undefined);
      await Promise.all([locker.end(), maker.end()]);
    }
  });

  it('(h) with TIERGATE_CACHE=off nothing is stored or read: two clones each time', async () => {
    const out = tmp('tiergate-snap-');
    const r = await runCli(['rehearse', '--plan', plan, '--source', source.url, '--scratch', serverUrl('postgres'), '--out', out, '--reuse-snapshot', '1h'], {
      timeoutMs: 240_000,
      env: { ...env, TIERGATE_CACHE: 'off' },
    });
    expect(r.code, said(r)).toBe(0);
    expect(said(r)).toMatch(/clones 1–2 of 2 ready in [\d.]+ s: clone 1 is the copy .*, clone 2 copied/);
    expect(readEvidence(out).rollback).toMatchObject({ matchesKeptTiers: true, reference: { reused: false } });
  });
});

describe.runIf(testTargets().includes('postgres'))("a snapshot's baseline leaves its large tables unhashed", () => {
  let source: TestDatabase;
  let plan = '';
  // every table deferred, as a table of 64 MB and more is; tiergate's cache of this block alone
  const env = { TIERGATE_CACHE_DIR: tmp('tiergate-defercache-'), TIERGATE_BASELINE_DEFER_MB: '0' };
  const run = (out: string, ...flags: string[]) =>
    runCli(['rehearse', '--plan', plan, '--source', source.url, '--scratch', serverUrl('postgres'), '--out', out, ...flags], { timeoutMs: 240_000, env });

  beforeAll(async () => {
    source = await engineSource('snapdefer');
    await onServer((c) => c.query(`create table public.big (id int primary key, v text); insert into public.big select i, 'row ' || i from generate_series(1, 500) i`), source.database);
    plan = copyEnginePlan();
  });
  afterAll(async () => {
    await dropDatabases([...(await snapshots(`tiergate_snap_${source.database}_`)), ...(await sparesOf(`tiergate_snap_${source.database}_`))].map((s) => s.name));
    await dropDatabases(await clonesOf(source.database));
    await source.drop();
  });

  it('(k0) a size that is no number is a usage error, said before the source is read', async () => {
    for (const size of ['64MB', '-1', '0x10']) {
      const out = tmp('tiergate-snap-');
      const r = await runCli(['rehearse', '--plan', plan, '--source', source.url, '--scratch', serverUrl('postgres'), '--out', out], {
        timeoutMs: 60_000,
        env: { ...env, TIERGATE_BASELINE_DEFER_MB: size },
      });
      expect(r.code, said(r)).toBe(2);
      expect(r.stderr).toContain(`TIERGATE_BASELINE_DEFER_MB='${size}' is not a size in MB: a number, 0 or more`);
      expect(said(r)).not.toContain('pg_dump');
    }
  });

  it('(k) PASS as before; a table the tiers write on one side only is hashed on a copy of the snapshot, once: a write that changes nothing passes, a change the rollback leaves fails; so with --no-snapshot', async () => {
    const first = tmp('tiergate-snap-');
    const made = await run(first);
    expect(made.code, said(made)).toBe(0);
    expect(said(made)).toMatch(/\d+ tables of 0 MB and more left unhashed: hashed only where a rehearsal's tiers change them/);
    expect(readEvidence(first).rollback).toMatchObject({ matchesKeptTiers: true, reapplyMatches: true, reference: { reused: false } });

    // tier 2 (reverted by the rollback, never run on the reference) writes public.big without changing a row: the stored
    // reference has big as the snapshot holds it (its token), the main clone a hash of it
    const seed = readFileSync(join(plan, 'tiers', '02_seed.sql'), 'utf8');
    const seedWith = (sql: string) => writeFileSync(join(plan, 'tiers', '02_seed.sql'), seed.replace('INSERT INTO app.item', `${sql}\nINSERT INTO app.item`));
    seedWith('UPDATE public.big SET v = v;');
    const noop = tmp('tiergate-snap-');
    const same = await run(noop, '--reuse-snapshot', '1h');
    expect(same.code, said(same)).toBe(0);
    expect(said(same)).toContain('public.big changed on one side of a comparison only (written there, or reading through a foreign key a table that was): hashing it as the copy of the source holds it, untouched');
    expect(said(same)).toContain('1 large table the baseline left unhashed hashed on an untouched copy of the source');
    expect(readEvidence(noop).rollback).toMatchObject({ matchesKeptTiers: true, reapplyMatches: true, reference: { reused: true } });
    // the copy is dropped with the clones
    expect(await clonesOf(source.database)).toEqual([]);

    // a row changed that the rollback does not put back: stage C fails naming the table; the snapshot's hash of it is
    // known now (tiergate's cache): no copy made
    seedWith(`UPDATE public.big SET v = 'changed' WHERE id = 7;`);
    const changed = tmp('tiergate-snap-');
    const broken = await run(changed, '--reuse-snapshot', '1h');
    expect(broken.code, said(broken)).toBe(1);
    expect(said(broken)).not.toContain('hashing it as the copy of the source holds it');
    const e = readEvidence(changed);
    expect(e.rollback).toMatchObject({ matchesKeptTiers: false, reference: { reused: true } });
    expect(e.rollback!.keptDiff!.tables).toEqual(['public.big']);
    expect(await clonesOf(source.database)).toEqual([]);

    // --no-snapshot (a fleet's rehearsal): the restored copy stays untouched beside the clones, and is dropped with them
    seedWith('UPDATE public.big SET v = v;');
    const direct = tmp('tiergate-snap-');
    const passed = await run(direct, '--no-snapshot');
    expect(passed.code, said(passed)).toBe(0);
    expect(said(passed)).toMatch(/the restored copy .* stays untouched .*; the clones are copies of it/);
    expect(said(passed)).toContain('hashing it as the copy of the source holds it, untouched');
    expect(readEvidence(direct).rollback).toMatchObject({ matchesKeptTiers: true, reapplyMatches: true });
    seedWith(`UPDATE public.big SET v = 'changed' WHERE id = 7;`);
    const directChanged = tmp('tiergate-snap-');
    const failed = await run(directChanged, '--no-snapshot');
    expect(failed.code, said(failed)).toBe(1);
    expect(readEvidence(directChanged).rollback!.keptDiff!.tables).toEqual(['public.big']);
    expect(await clonesOf(source.database)).toEqual([]);
  });
});

describe.runIf(testTargets().includes('postgres'))('a repeated rehearsal of a database made by a real Directus 11, with the bundled plan', () => {
  it('(i) fresh, then twice reusing the snapshot: the ready copy and the stored reference, the same proofs, PASS each time', async () => {
    const source = await realDirectus('postgres');
    const env = { TIERGATE_CACHE_DIR: tmp('tiergate-refcache-') };
    try {
      const runs: Evidence[] = [];
      for (const flags of [[], ['--reuse-snapshot', '1h'], ['--reuse-snapshot', '1h']]) {
        const out = tmp('tiergate-snap-');
        const r = await runCli(['rehearse', '--source', source.url, '--scratch', serverUrl('postgres'), '--out', out, ...flags], { timeoutMs: 300_000, env });
        expect(r.code, said(r)).toBe(0);
        const e = readEvidence(out);
        expect(e.verdict.rehearsal, said(r)).toBe('PASS');
        expect(e.rollback).toMatchObject({ matchesKeptTiers: true, reapplyMatches: true });
        runs.push(e);
        // the next one takes the ready copy the server makes now
        await readyCopyOf(e.clone.snapshot!.database);
      }
      const [fresh, ...reused] = runs;
      expect(fresh!.rollback!.reference).toMatchObject({ reused: false });
      for (const e of reused) {
        expect(e.clone.snapshot).toMatchObject({ database: fresh!.clone.snapshot!.database, reused: true, readyCopy: true });
        expect(e.rollback!.reference).toEqual({ reused: true, madeAt: fresh!.rollback!.reference!.madeAt });
        // the same tiers, the same deltas as the rehearsal that made its clones itself
        const deltas = (x: Evidence) => x.stages.map((st) => st.tiers.map((t) => [t.id, t.status, JSON.stringify(t.delta?.rows ?? {}), JSON.stringify(t.delta?.objects ?? {})]));
        expect(deltas(e)).toEqual(deltas(fresh!));
      }
      // (exactly this source's clone names: clone.test.ts's sources directus_<8 hex> have clones of their own meanwhile)
      const left = await onServer((c) => c.query(`select datname from pg_database where datname ~ '^tiergate_clone_directus_[0-9a-f]{6}(_[0-9]{1,2})?$'`));
      expect(left.rows).toEqual([]);
    } finally {
      const prefix = `tiergate_snap_directus_`;
      await dropDatabases([...(await snapshots(prefix)), ...(await sparesOf(prefix))].map((x) => x.name));
      await source.drop();
    }
  });

  it("(j) a stored reference is not used once the scratch user's settings print values otherwise (TimeZone): PASS, the reference made again", async () => {
    const source = await realDirectus('postgres');
    const role = `tgtz_${Math.random().toString(36).slice(2, 8)}`;
    await onServer((c) => c.query(`create role ${role} login superuser`));
    const scratch = new URL(serverUrl('postgres'));
    scratch.username = role;
    const env = { TIERGATE_CACHE_DIR: tmp('tiergate-refcache-') };
    let lastRun = '';
    const run = async (...flags: string[]): Promise<Evidence> => {
      const out = tmp('tiergate-snap-');
      const r = await runCli(['rehearse', '--source', source.url, '--scratch', scratch.toString(), '--out', out, ...flags], { timeoutMs: 300_000, env });
      expect(r.code, said(r)).toBe(0);
      lastRun = said(r);
      const e = readEvidence(out);
      expect(e.verdict.rehearsal, said(r)).toBe('PASS');
      await readyCopyOf(e.clone.snapshot!.database);
      return e;
    };
    try {
      const fresh = await run();
      expect((await run('--reuse-snapshot', '1h')).rollback!.reference).toEqual({ reused: true, madeAt: fresh.rollback!.reference!.madeAt });
      expect(lastRun).not.toContain("the scratch server's settings for its user");
      // the scratch user's time zone changes: every timestamptz prints otherwise on the clones, and a reference hashed before is not this one's
      await onServer((c) => c.query(`alter role ${role} set timezone = 'Asia/Kathmandu'`));
      const after = await run('--reuse-snapshot', '1h');
      // and the user is told why this rehearsal hashes every table of the snapshot again
      expect(lastRun).toMatch(/the scratch server's settings for its user \(TimeZone, DateStyle, search_path and the like, which shape how values print\) changed since tiergate_snap_\w+ was taken/);
      expect(after.rollback!.reference).toMatchObject({ reused: false });
      expect(after.rollback).toMatchObject({ matchesKeptTiers: true, reapplyMatches: true });
    } finally {
      const prefix = `tiergate_snap_directus_`;
      await dropDatabases([...(await snapshots(prefix)), ...(await sparesOf(prefix))].map((x) => x.name));
      await source.drop();
      await onServer((c) => c.query(`drop role if exists ${role}`)).catch(() => undefined);
    }
  });
});

describe.runIf(testTargets().includes('postgres'))('rehearse without a snapshot, and two rehearsals at once', () => {
  let source: TestDatabase;
  beforeAll(async () => {
    source = await engineSource('snapboth');
  });
  afterAll(async () => {
    await dropDatabases([...(await snapshots(`tiergate_snap_${source.database}_`)), ...(await sparesOf(`tiergate_snap_${source.database}_`))].map((s) => s.name));
    await dropDatabases(await clonesOf(source.database));
    await source.drop();
  });

  it('(e) --no-snapshot keeps nothing on the scratch server', async () => {
    const out = tmp('tiergate-snap-');
    const r = await rehearse(source, out, '--no-snapshot');
    expect(r.code, said(r)).toBe(0);
    expect(readEvidence(out).clone.snapshot).toBeUndefined();
    expect(await snapshots(`tiergate_snap_${source.database}_`)).toEqual([]);
    expect(await clonesOf(source.database)).toEqual([]);
  });

  it("(e2) a killed rehearsal's clones are dropped by the next one, which says so; a kept clone, a live run's and an unmarked one stay", async () => {
    const killed = startCli(['rehearse', '--plan', ENGINE_PLAN, '--source', source.url, '--scratch', serverUrl('postgres'), '--out', tmp('tiergate-snap-'), '--no-snapshot'], {
      env: { TIERGATE_TEST_HOOK: 'tier-committed:1', TIERGATE_TEST_HOOK_WAIT_MS: '120000' },
      timeoutMs: 240_000,
    });
    await killed.waitFor(/tiergate-test-hook tier-committed:1/, 'stderr');
    const left = await clonesOf(source.database);
    expect(left).toHaveLength(2);
    killed.kill('SIGKILL');
    expect((await killed.done).signal).toBe('SIGKILL');
    // (the server ends the killed client's sessions as it reads their end)
    const sessions = () => onServer(async (c) => (await c.query<{ s: string }>(`select pid || ' ' || state || ' ' || left(query, 60) as s from pg_stat_activity where datname = any($1)`, [left])).rows.map((r) => r.s));
    for (let i = 0; i < 300 && (await sessions()).length; i++) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await sessions()).toEqual([]);
    expect((await clonesOf(source.database)).sort()).toEqual([...left].sort());
    // each is marked as a gone run's: any rehearsal on this scratch server drops it
    const marks = await onServer(async (c) => (await c.query<{ c: string | null }>(`select shobj_description(oid, 'pg_database') as c from pg_database where datname = any($1)`, [left])).rows.map((r) => r.c));
    expect(marks.map((m) => cloneLeftBehind(m))).toEqual([true, true]);
    // an older tiergate's clone (no mark) and one a live run made (this process's mark)
    const unmarked = `tiergate_clone_${source.database}_old000`;
    const live = `tiergate_clone_${source.database}_live00`;
    await onServer(async (c) => {
      await c.query(`create database "${unmarked}"`);
      await c.query(`create database "${live}"`);
      const sql = await c.query<{ sql: string }>(`select format('comment on database %I is %L', $1::text, $2::text) as sql`, [live, `tiergate clone made by ${JSON.stringify(ownerMark())}`]);
      await c.query(sql.rows[0]!.sql);
    });
    try {
      const out = tmp('tiergate-snap-');
      const r = await rehearse(source, out, '--no-snapshot', '--keep');
      expect(r.code, said(r)).toBe(0);
      // (the test server is shared: another test file's rehearsal may find them first, and it is that one which drops them and says so)
      const dropped = /dropped (\d+) clone databases? that killed rehearsals left on the scratch server/.exec(r.stdout);
      if (dropped) expect(Number(dropped[1])).toBeLessThanOrEqual(2);
      else expect(said(r)).not.toMatch(/could not drop/);
      const keptName = decodeURIComponent(new URL(readEvidence(out).clone.location).pathname.slice(1));
      const now = await clonesOf(source.database);
      for (const name of left) expect(now).not.toContain(name);
      expect(now.sort()).toEqual([keptName, live, unmarked].sort());
      const comment = await onServer(async (c) => (await c.query<{ c: string }>(`select shobj_description(oid, 'pg_database') as c from pg_database where datname = $1`, [keptName])).rows[0]!.c);
      expect(comment).toMatch(/^tiergate clone kept \(rehearse --keep\), made by \{"pid":\d+,/);
      // the kept clone's maker is gone now: it stays all the same, and so do the other two
      const again = await rehearse(source, tmp('tiergate-snap-'), '--no-snapshot');
      expect(again.code, said(again)).toBe(0);
      // (what it may drop is another test file's killed runs' clones, on this shared server: not these)
      expect((await clonesOf(source.database)).sort()).toEqual([keptName, live, unmarked].sort());
    } finally {
      await dropDatabases(await clonesOf(source.database));
    }
  });

  it("(e3) the clones have the source's encoding and locale (SQL_ASCII, ICU de-DE), as the snapshot does", async () => {
    const sources = [
      { name: `${source.database}_ascii`, create: `encoding 'SQL_ASCII' lc_collate 'C' lc_ctype 'C'`, expect: { enc: 'SQL_ASCII', collate: 'C', provider: 'c', icu: null } },
      { name: `${source.database}_icu`, create: `encoding 'UTF8' locale_provider icu icu_locale 'de-DE' lc_collate 'C.UTF-8' lc_ctype 'C.UTF-8'`, expect: { enc: 'UTF8', collate: 'C.UTF-8', provider: 'i', icu: 'de-DE' } },
    ];
    const facts = (db: string) =>
      onServer(async (c) => (await c.query(`select pg_encoding_to_char(encoding) as enc, datcollate as collate, datlocprovider as provider, daticulocale as icu from pg_database where datname = $1`, [db])).rows[0]);
    for (const src of sources) {
      await onServer((c) => c.query(`create database "${src.name}" template template0 ${src.create}`));
      try {
        await onServer((c) => c.query('create schema gate; create table gate.approval (id serial primary key, valid boolean not null default true)'), src.name);
        const url = new URL(source.url);
        url.pathname = `/${src.name}`;
        const out = tmp('tiergate-snap-');
        const r = await runCli(['rehearse', '--plan', ENGINE_PLAN, '--source', url.toString(), '--scratch', serverUrl('postgres'), '--out', out, '--no-snapshot', '--keep'], { timeoutMs: 240_000 });
        expect(r.code, said(r)).toBe(0);
        const kept = decodeURIComponent(new URL(readEvidence(out).clone.location).pathname.slice(1));
        try {
          expect(await facts(kept), src.name).toEqual(src.expect);
        } finally {
          await dropDatabases([kept]);
        }
        const snap = tmp('tiergate-snap-');
        const s2 = await runCli(['rehearse', '--plan', ENGINE_PLAN, '--source', url.toString(), '--scratch', serverUrl('postgres'), '--out', snap], { timeoutMs: 240_000 });
        expect(s2.code, said(s2)).toBe(0);
        const snapshot = readEvidence(snap).clone.snapshot!.database;
        try {
          expect(await facts(snapshot), src.name).toEqual(src.expect);
          // (its ready copy, which the server makes after the rehearsal, before both are dropped)
          await readyCopyOf(snapshot);
        } finally {
          await dropDatabases([snapshot, snapshot.replace(/^tiergate_snap_/, 'tiergate_spare_')]);
        }
      } finally {
        await dropDatabases([src.name]);
      }
    }
  });

  it("(e4) a scratch user whose statement_timeout ends the copy: exit 2 saying so, not 'needs CREATEDB'", async () => {
    const role = `${source.database}_st`;
    await onServer((c) => c.query(`create role "${role}" login createdb; alter role "${role}" set statement_timeout = '5ms'`));
    try {
      const scratch = new URL(serverUrl('postgres'));
      scratch.username = role;
      const r = await runCli(['rehearse', '--plan', ENGINE_PLAN, '--source', source.url, '--scratch', scratch.toString(), '--out', tmp('tiergate-snap-'), '--no-snapshot'], { timeoutMs: 240_000 });
      expect(r.code, said(r)).toBe(2);
      // the copy ends on it; on a busy machine a statement before it may, even the session's first (each says so)
      expect(r.stderr).toMatch(
        /(cannot create the clone database |the scratch server \(|cannot connect to ).*canceling statement due to statement timeout.*(the copy|a statement|its first statement) ran out of the statement_timeout the (scratch )?server sets for (its|this) user.*ALTER ROLE … SET statement_timeout = /,
      );
      expect(r.stderr).not.toMatch(/needs CREATEDB/);
    } finally {
      await dropDatabases(await clonesOf(source.database));
      await onServer((c) => c.query(`drop role if exists "${role}"`));
    }
  });

  it('(f) two rehearsals of one source at once both pass: one dumps, the other reuses; one snapshot is left', async () => {
    const outs = [tmp('tiergate-snap-'), tmp('tiergate-snap-')];
    const runs = await Promise.all(outs.map((out) => rehearse(source, out, '--reuse-snapshot', '1h')));
    for (const r of runs) expect(r.code, said(r)).toBe(0);
    const evidence = outs.map(readEvidence);
    expect(evidence.map((e) => e.clone.snapshot?.reused).sort()).toEqual([false, true]);
    expect(new Set(evidence.map((e) => e.clone.snapshot?.database)).size).toBe(1);
    const left = await snapshots(`tiergate_snap_${source.database}_`);
    expect(left.map((s) => s.name)).toEqual([evidence[0]!.clone.snapshot!.database]);
    expect(await clonesOf(source.database)).toEqual([]);
  });

  it('(f2) a --fresh rehearsal leaves the snapshot another rehearsal is running on, saying so; the next one drops it', async () => {
    const prefix = `tiergate_snap_${source.database}_`;
    const [before] = (await snapshots(prefix)).map((s) => s.name);
    expect(before).toBeDefined();
    // a rehearsal reusing it, held on its clone as tier 2 begins
    const out = tmp('tiergate-snap-');
    const held = startCli(['rehearse', '--plan', ENGINE_PLAN, '--source', source.url, '--scratch', serverUrl('postgres'), '--out', out, '--reuse-snapshot', '1h'], {
      env: { TIERGATE_TEST_HOOK: 'tier-begin:2' },
      timeoutMs: 240_000,
    });
    try {
      await held.waitFor(/tiergate-test-hook tier-begin:2/);
      const fresh = await rehearse(source, tmp('tiergate-snap-'), '--fresh');
      expect(fresh.code, said(fresh)).toBe(0);
      expect(said(fresh)).toContain(`left the older snapshot ${before}`);
      expect((await snapshots(prefix)).map((s) => s.name)).toContain(before);
    } finally {
      held.kill('SIGUSR2');
    }
    // (tier 2 begins again in stage B and C: each pause let go once it is announced — a SIGUSR2 nobody waits for would end the process)
    let released = 1;
    const letGo = setInterval(() => {
      const paused = held.output().stderr.split('tiergate-test-hook tier-begin:2').length - 1;
      for (; released < paused; released++) held.kill('SIGUSR2');
    }, 100);
    const r = await held.done.finally(() => clearInterval(letGo));
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(readEvidence(out).clone.snapshot).toMatchObject({ database: before, reused: true });
    // no rehearsal runs on it now: the next one drops it
    const next = await rehearse(source, tmp('tiergate-snap-'), '--reuse-snapshot', '1h');
    expect(next.code, said(next)).toBe(0);
    expect(said(next)).toContain(`dropped the older snapshot ${before}`);
    expect((await snapshots(prefix)).map((s) => s.name)).not.toContain(before);
  });
});

describe.runIf(testTargets().includes('postgres'))('rehearse: a snapshot that cannot be made', () => {
  it('leaves no incomplete snapshot and no clone when pg_dump fails, and says why', async () => {
    const source = await engineSource('snapfail');
    const role = `${source.database}_reader`;
    try {
      // a reader that may not read one of the source's tables: its pg_dump fails after the snapshot database exists
      await onServer((c) => c.query(`create role "${role}" login`));
      await onServer((c) => c.query('create table public.private_notes (id int)'), source.database);
      const url = new URL(source.url);
      url.username = role;
      const out = tmp('tiergate-snap-');
      const r = await runCli(['rehearse', '--plan', ENGINE_PLAN, '--source', url.toString(), '--scratch', serverUrl('postgres'), '--out', out], { timeoutMs: 240_000 });
      expect(r.code, said(r)).not.toBe(0);
      expect(r.stderr).toMatch(/pg_dump of .* failed/);
      expect(await snapshots(`tiergate_snap_${source.database}_`)).toEqual([]);
      expect(await clonesOf(source.database)).toEqual([]);
    } finally {
      await source.drop();
      await onServer((c) => c.query(`drop role if exists "${role}"`));
    }
  });
});

describe.runIf(testTargets().includes('postgres'))('rehearse: a clone that cannot be dropped', () => {
  it('the evidence is written all the same (the clones are dropped meanwhile), the clones left behind are named, exit 2', async () => {
    const source = await engineSource('snapdrop');
    const role = `${source.database}_scratch`;
    try {
      // a scratch user that owns what it creates, and nothing else
      await onServer((c) => c.query(`create role "${role}" login createdb`));
      const scratch = new URL(serverUrl('postgres'));
      scratch.username = role;
      const out = tmp('tiergate-snap-');
      // held at tier 1's commit (each clone's run), long enough for the clones to be taken over
      const run = startCli(['rehearse', '--plan', ENGINE_PLAN, '--source', source.url, '--scratch', scratch.toString(), '--out', out, '--no-snapshot'], {
        env: { TIERGATE_TEST_HOOK: 'tier-committed:1', TIERGATE_TEST_HOOK_WAIT_MS: '3000' },
        timeoutMs: 240_000,
      });
      try {
        await run.waitFor(/tiergate-test-hook tier-committed:1/, 'stderr');
        const clones = await clonesOf(source.database);
        expect(clones).toHaveLength(2);
        for (const clone of clones) {
          // (the scratch user keeps what it may do in it, creating schemas included: only dropping it is the owner's)
          await onServer((c) => c.query(`alter database "${clone}" owner to postgres; grant all on database "${clone}" to "${role}"`));
          await onServer((c) => c.query(`grant all on schema public to "${role}"`), clone);
        }
      } finally {
        run.kill('SIGUSR2');
      }
      const r = await run.done;
      expect(r.code, said(r)).toBe(2);
      expect(r.stderr).toMatch(/could not remove the clones .*tiergate_clone_.*must be owner of database.*: remove them by hand/);
      const e = readEvidence(out);
      expect(e.verdict.rehearsal, e.verdict.failures.join('; ')).toBe('PASS');
      expect(readFileSync(join(out, 'evidence.html'), 'utf8')).toContain('Rehearsal');
    } finally {
      await dropDatabases(await clonesOf(source.database));
      await source.drop();
      await onServer((c) => c.query(`drop role if exists "${role}"`));
    }
  });
});

describe('rehearse: the snapshot flags are usage errors where they mean nothing', () => {
  const cases: [string, string[], RegExp][] = [
    ['a PGlite source', ['--source', 'pglite:///nonexistent-dir', '--reuse-snapshot', '1h'], /--reuse-snapshot is for a PostgreSQL --source with --scratch.*a PGlite source is copied as a folder/],
    ['a --dump', ['--dump', 'nothing.sql', '--no-snapshot'], /--no-snapshot is for a PostgreSQL --source with --scratch.*a --dump is loaded as it is/],
    ['the sample', ['--fresh'], /--fresh is for a PostgreSQL --source with --scratch.*the embedded sample/],
    ['--reuse-snapshot with --fresh', ['--source', 'postgres://u@127.0.0.1:1/x', '--scratch', 'postgres://u@127.0.0.1:1/postgres', '--reuse-snapshot', '1h', '--fresh'], /--reuse-snapshot and --fresh contradict each other/],
    ['--no-snapshot with --reuse-snapshot', ['--source', 'postgres://u@127.0.0.1:1/x', '--scratch', 'postgres://u@127.0.0.1:1/postgres', '--reuse-snapshot', '1h', '--no-snapshot'], /--reuse-snapshot and --no-snapshot contradict each other/],
    ['an AGE that is not one', ['--source', 'postgres://u@127.0.0.1:1/x', '--scratch', 'postgres://u@127.0.0.1:1/postgres', '--reuse-snapshot', 'soon'], /--reuse-snapshot takes the oldest snapshot age to reuse, with its unit, such as 30m, 2h or 1d \(got 'soon'\)/],
    // a bare number once read as seconds
    ['an AGE without its unit', ['--source', 'postgres://u@127.0.0.1:1/x', '--scratch', 'postgres://u@127.0.0.1:1/postgres', '--reuse-snapshot', '2'], /--reuse-snapshot takes .*with its unit, such as 30m, 2h or 1d \(got '2'\)/],
  ];
  for (const [what, args, message] of cases) {
    it(`with ${what}: exit 2, naming the flag`, async () => {
      const r = await runCli(['rehearse', '--out', tmp('tiergate-snap-'), ...args]);
      expect(r.code, said(r)).toBe(2);
      expect(r.stderr).toMatch(message);
    });
  }
});

describe('snapshot names and the report line', () => {
  it('a snapshot name stays within 63 bytes and tells sources of one name apart', () => {
    const long = snapshotPrefix('My-Very_Long Database.Name_with_more_than_twenty', '7715110575457019317');
    expect(long).toMatch(/^tiergate_snap_my_very_long_databas_[0-9a-f]{8}$/);
    expect(Buffer.byteLength(`${long}_20261204t170000`)).toBeLessThanOrEqual(63);
    expect(snapshotPrefix('directus', 'db1.example:5432')).not.toBe(snapshotPrefix('directus', 'db2.example:5432'));
    expect(snapshotPrefix('directus', '7715110575457019317')).toBe(snapshotPrefix('directus', '7715110575457019317'));
  });

  it('says which snapshot, when it was taken, and how old it was when reused', () => {
    const e = {
      createdAt: '2026-12-04T17:12:30.000Z',
      clone: { snapshot: { database: 'tiergate_snap_directus_1a2b3c4d_20261204t170000', takenAt: '2026-12-04T17:00:00.000Z', reused: true } },
    } as unknown as Evidence;
    expect(snapshotLine(e)).toBe('clone: copy of snapshot tiergate_snap_directus_1a2b3c4d_20261204t170000 taken 2026-12-04T17:00:00.000Z (reused, 12 min old)');
    expect(snapshotLine({ ...e, clone: {} } as unknown as Evidence)).toBeNull();
  });
});
