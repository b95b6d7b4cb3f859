import { describe, expect, it } from 'vitest';
import { applyOrderIds, bundledPlan, percentile, seededRandom, startCli, stateKey, TEMPLATES, trialDb } from './harness.js';
import { killTrial, sigkill } from './kill-trials.js';
import { Tally } from './results.js';
import { trials } from './size.js';

/**
 * SIGKILL of `tiergate apply` at random moments of a full apply (uniform over
 * its duration, measured first): whatever the moment, the ledger names a
 * reachable state, the database is exactly that state, the next apply completes.
 */
describe('kill points: SIGKILL at random moments', () => {
  it('never leaves a tier partly applied; the next apply completes', async () => {
    const order = applyOrderIds(bundledPlan());
    const full = stateKey(order);
    // calibrate: how long an apply runs after it has connected (its first line), the median of three
    const spans: number[] = [];
    for (let i = 0; i < 3; i++) {
      const cal = await trialDb(TEMPLATES.s10, 'calib');
      const calib = startCli(['apply', '--yes', '--target', cal.url]);
      await calib.waitFor(/^apply \S+ → /m);
      const connected = performance.now();
      const r = await calib.done;
      spans.push(Math.round(performance.now() - connected));
      await cal.drop();
      expect(r.code, r.stderr).toBe(0);
    }
    const span = percentile(spans, 50);

    const n = trials(6, 140);
    const rnd = seededRandom('kill-random');
    const tally = new Tally('kill: SIGKILL at random moments (apply)');
    const lingers: number[] = [];
    const states = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const afterMs = Math.round(rnd.next() * span);
      const o = await killTrial({ template: TEMPLATES.s10, command: 'apply', moment: { afterMs }, fault: sigkill, finalKey: full });
      lingers.push(o.lingerMs);
      states.set(o.key, (states.get(o.key) ?? 0) + 1);
      tally.add(`apply killed ${afterMs} ms after connecting`, o.problems);
    }
    const spread = [...states.entries()].map(([k, v]) => `[${k}]×${v}`).join(' ');
    tally.record(`uniform over ${span} ms (seed ${rnd.seed}); states left: ${spread}; killed sessions gone within ${Math.max(...lingers)} ms (p50 ${percentile(lingers, 50)})`);
    expect(tally.reasons).toEqual([]);
  });
});
