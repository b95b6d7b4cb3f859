/**
 * Approving is an accountable act in a real Directus 11 (issue: the gate
 * counts only accountable approvals): on a throwaway Directus 11.17.4 booted
 * on the test server, over the real fixture, the plan's tiers 7 and 8 make
 * os_proposal_approvals an approval collection — an administrator signed in
 * through the REST API approves and the gate opens; a non-admin gets 403;
 * the approver field a request sends is ignored; an approval cannot be
 * edited or deleted, not even by an administrator; `apply` then runs the data
 * tiers and the ledger records the approver.
 *
 * Directus is installed outside the repository by scripts/directus/install.ts
 * (.ci/run does it before npm test). Without it the suite says so; with
 * CI=true that is a failure.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withDb } from '../src/db/open-db.js';
import { directusHome } from '../scripts/directus/install.js';
import { startDirectus, type DirectusServer } from '../scripts/directus/server.js';
import { scalar } from './fixtures/axis-harness/harness.js';
import { runCli } from './helpers/cli.js';
import { freshDatabase, serverUrl, testTargets, type TestDatabase } from './helpers/targets.js';

const installed = existsSync(join(directusHome(), 'node_modules', '.bin', 'directus'));
if (!installed) {
  const msg = `Directus 11 is not installed (${directusHome()}): run 'node --import tsx scripts/directus/install.ts' to test approvals against a real Directus server`;
  if (process.env.CI === 'true') throw new Error(`${msg}. With CI=true this is a failure.`);
  console.warn(`\n${'!'.repeat(100)}\n${msg}\n${'!'.repeat(100)}\n`);
}
const FIXTURE = join(import.meta.dirname, 'fixtures', 'directus-real', 'directus-11.sql');

describe.runIf(installed && testTargets().includes('postgres'))('approvals in a real Directus 11 server', () => {
  let turn: TestDatabase;
  let d: DirectusServer;
  beforeAll(async () => {
    // the database name 'directus' is the plan's: take the server's turn for it, then let Directus create it
    turn = await freshDatabase('postgres', 'directus', { exactName: true });
    await withDb(serverUrl('postgres'), (db) => db.exec('drop database directus with (force)'));
    d = await startDirectus({ serverUrl: serverUrl('postgres'), database: 'directus', initSql: FIXTURE });
  }, 300_000);
  afterAll(async () => {
    await d?.stop();
    await turn?.drop();
  }, 120_000);

  it('a signed-in admin approves through the API and the gate opens; a non-admin gets 403; apply runs the data tiers and records the approver', async () => {
    const target = d.database;
    // the structure tiers and the approval registration: no approval needed for them
    const structure = await runCli(['apply', '--yes', '--structure-only', '--target', target], { timeoutMs: 300_000 });
    expect(structure.code, structure.stdout + structure.stderr).toBe(0);
    expect(structure.stdout).toMatch(/ 8 {2}Approvals in Directus +data +Applied/);
    const admin = d.api(await d.login('admin@example.com', 'tiergate-admin'));
    expect((await admin.post('/utils/cache/clear?system')).status).toBe(200);

    const proposal = (await admin.get('/items/os_proposals', { 'filter[key][_eq]': 'OS-AXIS', fields: 'id,payload_sha256,user_created' })).body.data[0];
    expect(proposal.payload_sha256).toMatch(/^[0-9a-f]{64}$/);

    // a non-admin (no approver policy) may not approve
    const editor = d.api(await d.login('editor@example.com', 'tiergate-editor'));
    const denied = await editor.post('/items/os_proposal_approvals', { proposal: proposal.id, payload_sha256: proposal.payload_sha256 });
    expect(denied.status).toBe(403);

    // the approver signs in and approves; the approver a request names is ignored: Directus fills it
    const approverToken = await d.login('approver@example.com', 'tiergate-approver');
    const me = (await d.api(approverToken).get('/users/me', { fields: 'id' })).body.data.id as string;
    const made = await d.api(approverToken).post('/items/os_proposal_approvals', { proposal: proposal.id, payload_sha256: proposal.payload_sha256, approver: proposal.user_created });
    expect(made.status, JSON.stringify(made.body)).toBe(200);
    expect(made.body.data.approver).toBe(me);
    await withDb(target, async (db) =>
      expect(await scalar(db, 'select via as v from axis_audit.approval_origin where approval = $1', [made.body.data.id])).toBe('directus'),
    );

    // append-only, for administrators too
    expect((await admin.patch(`/items/os_proposal_approvals/${made.body.data.id}`, { payload_sha256: '0'.repeat(64) })).status).toBe(500);
    const refused = await admin.delete(`/items/os_proposal_approvals/${made.body.data.id}`);
    expect(refused.status).toBe(500);
    expect(JSON.stringify(refused.body)).toMatch(/append-only: DELETE refused \(an approval is withdrawn by approving a new payload or by suspending the approver\)/);
    // nor by deleting a field in Directus (a DROP COLUMN): what every approval approved stays
    const dropField = await admin.delete('/fields/os_proposal_approvals/payload_sha256');
    expect(dropField.status, JSON.stringify(dropField.body)).toBeGreaterThanOrEqual(400);
    expect(JSON.stringify(dropField.body)).toMatch(/axis_audit\.v_approval|depend/);
    // nor the proposal's author: dropped, the author's own approval would count
    const dropAuthor = await admin.delete('/fields/os_proposals/user_created');
    expect(dropAuthor.status, JSON.stringify(dropAuthor.body)).toBeGreaterThanOrEqual(400);
    await withDb(target, async (db) =>
      expect(
        await scalar(db, `select count(*)::int as v from information_schema.columns where (table_name, column_name) in (('os_proposal_approvals', 'payload_sha256'), ('os_proposals', 'user_created'))`),
      ).toBe(2),
    );

    const status = await runCli(['status', '--target', target]);
    expect(status.stdout).toMatch(/gate ospa = 1 \(needs ≥ 1\): OPEN/);
    expect(status.stdout).toMatch(/✓ approver@example\.com approved payload/);

    const applied = await runCli(['apply', '--yes', '--target', target], { timeoutMs: 300_000 });
    expect(applied.code, applied.stdout + applied.stderr).toBe(0);
    await withDb(target, async (db) => {
      expect(await scalar(db, 'select count(*)::int as v from axis.ownership')).toBeGreaterThan(0);
      const gate = await db.query<{ gate: { approvals: { approver: string; counts: boolean }[] } }>('select gate from tiergate.ledger where tier_id = 2');
      expect(gate.rows[0]?.gate.approvals).toEqual([expect.objectContaining({ approver: 'approver@example.com', counts: true })]);
    });
    // Directus still serves its collections after the rollout
    expect((await admin.get('/items/books', { limit: 1 })).status).toBe(200);
  });
});
