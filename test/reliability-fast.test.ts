import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSample } from '../fixtures/directus-sample/generate.js';
import { openDb } from '../src/db/open-db.js';
import { loadPlan } from '../src/plan/load-plan.js';
import { markClone } from '../src/rehearsal/clone.js';
import { freshDatabase, onServer, testTargets, type TestDatabase } from './helpers/targets.js';
import { badInputCorpus, checkBadInput, writeCorpusFiles } from './reliability/corpus.js';
import { fingerprintOf, runCli, STACK_LINE, startCli } from './reliability/harness.js';
import { copyPlan } from './reliability/plan-copy.js';
import { findLeaks, unparseableUrls, withPassword } from './reliability/secret-scenarios.js';
import { TcpProxy } from './reliability/tcp-proxy.js';
import pg from 'pg';

/**
 * The fast part of the reliability campaign (the whole of it:
 * `npm run test:reliability`, test/reliability/): the secrets canary on
 * failure paths, a sample of the bad-input corpus, and a failing
 * post-condition proven by fingerprint — on the suite's PostgreSQL server.
 */
const CANARY = 'Fast-canary#Q7/pw!x';

describe.runIf(testTargets().includes('postgres'))('reliability, fast subset', () => {
  let target: TestDatabase;
  let corpusTarget: TestDatabase;
  let work: string;
  beforeAll(async () => {
    target = await sampleDatabase('fast');
    corpusTarget = await sampleDatabase('fastcorpus');
    work = mkdtempSync(join(tmpdir(), 'tiergate-fast-'));
    writeCorpusFiles(work);
  });
  afterAll(async () => {
    await target?.drop();
    await corpusTarget?.drop();
    rmSync(work, { recursive: true, force: true });
  });

  it('secrets: the canary password never appears on failure paths', async () => {
    const url = withPassword(target.url, 'postgres', CANARY);
    const copy = copyPlan();
    copy.writeFile('tiers/05_scanner.sql', 'create table axis.boom (id int);\nselect 1/0;\n');
    try {
      const runs = [
        // tier 5 fails (tier 1 applies); then, with the bundled plan and the gate closed, 5 and 6 apply and the gated tiers are blocked (exit 3)
        { name: 'failing tier, --json', code: 1, run: () => runCli(['apply', '--yes', '--json', '--plan', copy.dir, '--target', url]) },
        { name: 'closed gate', code: 3, run: () => runCli(['apply', '--yes', '--target', url]) },
        { name: 'unknown database', code: 2, run: () => runCli(['status', '--target', url.replace(`/${target.database}?`, '/no_such_db?')]) },
        { name: 'unknown user, --json', code: 2, run: () => runCli(['status', '--json', '--target', withPassword(target.url, 'no_such_user', CANARY)]) },
        ...unparseableUrls(CANARY).map((u) => ({ name: `unusable URL ${u.slice(0, 12)}`, code: 2, run: () => runCli(['status', '--target', u]) })),
      ];
      for (const r of runs) {
        const out = await r.run();
        expect(out.code, `${r.name}: ${out.stderr}`).toBe(r.code);
        expect(STACK_LINE.test(out.stdout + out.stderr), r.name).toBe(false);
        expect(findLeaks(CANARY, [{ where: `${r.name} stdout`, text: out.stdout }, { where: `${r.name} stderr`, text: out.stderr }])).toEqual([]);
      }
      const db = await openDb(target.url);
      try {
        const rows = await db.query<{ t: string }>(`select string_agg(t::text, ' ') as t from (select l::text as t from tiergate.ledger l union all select a::text from tiergate.attempt a) t`);
        expect(rows.rows[0]!.t).toMatch(/division by zero/);
        expect(findLeaks(CANARY, [{ where: 'ledger and attempts', text: rows.rows[0]!.t }])).toEqual([]);
      } finally {
        await db.close();
      }
    } finally {
      copy.remove();
    }
  });

  it('bad input: a sample of the corpus gives exit 2 (1 for SQL), its place, no stack trace, no change', async () => {
    const corpus = badInputCorpus();
    const must = ['sql: COMMIT inside the file', 'plan: tier file with a NUL byte', 'plan: tiergate.yaml a scalar', 'url: mysql URL', 'option: --source without --scratch', 'option: --source empty'];
    const sample = corpus.filter((c, i) => i % 8 === 0 || must.includes(c.name));
    expect(sample.length).toBeGreaterThanOrEqual(20);
    const failures: string[] = [];
    for (const c of sample) {
      const problems = await checkBadInput(c, { target: corpusTarget.url, dir: work, run: (args) => runCli(args, { timeoutMs: 60_000 }), fingerprint: () => fingerprintOf(corpusTarget.url, 'database', loadPlan()) });
      if (problems.length) failures.push(`${c.name}: ${problems.join('; ')}`);
    }
    expect(failures).toEqual([]);
  });

  it('post-condition failure: nothing committed, proven by fingerprint', async () => {
    const copy = copyPlan();
    const y = copy.yaml();
    copy.tier(y, 1).post = ['axis_tables = -1'];
    copy.writeYaml(y);
    const db = await sampleDatabase('fastpost');
    try {
      const before = await fingerprintOf(db.url, 'database', loadPlan());
      const r = await runCli(['apply', '--yes', '--plan', copy.dir, '--target', db.url]);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/post-condition 'axis_tables = -1' does not hold/);
      expect(r.stdout + r.stderr).toMatch(/tiergate\.yaml:\d+/);
      expect(await fingerprintOf(db.url, 'database', loadPlan())).toBe(before);
    } finally {
      copy.remove();
      await db.drop();
    }
  });
});

describe.runIf(testTargets().includes('postgres'))('reliability, fast subset: faults', () => {
  it("a COMMIT whose answer is lost is reported from the ledger, not as rolled back", async () => {
    const proxy = new TcpProxy(`${process.env.TIERGATE_TEST_PG_SOCKET}/.s.PGSQL.${process.env.TIERGATE_TEST_PG_PORT}`);
    await proxy.start();
    const db = await sampleDatabase('fastcommit');
    try {
      const cli = startCli(['apply', '--yes', '--target', proxy.url(db.database)], { env: { TIERGATE_TEST_HOOK: 'tier-before-commit:1', TIERGATE_TEST_HOOK_WAIT_MS: '300' } });
      await cli.waitFor(/tiergate-test-hook tier-before-commit:1/);
      void proxy.cutAtNextCommit();
      const r = await cli.done;
      expect(r.code, r.stdout + r.stderr).toBe(1);
      expect(r.stdout).toMatch(/^\s*1\s{2}Base axis substrate\s+structure\s+Applied\s.*committed: the connection broke while the COMMIT was answered/m);
      expect(r.stdout).toMatch(/the connection to .* was lost/);
      const ledger = await onServer((c) => c.query<{ tier_id: number }>(`select tier_id from tiergate.ledger where status = 'applied'`), db.database);
      expect(ledger.rows.map((x) => x.tier_id)).toEqual([1]);
    } finally {
      await proxy.stop();
      await db.drop();
    }
  });

  it("a lock held on tiergate's own ledger ends the run within lock_timeout, naming the holder", async () => {
    const copy = copyPlan();
    const y = copy.yaml();
    y.defaults = { lock_timeout: '1s', statement_timeout: '1min' };
    copy.writeYaml(y);
    const db = await sampleDatabase('fastlock');
    const holder = new pg.Client({ connectionString: db.url, application_name: 'fast-blocker' });
    await holder.connect();
    try {
      await holder.query(`create schema if not exists tiergate; create table if not exists tiergate.ledger (id int); create table if not exists tiergate.attempt (id int)`);
      await holder.query('begin; lock table tiergate.ledger in access exclusive mode');
      // the run ends by itself (no wall-clock bound here: the message says it was the lock timeout)
      const r = await runCli(['apply', '--yes', '--plan', copy.dir, '--target', db.url]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/reading the ledger of plan 'axis-governance'.*lock timeout.*blocked by pid \d+ 'fast-blocker'.*nothing was changed/);
    } finally {
      await holder.end();
      copy.remove();
      await db.drop();
    }
  });
});

/** A database on the suite's server holding the sample at scale 1, marked as a tiergate clone of directus (so any name passes the plan's identity check). */
async function sampleDatabase(name: string): Promise<TestDatabase> {
  const target = await freshDatabase('postgres', name);
  const db = await openDb(target.url);
  try {
    await db.transaction((tx) => writeSample(tx, { scale: 1 }));
    await markClone(db, 'directus');
  } finally {
    await db.close();
  }
  return target;
}
