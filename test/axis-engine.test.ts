/**
 * The bundled plan through tiergate's own engine (apply / verify / rollback /
 * status) on the sample Directus database: the figures of
 * ../shared/design/axis-governance.md, tier by tier, on PGlite and PostgreSQL.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';

vi.setConfig({ testTimeout: 600_000 });
import type { Db } from '../src/db/port.js';
import { apply } from '../src/engine/apply.js';
import { rollback } from '../src/engine/rollback.js';
import type { RunResult } from '../src/engine/run-result.js';
import { status } from '../src/engine/status.js';
import { verify } from '../src/engine/verify.js';
import type { TierResult } from '../src/engine/result.js';
import { fingerprint } from '../src/probe/fingerprint.js';
import { openGate, plan, sampleDatabase } from './fixtures/axis-harness/harness.js';
import { testTargets } from './helpers/targets.js';

const byId = (r: RunResult, id: number): TierResult => r.tiers.find((t) => t.id === id)!;
const statuses = (r: RunResult) => Object.fromEntries(r.tiers.map((t) => [t.id, t.status]));
const added = (t: TierResult, rel: string) => t.delta?.rows[rel]?.added;

async function fullApply(db: Db): Promise<RunResult> {
  await openGate(db);
  return apply(db, plan);
}

describe.each(testTargets())('tiergate apply of the axis-governance plan on the sample (%s)', (kind) => {
  it('gate closed: 1, 5, 6 apply, 2, 3, 4 are blocked, honest gaps, NO-GO; opened: the spec figures, verify passes', async () => {
    const s = await sampleDatabase(kind);
    try {
      const closed = await apply(s.db, plan);
      expect(closed.outcome).toBe('no-go');
      expect(statuses(closed)).toEqual({ 0: 'Passed', 1: 'Applied', 5: 'Applied', 6: 'Applied', 7: 'Applied', 8: 'Applied', 2: 'Blocked', 3: 'Blocked', 4: 'Blocked', 90: 'Skipped' });
      expect(closed.gate).toMatchObject({ name: 'ospa', value: 0, open: false });
      const gaps = await status(s.db, plan);
      expect(gaps.metrics).toMatchObject({ axis_tables: 9, owner_gap: 210, containment_gap: 35, projection_gap: 65 });
      expect((await verify(s.db, plan)).outcome).toBe('failed');

      const open = await fullApply(s.db);
      expect(open.outcome).toBe('ok');
      expect(statuses(open)).toEqual({ 0: 'Passed', 1: 'Skipped', 5: 'Skipped', 6: 'Skipped', 7: 'Skipped', 8: 'Skipped', 2: 'Applied', 3: 'Applied', 4: 'Applied', 90: 'Passed' });
      expect(added(byId(open, 2), 'axis.ownership')).toBe(30);
      expect(byId(open, 2).delta?.metrics.owner_gap).toEqual({ before: 210, after: 0 });
      const t3 = byId(open, 3);
      expect([added(t3, 'axis.containment_rule'), added(t3, 'axis.containment_assignment'), added(t3, 'axis.ownership'), added(t3, 'axis.axis'), added(t3, 'axis.topic'), added(t3, 'axis.collection_topic')]).toEqual([1, 35, 35, 2, 5, 65]);
      const t4 = byId(open, 4);
      expect(added(t4, 'axis.reconcile_decision')).toBe(31);
      expect([t4.delta?.rows['axis.topic']?.changed, t4.delta?.rows['axis.axis']?.changed]).toEqual([4, 1]);
      expect(t4.delta?.metrics.divergent).toEqual({ before: 31, after: 0 });
      expect(t4.delta?.metrics.projection_gap).toEqual({ before: 65, after: 0 });
      for (const t of open.tiers) for (const x of t.expectations ?? []) expect(x, `tier ${t.id} ${x.what}`).toMatchObject({ ok: true });
      expect(byId(open, 90).post).toEqual([
        { expr: 'critical = 0', ok: true, value: 0 },
        { expr: 'emittable = 0', ok: true, value: 0 },
      ]);
    } finally {
      await s.close();
    }
  });

  it('rollback reverts 6, 4, 3; apply re-applies them to the same fingerprint', async () => {
    const s = await sampleDatabase(kind);
    try {
      await fullApply(s.db);
      const full = await fingerprint(s.db);
      const rb = await rollback(s.db, plan);
      expect(rb.outcome).toBe('ok');
      expect(statuses(rb)).toMatchObject({ 99: 'Applied', 6: 'Reverted', 4: 'Reverted', 3: 'Reverted' });
      expect(byId(rb, 99).delta?.metrics).toMatchObject({ axis_tables: { before: 9, after: 8 }, containment_gap: { before: 0, after: 35 }, owner_gap: { before: 0, after: 0 }, tagged_t34: { before: 143, after: 0 } });
      const again = await apply(s.db, plan);
      expect(statuses(again)).toMatchObject({ 1: 'Skipped', 5: 'Skipped', 2: 'Skipped', 6: 'Applied', 3: 'Applied', 4: 'Applied', 90: 'Passed' });
      const back = await fingerprint(s.db);
      expect(back.hash).toBe(full.hash);
    } finally {
      await s.close();
    }
  });
});

const PSQL = join(process.env.TIERGATE_TEST_PG_BINDIR ?? '/usr/bin', 'psql');

describe.runIf(testTargets().includes('postgres'))('the tier files by hand on a real server', () => {
  it('psql -1 -f of each file in plan order gives the same state as tiergate apply', async () => {
    expect(existsSync(PSQL), `psql not found at ${PSQL}`).toBe(true);
    const engine = await sampleDatabase('postgres');
    const byHand = await sampleDatabase('postgres');
    try {
      await fullApply(engine.db);
      await openGate(byHand.db);
      for (const tier of plan.tiers.filter((t) => t.kind !== 'rollback')) {
        const r = spawnSync(PSQL, ['-X', '-q', '-1', '-v', 'ON_ERROR_STOP=1', '-f', tier.path, byHand.t.url], { encoding: 'utf8' });
        expect(r.status, `tier ${tier.id}: ${r.stderr}`).toBe(0);
      }
      const a = await fingerprint(engine.db);
      const b = await fingerprint(byHand.db);
      expect(Object.keys(a.tables).length).toBeGreaterThan(60);
      expect(b.catalog).toEqual(a.catalog);
      expect(b.tables).toEqual(a.tables);
    } finally {
      await engine.close();
      await byHand.close();
    }
  });

  it('at scale 10 every figure of tiergate apply is ten times larger', async () => {
    const s = await sampleDatabase('postgres', { scale: 10 });
    try {
      const closed = await apply(s.db, plan);
      expect(closed.outcome).toBe('no-go');
      expect((await status(s.db, plan)).metrics).toMatchObject({ owner_gap: 2100, containment_gap: 350, projection_gap: 650 });
      const open = await fullApply(s.db);
      expect(open.outcome).toBe('ok');
      expect(added(byId(open, 2), 'axis.ownership')).toBe(300);
      const t3 = byId(open, 3);
      expect([added(t3, 'axis.containment_assignment'), added(t3, 'axis.ownership'), added(t3, 'axis.collection_topic')]).toEqual([350, 350, 650]);
      expect(added(byId(open, 4), 'axis.reconcile_decision')).toBe(310);
      expect(byId(open, 4).delta?.metrics.divergent).toEqual({ before: 310, after: 0 });
      expect(byId(open, 90).status).toBe('Passed');
    } finally {
      await s.close();
    }
  });
});
