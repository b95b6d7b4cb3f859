/**
 * Objects of the plan's schemas changed outside tiergate (campaign 20): a
 * trigger function rewritten by hand, an index dropped, a table created.
 * No tier's delta shows them (each tier reads its "before" afresh), and a
 * file's sha256 is unchanged: the ledger's record of the objects as the
 * tiers left them is what tells them. verify fails on them, status says so
 * (--exit-code 1), the dry run too, and further runs do not make them right
 * (a tier's record changes only what its own delta changed); put back, all
 * is well again. A rehearsal of such a source fails, naming them. Both
 * backends.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { withDb } from '../src/db/open-db.js';
import type { Db } from '../src/db/port.js';
import { apply } from '../src/engine/apply.js';
import { dryRun } from '../src/engine/dry-run.js';
import { rollback } from '../src/engine/rollback.js';
import { status } from '../src/engine/status.js';
import { verify } from '../src/engine/verify.js';
import { writeSample } from '../fixtures/directus-sample/generate.js';
import { scalar } from './fixtures/axis-harness/harness.js';
import { runCli } from './helpers/cli.js';
import { approveAs, bundled as plan, failures, rehearseSource } from './helpers/rollout.js';
import { freshDatabase, testTargets, type TestDatabase } from './helpers/targets.js';

let target: TestDatabase | null = null;
afterEach(async () => {
  await target?.drop();
  target = null;
});

const FUNCTION = 'axis.fn_approvals_append_only()';
const INDEX = 'axis.topic_axis_idx';
const VIEW = 'axis.v_owner_gap';

/** What an operator does by hand: the approvals' guard neutered, an index dropped, a table created, a view redefined (the view is not put back by `restore`). */
async function editByHand(db: Db): Promise<{ restore: string }> {
  const fn = await scalar<string>(db, `select pg_get_functiondef('${FUNCTION}'::regprocedure) as v`);
  const ix = await scalar<string>(db, `select pg_get_indexdef('${INDEX}'::regclass) as v`);
  const view = (await scalar<string>(db, `select pg_get_viewdef('${VIEW}'::regclass) as v`)).replace(/;\s*$/, '');
  await db.exec(`create or replace function ${FUNCTION} returns trigger language plpgsql as $f$ begin return coalesce(new, old); end $f$;
                 drop index ${INDEX};
                 create table axis.scratchpad (note text);
                 create or replace view ${VIEW} as select * from (${view}) v where false`);
  return { restore: `${fn};\n${ix};\ndrop table axis.scratchpad` };
}

describe.each(testTargets())('objects changed outside tiergate (%s)', (kind) => {
  it('verify fails and status says so, naming each object and the tier that made it; later runs keep them; put back, verify passes', async () => {
    target = await freshDatabase(kind, 'directus', { exactName: true });
    const url = target.url;
    let restore = '';
    await withDb(url, async (db) => {
      await writeSample(db, {});
      await approveAs(db, 'admin@northwind.example');
      expect((await apply(db, plan)).outcome).toBe('ok');
      expect((await status(db, plan)).handEdits).toBeNull();
      ({ restore } = await editByHand(db));

      const s = await status(db, plan);
      expect(s.handEdits?.since.tierId).toBe(4);
      expect(s.handEdits?.edits.map((e) => [e.kind, e.name, e.change, e.madeBy?.tierId ?? null])).toEqual([
        ['function', FUNCTION, 'changed', 7],
        ['index', INDEX, 'dropped', 1],
        ['table', 'axis.scratchpad', 'added', null],
        ['view', VIEW, 'changed', 6],
      ]);
      expect(s.handEdits?.edits.find((e) => e.kind === 'view')?.madeBy?.revertedBy).toEqual([99]);
      // the verify that passed at the apply fails now
      expect(s.tiers.find((t) => t.kind === 'verify')).toMatchObject({ state: 'failing', note: expect.stringMatching(/4 objects of the plan's schemas changed outside tiergate since/) });
      const v = await verify(db, plan);
      expect(v.outcome).toBe('failed');
      expect(v.tiers[0]!.reason).toMatch(
        /^verify: 4 objects of the plan's schemas changed outside tiergate since its last tier here \(tier 4 'Promotion', [^)]+\): function axis\.fn_approvals_append_only\(\): changed outside tiergate \(as tier 7 'Approval rules' last made it: tiers\/07_approval_rules\.sql; no rollback tier reverts it\); index axis\.topic_axis_idx: dropped outside tiergate \(as tier 1 'Base axis substrate' last made it: tiers\/01_base_substrate\.sql; no rollback tier reverts it\); table axis\.scratchpad: created outside tiergate; view axis\.v_owner_gap: changed outside tiergate \(as tier 6 '[^']+' last made it: tiers\/06_detector_read_views\.sql; rollback tier 99 reverts it\): put each back/,
      );
      expect((await dryRun(db, plan)).handEdits?.edits).toHaveLength(4);
    });

    // the CLI: status --exit-code 1, saying what and what to do
    const st = await runCli(['status', '--target', url, '--exit-code']);
    expect(st.code, st.stdout + st.stderr).toBe(1);
    expect(st.stdout).toMatch(/objects of the plan's schemas changed outside tiergate since its last tier here \(tier 4 'Promotion'/);
    expect(st.stdout).toMatch(/^ {2}function axis\.fn_approvals_append_only\(\): changed outside tiergate \(as tier 7 'Approval rules' last made it/m);
    expect(st.stdout).toMatch(/not done: tier 90 \(failing\); objects changed outside tiergate/);

    await withDb(url, async (db) => {
      // a rollback and a re-apply make tier 6's view anew (told: rollback tier 99 reverts it); the other objects edited by hand stay told
      expect((await rollback(db, plan)).outcome).toBe('ok');
      const again = await apply(db, plan);
      expect(again.outcome).toBe('failed');
      expect(again.tiers.filter((t) => t.status === 'Applied').map((t) => t.id)).toEqual([6, 3, 4]);
      expect(again.tiers.find((t) => t.kind === 'verify')?.reason).toMatch(/3 objects of the plan's schemas changed outside tiergate since its last tier here \(tier 4 'Promotion'/);
      expect((await status(db, plan)).handEdits?.edits.map((e) => e.name)).toEqual([FUNCTION, INDEX, 'axis.scratchpad']);

      // the guard is real again once put back: nothing to tell, verify passes
      await db.exec(restore);
      expect((await status(db, plan)).handEdits).toBeNull();
      expect((await verify(db, plan)).outcome).toBe('ok');
      await expect(db.exec(`update os_proposal_approvals set date_created = date_created`)).rejects.toThrow(/an approval is withdrawn/);
    });
  });

  it('a rehearsal of a source edited by hand fails, naming the objects', async () => {
    target = await freshDatabase(kind, 'directus', { exactName: true });
    const url = target.url;
    await withDb(url, async (db) => {
      await writeSample(db, {});
      await approveAs(db, 'admin@northwind.example');
      expect((await apply(db, plan)).outcome).toBe('ok');
      await editByHand(db);
    });
    const evidence = await rehearseSource(kind, url);
    expect(evidence.verdict.rehearsal).toBe('FAIL');
    expect(failures(evidence).join('\n')).toMatch(/function axis\.fn_approvals_append_only\(\): changed outside tiergate/);
  });
});

describe.runIf(testTargets().includes('postgres'))('the record read by another role (postgres)', () => {
  it('a role named like the plan\'s schema ("$user" on its search_path resolves there) reads no change where nobody changed anything', async () => {
    target = await freshDatabase('postgres', 'directus', { exactName: true });
    const url = target.url;
    const { editPostgresUrl } = await import('../src/db/pg-url.js');
    await withDb(url, async (db) => {
      await writeSample(db, {});
      await approveAs(db, 'admin@northwind.example');
      expect((await apply(db, plan)).outcome).toBe('ok');
      await db.exec(`drop role if exists axis; create role axis login superuser`);
    });
    try {
      // as axis, "$user", public puts the plan's schema on the path: definitions print its names unqualified
      await withDb(editPostgresUrl(url, (u) => void (u.username = 'axis')), async (db) => {
        expect(await scalar<string>(db, `select array_to_string(current_schemas(false), ',') as v`)).toBe('axis,public');
        expect((await status(db, plan)).handEdits).toBeNull();
        expect((await verify(db, plan)).outcome).toBe('ok');
      });
    } finally {
      await withDb(url, (db) => db.exec(`drop role if exists axis`)).catch(() => undefined);
    }
  });
});
