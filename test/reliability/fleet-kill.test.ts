import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { withDb } from '../../src/db/open-db.js';
import { ensureLedger } from '../../src/engine/ledger.js';
import { runTier } from '../../src/engine/run-tier.js';
import { bundledPlan, fingerprintOf, ledgerHistory, appliedTiers, onRel, relUrl, runCli, seededRandom, startCli, stateKey, TEMPLATES, trialDb, waitBackendsGone, type CliHandle, type TrialDb } from './harness.js';
import { Tally } from './results.js';
import { trials } from './size.js';

/**
 * Fleet rollouts killed at random moments (seeded; TIERGATE_RELIABILITY_SEED
 * replays them): the coordinator (`fleet apply`, with its own workers and
 * the embedded control) and worker processes (`fleet worker` on a
 * PostgreSQL control database). After every kill, each target's ledger
 * names a plan-order prefix of the tiers, its fingerprint is exactly that
 * state's (scale 1 references computed here), no tier was ever applied
 * twice; running the same command again completes the rollout.
 */

const TARGETS = 3;
const plan = bundledPlan();
const body = plan.tiers.filter((t) => t.kind === 'structure' || t.kind === 'data').map((t) => t.id);
const FULL = stateKey(body);

/** Fingerprints (plan schemas) of every plan-order prefix, on the scale-1 template. */
async function scaleOneReferences(): Promise<Record<string, string>> {
  const refs: Record<string, string> = {};
  const db = await trialDb(TEMPLATES.s1, 'fleetref');
  try {
    refs[stateKey([])] = await fingerprintOf(db.url, 'plan', plan);
    await withDb(db.url, async (conn) => {
      await ensureLedger(conn);
      const applied: number[] = [];
      for (const id of body) {
        const r = await runTier(conn, plan, plan.tiers.find((t) => t.id === id)!);
        if (r.status !== 'Applied') throw new Error(`reference: tier ${id} did not apply: ${r.error?.message ?? r.reason}`);
        applied.push(id);
        refs[stateKey(applied)] = await fingerprintOf(db.url, 'plan', plan);
      }
    });
  } finally {
    await db.drop();
  }
  return refs;
}

/** Each target's state after a kill: a reachable state, exactly that state's fingerprint, nothing applied twice. */
async function judge(targets: TrialDb[], refs: Record<string, string>, finalKey?: string): Promise<string[]> {
  const problems: string[] = [];
  for (const t of targets) {
    await waitBackendsGone(t.name, 30_000);
    const key = stateKey(await appliedTiers(t.url, plan));
    if (refs[key] === undefined) problems.push(`${t.name}: the ledger says [${key}]: not a plan-order prefix`);
    else if ((await fingerprintOf(t.url, 'plan', plan)) !== refs[key]) problems.push(`${t.name}: the ledger says [${key}], the fingerprint is not that state's`);
    if (finalKey !== undefined && key !== finalKey) problems.push(`${t.name}: [${key}] after the rollout completed, expected [${finalKey}]`);
    const history = await ledgerHistory(t.url, plan).catch(() => ({ problems: [], appliedRows: new Map() }));
    problems.push(...history.problems.map((p) => `${t.name}: ${p}`));
  }
  return problems;
}

function targetsFile(dir: string, targets: TrialDb[]): string {
  const file = join(dir, `fleet-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(
    file,
    [
      'plan_database: from_targets',
      'concurrency: { total: 3, per_server: 2 }',
      `scratch: ${JSON.stringify(relUrl('postgres'))}`,
      'targets:',
      ...targets.map((t) => `  - { name: ${t.name}, url: ${JSON.stringify(t.url)} }`),
      'waves:',
      '  - { name: canary, count: 1 }',
      '  - { name: rest }',
    ].join('\n'),
  );
  return file;
}

describe('fleet: SIGKILL of the coordinator and of workers at random moments', () => {
  it('every target is always in a state of the plan, nothing applied twice; the same command completes the rollout', async () => {
    const refs = await scaleOneReferences();
    // targets as a user has them: not marked as a clone of anything (the campaign's templates are marked clones of directus)
    const template = 'rel_tpl_fleet_s1';
    await onRel((c) => c.query(`drop database if exists ${template}`).then(() => c.query(`create database ${template} template "${TEMPLATES.s1}"`)));
    await onRel((c) => c.query('drop table tiergate.clone_mark'), template);
    const rnd = seededRandom('fleet-kill');
    // full size: rounds until at least 52 SIGKILLs (a round's coordinator may finish before its kill comes), at most 40
    const minRounds = trials(2, 20);
    const minKills = trials(0, 52);
    const maxRounds = trials(2, 40);
    const killsPerRound = trials(2, 4);
    const work = mkdtempSync(join(tmpdir(), 'tiergate-fleet-kill-'));
    const tally = new Tally('fleet: SIGKILL of coordinator and workers during waves');
    let kills = 0;
    const killed = { coordinator: 0, worker: 0 };
    try {
      let rounds = 0;
      for (let round = 0; round < maxRounds && (round < minRounds || kills < minKills); round++, rounds++) {
        const targets: TrialDb[] = [];
        for (let i = 0; i < TARGETS; i++) targets.push(await trialDb(template, `fleet${round}`));
        const file = targetsFile(work, targets);
        const workersRound = round % 2 === 1;
        let control: TrialDb | null = null;
        try {
          if (!workersRound) {
            // the coordinator with its own workers and the embedded control, killed and run again
            const args = ['fleet', 'apply', '--targets', file, '--control', `pglite:${join(work, `ctl-${round}`)}`, '--out', join(work, 'out'), '--yes'];
            for (let k = 0; k < killsPerRound; k++) {
              const run = startCli(args, { timeoutMs: 600_000 });
              const afterMs = 1500 + Math.round(rnd.next() * 25_000);
              const ended = await Promise.race([run.done.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), afterMs))]);
              if (ended) break;
              run.kill('SIGKILL');
              await run.done;
              kills++;
              killed.coordinator++;
              tally.add(`round ${round}: coordinator killed after ${afterMs} ms`, await judge(targets, refs));
            }
            const last = await runCli(args, { timeoutMs: 900_000 });
            tally.add(`round ${round}: the same command again`, [...(last.code === 0 ? [] : [`exit ${last.code}: ${last.stderr.slice(0, 300)} ${last.stdout.slice(-300)}`]), ...(await judge(targets, refs, FULL))]);
          } else {
            // worker processes on a PostgreSQL control: one killed at a random moment, a new one started in its place
            control = await trialDb('template1', 'fleetctl');
            const env = { TIERGATE_FLEET_HEARTBEAT_SECONDS: '10' };
            const coordinator = startCli(['fleet', 'apply', '--targets', file, '--control', control.url, '--workers', '0', '--out', join(work, 'out'), '--yes'], { env, timeoutMs: 900_000 });
            const spawnWorker = () => startCli(['fleet', 'worker', '--control', control!.url, '--workers', '1', '--out', join(work, 'out')], { env, timeoutMs: 900_000 });
            // workers join once the rollout is recorded (they may as well start first: they wait for a running rollout)
            await coordinator.waitFor(/^fleet \S+: \d+ targets/m, 120_000);
            const workers: CliHandle[] = [spawnWorker(), spawnWorker()];
            let done = false;
            void coordinator.done.then(() => (done = true));
            for (let k = 0; k < killsPerRound && !done; k++) {
              await new Promise((r) => setTimeout(r, 1500 + Math.round(rnd.next() * 15_000)));
              if (done) break;
              const victim = Math.floor(rnd.next() * workers.length);
              workers[victim]!.kill('SIGKILL');
              await workers[victim]!.done;
              workers[victim] = spawnWorker();
              kills++;
              killed.worker++;
              // judged once the rollout is over (the targets are in use meanwhile)
            }
            const r = await coordinator.done;
            for (const w of workers) w.kill('SIGINT');
            await Promise.all(workers.map((w) => w.done));
            tally.add(`round ${round}: workers killed, the rollout completed`, [...(r.code === 0 ? [] : [`coordinator exit ${r.code}: ${r.stderr.slice(0, 300)} ${r.stdout.slice(-400)}`]), ...(await judge(targets, refs, FULL))]);
          }
        } finally {
          for (const t of targets) await t.drop();
          await control?.drop();
        }
      }
      const clones = await onRel((c) => c.query<{ n: number }>(`select count(*)::int as n from pg_database where datname like 'tiergate_clone_fleet%'`));
      // a killed rehearsal's clone is dropped by the next attempt of the same step
      tally.add('clone databases left on the scratch server', clones.rows[0]!.n ? [`${clones.rows[0]!.n} left`] : []);
      tally.record(
        `${kills} SIGKILLs (${killed.coordinator} of the coordinator, ${killed.worker} of workers) in ${rounds} rollouts of ${TARGETS} targets, seed ${rnd.seed}; clone databases left on the scratch server: ${clones.rows[0]!.n}`,
      );
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
    expect(tally.reasons).toEqual([]);
  }, 4 * 3_600_000);
});
