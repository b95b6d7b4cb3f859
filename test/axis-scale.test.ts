/**
 * At --scale 10 every collection-based figure of the rollout is ten times the
 * scale-1 figure (the 2 axes do not multiply: see the sample's README), on
 * PGlite and on a real PostgreSQL server.
 */
import { describe, expect, it } from 'vitest';
import { testTargets } from './helpers/targets.js';
import { applyTier, content, metrics, openGate, rows, diffRows, sampleDatabase, scalar, scanVersusPlan } from './fixtures/axis-harness/harness.js';

const N = 10;

describe.each(testTargets())('the rollout at scale 10 (%s)', (kind) => {
  it('shows every figure of scale 1 × 10', async () => {
    const s = await sampleDatabase(kind, { scale: N });
    const db = s.db;
    try {
      for (const id of [0, 1, 5, 6]) await applyTier(db, id);
      expect(await metrics(db)).toMatchObject({ axis_tables: 9, owner_gap: 210 * N, containment_gap: 35 * N, projection_gap: 65 * N, divergent: 0 });
      const stageA = await scanVersusPlan(db);
      expect(stageA.scan).toEqual(stageA.plan);
      const r0 = await rows(db);
      await openGate(db);
      await applyTier(db, 2);
      const r2 = await rows(db);
      expect(diffRows(r0, r2)).toEqual({ 'axis.ownership': { added: 30 * N, removed: 0, changed: 0 } });
      await applyTier(db, 3);
      const r3 = await rows(db);
      expect(diffRows(r2, r3)).toEqual({
        'axis.containment_rule': { added: 1, removed: 0, changed: 0 },
        'axis.containment_assignment': { added: 35 * N, removed: 0, changed: 0 },
        'axis.ownership': { added: 35 * N, removed: 0, changed: 0 },
        'axis.axis': { added: 2, removed: 0, changed: 0 },
        'axis.topic': { added: 5 * N, removed: 0, changed: 0 },
        'axis.collection_topic': { added: 65 * N, removed: 0, changed: 0 },
      });
      const flags = await db.query<{ f: string; n: number }>('select reconcile_flag as f, count(*)::int as n from axis.v_reconcile_collection_topic_vs_label group by 1');
      expect(Object.fromEntries(flags.rows.map((r) => [r.f, r.n]))).toEqual({ match: 34 * N, orthogonal_facet: 4 * N, no_label_rule: 27 * N });
      expect(await metrics(db)).toMatchObject({ containment_gap: 0, divergent: 31 * N });
      await applyTier(db, 4);
      expect(diffRows(r3, await rows(db))).toEqual({
        'axis.reconcile_decision': { added: 31 * N, removed: 0, changed: 0 },
        'axis.topic': { added: 0, removed: 0, changed: 4 * N },
        'axis.axis': { added: 0, removed: 0, changed: 1 },
      });
      await applyTier(db, 90);
      expect(await metrics(db)).toMatchObject({ owner_gap: 0, containment_gap: 0, divergent: 0, projection_gap: 0, critical: 0, emittable: 0 });
      const rolledOut = await scanVersusPlan(db);
      expect(rolledOut.scan).toEqual(rolledOut.plan);

      const full = await content(db);
      await applyTier(db, 99);
      expect(await metrics(db)).toMatchObject({ axis_tables: 8, containment_gap: 35 * N, owner_gap: 0, tagged_t34: 0 });
      for (const id of [6, 3, 4]) await applyTier(db, id);
      expect(await content(db)).toEqual(full);
      expect(await scalar(db, 'select candidates as v from axis.fn_governance_scan()')).toBe(0);
    } finally {
      await s.close();
    }
  });
});
