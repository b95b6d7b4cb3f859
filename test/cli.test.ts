import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { withDb } from '../src/db/open-db.js';
import { runCli, TSX } from './helpers/cli.js';
import { startCli } from './helpers/cli-live.js';
import { ENGINE_PLAN, prepareGate } from './helpers/engine-fixture.js';
import { freshDatabase, serverUrl, testTargets, type TestDatabase } from './helpers/targets.js';

describe('tiergate CLI without a database', () => {
  it('--help lists every command and exits 0', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['rehearse', 'apply', 'rollback', 'verify', 'status', 'plan', 'lint', 'sample', 'report']) expect(r.stdout).toContain(c);
  });

  it('a reader that goes away (tiergate plan | head -1) ends nothing in error: no EPIPE stack, exit 0', async () => {
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, ['--import', TSX, join(import.meta.dirname, '..', 'src', 'cli', 'bin.ts'), 'plan', '--plan', ENGINE_PLAN], { stdio: ['ignore', 'pipe', 'pipe'] });
    // closed before the first line is written: every write meets a closed pipe
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });

  it('options that need --evidence are usage errors without it (exit 2), before any connection', async () => {
    for (const opt of [['--max-evidence-age', '1h'], ['--accept-differences']]) {
      const r = await runCli(['apply', '--yes', '--target', 'postgres://nobody@127.0.0.1:1/directus', ...opt]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`${opt[0]} needs --evidence FILE`));
    }
  });

  it('rehearse --json --require-go of the embedded sample: one object whose ok is false with exit 3 (NO-GO), naming the source kind', async () => {
    const out = mkdtempSync(join(tmpdir(), 'tiergate-json-'));
    const r = await runCli(['rehearse', '--json', '--require-go', '--out', out], { timeoutMs: 300_000 });
    expect(r.code, r.stderr).toBe(3);
    const result = JSON.parse(r.stdout) as { ok: boolean; verdict: { rehearsal: string; execution: string }; source: { kind: string }; createdAt: string };
    expect(result).toMatchObject({ ok: false, verdict: { rehearsal: 'PASS', execution: 'NO-GO' }, source: { kind: 'pglite-sample' } });
    expect(Date.parse(result.createdAt)).toBeGreaterThan(0);
    // its progress on stderr (stdout is the one object): a long rehearsal is not silent to whoever watches it
    expect(r.stderr).toMatch(/clone 1 of 2 ready in/);
  });

  it("rehearse --json of an approved source: verdict.next names the evidence where it was written, from the working directory", async () => {
    const root = mkdtempSync(join(tmpdir(), 'tiergate-json-next-'));
    const dir = join(root, 'db');
    expect((await runCli(['sample', '--pglite', dir])).code).toBe(0);
    expect((await runCli(['approve', '--yes', '--target', `pglite:${dir}`, '--as', 'admin@northwind.example'])).code).toBe(0);
    const r = await runCli(['rehearse', '--json', '--source', `pglite:${dir}`, '--out', join(root, 'ev')], { cwd: root, timeoutMs: 300_000 });
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as { verdict: { execution: string; next: string }; evidence: string };
    expect(result.verdict.execution).toBe('GO');
    expect(result.verdict.next).toBe('apply it: tiergate apply --target <the source> --evidence ev/evidence.json');
    expect(result.evidence).toBe(join(root, 'ev', 'evidence.json'));
  }, 300_000);

  it('plan prints the ordered tiers with kind, gate, requires and sha256', async () => {
    const r = await runCli(['plan', '--plan', ENGINE_PLAN, '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { tiers: { id: number; kind: string; gated: boolean; sha256: string }[] };
    expect(out.tiers.map((t) => t.id)).toEqual([0, 1, 2, 3, 90, 99]);
    expect(out.tiers[2]).toMatchObject({ kind: 'data', gated: true });
    expect(out.tiers[2]!.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('a bad plan lists all its problems with paths and exits 2 without connecting', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tiergate-bad-'));
    mkdirSync(join(dir, 'tiers'));
    writeFileSync(join(dir, 'tiers', 'a.sql'), 'select 1;');
    writeFileSync(
      join(dir, 'tiergate.yaml'),
      [
        'plan: bad',
        'colour: blue',
        'tiers:',
        '  - { id: 1, name: A, kind: structure, file: tiers/a.sql }',
        '  - { id: 2, name: B, kind: data, file: tiers/missing.sql, requires: [7] }',
        '  - { id: 3, name: C, kind: structure, file: tiers/a.sql, post: ["nope = 0"] }',
      ].join('\n'),
    );
    // a closed port: connecting would fail with a connection error, not a plan error
    const r = await runCli(['apply', '--yes', '--plan', dir, '--target', 'postgres://u:canary-pw@127.0.0.1:1/x']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown key 'colour'/);
    expect(r.stderr).toMatch(/tiers\[1\]\.requires\[0\]: tier 7 does not exist/);
    expect(r.stderr).toMatch(/tiers\[1\]\.file: file 'tiers\/missing.sql' does not exist/);
    expect(r.stderr).toMatch(/tiers\[2\]\.post\[0\]: metric 'nope' is not defined/);
    expect(r.stderr).not.toMatch(/connect/);
    expect(r.stdout + r.stderr).not.toContain('canary-pw');
  });

  it('a bad URL is a usage error (exit 2), with the password redacted', async () => {
    const r = await runCli(['status', '--plan', ENGINE_PLAN, '--target', 'mysql://root:canary-pw@db/x']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/not a target URL tiergate knows/);
    expect(r.stderr).not.toContain('canary-pw');
  });
});

describe.each(testTargets())('tiergate CLI on %s', (kind) => {
  let target: TestDatabase;
  beforeEach(async () => {
    target = await freshDatabase(kind, 'postgres');
    await withDb(target.url, (db) => prepareGate(db, false));
  });
  afterEach(async () => target.drop());

  // a PGlite target has no socket: the form is PostgreSQL's
  it.skipIf(kind !== 'postgres')('takes the libpq socket form of a URL (user-info, no host, ?host=DIR), password redacted', async () => {
    const u = new URL(target.url);
    const socketForm = `postgres://${u.username}:canary-pw@/${u.pathname.slice(1)}?host=${u.searchParams.get('host')}&port=${u.port}`;
    const r = await runCli(['status', '--plan', ENGINE_PLAN, '--target', socketForm]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/gate approvals = 0/);
    expect(r.stdout + r.stderr).not.toContain('canary-pw');
  });

  it('sample --url into a database that is not empty: exit 2 before anything is written', async () => {
    const r = await runCli(['sample', '--url', target.url]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/is not empty \(gate\.approval(, .*)?\): 'tiergate sample' writes into an empty database only/);
    await withDb(target.url, async (db) => expect((await db.query(`select 1 from pg_class where relname = 'directus_collections'`)).rows).toEqual([]));
  });

  it("approve on a database without the bundled plan's proposal tables: exit 2, saying what is not there, nothing recorded", async () => {
    const r = await runCli(['approve', '--target', target.url, '--plan-database', target.database, '--as', 'someone@example.com', '--yes', '--json']);
    expect(r.code, r.stderr).toBe(2);
    const out = JSON.parse(r.stdout) as { ok: boolean; error: { kind: string; message: string } };
    expect(out.error.kind).toBe('target');
    expect(out.error.message).toMatch(/^cannot approve on .*: relation "(os_proposal_approvals|os_proposals|directus_users)" does not exist \(SQLSTATE 42P01\): the gate ospa of plan 'axis-governance' reads what is not there; nothing was recorded/);
  });

  it('apply with the gate closed exits 3 and says NO-GO; status shows the gate and metrics; verify exits 1', async () => {
    const r = await runCli(['apply', '--yes', '--plan', ENGINE_PLAN, '--target', target.url]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/NO-GO \(approvals=0\)/);
    expect(r.stdout).toMatch(/Blocked/);
    const s = await runCli(['status', '--plan', ENGINE_PLAN, '--target', target.url, '--json']);
    expect(s.code).toBe(0);
    const st = JSON.parse(s.stdout) as { gate: { value: number }; metrics: Record<string, number>; tiers: { id: number; state: string }[] };
    expect(st.gate.value).toBe(0);
    expect(st.metrics).toMatchObject({ items: 0, app_tables: 1 });
    expect(st.tiers.find((t) => t.id === 2)?.state).toBe('pending');
    const v = await runCli(['verify', '--plan', ENGINE_PLAN, '--target', target.url]);
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/verify: expected 3 items/);
    expect(v.stdout).toMatch(/tiers\/90_verify.sql:5: verify: expected 3 items/);
  });

  it("status says why the gate reads nothing when a relation its query reads is not there", async () => {
    await withDb(target.url, (db) => db.exec('drop schema gate cascade'));
    const s = await runCli(['status', '--plan', ENGINE_PLAN, '--target', target.url]);
    expect(s.code, s.stderr).toBe(0);
    expect(s.stdout).toMatch(/gate approvals = n\/a \(needs ≥ 1\): CLOSED/);
    expect(s.stdout).toMatch(/the gate reads no value, so no approval can open it: its query fails here: relation "gate\.approval" does not exist/);
  });

  it('two applies at once: one applies, the other exits 4 without touching anything', async () => {
    await withDb(target.url, (db) => db.exec('insert into gate.approval (valid) values (true)'));
    // the first holds the lock (PostgreSQL: the plan's advisory lock; PGlite: the directory), held at a hook inside tier 1 until SIGUSR2
    const first = startCli(['apply', '--yes', '--plan', ENGINE_PLAN, '--target', target.url], { env: { TIERGATE_TEST_HOOK: 'tier-begin:1' } });
    try {
      await first.waitFor(/tiergate-test-hook tier-begin:1/);
      const second = await runCli(['apply', '--yes', '--plan', ENGINE_PLAN, '--target', target.url]);
      expect(second.code).toBe(4);
      expect(second.stderr).toMatch(new RegExp(`held by another run \\(${kind === 'postgres' ? 'backend pid \\d+' : `pid ${first.pid}`}`));
      expect(second.stdout).not.toMatch(/Applied/);
      expect(first.exited()).toBe(false);
    } finally {
      first.kill('SIGUSR2');
    }
    const one = await first.done;
    expect(one.stderr).toBe('tiergate-test-hook tier-begin:1\n');
    expect(one.code).toBe(0);
    const ledger = await withDb(target.url, (db) => db.query<{ tier_id: number }>('select tier_id from tiergate.ledger order by id'));
    expect(ledger.rows.map((r) => r.tier_id)).toEqual([1, 2, 3]);
  });
});

describe.runIf(testTargets().includes('postgres'))('secrets on a real server', () => {
  it('a wrong password never appears in the output', async () => {
    const u = new URL(serverUrl('postgres'));
    u.username = 'nosuchuser';
    u.password = 'canary-Secret-42';
    const r = await runCli(['status', '--plan', ENGINE_PLAN, '--target', u.toString()]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cannot connect/);
    expect(r.stdout + r.stderr).not.toContain('canary-Secret-42');
    // a URL whose scheme is left out or mistyped: no parser sees a password there, the error hides it all the same
    for (const [flag, url] of [
      ['--target', 'app:canary-Secret-43@127.0.0.1:5432/directus'],
      ['--target', '//app:canary-Secret-44@127.0.0.1:5432/directus'],
      ['--source', 'postgres:/app:canary-Secret-45@127.0.0.1:5432/directus'],
    ] as const) {
      const command = flag === '--source' ? ['rehearse', '--scratch', serverUrl('postgres')] : ['status'];
      for (const json of [[], ['--json']]) {
        const bad = await runCli([...command, '--plan', ENGINE_PLAN, flag, url, ...json]);
        expect(bad.code, url).toBe(2);
        expect(bad.stdout + bad.stderr).toMatch(/app:\*\*\*@127\.0\.0\.1/);
        expect(bad.stdout + bad.stderr).not.toMatch(/canary-Secret-4\d/);
      }
    }
    // a --scratch that is no server's: refused before the rehearsal says it begins
    for (const scratch of ['mysql://root:canary-Secret-46@db/x', 'pglite:./scratch']) {
      const bad = await runCli(['rehearse', '--plan', ENGINE_PLAN, '--source', serverUrl('postgres'), '--scratch', scratch]);
      expect(bad.code, bad.stderr).toBe(2);
      expect(bad.stdout).not.toMatch(/^rehearse /m);
      expect(bad.stderr).toMatch(/mysql:\/\/root:\*\*\*@db\/x' is not a target URL|--scratch pglite:\.\/scratch: give a postgres:\/\/ URL/);
      expect(bad.stdout + bad.stderr).not.toContain('canary-Secret-46');
    }
  });

  it("a setting the URL's options ask for that the server refuses: said so, not 'check that the server is running'", async () => {
    const u = new URL(serverUrl('postgres'));
    u.searchParams.set('options', '-c statement_timeout=soon');
    const r = await runCli(['status', '--plan', ENGINE_PLAN, '--target', u.toString()]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cannot connect to .*statement_timeout.*check the settings the URL's options \(-c name=value\) or PGOPTIONS ask for/);
  });
});
