/**
 * The gate counts only accountable approvals (issue: the gate counts only
 * accountable approvals): one definition — the engine's gate query, the gate
 * lock followed by it, every gated file's guard and the approvals listing
 * agree on every forged and valid approval — and every forgery leaves the
 * gate closed: apply exits NO-GO and no data tier writes. `tiergate approve`
 * records only an approval that counts.
 */
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withDb } from '../src/db/open-db.js';
import type { Db } from '../src/db/port.js';
import { apply } from '../src/engine/apply.js';
import { readApprovals } from '../src/engine/gate.js';
import { loadPlan } from '../src/plan/load-plan.js';
import { bundledPlanDir } from '../src/plan/plan.js';
import { applyTier, plan, sampleDatabase, scalar, tierSql, type Sample } from './fixtures/axis-harness/harness.js';
import { runCli } from './helpers/cli.js';
import { testTargets } from './helpers/targets.js';

const ADMIN = '0b9a8e3c-3f2a-4c6e-9a51-6d2f1c7e8a01';
const AUTHOR = '0b9a8e3c-3f2a-4c6e-9a51-6d2f1c7e8a02'; // Elif Demir, editor: the proposal's author
const EDITOR = '0b9a8e3c-3f2a-4c6e-9a51-6d2f1c7e8a03';
const SUSPENDED = '0b9a8e3c-3f2a-4c6e-9a51-6d2f1c7e8a04';
const STEWARD = '0b9a8e3c-3f2a-4c6e-9a51-6d2f1c7e8a05'; // an editor holding the approver policy (tier 8) on her own
const APPROVER_POLICY = 'e5a8b6f2-1c3d-4a7e-9f00-7e5700a0e001';

/** Approvals as Directus would store them (the append-only rule is lifted while a test arranges them). */
function approval(approver: string | null, sha = 'p.payload_sha256'): string {
  return `insert into os_proposal_approvals (proposal, approver, payload_sha256) select p.id, ${approver === null ? 'null' : `'${approver}'`}, ${sha} from os_proposals p where p.key = 'OS-AXIS'`;
}

interface Case {
  name: string;
  /** SQL that arranges the approvals (and users) of the case */
  arrange: string;
  ospa: number;
}

const CASES: Case[] = [
  { name: 'no approval', arrange: '', ospa: 0 },
  { name: 'approver NULL', arrange: approval(null), ospa: 0 },
  { name: 'an unknown uuid (no foreign key to stop it)', arrange: `alter table os_proposal_approvals drop constraint if exists os_proposal_approvals_approver_fkey; ${approval('00000000-0000-4000-8000-00000000dead')}`, ospa: 0 },
  { name: 'a non-admin user', arrange: approval(EDITOR), ospa: 0 },
  {
    name: 'a suspended admin',
    arrange: `insert into directus_users (id, first_name, last_name, email, status, role) values ('${SUSPENDED}', 'Sam', 'Suspended', 'sam.suspended@northwind.example', 'suspended', '7b1f4b0e-6c2d-4d8a-9f3e-1a2b3c4d5e01'); ${approval(SUSPENDED)}`,
    ospa: 0,
  },
  { name: "the proposal's author, an admin too", arrange: `insert into directus_access (id, role, "user", policy) values ('9e0c1a2b-0000-4000-8000-0000000000a2', null, '${AUTHOR}', '3c9e2f10-8d4b-4a6c-b1e7-5f0a9d2c8e11'); ${approval(AUTHOR)}`, ospa: 0 },
  { name: 'an approval of an older payload', arrange: approval(ADMIN, `encode(sha256('an older payload'), 'hex')`), ospa: 0 },
  { name: 'an admin who was later suspended', arrange: `${approval(ADMIN)}; update directus_users set status = 'suspended' where id = '${ADMIN}'`, ospa: 0 },
  { name: 'an admin whose role lost the admin policy', arrange: `${approval(ADMIN)}; update directus_policies set admin_access = false where id = '3c9e2f10-8d4b-4a6c-b1e7-5f0a9d2c8e11'`, ospa: 0 },
  { name: 'an active admin who is not the author', arrange: approval(ADMIN), ospa: 1 },
  { name: 'the same admin twice (each approver counts once)', arrange: `${approval(ADMIN)}; ${approval(ADMIN)}`, ospa: 1 },
  { name: 'a holder of the approver policy, and an admin', arrange: `${approval(STEWARD)}; ${approval(ADMIN)}`, ospa: 2 },
];

describe.each(testTargets())('accountable approvals (%s)', (kind) => {
  let s: Sample;
  let db: Db;
  beforeAll(async () => {
    s = await sampleDatabase(kind);
    db = s.db;
    for (const id of [1, 5, 6, 7, 8]) await applyTier(db, id);
    await db.exec(`insert into directus_users (id, first_name, last_name, email, status, role) values
        ('${STEWARD}', 'Stella', 'Steward', 'stella.steward@northwind.example', 'active', '7b1f4b0e-6c2d-4d8a-9f3e-1a2b3c4d5e02');
      insert into directus_access (id, role, "user", policy) values ('9e0c1a2b-0000-4000-8000-0000000000a5', null, '${STEWARD}', '${APPROVER_POLICY}')`);
  }, 180_000);
  afterAll(async () => s?.close());

  /** Runs `fn` with the case's approvals in a transaction that rolls back. */
  async function inCase<T>(c: Case, fn: (tx: Db) => Promise<T>): Promise<T> {
    let out: T | undefined;
    await db
      .transaction(async () => {
        await db.exec('alter table os_proposal_approvals disable trigger os_proposal_approvals_append_only');
        if (c.arrange) await db.exec(c.arrange);
        out = await fn(db);
        throw new Error('roll back');
      })
      .catch((e: unknown) => {
        if ((e as Error).message !== 'roll back') throw e;
      });
    return out as T;
  }

  /** Whether a gated file's guard lets it through (it raises TG001 when the gate is closed). */
  async function guardOpens(tx: Db, tier: number): Promise<boolean> {
    await tx.exec('savepoint guard');
    try {
      await tx.exec(tierSql(tier).split('$guard$;')[0] + '$guard$;');
      return true;
    } catch (e) {
      expect((e as { sqlstate?: string }).sqlstate).toBe('TG001');
      return false;
    } finally {
      await tx.exec('rollback to savepoint guard');
    }
  }

  it.each(CASES)('$name: gate, lock + gate, each guard and the approvals listing agree (ospa $ospa)', async (c) => {
    const seen = await inCase(c, async (tx) => {
      const gate = await scalar(tx, `select (${plan.gate!.sql})::int as v`);
      await tx.query(plan.gate!.lock!);
      const locked = await scalar(tx, `select (${plan.gate!.sql})::int as v`);
      const guards = [];
      for (const tier of [2, 3, 4]) guards.push(await guardOpens(tx, tier));
      const listed = (await readApprovals(tx, 'ospa', plan.gate!.approvals!)).filter((a) => a.counts).length;
      return { gate, locked, guards, listed };
    });
    expect(seen).toEqual({ gate: c.ospa, locked: c.ospa, guards: [c.ospa >= 1, c.ospa >= 1, c.ospa >= 1], listed: c.ospa });
  });

  it('the approvals listing says why each forged approval does not count', async () => {
    const whys = await inCase(
      { name: 'all', arrange: CASES.filter((c) => c.ospa === 0 && !c.arrange.includes('update ') && !c.arrange.includes('drop constraint')).map((c) => c.arrange).filter(Boolean).join('; '), ospa: 0 },
      async (tx) => (await readApprovals(tx, 'ospa', plan.gate!.approvals!)).map((a) => a.why),
    );
    expect(whys).toEqual([
      'no approver (NULL)',
      'the approver holds neither admin access nor the approver policy',
      'the approver is suspended',
      "the proposal's author cannot approve it",
      'it approves an older payload',
    ]);
  });

  it('approvals are append-only: no UPDATE, DELETE or TRUNCATE, for anyone', async () => {
    await db.exec(approval(ADMIN));
    for (const sql of ['update os_proposal_approvals set payload_sha256 = payload_sha256', 'delete from os_proposal_approvals', 'truncate os_proposal_approvals cascade']) {
      await expect(db.exec(sql)).rejects.toMatchObject({
        sqlstate: '42501',
        message: expect.stringMatching(/^os_proposal_approvals is append-only: (UPDATE|DELETE|TRUNCATE) refused \(an approval is withdrawn by approving a new payload or by suspending the approver\)$/),
      });
    }
    // nor by DDL: a column the gate reads cannot be dropped or retyped (Directus's "delete field" is a DROP COLUMN)
    for (const sql of [
      'alter table os_proposal_approvals drop column payload_sha256',
      'alter table os_proposal_approvals drop column approver',
      'alter table os_proposal_approvals alter column payload_sha256 type text',
      'alter table os_proposals drop column payload',
      'alter table os_proposals drop column payload_sha256',
      // the author: dropped, the gate could not tell the author from another approver
      'alter table os_proposals drop column user_created',
    ]) {
      await expect(db.exec(sql), sql).rejects.toMatchObject({ sqlstate: expect.stringMatching(/^(2BP01|0A000)$/), message: expect.stringMatching(/because other objects depend on it|used by a view/) });
    }
    expect(await scalar(db, `select count(*)::int as v from axis_audit.v_approval where approves_current_payload and payload_matches_its_sha256`)).toBeGreaterThan(0);
    expect(await scalar(db, `select o.via as v from axis_audit.approval_origin o order by o.approval desc limit 1`)).toBe('directus');
  });
});

describe.each(testTargets())('forged approvals leave the gate closed: apply is NO-GO and no data tier writes (%s)', (kind) => {
  it.each(CASES.filter((c) => c.ospa === 0 && c.arrange))('$name', async (c) => {
    const s = await sampleDatabase(kind);
    try {
      await s.db.exec(c.arrange);
      const r = await apply(s.db, plan);
      expect(r.outcome).toBe('no-go');
      expect(r.tiers.filter((t) => [2, 3, 4].includes(t.id)).map((t) => [t.id, t.status])).toEqual([[2, 'Blocked'], [3, 'Blocked'], [4, 'Blocked']]);
      expect(await scalar(s.db, 'select count(*)::int as v from axis.ownership')).toBe(0);
    } finally {
      await s.close();
    }
  });

  it('two approvals by one approver when the gate needs two', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'tiergate-plan-')), 'plan');
    cpSync(bundledPlanDir(), dir, { recursive: true });
    writeFileSync(join(dir, 'tiergate.yaml'), readFileSync(join(dir, 'tiergate.yaml'), 'utf8').replace('  min: 1\n', '  min: 2\n'));
    const two = loadPlan(dir);
    expect(two.gate?.min).toBe(2);
    const s = await sampleDatabase(kind);
    try {
      await s.db.exec(`${approval(ADMIN)}; ${approval(ADMIN)}`);
      const r = await apply(s.db, two);
      expect(r.outcome).toBe('no-go');
      expect(r.gate).toMatchObject({ value: 1, min: 2, open: false });
      expect(r.gate?.approvals?.map((a) => a.why)).toEqual([null, 'approved already: each approver counts once']);
    } finally {
      await s.close();
    }
  });
});

describe.each(testTargets())('tiergate approve (%s)', (kind) => {
  it('records only an approval that counts; says why not otherwise (exit 2, nothing recorded); status explains the gate', async () => {
    const s = await sampleDatabase(kind);
    // the CLI opens the target itself (a PGlite directory is open in one process at a time)
    await s.db.close();
    const sql = <T>(fn: (db: Db) => Promise<T>) => withDb(s.t.url, fn);
    try {
      const refused = async (email: string, why: RegExp) => {
        const r = await runCli(['approve', '--yes', '--target', s.t.url, '--as', email]);
        expect(r.code, r.stderr).toBe(2);
        expect(r.stderr).toMatch(why);
      };
      await refused('elif.demir@northwind.example', /cannot approve 'OS-AXIS' .*: the proposal's author cannot approve it; nothing was recorded/);
      await refused('marco.bianchi@northwind.example', /the approver holds neither admin access nor the approver policy; nothing was recorded/);
      // which of the two is missing: the user (the proposal is there), or the proposal
      await refused('nobody@northwind.example', /nothing to approve: no Directus user with email 'nobody@northwind.example' on .* \(the proposal 'OS-AXIS' is there\): check the email; nothing was recorded/);
      const other = await runCli(['approve', '--yes', '--target', s.t.url, '--as', 'admin@northwind.example', '--proposal', 'OS-OTHER']);
      expect(other.code, other.stderr).toBe(2);
      expect(other.stderr).toMatch(/nothing to approve: no Directus user with email 'admin@northwind\.example', or no proposal 'OS-OTHER' on /);
      expect(await sql((db) => scalar(db, `select count(*)::int as v from os_proposal_approvals a join os_proposals p on p.id = a.proposal where p.key = 'OS-AXIS'`))).toBe(0);
      const closed = await runCli(['status', '--target', s.t.url]);
      expect(closed.stdout).toMatch(/gate ospa = 0 \(needs ≥ 1\): CLOSED/);
      expect(closed.stdout).toMatch(/no approvals yet/);
      expect(closed.stdout).toMatch(/approve it, in Directus .* or with 'tiergate approve --target URL --as EMAIL'/);

      await sql(async (db) => {
        for (const id of [1, 5, 6, 7, 8]) await applyTier(db, id);
      });
      // a gate.sql naming a column that is not there reads no value: an approval would open nothing, and is not recorded
      const typo = join(mkdtempSync(join(tmpdir(), 'tiergate-plan-')), 'plan');
      cpSync(bundledPlanDir(), typo, { recursive: true });
      const yaml = join(typo, 'tiergate.yaml');
      const text = readFileSync(yaml, 'utf8');
      expect(text).toContain("join directus_users u on u.id = a.approver and u.status = 'active'\n");
      writeFileSync(yaml, text.replace("join directus_users u on u.id = a.approver and u.status = 'active'\n", "join directus_users u on u.id = a.approver and u.statuss = 'active'\n"));
      const unread = await runCli(['approve', '--yes', '--plan', typo, '--target', s.t.url, '--as', 'admin@northwind.example']);
      expect(unread.code, unread.stdout + unread.stderr).toBe(2);
      expect(unread.stderr).toMatch(/cannot approve on .*: the gate ospa reads no value here \(its query fails here: column u\.statuss does not exist \(SQLSTATE 42703\)\), so no approval can open it; nothing was recorded/);
      const ok = await runCli(['approve', '--yes', '--target', s.t.url, '--as', 'admin@northwind.example']);
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stdout).toMatch(/gate ospa = 1 \(needs ≥ 1\): OPEN/);
      expect(await sql((db) => scalar(db, `select o.via as v from axis_audit.approval_origin o order by o.approval desc limit 1`))).toBe('tiergate');
      await refused('admin@northwind.example', /approved already: each approver counts once/);
      await sql((db) => db.exec(`update directus_users set status = 'suspended' where email = 'admin@northwind.example'`));
      const later = await runCli(['status', '--target', s.t.url, '--json']);
      const st = JSON.parse(later.stdout) as { gate: { value: number; approvals: { approver: string; counts: boolean; why: string }[] } };
      expect(st.gate.value).toBe(0);
      expect(st.gate.approvals).toEqual([expect.objectContaining({ approver: 'admin@northwind.example', counts: false, why: 'the approver is suspended' })]);
      // a column the gate reads, dropped behind tier 7's view (CASCADE): the gate reads nothing, and status does not say "no approvals yet"
      await sql((db) => db.exec('alter table os_proposal_approvals drop column payload_sha256 cascade'));
      const broken = await runCli(['status', '--target', s.t.url]);
      expect(broken.stdout).toMatch(/gate ospa = n\/a \(needs ≥ 1\): CLOSED/);
      expect(broken.stdout).toMatch(/the gate reads no value, so no approval can open it: its query fails here: column a\.payload_sha256 does not exist/);
      expect(broken.stdout).not.toMatch(/no approvals yet/);
    } finally {
      await s.close();
    }
  });
});
