/**
 * Checks, on a live Directus 11, how an existing DB-only table becomes an
 * approvals collection by SQL only (rows in directus_collections,
 * directus_fields, directus_relations, directus_permissions; no Directus
 * API for that part), and prints PASS/FAIL per point (see APPROVALS.md):
 *
 *   1  `approver` (special user-created) is filled from the signed-in user;
 *      a value sent for it is refused (403, field not allowed) or overwritten
 *   2  only the named policy ("Proposal approvers") and admins may create
 *   3  append-only: no update/delete through the API for the policy; admins
 *      bypass permissions, so a PostgreSQL trigger refuses UPDATE/DELETE
 *   4  payload_sha256 is supplied by the client (GET the proposal, POST it)
 *   5  rows inserted by SQL are seen only after the system cache is cleared
 *      (POST /utils/cache/clear?system) or a restart; CACHE_SCHEMA=false
 *      covers the schema but not the permissions cache
 *
 *   node --import tsx scripts/directus/check-approvals.ts [--transcript FILE] [--server URL]
 *
 * Exit code 0 when every point passes.
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { DERIVED_SQL } from './build-fixture.js';
import { attachAccess, createPermissions, createPolicy, createRole, createUser, ok, withDirectus, type Api, type ApiResponse, type DirectusServer } from './server.js';

/** Production already has these two tables (DB-only): the same DDL as the fixture. */
export const TABLES_SQL = `
CREATE TABLE os_proposals (id serial PRIMARY KEY, key varchar(64) UNIQUE NOT NULL, title varchar(255), payload jsonb NOT NULL, payload_sha256 char(64) NOT NULL, user_created uuid REFERENCES directus_users(id), date_created timestamptz DEFAULT now());
CREATE TABLE os_proposal_approvals (id serial PRIMARY KEY, proposal integer NOT NULL REFERENCES os_proposals(id), approver uuid REFERENCES directus_users(id), payload_sha256 char(64) NOT NULL, date_created timestamptz DEFAULT now());`;

/** The policy, when it does not exist yet (by name; a fixed id so that a plan can name it). */
export const POLICY_SQL = `
INSERT INTO directus_policies (id, name, icon, description, admin_access, app_access, enforce_tfa)
SELECT '0f5e2c8a-7d1b-4e53-9a61-4c2b8d7e9f10', 'Proposal approvers', 'how_to_reg',
       'May approve governance proposals: create rows in os_proposal_approvals, read proposals', false, true, false
WHERE NOT EXISTS (SELECT 1 FROM directus_policies WHERE name = 'Proposal approvers');`;

/** Part A: register the tables (collections, fields, relations) and the policy's permissions. */
export const REGISTER_SQL = `
-- collections (optional for the API, needed for the Data Studio's navigation; see "anchors" in APPROVALS.md)
INSERT INTO directus_collections (collection, icon, note, display_template, hidden, singleton, accountability)
VALUES ('os_proposals', 'gavel', 'Governance proposals: written by SQL (tiergate), read-only here', '{{key}}: {{title}}', false, false, 'all'),
       ('os_proposal_approvals', 'how_to_reg', 'Approvals of governance proposals: append-only', '{{proposal.key}} · {{approver.email}}', false, false, 'all');

-- fields: only the columns that need Directus metadata
INSERT INTO directus_fields (collection, field, special, interface, options, display, display_options, readonly, hidden, sort, width, required, note, validation, validation_message)
VALUES
  ('os_proposal_approvals', 'id', NULL, 'input', NULL, NULL, NULL, true, true, 1, 'full', false, NULL, NULL, NULL),
  ('os_proposal_approvals', 'proposal', 'm2o', 'select-dropdown-m2o', '{"template":"{{key}}: {{title}}"}', 'related-values', '{"template":"{{key}}"}', false, false, 2, 'full', true, 'The proposal you approve', NULL, NULL),
  ('os_proposal_approvals', 'payload_sha256', NULL, 'input', '{"font":"monospace"}', NULL, NULL, false, false, 3, 'full', true,
   'payload_sha256 of the proposal as you reviewed it (copy it from the proposal)',
   '{"_and":[{"payload_sha256":{"_regex":"^[0-9a-f]{64}$"}}]}', '64 lowercase hex digits'),
  ('os_proposal_approvals', 'approver', 'user-created', 'select-dropdown-m2o', '{"template":"{{first_name}} {{last_name}} <{{email}}>"}', 'user', NULL, true, false, 4, 'half', false, 'Set by Directus to the signed-in user', NULL, NULL),
  ('os_proposal_approvals', 'date_created', 'date-created', 'datetime', NULL, 'datetime', '{"relative":true}', true, false, 5, 'half', false, NULL, NULL, NULL),
  ('os_proposals', 'payload', 'cast-json', 'input-code', '{"language":"JSON"}', NULL, NULL, true, false, 4, 'full', false, NULL, NULL, NULL),
  ('os_proposals', 'payload_sha256', NULL, 'input', '{"font":"monospace"}', NULL, NULL, true, false, 5, 'full', false, 'sha256 of payload::text, by PostgreSQL', NULL, NULL),
  ('os_proposals', 'user_created', 'user-created', 'select-dropdown-m2o', NULL, 'user', NULL, true, false, 6, 'half', false, NULL, NULL, NULL),
  ('os_proposals', 'date_created', 'date-created', 'datetime', NULL, 'datetime', '{"relative":true}', true, false, 7, 'half', false, NULL, NULL, NULL);

-- relations: M2O rows for the existing foreign keys (display only; the specials work without them)
INSERT INTO directus_relations (many_collection, many_field, one_collection, one_field, one_deselect_action)
VALUES ('os_proposal_approvals', 'proposal', 'os_proposals', NULL, 'nullify'),
       ('os_proposal_approvals', 'approver', 'directus_users', NULL, 'nullify'),
       ('os_proposals', 'user_created', 'directus_users', NULL, 'nullify');

-- permissions of the named policy: create (two fields only) and read; no update, no delete
INSERT INTO directus_permissions (collection, action, permissions, validation, presets, fields, policy)
SELECT c, a, '{}', '{}', NULL, f, p.id
FROM directus_policies p,
     (VALUES ('os_proposal_approvals', 'create', 'proposal,payload_sha256'),
             ('os_proposal_approvals', 'read',   '*'),
             ('os_proposals',          'read',   'id,key,title,payload,payload_sha256,user_created,date_created')) AS v(c, a, f)
WHERE p.name = 'Proposal approvers';`;

/** Part B: append-only in the database itself (admins bypass Directus permissions). */
export const APPEND_ONLY_SQL = `
CREATE FUNCTION os_proposal_approvals_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'os_proposal_approvals is append-only: % refused', TG_OP
    USING ERRCODE = 'insufficient_privilege', HINT = 'an approval is withdrawn by approving a new payload, never by editing a row';
END $$;
CREATE TRIGGER os_proposal_approvals_append_only BEFORE UPDATE OR DELETE ON os_proposal_approvals
  FOR EACH ROW EXECUTE FUNCTION os_proposal_approvals_append_only();
CREATE TRIGGER os_proposal_approvals_no_truncate BEFORE TRUNCATE ON os_proposal_approvals
  FOR EACH STATEMENT EXECUTE FUNCTION os_proposal_approvals_append_only();`;

/** The gate, as the design defines it (distinct accountable approvers of the current payload, author excluded). */
export const OSPA_SQL = `
SELECT count(DISTINCT a.approver)::int AS ospa
FROM os_proposals p
JOIN os_proposal_approvals a ON a.proposal = p.id AND a.payload_sha256 = p.payload_sha256
JOIN directus_users u ON u.id = a.approver AND u.status = 'active'
WHERE p.key = 'OS-AXIS'
  AND a.approver IS DISTINCT FROM p.user_created
  AND EXISTS (SELECT 1 FROM directus_access x JOIN directus_policies pol ON pol.id = x.policy
              WHERE (x."user" = u.id OR x.role = u.role) AND (pol.admin_access OR pol.name = 'Proposal approvers'))`;

interface Step {
  as: string;
  method: string;
  path: string;
  body?: unknown;
  status: number;
  response: unknown;
}

export async function checkApprovals(options: { transcript?: string; serverUrl?: string; log?: (s: string) => void } = {}): Promise<boolean> {
  const log = options.log ?? ((s: string) => process.stderr.write(`[check-approvals] ${s}\n`));
  const results: { point: string; name: string; pass: boolean; detail: string }[] = [];
  const steps: Step[] = [];
  const sqlLog: string[] = [];
  const check = (point: string, name: string, pass: boolean, detail = '') => {
    results.push({ point, name, pass, detail });
    process.stdout.write(`${pass ? 'PASS' : 'FAIL'}  ${point.padEnd(4)} ${name}${detail ? `  (${detail})` : ''}\n`);
  };
  const t0 = Date.now();

  return await withDirectus({ serverUrl: options.serverUrl, log }, async (d: DirectusServer) => {
    log(`directus ${d.install.version} at ${d.url} (bootstrap ${d.timings.bootstrap} ms, start ${d.timings.start} ms)`);
    let db: pg.Client = await d.sql();
    const sql = async (text: string, params: unknown[] = []) => {
      sqlLog.push(text.trim());
      return (await db.query(text, params)).rows;
    };
    const tokens: Record<string, string> = {};
    const as = (who: string): Api => d.api(tokens[who]);
    const call = async (who: string, method: 'get' | 'post' | 'patch' | 'delete', path: string, body?: unknown): Promise<ApiResponse> => {
      const api = who === 'anonymous' ? d.api() : as(who);
      const res = method === 'get' ? await api.get(path) : await api[method](path, body);
      steps.push({ as: who, method: method.toUpperCase(), path, ...(body === undefined ? {} : { body }), status: res.status, response: res.body });
      return res;
    };
    const errCode = (res: ApiResponse) => (res.body as { errors?: { extensions?: { code?: string } }[] } | null)?.errors?.[0]?.extensions?.code ?? '';
    const row = async (id: number) => (await sql('SELECT id, proposal, approver, payload_sha256 FROM os_proposal_approvals WHERE id = $1', [id]))[0] as { id: number; approver: string | null; payload_sha256: string } | undefined;
    const created = (res: ApiResponse) => (res.body as { data?: { id: number } }).data?.id ?? -1;

    // ---- setup: the tables as production has them (DB-only), users and the policy (an admin's acts, through the API)
    await sql(TABLES_SQL);
    const adminToken = await d.login(d.admin.email, d.admin.password);
    tokens.admin = adminToken;
    const admin = d.api(adminToken);
    const adminRole = ok<{ id: string }[]>(await admin.get('/roles', { 'filter[name][_eq]': 'Administrator' }), 'admin role')[0]!.id;
    const editorRole = (await createRole(admin, { name: 'Editor', icon: 'edit_note' })).id as string;
    const editorPolicy = (await createPolicy(admin, { name: 'Editor', icon: 'edit_note', admin_access: false, app_access: true })).id as string;
    await attachAccess(admin, { role: editorRole, policy: editorPolicy });
    await createPermissions(admin, { policy: editorPolicy, collection: 'directus_users', action: 'read', fields: ['*'], permissions: {} });
    const approversPolicy = (await createPolicy(admin, { name: 'Proposal approvers', icon: 'how_to_reg', admin_access: false, app_access: true })).id as string;
    const ids: Record<string, string> = { admin: ok<{ id: string }>(await admin.get('/users/me'), 'me').id };
    const people: [string, string, string, string][] = [
      ['approver', 'approver@example.com', adminRole, 'active'],
      ['steward', 'steward@example.com', editorRole, 'active'],
      ['editor', 'editor@example.com', editorRole, 'active'],
      ['author', 'author@example.com', editorRole, 'active'],
      ['suspended', 'suspended@example.com', adminRole, 'suspended'],
    ];
    for (const [key, email, role, status] of people) ids[key] = (await createUser(admin, { email, password: `tiergate-${key}`, role, status, first_name: key })).id;
    await attachAccess(admin, { user: ids.steward!, policy: approversPolicy });
    for (const key of ['approver', 'steward', 'editor', 'author']) tokens[key] = await d.login(`${key}@example.com`, `tiergate-${key}`);
    await sql(
      `INSERT INTO os_proposals (key, title, payload, payload_sha256, user_created)
       VALUES ('OS-AXIS', 'Axis governance', $1::jsonb, encode(sha256(convert_to($1::jsonb::text, 'UTF8')), 'hex'), $2)`,
      [JSON.stringify({ axes: [{ key: 'kg-domain-x', label: 'Knowledge-graph domain' }], topics: [], anchors: [] }), ids.author],
    );
    const proposal = (await sql(`SELECT id, payload_sha256 FROM os_proposals WHERE key = 'OS-AXIS'`))[0] as { id: number; payload_sha256: string };
    const good = { proposal: proposal.id, payload_sha256: proposal.payload_sha256 };

    // warm the caches as a running production server would have them
    const warm1 = await call('steward', 'post', '/items/os_proposal_approvals', good);
    const warm2 = await call('admin', 'get', '/fields/os_proposal_approvals/approver');
    log(`before the SQL: steward POST ${warm1.status}, approver field meta ${JSON.stringify((warm2.body as { data?: { meta?: unknown } }).data?.meta ?? null)}`);

    // ---- point 5: SQL-inserted metadata and the caches
    await sql(POLICY_SQL); // nothing to do here: the policy exists (created above); kept to prove the statement is harmless
    await sql(REGISTER_SQL);
    const s1 = await call('steward', 'post', '/items/os_proposal_approvals', good);
    const a1 = await call('admin', 'post', '/items/os_proposal_approvals', { ...good, approver: ids.editor });
    const a1row = await row(created(a1));
    check('5a', 'without a cache clear, SQL-inserted permissions are not seen (steward still 403)', s1.status === 403, `HTTP ${s1.status}`);
    check('5b', 'without a cache clear, the SQL-inserted special is not applied (approver kept as sent)', a1.status === 200 && a1row?.approver === ids.editor, `HTTP ${a1.status}, approver ${a1row?.approver === ids.editor ? 'kept as sent' : String(a1row?.approver)}`);
    const c0 = await call('admin', 'post', '/utils/cache/clear');
    const s2 = await call('steward', 'post', '/items/os_proposal_approvals', good);
    check('5c', 'POST /utils/cache/clear (without ?system) is not enough', c0.status === 200 && s2.status === 403, `clear ${c0.status}, steward ${s2.status}`);
    const c1 = await call('admin', 'post', '/utils/cache/clear?system');
    const s3 = await call('steward', 'post', '/items/os_proposal_approvals', good);
    const s3row = await row(created(s3));
    check('5d', 'POST /utils/cache/clear?system makes Directus see the rows', c1.status === 200 && s3.status === 200 && s3row?.approver === ids.steward, `clear ${c1.status}, steward ${s3.status}, approver ${s3row?.approver === ids.steward ? 'steward' : String(s3row?.approver)}`);
    const e0 = await call('editor', 'post', '/utils/cache/clear?system');
    check('5e', 'only admins may clear the cache', e0.status === 403, `editor ${e0.status}`);
    await sql('DELETE FROM os_proposal_approvals WHERE id = $1', [created(a1)]); // the stale row (no trigger yet)

    // ---- point 1: approver from the signed-in user
    const p1a = await call('steward', 'post', '/items/os_proposal_approvals', { ...good, approver: ids.author });
    check('1a', 'a non-admin sending approver is refused (field not in the create permission)', p1a.status === 403, `HTTP ${p1a.status} ${errCode(p1a)}`);
    const p1b = await call('steward', 'post', '/items/os_proposal_approvals', good);
    const p1brow = await row(created(p1b));
    check('1b', 'approver is filled with the signed-in user', p1b.status === 200 && p1brow?.approver === ids.steward, `HTTP ${p1b.status}`);
    const p1c = await call('approver', 'post', '/items/os_proposal_approvals', { ...good, approver: ids.author });
    const p1crow = await row(created(p1c));
    check('1c', 'an admin sending approver: the value is overwritten with the admin', p1c.status === 200 && p1crow?.approver === ids.approver, `HTTP ${p1c.status}, stored ${p1crow?.approver === ids.approver ? 'approver@' : String(p1crow?.approver)}`);
    const p1readback = await call('approver', 'get', `/items/os_proposal_approvals/${created(p1c)}?fields=id,approver.email,payload_sha256`);
    await sql(`UPDATE directus_permissions SET fields = '*' WHERE collection = 'os_proposal_approvals' AND action = 'create' AND policy = $1`, [approversPolicy]);
    await call('admin', 'post', '/utils/cache/clear?system');
    const p1d = await call('steward', 'post', '/items/os_proposal_approvals', { ...good, approver: ids.author });
    const p1drow = await row(created(p1d));
    check('1d', 'with create fields "*", a sent approver is overwritten (not refused)', p1d.status === 200 && p1drow?.approver === ids.steward, `HTTP ${p1d.status}`);
    await sql(`UPDATE directus_permissions SET fields = 'proposal,payload_sha256' WHERE collection = 'os_proposal_approvals' AND action = 'create' AND policy = $1`, [approversPolicy]);
    await call('admin', 'post', '/utils/cache/clear?system');
    void p1readback;

    // ---- point 2: only the named policy (and admins) may create
    const p2a = await call('editor', 'post', '/items/os_proposal_approvals', good);
    const p2b = await call('author', 'post', '/items/os_proposal_approvals', good);
    const p2c = await call('anonymous', 'post', '/items/os_proposal_approvals', good);
    const p2d = await d.tryLogin('suspended@example.com', 'tiergate-suspended');
    steps.push({ as: 'suspended', method: 'POST', path: '/auth/login', body: { email: 'suspended@example.com', password: '…' }, status: p2d.status, response: p2d.body });
    const p2e = await call('editor', 'get', '/items/os_proposal_approvals');
    check('2a', 'a user without the policy gets 403 on create', p2a.status === 403 && p2b.status === 403, `editor ${p2a.status}, author ${p2b.status}`);
    check('2b', 'anonymous gets 403 on create', p2c.status === 403, `HTTP ${p2c.status}`);
    check('2c', 'a suspended admin cannot sign in', p2d.status === 401, `HTTP ${p2d.status}`);
    check('2d', 'the policy holder and admins may create (1b, 1c)', p1b.status === 200 && p1c.status === 200);
    check('2e', 'a user without the policy cannot read approvals either', p2e.status === 403, `HTTP ${p2e.status}`);

    // ---- point 3: append-only
    const victim = created(p1b);
    const p3a = await call('steward', 'patch', `/items/os_proposal_approvals/${victim}`, { payload_sha256: '0'.repeat(64) });
    const p3b = await call('steward', 'delete', `/items/os_proposal_approvals/${victim}`);
    const p3c = await call('editor', 'patch', `/items/os_proposal_approvals/${victim}`, { payload_sha256: '0'.repeat(64) });
    check('3a', 'the policy holder cannot update or delete (403)', p3a.status === 403 && p3b.status === 403 && p3c.status === 403, `PATCH ${p3a.status}, DELETE ${p3b.status}, editor PATCH ${p3c.status}`);
    // admins bypass permissions, and `readonly` is a Data Studio setting only
    const p3d = await call('admin', 'patch', `/items/os_proposal_approvals/${created(p1c)}`, { approver: ids.author, payload_sha256: 'f'.repeat(64) });
    const p3drow = await row(created(p1c));
    check('3b', 'without a trigger an admin CAN update through the API, readonly fields included', p3d.status === 200 && p3drow?.approver === ids.author, `HTTP ${p3d.status}, approver now ${p3drow?.approver === ids.author ? 'author (rewritten)' : String(p3drow?.approver)}`);
    const p3e = await call('admin', 'delete', `/items/os_proposal_approvals/${created(p1c)}`);
    check('3c', 'without a trigger an admin CAN delete through the API', p3e.status === 204 && !(await row(created(p1c))), `HTTP ${p3e.status}`);
    await sql(APPEND_ONLY_SQL);
    const before = JSON.stringify(await row(victim));
    const p3f = await call('admin', 'patch', `/items/os_proposal_approvals/${victim}`, { payload_sha256: '0'.repeat(64) });
    const p3g = await call('admin', 'delete', `/items/os_proposal_approvals/${victim}`);
    const after = JSON.stringify(await row(victim));
    check('3d', 'with the trigger an admin\'s PATCH and DELETE are refused and the row is unchanged', p3f.status >= 400 && p3g.status >= 400 && before === after, `PATCH ${p3f.status} ${errCode(p3f)}, DELETE ${p3g.status} ${errCode(p3g)}`);
    let direct = '';
    try {
      await db.query(`UPDATE os_proposal_approvals SET payload_sha256 = repeat('0', 64) WHERE id = $1`, [victim]);
    } catch (e) {
      direct = (e as Error).message;
    }
    check('3e', 'the trigger refuses SQL UPDATE too', direct.includes('append-only'), direct);
    const p3h = await call('steward', 'post', '/items/os_proposal_approvals', good);
    check('3f', 'creating still works with the trigger', p3h.status === 200, `HTTP ${p3h.status}`);
    const p3i = await call('admin', 'delete', `/users/${ids.steward}`);
    check('3g', 'an approver who approved cannot be deleted (FK, NO ACTION): suspend instead', p3i.status >= 400, `HTTP ${p3i.status} ${errCode(p3i)}`);

    // ---- point 4: payload_sha256 is supplied by the approver
    const p4a = await call('steward', 'get', `/items/os_proposals?filter[key][_eq]=OS-AXIS&fields=id,payload_sha256`);
    const fetched = (p4a.body as { data?: { id: number; payload_sha256: string }[] }).data?.[0];
    const p4b = await call('steward', 'post', '/items/os_proposal_approvals', { proposal: fetched?.id, payload_sha256: fetched?.payload_sha256 });
    check('4a', 'GET the proposal\'s id and payload_sha256, POST them', p4a.status === 200 && fetched?.payload_sha256 === proposal.payload_sha256 && p4b.status === 200, `GET ${p4a.status}, POST ${p4b.status}`);
    const p4c = await call('steward', 'post', '/items/os_proposal_approvals', { proposal: proposal.id });
    check('4b', 'without payload_sha256 the create is refused (NOT NULL; no default can come from os_proposals)', p4c.status === 400, `HTTP ${p4c.status} ${errCode(p4c)}`);
    const p4d = await call('steward', 'post', '/items/os_proposal_approvals', { proposal: proposal.id, payload_sha256: 'not-a-sha' });
    const p4e = await call('approver', 'post', '/items/os_proposal_approvals', { proposal: proposal.id, payload_sha256: 'not-a-sha' });
    check('4c', 'a malformed payload_sha256 is refused by the field validation, for admins too', p4d.status === 400 && p4e.status === 400, `steward ${p4d.status} ${errCode(p4d)}, admin ${p4e.status} ${errCode(p4e)}`);
    const stale = await call('approver', 'post', '/items/os_proposal_approvals', { proposal: proposal.id, payload_sha256: 'a'.repeat(64) });
    const ospa = ((await sql(OSPA_SQL))[0] as { ospa: number }).ospa;
    check('4d', 'an approval of another payload is stored but does not count; ospa counts steward (policy) only', stale.status === 200 && ospa === 1, `ospa = ${ospa}`);
    const p4f = await call('approver', 'post', '/items/os_proposal_approvals', good);
    const ospa2 = ((await sql(OSPA_SQL))[0] as { ospa: number }).ospa;
    check('4e', 'the second admin approving the current payload: ospa = 2', p4f.status === 200 && ospa2 === 2, `ospa = ${ospa2}`);
    const activity = (await sql(`SELECT action, count(*)::int AS n FROM directus_activity WHERE collection = 'os_proposal_approvals' GROUP BY action ORDER BY action`)) as { action: string; n: number }[];
    log(`directus_activity for os_proposal_approvals: ${JSON.stringify(activity)}`);

    // ---- point 5, continued: a restart, and CACHE_SCHEMA=false
    await db.end();
    await d.restart({ CACHE_SCHEMA: 'false' });
    db = await d.sql();
    for (const key of Object.keys(tokens)) tokens[key] = key === 'admin' ? await d.login(d.admin.email, d.admin.password) : tokens[key]!;
    await sql(`UPDATE directus_fields SET special = NULL WHERE collection = 'os_proposal_approvals' AND field = 'approver'`);
    const r1 = await call('approver', 'post', '/items/os_proposal_approvals', { ...good });
    const r1row = await row(created(r1));
    check('5f', 'CACHE_SCHEMA=false: a SQL change of directus_fields applies at once (special removed: approver stays NULL)', r1.status === 200 && r1row?.approver === null, `HTTP ${r1.status}, approver ${String(r1row?.approver)}`);
    await sql(`UPDATE directus_fields SET special = 'user-created' WHERE collection = 'os_proposal_approvals' AND field = 'approver'`);
    const r2 = await call('approver', 'post', '/items/os_proposal_approvals', good);
    check('5g', 'CACHE_SCHEMA=false: restored at once too', r2.status === 200 && (await row(created(r2)))?.approver === ids.approver, `HTTP ${r2.status}`);
    const r2b = await call('steward', 'post', '/items/os_proposal_approvals', good); // the steward's permissions are now cached
    await sql(`DELETE FROM directus_permissions WHERE collection = 'os_proposal_approvals' AND action = 'create' AND policy = $1`, [approversPolicy]);
    const r3 = await call('steward', 'post', '/items/os_proposal_approvals', good);
    await call('admin', 'post', '/utils/cache/clear?system');
    const r4 = await call('steward', 'post', '/items/os_proposal_approvals', good);
    check('5h', 'CACHE_SCHEMA=false does not cover permissions: a revoked create still works until cache/clear?system', r2b.status === 200 && r3.status === 200 && r4.status === 403, `granted ${r2b.status}; revoked by SQL: before clear ${r3.status}, after ${r4.status}`);
    await sql(
      `INSERT INTO directus_permissions (collection, action, permissions, validation, fields, policy) VALUES ('os_proposal_approvals', 'create', '{}', '{}', 'proposal,payload_sha256', $1)`,
      [approversPolicy],
    );
    await d.restart();
    db.end().catch(() => undefined);
    db = await d.sql();
    tokens.admin = await d.login(d.admin.email, d.admin.password);
    const r5 = await call('steward', 'post', '/items/os_proposal_approvals', good);
    check('5i', 'a restart (default CACHE_SCHEMA) sees the re-inserted permission', r5.status === 200, `HTTP ${r5.status}`);

    // ---- anchors: registering the tables in directus_collections makes them user collections
    const derived = async () => ((await sql(DERIVED_SQL)) as { collection: string; contained: boolean }[]).filter((r) => !r.contained).map((r) => r.collection);
    const withRows = await derived();
    const registeredMeta = await call('admin', 'get', '/collections/os_proposal_approvals');
    const registered = (registeredMeta.body as { data?: { meta?: { collection?: string } | null } }).data?.meta;
    await sql(`DELETE FROM directus_collections WHERE collection IN ('os_proposals', 'os_proposal_approvals')`);
    await call('admin', 'post', '/utils/cache/clear?system');
    const withoutRows = await derived();
    const dbOnly = await call('steward', 'post', '/items/os_proposal_approvals', good);
    const dbOnlyRow = await row(created(dbOnly));
    const dbOnlyMeta = await call('admin', 'get', '/collections/os_proposal_approvals');
    check(
      '6a',
      'registered, os_proposals and os_proposal_approvals are anchors of the governance rule',
      withRows.includes('os_proposals') && withRows.includes('os_proposal_approvals') && registered?.collection === 'os_proposal_approvals',
      `anchors with rows: ${withRows.join(', ')}; /collections meta ${registered ? 'present' : 'null'}`,
    );
    check(
      '6b',
      'kept DB-only (no directus_collections rows) they are not, and fields + permissions still work',
      !withoutRows.includes('os_proposal_approvals') && dbOnly.status === 200 && dbOnlyRow?.approver === ids.steward && (dbOnlyMeta.body as { data?: { meta?: unknown } }).data?.meta === null,
      `anchors without rows: ${withoutRows.length ? withoutRows.join(', ') : 'none'}; steward POST ${dbOnly.status}; /collections meta ${JSON.stringify((dbOnlyMeta.body as { data?: { meta?: unknown } }).data?.meta)}`,
    );
    await db.end();

    const passed = results.every((r) => r.pass);
    process.stdout.write(`\n${results.filter((r) => r.pass).length}/${results.length} checks passed in ${((Date.now() - t0) / 1000).toFixed(0)} s: ${passed ? 'PASS' : 'FAIL'}\n`);
    if (options.transcript) {
      writeFileSync(options.transcript, `${JSON.stringify({ directus: d.install.version, results, steps, sql: sqlLog }, null, 2)}\n`);
      log(`transcript: ${options.transcript}`);
    }
    return passed;
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const opt = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  checkApprovals({ transcript: opt('--transcript'), serverUrl: opt('--server') }).then(
    (ok_) => {
      process.exitCode = ok_ ? 0 : 1;
    },
    (e: unknown) => {
      process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
