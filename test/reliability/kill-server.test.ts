import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from './cluster.js';
import { applyOrderIds, buildSampleTemplate, bundledPlan, onRel, seededRandom, stateKey, TEMPLATES, trialDb } from './harness.js';
import { judgeConnectionLoss, killTrial, prefixKeys, type Fault, type HookStep } from './kill-trials.js';
import { Tally } from './results.js';
import { campaignSize, trials } from './size.js';

/**
 * Server-side faults in the middle of a tier: the engine's backend
 * terminated (pg_terminate_backend), and the whole server restarted without
 * a checkpoint (pg_ctl restart -m immediate, on a cluster of this test's
 * own). The run must end with exit 1 and a message about the connection,
 * nothing partly applied, every tier it reported Applied still in the
 * ledger, and the next apply must complete.
 */
const order = applyOrderIds(bundledPlan());
const full = stateKey(order);
const STEPS: HookStep[] = ['tier-begin', 'tier-script-done', 'tier-before-commit'];

/** hook points: ci takes one step per tier, rotating; full takes every step of every tier */
function hookPoints(): { tier: number; hook: HookStep }[] {
  const all = order.flatMap((tier) => STEPS.map((hook) => ({ tier, hook })));
  return campaignSize() === 'full' ? all : all.filter((_, i) => i % 5 === 0);
}

describe('server faults mid-tier', () => {
  it('pg_terminate_backend of the engine: rolled back, reported, the next apply completes', async () => {
    const terminate: Fault = {
      name: 'terminate',
      async strike(_cli, db) {
        const r = await onRel((c) =>
          c.query(`select pg_terminate_backend(pid) as ok from pg_stat_activity where datname = $1 and application_name like 'tiergate apply%'`, [db.name]),
        );
        // no session: the run closed it on its way out, and must end as a complete run
        return r.rows.length ? undefined : 'missed';
      },
      judgeExit: judgeConnectionLoss,
    };
    const tally = new Tally('server: pg_terminate_backend mid-tier');
    for (const p of hookPoints()) {
      const o = await killTrial({ template: TEMPLATES.s10, command: 'apply', moment: p, fault: terminate, expectKey: prefixKeys(order, p.tier).before, finalKey: full, hookWaitMs: 1500 });
      tally.add(`terminate at ${p.hook}:${p.tier}`, o.problems);
    }
    const rnd = seededRandom('terminate');
    for (let i = 0; i < trials(2, 12); i++) {
      const afterMs = Math.round(rnd.next() * 2500);
      const o = await killTrial({ template: TEMPLATES.s10, command: 'apply', moment: { afterMs }, fault: terminate, finalKey: full });
      tally.add(`terminate ${afterMs} ms after connecting`, o.problems);
    }
    tally.record(`${hookPoints().length} tier steps + ${trials(2, 12)} random moments (seed ${rnd.seed})`);
    expect(tally.reasons).toEqual([]);
  });

  describe('pg_ctl restart -m immediate', () => {
    let cluster: Cluster;
    beforeAll(async () => {
      // a cluster of this test's own: restarting it disturbs no other check; durable commits (synchronous_commit on)
      cluster = startCluster({ label: 'restart', durable: true });
      await buildSampleTemplate((db) => cluster.url(db), 'restart_tpl', 10);
    });
    afterAll(() => cluster?.destroy());

    it('mid-run: rolled back, reported, committed tiers survive, the next apply completes', async () => {
      const restart: Fault = {
        name: 'restart',
        async strike() {
          cluster.restartImmediate();
        },
        judgeExit: judgeConnectionLoss,
      };
      const newDb = (tpl: string) => trialDb(tpl, 'restart', (db) => cluster.url(db));
      const tally = new Tally('server: pg_ctl restart -m immediate mid-run');
      const points = hookPoints().filter((_, i) => campaignSize() === 'full' || i % 2 === 0);
      for (const p of points) {
        const o = await killTrial({ template: 'restart_tpl', command: 'apply', moment: p, fault: restart, expectKey: prefixKeys(order, p.tier).before, finalKey: full, newDb, hookWaitMs: 1000 });
        tally.add(`restart at ${p.hook}:${p.tier}`, o.problems);
      }
      const rnd = seededRandom('restart');
      const random = trials(1, 8);
      for (let i = 0; i < random; i++) {
        const afterMs = Math.round(rnd.next() * 2500);
        const o = await killTrial({ template: 'restart_tpl', command: 'apply', moment: { afterMs }, fault: restart, finalKey: full, newDb });
        tally.add(`restart ${afterMs} ms after connecting`, o.problems);
      }
      tally.record(`${points.length} tier steps + ${random} random moments (seed ${rnd.seed}), own cluster, synchronous_commit on`);
      expect(tally.reasons).toEqual([]);
    });
  });
});
