/**
 * The axis-governance plan's SQL on the sample Directus database, on PGlite
 * and on a real PostgreSQL server: every tier file in plan order, each in one
 * transaction, with the figures of the spec's table checked after each tier
 * (objects, rows, metrics) — and the plan's own `expect` checked against
 * what was measured, so the YAML cannot drift from the SQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../src/db/port.js';
import { compareExpectations } from '../src/engine/expectations.js';
import type { Delta } from '../src/engine/result.js';
import { testTargets } from './helpers/targets.js';
import {
  applyTier, catalog, content, createCollectionAsDirectus, diffMaps, diffRows, gate, metric, metrics, openGate, plan, rows, sampleDatabase,
  scalar, scanVersusPlan, tierError, tierSql, type Catalog, type Changes, type Sample,
} from './fixtures/axis-harness/harness.js';

interface Measured {
  objects: Record<keyof Catalog, Changes>;
  rows: Record<string, Changes>;
  metrics: Record<string, [number | null, number | null]>;
  /** the plan's figures the tier's expect reads, read just before it */
  figures: Record<string, number | null>;
}

/** Applies a tier and measures what it did. */
async function measure(db: Db, id: number, run: () => Promise<void> = () => applyTier(db, id)): Promise<Measured> {
  const tier = plan.tiers.find((t) => t.id === id)!;
  const [c0, r0, m0] = [await catalog(db), await rows(db), await metrics(db)];
  const figures = Object.fromEntries(await Promise.all(tier.figures.map(async (f) => [f, await scalar(db, `select (${plan.figures[f]})::int as v`)] as const)));
  await run();
  const [c1, r1, m1] = [await catalog(db), await rows(db), await metrics(db)];
  const objects = Object.fromEntries((Object.keys(c0) as (keyof Catalog)[]).map((k) => [k, diffMaps(c0[k], c1[k])])) as Measured['objects'];
  const mets = Object.fromEntries(Object.keys(m0).map((k) => [k, [m0[k]!, m1[k]!] as [number | null, number | null]]));
  return { objects, rows: diffRows(r0, r1), metrics: mets, figures };
}

/**
 * The plan's `expect` for a tier holds for what was measured, evaluated as
 * the engine evaluates it (with this database's figures). The spec figures
 * themselves are asserted by each test below: the plan holds none of them.
 */
function expectPlanFigures(id: number, m: Measured): void {
  const tier = plan.tiers.find((t) => t.id === id)!;
  const names = (n: number) => Array.from({ length: n }, (_, i) => `x${i}`);
  const delta: Delta = {
    objects: Object.fromEntries(Object.entries(m.objects).map(([k, c]) => [k, { added: names(c.added), removed: names(c.removed), changed: names(c.changed) }])),
    rows: m.rows,
    metrics: Object.fromEntries(Object.entries(m.metrics).map(([k, [before, after]]) => [k, { before, after }])),
  };
  // (the harness measures tables, views, functions, sequences and indexes; the engine's tests cover the other kinds)
  const missed = compareExpectations(tier, delta, m.figures).filter((x) => !x.ok && !/^(schemas|constraints|triggers|policies|rules|types|extensions)\b/.test(x.what));
  expect({ tier: id, missed }).toEqual({ tier: id, missed: [] });
}

const T34 = (m: Measured, table: string) => m.rows[table] ?? { added: 0, removed: 0, changed: 0 };

/**
 * `CREATE [OR REPLACE] VIEW|FUNCTION axis.name …;` statements of a tier file, by
 * name (normalised to `CREATE`). A view ends at the first line ending in `;`
 * that is not a comment; a function at its closing `$fn$;`.
 */
function statements(id: number): Map<string, string> {
  const out = new Map<string, string>();
  let name: string | null = null;
  let isFunction = false;
  let lines: string[] = [];
  for (const line of tierSql(id).split('\n')) {
    const start = /^CREATE (?:OR REPLACE )?(VIEW|FUNCTION) (axis\.\w+)/.exec(line);
    if (!name && start) {
      [name, isFunction, lines] = [start[2]!, start[1] === 'FUNCTION', [line.replace(/^CREATE (OR REPLACE )?/, 'CREATE ')]];
      continue;
    }
    if (!name) continue;
    lines.push(line);
    const end = isFunction ? line.startsWith('$fn$;') : line.trimEnd().endsWith(';') && !line.trimStart().startsWith('--');
    if (end) {
      out.set(name, lines.join('\n'));
      name = null;
    }
  }
  return out;
}

describe('the tier files keep their copies in sync', () => {
  it('rollback 99 restores tier 1 views and tier 5 function verbatim', () => {
    const rollback = statements(99);
    for (const [name, sql] of [...statements(1), ...statements(5)]) expect({ name, sql: rollback.get(name) }).toEqual({ name, sql });
    expect(rollback.size).toBe(6);
  });

  it("tier 6's v_governed_collection is tier 1's plus the exempt decision", () => {
    const t1 = statements(1).get('axis.v_governed_collection')!;
    const t6 = statements(6).get('axis.v_governed_collection')!;
    expect(t6).toBe(
      t1
        .replace('       false AS exempt,', '       ex.collection IS NOT NULL AS exempt,')
        .replace(
          'LEFT JOIN projected p ON p.collection = u.collection;',
          "LEFT JOIN projected p ON p.collection = u.collection\nLEFT JOIN axis.reconcile_decision ex ON ex.collection = u.collection AND ex.topic IS NULL AND ex.decision = 'exempt';",
        ),
    );
  });
});

describe.each(testTargets())('axis-governance plan on the sample at scale 1 (%s)', (kind) => {
  let s: Sample;
  let db: Db;
  let tier1Views: Map<string, string>;
  let tier5Function: Map<string, string>;
  let fullApply: Record<string, string[]>;

  /** The scan's one-pass metrics equal the plan's metric queries. */
  const scanAgrees = async () => {
    const { scan, plan: planned } = await scanVersusPlan(db);
    expect(scan).toEqual(planned);
  };

  beforeAll(async () => {
    s = await sampleDatabase(kind);
    db = s.db;
  }, 180_000);
  afterAll(async () => s?.close());

  it('tier 0 passes on the Directus database (or its clone), writes nothing and reports ospa 0', async () => {
    const m = await measure(db, 0);
    expectPlanFigures(0, m);
    expect(await gate(db)).toBe(0);
    expect(m.metrics.axis_tables).toEqual([0, 0]);
  });

  it('structure tiers 1, 5, 6 apply with the gate closed, with the spec figures', async () => {
    const m1 = await measure(db, 1);
    expectPlanFigures(1, m1);
    expect(m1.objects.tables).toMatchObject({ added: 6 });
    expect(m1.objects.views).toMatchObject({ added: 5 });
    expect(m1.metrics.axis_tables).toEqual([0, 6]);
    tier1Views = (await catalog(db)).views;

    const m5 = await measure(db, 5);
    expectPlanFigures(5, m5);
    expect(m5.objects.tables).toMatchObject({ added: 2 });
    expect(m5.objects.functions).toMatchObject({ added: 1 });
    expect(m5.metrics.axis_tables).toEqual([6, 8]);
    tier5Function = (await catalog(db)).functions;
    await scanAgrees();

    const m6 = await measure(db, 6);
    expectPlanFigures(6, m6);
    expect(m6.objects.tables).toMatchObject({ added: 1 });
    expect(m6.objects.views).toEqual({ added: 1, removed: 0, changed: 5 });
    expect(m6.metrics.axis_tables).toEqual([8, 9]);
    expect(m6.objects.functions).toEqual({ added: 0, removed: 0, changed: 1 });
    await scanAgrees();
  });

  it('stage A: the honest gaps are visible and verify fails', async () => {
    expect(await metric(db, 'owner_gap')).toBe(210);
    expect(await metric(db, 'containment_gap')).toBe(35);
    expect(await metric(db, 'projection_gap')).toBe(65);
    const critical = (await metric(db, 'critical'))!;
    const emittable = (await metric(db, 'emittable'))!;
    expect(critical + emittable).toBeGreaterThan(0);
    const err = await tierError(db, 90);
    expect(err?.sqlstate).toBe('TG004');
    expect(err?.message).toMatch(/verify: owner_gap = 210/);
  });

  it('stage A: gated tiers 2, 3, 4 refuse with the gate closed and leave schema axis untouched', async () => {
    const [c0, r0] = [await catalog(db), await content(db)];
    for (const id of [2, 3, 4]) {
      const err = await tierError(db, id);
      expect(err).toEqual({ sqlstate: 'TG001', message: `tiergate gate ospa is closed (0 < 1): tier ${id} refused` });
    }
    expect(await catalog(db)).toEqual(c0);
    expect(await content(db)).toEqual(r0);
  });

  it('the scan counts every collection as a candidate before ownership is seeded', async () => {
    const run = await db.query<{ candidates: number; metrics: Record<string, number> }>('select candidates, metrics from axis.fn_governance_scan()');
    expect(run.rows[0]!.candidates).toBe(65);
    expect(run.rows[0]!.metrics).toEqual({ ...(await metrics(db)), tagged_t34: undefined, amendment_rows: undefined, candidates: 65 });
  });

  it('an approval of an older payload, or of a payload edited behind its hash, does not open the gate', async () => {
    await expect(
      db.transaction(async (tx) => {
        await tx.exec(`insert into os_proposal_approvals (proposal, approver, payload_sha256)
                         select id, '0b9a8e3c-3f2a-4c6e-9a51-6d2f1c7e8a01', payload_sha256 from os_proposals where key = 'OS-AXIS'`);
        // a new revision of the payload: the approval above is of the older one
        await tx.exec(`update os_proposals set payload = payload || '{"revision": 2}',
                         payload_sha256 = encode(sha256(convert_to((payload || '{"revision": 2}')::text, 'UTF8')), 'hex') where key = 'OS-AXIS'`);
        expect(await scalar(tx, `select (${plan.gate!.sql})::int as v`)).toBe(0);
        await tx.exec(tierSql(2));
      }),
    ).rejects.toMatchObject({ sqlstate: 'TG001' });
    await expect(
      db.transaction(async (tx) => {
        await tx.exec(`insert into os_proposal_approvals (proposal, approver, payload_sha256)
                         select id, '0b9a8e3c-3f2a-4c6e-9a51-6d2f1c7e8a01', payload_sha256 from os_proposals where key = 'OS-AXIS'`);
        // the payload changed but its recorded hash did not: the approval approved other content
        await tx.exec(`update os_proposals set payload = payload || '{"revision": 3}' where key = 'OS-AXIS'`);
        await tx.exec(tierSql(2));
      }),
    ).rejects.toMatchObject({ sqlstate: 'TG001' });
    // an approval of another proposal never counts (the sample has one)
    expect(await scalar(db, `select count(*)::int as v from os_proposal_approvals`)).toBe(1);
    expect(await gate(db)).toBe(0);
  });

  it('stage B: with an approval of the current payload, tiers 2, 3, 4 write exactly the spec figures', async () => {
    await openGate(db);
    expect(await gate(db)).toBe(1);

    const m2 = await measure(db, 2);
    expectPlanFigures(2, m2);
    expect(m2.rows).toEqual({ 'axis.ownership': { added: 30, removed: 0, changed: 0 } });
    expect(m2.metrics.owner_gap).toEqual([210, 0]);
    await scanAgrees();

    const m3 = await measure(db, 3);
    expectPlanFigures(3, m3);
    expect(m3.rows).toEqual({
      'axis.containment_rule': { added: 1, removed: 0, changed: 0 },
      'axis.containment_assignment': { added: 35, removed: 0, changed: 0 },
      'axis.ownership': { added: 35, removed: 0, changed: 0 },
      'axis.axis': { added: 2, removed: 0, changed: 0 },
      'axis.topic': { added: 5, removed: 0, changed: 0 },
      'axis.collection_topic': { added: 65, removed: 0, changed: 0 },
    });
    expect(m3.metrics.containment_gap).toEqual([35, 0]);
    await scanAgrees();
    const flags = await db.query<{ f: string; n: number }>(
      'select reconcile_flag as f, count(*)::int as n from axis.v_reconcile_collection_topic_vs_label group by 1 order by 1',
    );
    expect(Object.fromEntries(flags.rows.map((r) => [r.f, r.n]))).toEqual({ match: 34, orthogonal_facet: 4, no_label_rule: 27 });

    const m4 = await measure(db, 4);
    expectPlanFigures(4, m4);
    expect(T34(m4, 'axis.reconcile_decision')).toEqual({ added: 31, removed: 0, changed: 0 });
    expect(T34(m4, 'axis.topic')).toEqual({ added: 0, removed: 0, changed: 4 });
    expect(T34(m4, 'axis.axis')).toEqual({ added: 0, removed: 0, changed: 1 });
    expect(m4.metrics.divergent).toEqual([31, 0]);
    expect(m4.metrics.projection_gap).toEqual([65, 0]);
    await scanAgrees();
    // every status changed keeps the previous one and the tag
    expect(await scalar(db, `select count(*)::int as v from axis.topic where status_tag = 'PROD_T4' and previous_status = 'candidate' and status = 'active'`)).toBe(4);
    expect(await scalar(db, `select count(*)::int as v from axis.axis where status_tag = 'PROD_T4' and previous_status = 'proposed' and status = 'ratified'`)).toBe(1);
  });

  it('verify passes: critical 0, emittable 0; the scan records every metric and no candidate', async () => {
    const m = await measure(db, 90);
    expectPlanFigures(90, m);
    expect(m.metrics.critical).toEqual([0, 0]);
    expect(m.metrics.emittable).toEqual([0, 0]);
    const run = await db.query<{ candidates: number; metrics: Record<string, number> }>('select candidates, metrics from axis.fn_governance_scan()');
    const plain = await metrics(db);
    expect(run.rows[0]).toEqual({ candidates: 0, metrics: { ...plain, tagged_t34: undefined, amendment_rows: undefined, candidates: 0 } });
    const drift = await db.query<{ metric: string; value: string; previous_value: string | null }>(
      `select metric, value::text as value, previous_value::text as previous_value from axis.drift_state where metric in ('owner_gap', 'candidates') order by 1`,
    );
    // the value before the last change: candidates went 65 → 35 (tier 2) → 0 (tier 3); owner_gap 210 → 0 (tier 2)
    expect(drift.rows).toEqual([
      { metric: 'candidates', value: '0', previous_value: '35' },
      { metric: 'owner_gap', value: '0', previous_value: '210' },
    ]);
    fullApply = await content(db);
  });

  it('rollback 99 reverts 6, 4, 3; re-applying 6, 3, 4 reproduces the first full apply', async () => {
    const m = await measure(db, 99);
    expectPlanFigures(99, m);
    expect(m.metrics.tagged_t34).toEqual([143, 0]);
    expect(m.metrics.axis_tables).toEqual([9, 8]);
    expect(m.metrics.containment_gap).toEqual([0, 35]);
    expect(m.metrics.owner_gap).toEqual([0, 0]);
    const after = await catalog(db);
    expect(after.views).toEqual(tier1Views);
    expect(after.functions).toEqual(tier5Function);
    expect(after.tables.has('reconcile_decision')).toBe(false);
    expect(await scalar(db, `select count(*)::int as v from axis.ownership where tag = 'PROD_T2'`)).toBe(30);
    expect(await scalar(db, `select count(*)::int as v from axis.ownership where tag <> 'PROD_T2'`)).toBe(0);
    await scanAgrees();

    for (const id of [6, 3, 4]) await applyTier(db, id);
    expect(await content(db)).toEqual(fullApply);
    await applyTier(db, 90);
    await scanAgrees();
  });

  it('a collection created after the rollout is a candidate of the next scan and an emittable finding; exempting it settles it', async () => {
    await createCollectionAsDirectus(db, 'reviews');
    const run = await db.query<{ candidates: number; candidate_sample: string[] }>('select candidates, candidate_sample from axis.fn_governance_scan()');
    expect(run.rows[0]).toEqual({ candidates: 1, candidate_sample: ['reviews'] });
    const findings = await db.query('select key, collection, severity, emittable from axis.v_governance_finding');
    expect(findings.rows).toEqual([{ key: 'candidate:reviews', collection: 'reviews', severity: 'warning', emittable: true }]);
    expect(await metric(db, 'emittable')).toBe(1);
    expect(await metric(db, 'critical')).toBe(0);
    await scanAgrees();
    // run as one transaction, verify stops at its first failing concern: the new anchor's 6 fields have no owner
    expect((await tierError(db, 90))?.message).toBe('verify: owner_gap = 6 (expected 0): 1 anchor has no owner: reviews');

    await db.exec(`insert into axis.reconcile_decision (collection, decision, rationale, tag) values ('reviews', 'exempt', 'moderation scratch table', 'UI')`);
    expect(await metric(db, 'emittable')).toBe(0);
    expect(await metric(db, 'owner_gap')).toBe(0);
    expect(await scalar(db, 'select candidates as v from axis.fn_governance_scan()')).toBe(0);
    await scanAgrees();
    await applyTier(db, 90);
  });

  it('verify fails when the approved payload is edited after the rollout', async () => {
    await expect(
      db.transaction(async (tx) => {
        await tx.exec(`update os_proposals set payload = payload || '{"edited": true}' where key = 'OS-AXIS'`);
        await tx.exec(tierSql(90));
      }),
    ).rejects.toMatchObject({ sqlstate: 'TG004', message: expect.stringMatching(/^verify: proposal OS-AXIS has payload_sha256 \w{64} but its payload hashes to \w{64}: the payload changed after it was approved$/) });
    await applyTier(db, 90);
  });

  it('an ownership row whose collection was dropped is an orphaned, emittable finding', async () => {
    await db.transaction(async (tx) => {
      await tx.exec(`drop table reviews; delete from directus_fields where collection = 'reviews';
                     delete from directus_relations where many_collection = 'reviews'; delete from directus_collections where collection = 'reviews'`);
      await tx.exec(`insert into axis.ownership (collection, owner, basis, tag) values ('reviews', 'team-moderation', 'anchor', 'UI')`);
    });
    const f = await db.query('select key, severity, emittable from axis.v_governance_finding');
    expect(f.rows).toEqual([{ key: 'orphaned_ownership:reviews', severity: 'warning', emittable: true }]);
    await scanAgrees();
    await db.exec(`delete from axis.ownership where collection = 'reviews'; delete from axis.reconcile_decision where collection = 'reviews'`);
    await scanAgrees();
  });
});
