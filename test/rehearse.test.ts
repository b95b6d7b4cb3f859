import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';

// whole rehearsals: minutes on a loaded 2-core machine
vi.setConfig({ testTimeout: 900_000 });
import type { TierResult } from '../src/engine/result.js';
import { bundledPlanDir, loadPlan } from '../src/plan/load-plan.js';
import type { Evidence } from '../src/evidence/types.js';
import { runCli } from './helpers/cli.js';
import { freshDatabase, onServer, serverUrl, testTargets } from './helpers/targets.js';

const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));
const readEvidence = (dir: string) => JSON.parse(readFileSync(join(dir, 'evidence.json'), 'utf8')) as Evidence;
const tier = (e: Evidence, stage: string, id: number, status?: string): TierResult => {
  const t = e.stages.find((s) => s.name === stage)?.tiers.find((x) => x.id === id && (!status || x.status === status));
  if (!t) throw new Error(`no tier ${id} (${status ?? 'any'}) in stage ${stage}`);
  return t;
};
const rows = (t: TierResult, rel: string) => t.delta?.rows[rel]?.added ?? 0;
const objects = (t: TierResult, kind: 'tables' | 'views' | 'functions', what: 'added' | 'removed' | 'changed') => t.delta?.objects[kind]?.[what].length ?? 0;
const metric = (t: TierResult, m: string) => t.delta?.metrics[m];

/** The figures of ../shared/design/axis-governance.md, "The figures the rehearsal of the sample must show". */
function expectSeedFigures(e: Evidence): void {
  expect(e.verdict).toMatchObject({ rehearsal: 'PASS', execution: 'NO-GO', reason: 'ospa=0' });
  expect(e.source.identity.database).toBe('directus');
  expect(e.source.gate).toMatchObject({ name: 'ospa', value: 0, min: 1, open: false });
  expect(e.source.preflight?.status).toBe('Passed');
  expect(e.source.preflight?.delta?.metrics.axis_tables?.after).toBe(0);

  const t1 = tier(e, 'A', 1);
  expect(t1.status).toBe('Applied');
  expect([objects(t1, 'tables', 'added'), objects(t1, 'views', 'added')]).toEqual([6, 5]);
  expect(metric(t1, 'axis_tables')).toEqual({ before: 0, after: 6 });
  const t5 = tier(e, 'A', 5);
  expect([objects(t5, 'tables', 'added'), objects(t5, 'functions', 'added')]).toEqual([2, 1]);
  expect(t5.delta?.objects.functions?.added[0]).toMatch(/^axis\.fn_governance_scan\(/);
  expect(metric(t5, 'axis_tables')).toEqual({ before: 6, after: 8 });
  const t6 = tier(e, 'A', 6);
  expect([objects(t6, 'tables', 'added'), objects(t6, 'views', 'added'), objects(t6, 'views', 'changed')]).toEqual([1, 1, 5]);
  expect(metric(t6, 'axis_tables')).toEqual({ before: 8, after: 9 });
  for (const id of [2, 3, 4]) {
    expect(tier(e, 'A', id)).toMatchObject({ status: 'Blocked', guardProven: true, fingerprintUnchanged: true });
  }
  const verifyA = tier(e, 'A', 90);
  expect(verifyA.status).toBe('Failed');
  expect([metric(verifyA, 'owner_gap')?.after, metric(verifyA, 'containment_gap')?.after, metric(verifyA, 'projection_gap')?.after]).toEqual([210, 35, 65]);

  const t2 = tier(e, 'B', 2);
  expect(rows(t2, 'axis.ownership')).toBe(30);
  expect(metric(t2, 'owner_gap')).toEqual({ before: 210, after: 0 });
  const t3 = tier(e, 'B', 3);
  expect({
    rule: rows(t3, 'axis.containment_rule'),
    assignment: rows(t3, 'axis.containment_assignment'),
    ownership: rows(t3, 'axis.ownership'),
    axis: rows(t3, 'axis.axis'),
    topic: rows(t3, 'axis.topic'),
    collectionTopic: rows(t3, 'axis.collection_topic'),
  }).toEqual({ rule: 1, assignment: 35, ownership: 35, axis: 2, topic: 5, collectionTopic: 65 });
  expect(metric(t3, 'containment_gap')).toEqual({ before: 35, after: 0 });
  const t4 = tier(e, 'B', 4);
  expect(rows(t4, 'axis.reconcile_decision')).toBe(31);
  expect(t4.delta?.rows['axis.topic']?.changed).toBe(4);
  expect(t4.delta?.rows['axis.axis']?.changed).toBe(1);
  expect(metric(t4, 'divergent')).toEqual({ before: 31, after: 0 });
  expect(metric(t4, 'projection_gap')).toEqual({ before: 65, after: 0 });
  const verifyB = tier(e, 'B', 90);
  expect(verifyB.status).toBe('Passed');
  expect([metric(verifyB, 'critical')?.after, metric(verifyB, 'emittable')?.after]).toEqual([0, 0]);

  const t99 = tier(e, 'C', 99);
  expect(t99.status).toBe('Applied');
  expect(metric(t99, 'axis_tables')).toEqual({ before: 9, after: 8 });
  expect(metric(t99, 'containment_gap')).toEqual({ before: 0, after: 35 });
  expect(metric(t99, 'owner_gap')).toEqual({ before: 0, after: 0 });
  expect(e.rollback).toMatchObject({ tier: 99, reverted: [6, 4, 3], matchesKeptTiers: true, reapplyMatches: true });
  for (const s of e.stages) for (const t of s.tiers) for (const x of t.expectations ?? []) expect(x, `stage ${s.name} tier ${t.id} ${x.what}`).toMatchObject({ ok: true });
}

describe('tiergate rehearse on the embedded default (npm start)', () => {
  it('passes, ends with Execution NO-GO (ospa=0), and its evidence holds the seed figures', async () => {
    const out = tmp('tiergate-evidence-');
    const r = await runCli(['rehearse', '--out', out], { timeoutMs: 600_000 });
    expect(r.stderr).toBe('');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n').at(-1)).toBe('Rehearsal PASS · Execution NO-GO (ospa=0)');
    // not a terminal: plain lines, no passing status (building, copying)
    expect(r.stdout).not.toMatch(/\r|\x1b|tables created| parts/);
    // stage A's blocked tiers 2, 3, 4: one seal before the first, then each proven by the server's transactions alone
    // (the clone is an embedded database of its own: nothing else commits on it)
    expect(r.stdout).toMatch(/; 1 seal \(the catalog's version and the change log, no catalog read\); 3 blocked tiers proven to change nothing by the server's transactions/);
    expectSeedFigures(readEvidence(out));
    expect(readFileSync(join(out, 'evidence.md'), 'utf8')).toMatch(/NO-GO \(ospa=0\)/);
    expect(readFileSync(join(out, 'evidence.html'), 'utf8')).toMatch(/^<!DOCTYPE html>/i);
    const again = await runCli(['report', join(out, 'evidence.json'), '--format', 'md']);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe(readFileSync(join(out, 'evidence.md'), 'utf8'));
  });

  it('a plan with a broken rollback file fails the rehearsal, naming what differs', async () => {
    const dir = join(tmp('tiergate-plan-'), 'plan');
    cpSync(bundledPlanDir(), dir, { recursive: true });
    const rb = join(dir, 'tiers', '99_rollback.sql');
    // forget to restore tier 5's scanner: the rollback's own assertion cannot see it, the fingerprint can
    const text = readFileSync(rb, 'utf8');
    const broken = text.replace(/^CREATE OR REPLACE FUNCTION axis\.fn_governance_scan\(\)[\s\S]*?\$fn\$;/m, '');
    expect(broken).not.toBe(text);
    writeFileSync(rb, broken);
    const out = tmp('tiergate-evidence-');
    const r = await runCli(['rehearse', '--plan', dir, '--out', out], { timeoutMs: 600_000 });
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toMatch(/Rehearsal FAIL/);
    const e = readEvidence(out);
    expect(e.verdict.rehearsal).toBe('FAIL');
    expect(e.rollback?.matchesKeptTiers).toBe(false);
    expect(e.rollback?.keptDiff?.objects.join(' ')).toMatch(/fn_governance_scan/);
    expect(e.verdict.failures.join(' ')).toMatch(/after rollback the clone equals a clean apply of the kept tiers: objects differ: .*fn_governance_scan/);
  });
});

describe('a rehearsal that fails says what the plan advises', () => {
  it("a divergent collection: tier 4 fails, its hint (move it back, or list it under \"decide\") is printed", async () => {
    const dir = join(tmp('tiergate-sample-'), 'db');
    expect((await runCli(['sample', '--pglite', dir, '--variant', 'divergent'])).code).toBe(0);
    expect((await runCli(['approve', '--target', `pglite:${dir}`, '--as', 'admin@northwind.example', '--yes'])).code).toBe(0);
    const r = await runCli(['rehearse', '--source', `pglite:${dir}`, '--out', tmp('tiergate-evidence-')], { timeoutMs: 600_000 });
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toMatch(/✗ B: .*tier 4/);
    expect(r.stdout).toMatch(/hint, tier 4: a folder labels another topic than the one the proposal gives: move the collection back in Directus, or keep its topic by listing it under "decide" in the payload/);
    expect(r.stdout).toMatch(/next: fix what failed/);
  }, 600_000);
});

describe('tiergate rehearse --dump of a plan of your own', () => {
  it("takes the dump for the plan's database: unless --database names another", async () => {
    // the engine's test plan, for a database named shop
    const plan = join(tmp('tiergate-plan-'), 'plan');
    cpSync(join(import.meta.dirname, 'fixtures', 'engine'), plan, { recursive: true });
    writeFileSync(join(plan, 'tiergate.yaml'), `database: shop\n${readFileSync(join(plan, 'tiergate.yaml'), 'utf8')}`);
    const dump = join(tmp('tiergate-dump-'), 'shop.sql');
    writeFileSync(dump, 'create schema gate;\ncreate table gate.approval (id serial primary key, valid boolean not null default true);\n');
    const out = tmp('tiergate-evidence-');
    const r = await runCli(['rehearse', '--plan', plan, '--dump', dump, '--out', out], { timeoutMs: 240_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect((JSON.parse(readFileSync(join(out, 'evidence.json'), 'utf8')) as Evidence).source.identity).toMatchObject({ database: 'shop' });
    // another name given: refused as a source that is not the plan's database
    const other = await runCli(['rehearse', '--plan', plan, '--dump', dump, '--database', 'directus', '--out', tmp('tiergate-evidence-')]);
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/source database is 'directus', but plan 'engine-test' is for database 'shop'.*check --database/);
  });
});

describe.runIf(testTargets().includes('postgres'))('tiergate rehearse against a real PostgreSQL source', () => {
  it("a source that is not the plan's database is refused before it is dumped (exit 2), as apply refuses it", async () => {
    const other = await freshDatabase('postgres', 'shop');
    try {
      // clones and snapshots named for this source (other test files rehearse their own sources on the same server meanwhile)
      const mine = () => onServer((c) => c.query<{ n: number }>(`select count(*)::int as n from pg_database where datname like 'tiergate\\_%' and strpos(datname, $1) > 0`, [other.database.toLowerCase().slice(0, 20)]));
      const before = await mine();
      const r = await runCli(['rehearse', '--source', other.url, '--scratch', serverUrl('postgres'), '--out', tmp('tiergate-evidence-')]);
      expect(r.code, r.stdout + r.stderr).toBe(2);
      // (the flag it names is the one given: --source, not --target)
      expect(r.stderr).toMatch(/source database is 'shop\w*', but plan 'axis-governance' is for database 'directus'.*check --source:/);
      expect(r.stdout + r.stderr).not.toMatch(/pg_dump/);
      const after = await mine();
      expect(after.rows[0]!.n).toBe(before.rows[0]!.n);
    } finally {
      await other.drop();
    }
  });

  it("a clone on which the plan's rehearsal.open_gate fails (a trigger refuses it): stage B fails with evidence and a verdict, not a bare error", async () => {
    const source = await freshDatabase('postgres', 'directus', { exactName: true });
    try {
      const sample = await runCli(['sample', '--url', source.url], { timeoutMs: 300_000 });
      expect(sample.code, sample.stdout + sample.stderr).toBe(0);
      // approvals recorded only through Directus: a trigger refuses any other insert, the rehearsal's too
      await onServer(
        (c) =>
          c.query(`create function refuse_approval() returns trigger language plpgsql as $$ begin raise exception 'approvals are recorded in Directus only'; end $$;
                   create trigger refuse before insert on os_proposal_approvals for each row execute function refuse_approval()`),
        'directus',
      );
      const out = tmp('tiergate-evidence-');
      const r = await runCli(['rehearse', '--source', source.url, '--scratch', serverUrl('postgres'), '--out', out, '--no-snapshot'], { timeoutMs: 600_000 });
      expect(r.code, r.stdout + r.stderr).toBe(1);
      expect(r.stdout).toMatch(/Rehearsal FAIL · Execution NO-GO/);
      const e = readEvidence(out);
      const b = e.stages.find((st) => st.name === 'B')!;
      expect(b.checks).toContainEqual(expect.objectContaining({ name: 'B: the gate opens on the clone', ok: false, detail: expect.stringMatching(/rehearsal\.open_gate \(tiergate\.yaml\) failed on the clone: approvals are recorded in Directus only \(SQLSTATE P0001\)/) }));
      expect(b.tiers.every((t) => t.status === 'Skipped')).toBe(true);
    } finally {
      await source.drop();
    }
  });

  it("Directus in a schema other than public (its database's search_path): the clones get the source's search_path, PASS", async () => {
    const source = await freshDatabase('postgres', 'directus', { exactName: true });
    try {
      await onServer((c) => c.query(`create schema cms; alter database directus set search_path = cms`), 'directus');
      const sample = await runCli(['sample', '--url', source.url], { timeoutMs: 300_000 });
      expect(sample.code, sample.stdout + sample.stderr).toBe(0);
      expect((await onServer((c) => c.query(`select to_regclass('cms.directus_fields') is not null as ok`), 'directus')).rows[0]).toEqual({ ok: true });
      const out = tmp('tiergate-evidence-');
      const r = await runCli(['rehearse', '--source', source.url, '--scratch', serverUrl('postgres'), '--out', out, '--no-snapshot'], { timeoutMs: 600_000 });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toMatch(/Rehearsal PASS · Execution NO-GO \(ospa=0\)/);
      expectSeedFigures(readEvidence(out));
    } finally {
      await source.drop();
    }
  });

  it('never writes to the source, leaves no clone behind, and says GO once an approval is added', async () => {
    const source = await freshDatabase('postgres', 'directus', { exactName: true });
    try {
      const sample = await runCli(['sample', '--url', source.url], { timeoutMs: 300_000 });
      expect(sample.code, sample.stdout + sample.stderr).toBe(0);
      const bindir = process.env.TIERGATE_TEST_PG_BINDIR!;
      // libpq reads the socket directory from the URL's ?host=
      // (pg_dump's \restrict lines carry a random key on every run)
      const dump = () =>
        execFileSync(join(bindir, 'pg_dump'), ['--dbname', source.url], { encoding: 'utf8', maxBuffer: 1 << 30 }).replace(/^\\(un)?restrict .*$/gm, '');
      const before = dump();
      const out = tmp('tiergate-evidence-');
      const r = await runCli(['rehearse', '--source', source.url, '--scratch', serverUrl('postgres'), '--out', out, '--require-go'], { timeoutMs: 600_000 });
      expect(r.code, r.stdout + r.stderr).toBe(3); // --require-go: NO-GO exits 3
      expect(r.stdout).toMatch(/Rehearsal PASS · Execution NO-GO \(ospa=0\)/);
      expectSeedFigures(readEvidence(out));
      const after = dump();
      if (after !== before) {
        const a = before.split('\n');
        const b = after.split('\n');
        const firstDiff = a.findIndex((line, i) => line !== b[i]);
        expect.fail(`the source changed: pg_dump differs from line ${firstDiff + 1}: '${a[firstDiff]}' → '${b[firstDiff]}'`);
      }
      // this source's clones, tiergate_clone_directus_<6 hex>[_N] (other test files rehearse their own sources on the same server
      // meanwhile: clone.test.ts's directus_<8 hex>, whose clones the LIKE 'tiergate\_clone\_directus\_%' used here took for these)
      const left = await onServer((c) => c.query<{ datname: string }>(`select datname from pg_database where datname ~ '^tiergate_clone_directus_[0-9a-f]{6}(_[0-9]{1,2})?$'`));
      expect(left.rows).toEqual([]);

      // the same database as a plain SQL dump, rehearsed on PGlite with no server at all
      const dumpFile = join(tmp('tiergate-dump-'), 'directus.sql');
      writeFileSync(dumpFile, before);
      const fromDump = await runCli(['rehearse', '--dump', dumpFile, '--out', tmp('tiergate-evidence-')], { timeoutMs: 600_000 });
      expect(fromDump.code, fromDump.stdout + fromDump.stderr).toBe(0);
      expect(fromDump.stdout).toMatch(/Rehearsal PASS · Execution NO-GO \(ospa=0\)/);

      // an approval of the current payload, added on the source as an approver would
      await onServer((c) => c.query(loadPlan().rehearsal!.open_gate!), 'directus');
      const go = await runCli(['rehearse', '--source', source.url, '--scratch', serverUrl('postgres'), '--out', out], { timeoutMs: 600_000 });
      expect(go.code, go.stdout + go.stderr).toBe(0);
      expect(go.stdout).toMatch(/Rehearsal PASS · Execution GO \(ospa=1\)/);
      // the evidence where it was written (here, outside the working directory: its whole path)
      expect(go.stdout).toContain(`next: apply it: tiergate apply --target <the source> --evidence ${join(out, 'evidence.json')}\n`);

      // production, bound to that evidence: refused for a FAIL or for other files, then applied
      const evidence = join(out, 'evidence.json');
      const failed = join(tmp('tiergate-evidence-'), 'evidence.json');
      writeFileSync(failed, readFileSync(evidence, 'utf8').replace('"rehearsal": "PASS"', '"rehearsal": "FAIL"'));
      const refused = await runCli(['apply', '--yes', '--target', source.url, '--evidence', failed]);
      expect(refused.code, refused.stderr).toBe(2);
      // its verdict no longer follows from its own records: an edited file
      expect(refused.stderr).toMatch(/refused: it says 'Rehearsal FAIL · Execution GO', but its own records give 'Rehearsal PASS · Execution GO': it was edited/);
      // a metric edited beside the post-condition that still reads as holding: refused before anything is touched, by apply and by report
      const tampered = join(tmp('tiergate-evidence-'), 'evidence.json');
      const e = JSON.parse(readFileSync(evidence, 'utf8')) as Evidence;
      e.stages.find((s) => s.name === 'B')!.tiers.find((t) => t.id === 2)!.delta!.metrics.owner_gap!.after = 1;
      writeFileSync(tampered, JSON.stringify(e, null, 2));
      const metricEdited = await runCli(['apply', '--yes', '--target', source.url, '--evidence', tampered]);
      expect(metricEdited.code, metricEdited.stderr).toBe(2);
      // (and the expectation beside it, which recorded the metric the tier measured)
      expect(metricEdited.stderr).toMatch(
        /but its own records give 'Rehearsal FAIL · Execution NO-GO' \(stage B: tier 2: post-condition 'owner_gap = 0' read 0, but the tier's metric owner_gap is 1 after it; stage B: tier 2: expectation 'metric owner_gap' records (\d+) → 0 measured, but the tier's delta says \1 → 1\): it was edited/,
      );
      expect((await runCli(['report', tampered])).code).toBe(2);
      const edited = join(tmp('tiergate-plan-'), 'plan');
      cpSync(bundledPlanDir(), edited, { recursive: true });
      writeFileSync(join(edited, 'tiers', '02_ownership_seed.sql'), readFileSync(join(edited, 'tiers', '02_ownership_seed.sql'), 'utf8') + '\n-- edited after the rehearsal\n');
      const stale = await runCli(['apply', '--yes', '--target', source.url, '--plan', edited, '--evidence', evidence]);
      expect(stale.code, stale.stderr).toBe(2);
      expect(stale.stderr).toMatch(/rehearsed with other plan files[\s\S]*tiers\/02_ownership_seed\.sql: rehearsed [0-9a-f]{12}, now [0-9a-f]{12}/);
      // a dry run checks the evidence as apply does: refused alike (exit 2), accepted with what apply will compare
      const dryRefused = await runCli(['apply', '--dry-run', '--target', source.url, '--evidence', failed]);
      expect(dryRefused.code, dryRefused.stdout + dryRefused.stderr).toBe(2);
      expect(dryRefused.stderr).toMatch(/refused: it says 'Rehearsal FAIL · Execution GO'/);
      const dryMissing = await runCli(['apply', '--dry-run', '--target', source.url, '--evidence', join(tmp('tiergate-none-'), 'evidence.json')]);
      expect(dryMissing.code, dryMissing.stdout + dryMissing.stderr).toBe(2);
      expect(dryMissing.stderr).toMatch(/evidence file '.*evidence\.json' /);
      const dry = await runCli(['apply', '--dry-run', '--target', source.url, '--evidence', evidence]);
      expect(dry.code, dry.stdout + dry.stderr).toBe(0);
      expect(dry.stdout).toMatch(/evidence: .*evidence\.json, rehearsed .* \(Rehearsal PASS · Execution GO\): accepted for this target/);
      // another gate subject than the rehearsal's: refused by the dry run too
      await onServer((c) => c.query(`update os_proposals set payload = payload || '{"x": 1}', payload_sha256 = encode(sha256(convert_to((payload || '{"x": 1}')::text, 'UTF8')), 'hex') where key = 'OS-AXIS'`), 'directus');
      const drySubject = await runCli(['apply', '--dry-run', '--target', source.url, '--evidence', evidence]);
      expect(drySubject.code, drySubject.stdout + drySubject.stderr).toBe(2);
      expect(drySubject.stderr).toMatch(/the gate's subject changed since the rehearsal/);
      await onServer((c) => c.query(`update os_proposals set payload = payload - 'x', payload_sha256 = encode(sha256(convert_to((payload - 'x')::text, 'UTF8')), 'hex') where key = 'OS-AXIS'`), 'directus');
      const applied = await runCli(['apply', '--yes', '--target', source.url, '--evidence', evidence], { timeoutMs: 300_000 });
      expect(applied.code, applied.stdout + applied.stderr).toBe(0);
      expect(applied.stdout).toMatch(/production matches the rehearsal \(8 tiers compared before COMMIT\)/);

      // the rolled-out database as a plain dump (its functions created by the server with SET search_path FROM CURRENT):
      // stage C re-creates them on PGlite as the server did ('"$user", public', not PGlite's own 'public'): PASS
      // as a database whose objects another role owns (a dump then says OWNER TO it, and GRANTs): the clone is the loader's, as pg_restore --no-owner makes it
      const owner = `tg_dxowner_${Math.random().toString(36).slice(2, 8)}`;
      await onServer(
        (c) =>
          c.query(`create role ${owner}; grant usage, create on schema public to ${owner};
                   do $$ declare r record; begin
                     for r in select c.oid::regclass as t from pg_class c join pg_namespace n on n.oid = c.relnamespace
                               where n.nspname in ('axis', 'axis_audit', 'public') and c.relkind in ('r', 'v', 'm', 'p') loop
                       execute format('alter table %s owner to ${owner}', r.t);
                     end loop;
                     for r in select n.nspname from pg_namespace n where n.nspname in ('axis', 'axis_audit') loop
                       execute format('alter schema %I owner to ${owner}', r.nspname);
                     end loop;
                   end $$;
                   grant select on all tables in schema axis to public`),
        'directus',
      );
      const rolledOut = join(tmp('tiergate-dump-'), 'directus.sql');
      const dumped = dump();
      expect(dumped).toMatch(new RegExp(`OWNER TO ${owner}`));
      writeFileSync(rolledOut, dumped);
      const again = await runCli(['rehearse', '--dump', rolledOut, '--out', tmp('tiergate-evidence-')], { timeoutMs: 600_000 });
      expect(again.code, again.stdout + again.stderr).toBe(0);
      expect(again.stdout).toMatch(/Rehearsal PASS · Execution GO \(ospa=1\)/);
    } finally {
      await source.drop();
      await onServer((c) => c.query(`do $$ declare r record; begin for r in select rolname from pg_roles where rolname like 'tg\\_dxowner\\_%' loop execute format('drop role %I', r.rolname); end loop; end $$`)).catch(() => undefined);
    }
  });
});
