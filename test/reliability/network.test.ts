import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyOrderIds, bundledPlan, REL_ENV, relUrl, seededRandom, sleep, stateKey, TEMPLATES, trialDb } from './harness.js';
import { judgeConnectionLoss, killTrial, prefixKeys, type Fault } from './kill-trials.js';
import { copyPlan, type PlanCopy } from './plan-copy.js';
import { Tally } from './results.js';
import { campaignSize, trials } from './size.js';
import { TcpProxy } from './tcp-proxy.js';

/**
 * Network faults between tiergate and the server, through a TCP proxy:
 * - the link cut mid-tier (at each step, and at random moments): the server
 *   rolls the tier back, the run exits 1 with a message about the
 *   connection, a re-run completes;
 * - the link cut while the COMMIT's answer is on its way: the tier did
 *   commit, and the run must say so (not "rolled back"), or say the outcome
 *   is unknown;
 * - a silent partition (a black hole: nothing passes, nothing closes): the
 *   run must not wait forever, and the server must not hold the tier's
 *   locks forever.
 */
const plan = bundledPlan();
const order = applyOrderIds(plan);
const full = stateKey(order);

describe('network faults through a TCP proxy', () => {
  let proxy: TcpProxy;
  beforeAll(async () => {
    proxy = new TcpProxy(`${process.env[REL_ENV.socket]}/.s.PGSQL.${process.env[REL_ENV.port]}`);
    await proxy.start();
  });
  afterAll(async () => proxy?.stop());

  const newDb = (tpl: string) => trialDb(tpl, 'net', (db) => proxy.url(db), relUrl('postgres'));
  const cut: Fault = {
    name: 'cut',
    async strike() {
      proxy.cut();
    },
    judgeExit: judgeConnectionLoss,
  };

  it('the link cut mid-tier: rolled back by the server, reported, a re-run completes', async () => {
    const tally = new Tally('network: link cut mid-tier (TCP proxy)');
    const steps = ['tier-begin', 'tier-script-done', 'tier-before-commit'] as const;
    const points = order.flatMap((tier) => steps.map((hook) => ({ tier, hook })));
    const chosen = campaignSize() === 'full' ? points : points.filter((_, i) => i % 6 === 1);
    for (const p of chosen) {
      const o = await killTrial({ template: TEMPLATES.s10, command: 'apply', moment: p, fault: cut, expectKey: prefixKeys(order, p.tier).before, finalKey: full, newDb, hookWaitMs: 500 });
      tally.add(`cut at ${p.hook}:${p.tier}`, o.problems);
    }
    const rnd = seededRandom('network-cut');
    const random = trials(2, 12);
    for (let i = 0; i < random; i++) {
      const afterMs = Math.round(rnd.next() * 2500);
      const o = await killTrial({ template: TEMPLATES.s10, command: 'apply', moment: { afterMs }, fault: cut, finalKey: full, newDb });
      tally.add(`cut ${afterMs} ms after connecting`, o.problems);
    }
    tally.record(`${chosen.length} tier steps + ${random} random moments (seed ${rnd.seed})`);
    expect(tally.reasons).toEqual([]);
  });

  it("the COMMIT's answer lost: the run reports what the server did", async () => {
    const tally = new Tally('network: link cut during COMMIT (outcome in doubt)');
    const tiers = campaignSize() === 'full' ? order : [order[0]!, order[3]!];
    for (const tier of tiers) {
      const atCommit: Fault = {
        name: 'cut at COMMIT',
        async strike() {
          // the hook holds the tier just before its COMMIT: arm the cut for that COMMIT
          void proxy.cutAtNextCommit();
        },
        judgeExit: judgeConnectionLoss,
      };
      const o = await killTrial({
        template: TEMPLATES.s10,
        command: 'apply',
        moment: { hook: 'tier-before-commit', tier },
        fault: atCommit,
        finalKey: full,
        newDb,
        hookWaitMs: 300,
        judgeAfter: (run, key) => {
          const committed = key.split(',').includes(String(tier));
          const text = run.stdout + run.stderr;
          const line = new RegExp(`^\\s*${tier}\\s{2}.*$`, 'm').exec(run.stdout)?.[0] ?? '';
          if (committed && /rolled back: nothing of it was committed/.test(text) && !/outcome|unknown|committed before/i.test(text)) {
            return [`tier ${tier} committed on the server, but the run said it was rolled back (${line.trim()})`];
          }
          if (committed && !/Applied/.test(line) && !/unknown/i.test(text)) return [`tier ${tier} committed, but the run reported: ${line.trim()}`];
          return [];
        },
      });
      tally.add(`COMMIT of tier ${tier}`, o.problems);
    }
    tally.record(`${tiers.length} tiers whose COMMIT reached the server while the link broke: the run reports them committed`);
    expect(tally.reasons).toEqual([]);
  });

  describe('silent partition', () => {
    let copy: PlanCopy;
    beforeAll(() => {
      // short timeouts, so that "bounded" is seconds here (the bundled plan's statement_timeout is 5min)
      copy = copyPlan();
      const y = copy.yaml();
      y.defaults = { lock_timeout: '2s', statement_timeout: '5s' };
      copy.writeYaml(y);
    });
    afterAll(() => copy?.remove());

    it('a black hole mid-tier: the run ends, the server lets go, a re-run completes', async () => {
      const tally = new Tally('network: silent partition mid-tier (black hole)');
      const points = campaignSize() === 'full' ? order.map((tier) => ({ tier, hook: 'tier-script-done' as const })) : [{ tier: order[3]!, hook: 'tier-script-done' as const }];
      let slowest = 0;
      for (const p of points) {
        const hole: Fault = {
          name: 'black hole',
          async strike() {
            proxy.blackhole();
          },
          judgeExit: (run, struck) => {
            slowest = Math.max(slowest, run.ms);
            return judgeConnectionLoss(run, struck);
          },
        };
        const o = await killTrial({
          template: TEMPLATES.s10,
          command: 'apply',
          moment: p,
          fault: hole,
          expectKey: prefixKeys(order, p.tier).before,
          finalKey: full,
          newDb: async (tpl) => {
            const db = await newDb(tpl);
            return { ...db, drop: async () => (proxy.heal(), db.drop()) };
          },
          hookWaitMs: 200,
          // the partition heals once the run ended and the server let go, with the connections it held lost
          beforeCheck: () => proxy.heal(),
          env: { TIERGATE_PLAN: copy.dir },
          // the client gives up after statement_timeout + 10 s without an answer, then tries 15 s to record the failure
          hardTimeoutMs: 75_000,
          backendGoneMs: 30_000,
        });
        proxy.heal();
        await sleep(100);
        tally.add(`black hole at ${p.hook}:${p.tier}`, o.problems);
      }
      tally.record(`${points.length} partitions (statement_timeout 5s, lock_timeout 2s): the run ended after at most ${Math.round(slowest / 1000)} s, the server released the tier`);
      expect(tally.reasons).toEqual([]);
    });
  });
});
