import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CANARY_PASSWORD, CANARY_USER, onRel, relUrl, runCli, serverLog, STACK_LINE, TEMPLATES, trialDb, type CliRun, type TrialDb } from './harness.js';
import { copyPlan } from './plan-copy.js';
import { Tally } from './results.js';
import { findLeaks, unparseableUrls, type LeakScan } from './secret-scenarios.js';

/**
 * Secrets (guarantee 9): the campaign's cluster has a role `canary` that logs
 * in with a password (scram-sha-256). Its password — and, for the wrong
 * password case, a second canary — must never appear in anything tiergate
 * prints or writes: stdout and stderr (text and --json), the ledger and
 * attempt rows, the rehearsal's evidence (JSON, Markdown, HTML), the
 * server's log. On success and on every failure path.
 */
const WRONG_PASSWORD = 'Wr0ng-canary#Zx81/q';

interface Scenario {
  name: string;
  /** the password that must not leak in this scenario */
  secret?: string;
  expectCode: number;
  run(db: TrialDb, out: string): Promise<CliRun>;
}

const canary = (db: string, password = CANARY_PASSWORD) => relUrl(db, CANARY_USER, password);

const SCENARIOS: Scenario[] = [
  { name: 'apply succeeds', expectCode: 0, run: (db) => runCli(['apply', '--yes', '--target', canary(db.name)]) },
  { name: 'apply succeeds, --json', expectCode: 0, run: (db) => runCli(['apply', '--yes', '--json', '--target', canary(db.name)]) },
  { name: 'status --json', expectCode: 0, run: (db) => runCli(['status', '--json', '--target', canary(db.name)]) },
  { name: 'verify fails (nothing applied)', expectCode: 1, run: (db) => runCli(['verify', '--target', canary(db.name)]) },
  {
    name: 'rollback after apply',
    expectCode: 0,
    run: async (db) => {
      await runCli(['apply', '--yes', '--target', canary(db.name)]);
      return runCli(['rollback', '--yes', '--json', '--target', canary(db.name)]);
    },
  },
  { name: 'wrong password', secret: WRONG_PASSWORD, expectCode: 2, run: (db) => runCli(['apply', '--yes', '--target', canary(db.name, WRONG_PASSWORD)]) },
  { name: 'wrong password, --json', secret: WRONG_PASSWORD, expectCode: 2, run: (db) => runCli(['status', '--json', '--target', canary(db.name, WRONG_PASSWORD)]) },
  { name: 'unknown database', expectCode: 2, run: () => runCli(['apply', '--yes', '--target', canary('no_such_database')]) },
  {
    name: 'closed gate (NO-GO)',
    expectCode: 3,
    run: async (db) => {
      await onRel((c) => c.query('delete from os_proposal_approvals'), db.name);
      return runCli(['apply', '--yes', '--target', canary(db.name)]);
    },
  },
  {
    name: 'failing tier, --json',
    expectCode: 1,
    run: async (db) => {
      const p = copyPlan();
      try {
        p.writeFile('tiers/05_scanner.sql', `create table axis.boom (id int);\nselect current_setting('application_name')::int;\n`);
        return await runCli(['apply', '--yes', '--json', '--plan', p.dir, '--target', canary(db.name)]);
      } finally {
        p.remove();
      }
    },
  },
  {
    name: 'lock held by another run (exit 4)',
    expectCode: 4,
    run: async (db) => {
      const first = runCli(['apply', '--yes', '--target', canary(db.name)], { env: { TIERGATE_TEST_HOOK: 'tier-begin:1', TIERGATE_TEST_HOOK_WAIT_MS: '8000' } });
      await new Promise((r) => setTimeout(r, 4000));
      const second = await runCli(['apply', '--yes', '--target', canary(db.name)]);
      const one = await first;
      return { ...second, stdout: second.stdout + one.stdout, stderr: second.stderr + one.stderr };
    },
  },
  {
    // (node-postgres 8 reads the file too, but prints a DeprecationWarning each time: tiergate reads it itself)
    name: 'password in a pgpass file (PGPASSFILE), apply',
    expectCode: 0,
    run: async (db, out) => {
      const file = join(out, 'pgpass');
      writeFileSync(file, `*:*:*:${CANARY_USER}:${CANARY_PASSWORD}\n`, { mode: 0o600 });
      try {
        const r = await runCli(['apply', '--yes', '--target', relUrl(db.name, CANARY_USER)], { env: { PGPASSFILE: file } });
        if (/Warning/.test(r.stderr)) throw new Error(`a warning on stderr: ${r.stderr}`);
        return r;
      } finally {
        rmSync(file);
      }
    },
  },
  {
    name: 'password in PGPASSWORD',
    expectCode: 0,
    run: (db) => runCli(['status', '--target', relUrl(db.name, CANARY_USER)], { env: { PGPASSWORD: CANARY_PASSWORD } }),
  },
  {
    // (no password anywhere: node-postgres's own words, "SASL: … client password must be a string", once came with advice about the host and port)
    name: 'no password given',
    expectCode: 2,
    run: async (db) => {
      const r = await runCli(['status', '--target', relUrl(db.name, CANARY_USER)], { env: { PGPASSFILE: '/nonexistent' } });
      if (!/the server asks for a password and none was given; put it in the URL .*PGPASSWORD.*pgpass/.test(r.stderr)) throw new Error(`no password given: ${r.stderr}`);
      return r;
    },
  },
  {
    name: 'wrong password in PGPASSWORD',
    secret: WRONG_PASSWORD,
    expectCode: 2,
    run: (db) => runCli(['status', '--target', relUrl(db.name, CANARY_USER)], { env: { PGPASSWORD: WRONG_PASSWORD } }),
  },
  ...unparseableUrls(CANARY_PASSWORD).map(
    (url, i): Scenario => ({ name: `an unusable URL #${i + 1}`, expectCode: 2, run: () => runCli(i % 2 ? ['apply', '--yes', '--target', url] : ['status', '--target', url]) }),
  ),
  {
    name: 'rehearse --source --scratch, --json, evidence written',
    expectCode: 0,
    run: (db, out) => runCli(['rehearse', '--source', canary(db.name), '--scratch', canary('postgres'), '--out', out, '--json'], { timeoutMs: 300_000 }),
  },
  {
    name: 'rehearse with an unreachable scratch server',
    expectCode: 2,
    run: (db, out) => runCli(['rehearse', '--source', canary(db.name), '--scratch', canary('postgres').replace(/host=[^&]+/, 'host=%2Fnonexistent'), '--out', out]),
  },
];

describe('secrets canary', () => {
  it('the password never appears in output, ledger, attempts, evidence or the server log', async () => {
    const tally = new Tally('secrets: canary password never leaks');
    const logFrom = readFileSync(serverLog(), 'utf8').length;
    let scanned = 0;
    for (const s of SCENARIOS) {
      const db = await trialDb(TEMPLATES.s1, 'secret');
      const out = mkdtempSync(join(tmpdir(), 'tiergate-secret-'));
      const problems: string[] = [];
      try {
        const r = await s.run(db, out);
        if (r.code !== s.expectCode) problems.push(`exit ${r.code}, expected ${s.expectCode}: ${(r.stderr || r.stdout).trim().split('\n').slice(-2).join(' / ')}`);
        if (STACK_LINE.test(r.stdout + r.stderr)) problems.push('a stack trace was printed');
        const scans: LeakScan[] = [
          { where: 'stdout', text: r.stdout },
          { where: 'stderr', text: r.stderr },
          ...(await bookkeeping(db)),
          ...readdirSync(out).map((f) => ({ where: `evidence ${f}`, text: readFileSync(join(out, f), 'utf8') })),
        ];
        scanned += scans.reduce((n, x) => n + x.text.length, 0);
        problems.push(...findLeaks(s.secret ?? CANARY_PASSWORD, scans));
      } finally {
        rmSync(out, { recursive: true, force: true });
        await db.drop();
      }
      tally.add(s.name, problems);
    }
    // the server log of the whole run: a password tiergate sent in a query (an application_name, a SET) would be there
    const log = readFileSync(serverLog(), 'utf8').slice(logFrom);
    tally.add('server log', [...findLeaks(CANARY_PASSWORD, [{ where: 'server log', text: log }]), ...findLeaks(WRONG_PASSWORD, [{ where: 'server log', text: log }])]);
    tally.record(`${SCENARIOS.length} scenarios (success, wrong password, unknown database, closed gate, failing tier, lock held, PGPASSWORD, unusable URLs, rehearse) + the server log; ${Math.round(scanned / 1024)} KiB searched`);
    expect(tally.reasons).toEqual([]);
  });
});

/** tiergate's bookkeeping in the target, as text. */
async function bookkeeping(db: TrialDb): Promise<LeakScan[]> {
  return onRel(async (c) => {
    const out: LeakScan[] = [];
    for (const table of ['tiergate.ledger', 'tiergate.attempt', 'tiergate.clone_mark']) {
      const exists = await c.query<{ ok: boolean }>('select to_regclass($1) is not null as ok', [table]);
      if (!exists.rows[0]!.ok) continue;
      const r = await c.query<{ t: string }>(`select t::text as t from ${table} t`);
      out.push({ where: table, text: r.rows.map((x) => x.t).join('\n') });
    }
    return out;
  }, db.name);
}
