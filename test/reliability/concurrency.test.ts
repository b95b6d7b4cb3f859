import { describe, expect, it } from 'vitest';
import { applyOrderIds, bundledPlan, consistency, ledgerHistory, percentile, runCli, stateKey, startCli, TEMPLATES, trialDb } from './harness.js';
import { Tally } from './results.js';
import { trials } from './size.js';

/**
 * Eight `tiergate apply` / `rollback` processes started at once on one
 * target: one rollout at a time (the advisory lock), every loser exits 4
 * without waiting for the winner, nothing hangs, no tier is applied twice,
 * and the database ends in the state its ledger names.
 */
const PROCESSES = 8;
/** the winner waits a second at the start of every tier, so that the others surely arrive while it holds the lock */
const HOLD = { TIERGATE_TEST_HOOK: 'tier-begin:*', TIERGATE_TEST_HOOK_WAIT_MS: '1000' };

type Mix = { name: string; template: string; commands: ('apply' | 'rollback')[] };
const MIXES: Mix[] = [
  { name: '8 applies on a new target', template: TEMPLATES.s10, commands: Array(8).fill('apply') },
  { name: '4 rollbacks + 4 applies on an applied target', template: TEMPLATES.full, commands: ['rollback', 'apply', 'rollback', 'apply', 'rollback', 'apply', 'rollback', 'apply'] },
  { name: '6 applies + 2 rollbacks on a structure-only target', template: TEMPLATES.structure, commands: ['apply', 'apply', 'rollback', 'apply', 'apply', 'rollback', 'apply', 'apply'] },
];

describe('concurrency: 8 simultaneous runs', () => {
  it('one rollout at a time; losers exit 4 at once; no tier applied twice; nothing hangs', async () => {
    const order = applyOrderIds(bundledPlan());
    const tally = new Tally('concurrency: 8 simultaneous apply/rollback');
    const lockWaits: number[] = [];
    let losers = 0;
    /** rounds where the only run that got the lock was a rollback with nothing to revert */
    let allRefused = 0;
    const rounds = trials(1, 8);
    for (let round = 0; round < rounds; round++) {
      for (const mix of MIXES) {
        const db = await trialDb(mix.template, 'conc');
        const problems: string[] = [];
        try {
          const runs = mix.commands.slice(0, PROCESSES).map((cmd) => {
            const h = startCli([cmd, '--yes', '--target', db.url], { env: HOLD, timeoutMs: 120_000 });
            // when it has connected: from then on, a loser must exit at once
            const connected = h.waitFor(new RegExp(`^${cmd} \\S+ → `, 'm'), 120_000).then(() => performance.now(), () => null);
            // when it said the lock is held: the moment it tried the lock (give or take the holder lookup)
            const refused = h.waitFor(/held by another run/, 120_000).then(() => performance.now(), () => null);
            return { cmd, h, connected, refused };
          });
          const ends = await Promise.all(runs.map(async (r) => ({ cmd: r.cmd, run: await r.h.done, endedAt: performance.now(), connectedAt: await r.connected, refusedAt: await r.refused })));
          const codes = ends.map((e) => e.run.code);
          // exit 4 means the lock was tried, not waited for: the loser ends while a winner is still running
          // (a holder is any run that got the lock: a rollback refusing with exit 2 held it too)
          const winners = ends.filter((e) => e.run.code !== 4 && e.connectedAt !== null);
          const duringAWinner = (t: number) => winners.some((w) => w.connectedAt! <= t && t <= w.endedAt);
          for (const e of ends) {
            if (e.run.signal) problems.push(`${e.cmd} hung: killed after its hard timeout`);
            else if (e.run.code === 4) {
              losers++;
              if (!/held by another run/.test(e.run.stderr)) problems.push(`${e.cmd} exit 4 without saying who holds the lock: ${e.run.stderr.trim()}`);
              if (e.connectedAt !== null && e.refusedAt !== null) lockWaits.push(Math.round(e.refusedAt - e.connectedAt));
              if (e.refusedAt === null || !duringAWinner(e.refusedAt)) problems.push(`${e.cmd} was refused the lock while no winner was running`);
            } else if (e.run.code === 2 && e.cmd === 'rollback' && /not applied/.test(e.run.stderr)) {
              // a rollback that got the lock when there was nothing to revert: refused, nothing changed
            } else if (e.run.code !== 0) problems.push(`${e.cmd} exit ${e.run.code}: ${(e.run.stderr || e.run.stdout).trim().split('\n').slice(-2).join(' / ')}`);
          }
          // a run that got the lock must exist; it may be a rollback refusing (exit 2, nothing to revert) that
          // every apply met: then no run exits 0, which is right, and the next apply below completes the rollout
          if (winners.length === 0) problems.push('no run got the lock');
          else if (!codes.includes(0)) allRefused++;
          if (!codes.includes(4)) problems.push('no run met the lock (the runs did not overlap)');
          const history = await ledgerHistory(db.url);
          problems.push(...history.problems);
          if (mix.commands.every((c) => c === 'apply')) {
            for (const id of order) if (history.appliedRows.get(id) !== 1) problems.push(`tier ${id} has ${history.appliedRows.get(id) ?? 0} applied rows, expected exactly 1`);
            if (codes.filter((c) => c === 0).length !== 1) problems.push(`expected one winner, got exit codes ${codes.join(',')}`);
          }
          const state = await consistency(db.url);
          problems.push(...state.problems);
          const next = await runCli(['apply', '--yes', '--target', db.url]);
          if (next.code !== 0) problems.push(`the next apply exited ${next.code}`);
          const final = await consistency(db.url);
          problems.push(...final.problems);
          if (final.key !== stateKey(order)) problems.push(`after the next apply: [${final.key}]`);
        } finally {
          await db.drop();
        }
        tally.add(`round ${round + 1}: ${mix.name}`, problems);
      }
    }
    const maxWait = Math.max(...lockWaits);
    tally.record(`${rounds} round(s) × ${MIXES.length} mixes × ${PROCESSES} processes; ${losers} losers exited 4, refused while a winner ran, at most ${maxWait} ms after connecting (median ${percentile(lockWaits, 50)} ms, two cores, eight processes starting at once)${allRefused ? `; ${allRefused}× the lock went to a rollback with nothing to revert and every apply met it (exit 2 + exit 4s), the next apply completed` : ''}`);
    expect(tally.reasons).toEqual([]);
    // bounded even on a loaded two-core machine (8 processes start at once): the lock is tried once, never waited for
    expect(maxWait).toBeLessThan(10_000);
  });
});
