import { describe, expect, it } from 'vitest';
import { applyOrderIds, bundledPlan, stateKey, TEMPLATES } from './harness.js';
import { HOOK_STEPS, killTrial, prefixKeys, sigkill } from './kill-trials.js';
import { Tally } from './results.js';
import { campaignSize, trials } from './size.js';

/**
 * SIGKILL of `tiergate apply` / `rollback` at every step of every tier (the
 * test hook holds the process there): afterwards the ledger names exactly
 * the tiers committed before the kill, the database is exactly that state
 * (fingerprint), and the next apply completes.
 */
describe('kill points: SIGKILL at each step of each tier', () => {
  it('never leaves a tier partly applied; the next apply completes', async () => {
    const plan = bundledPlan();
    const order = applyOrderIds(plan);
    const full = stateKey(order);
    const rb = plan.tiers.find((t) => t.kind === 'rollback' && t.scope !== 'subject')!;
    const rolled = stateKey(order.filter((id) => !rb.reverts.includes(id)));
    const points = order.flatMap((tier) => HOOK_STEPS.map((hook) => ({ tier, hook })));
    // ci: every step, each on two different tiers; full: every step of every tier, three times
    const chosen = campaignSize() === 'full' ? [...points, ...points, ...points] : points.filter((_, i) => i % 3 === 0);
    const rollbackPoints = campaignSize() === 'full' ? [...HOOK_STEPS, ...HOOK_STEPS] : (['tier-before-commit', 'tier-committed'] as const);

    const tally = new Tally('kill: SIGKILL at each tier step (apply + rollback)');
    const lingers: number[] = [];
    for (const p of chosen) {
      const keys = prefixKeys(order, p.tier);
      const o = await killTrial({
        template: TEMPLATES.s10,
        command: 'apply',
        moment: p,
        fault: sigkill,
        expectKey: p.hook === 'tier-committed' ? keys.after : keys.before,
        finalKey: full,
      });
      lingers.push(o.lingerMs);
      tally.add(`apply ${p.hook}:${p.tier}`, o.problems);
    }
    for (const hook of rollbackPoints) {
      const o = await killTrial({
        template: TEMPLATES.full,
        command: 'rollback',
        moment: { hook, tier: rb.id },
        fault: sigkill,
        expectKey: hook === 'tier-committed' ? rolled : full,
        finalKey: full,
      });
      lingers.push(o.lingerMs);
      tally.add(`rollback ${hook}:${rb.id}`, o.problems);
    }
    tally.record(`${chosen.length} apply + ${rollbackPoints.length} rollback kill points, scale 10; killed sessions gone within ${Math.max(...lingers)} ms`);
    expect(tally.reasons).toEqual([]);
    expect(tally.trials).toBe(chosen.length + rollbackPoints.length);
  });
});
