import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { applyOrderIds, bundledPlan, consistency, runCli, sleep, startCli, TEMPLATES, trialDb, type TrialDb } from './harness.js';
import { Tally } from './results.js';
import { campaignSize, trials } from './size.js';

/**
 * Lock safety (guarantee 6): a long transaction holding a lock a run needs
 * makes it fail within its lock_timeout, naming the blocking process; readers
 * of the Directus tables are never blocked behind a tier; and no tier takes
 * an ACCESS EXCLUSIVE lock on a Directus (public) table at all.
 */
const plan = bundledPlan();
const LOCK_TIMEOUT_MS = parseDuration(plan.defaults.lock_timeout);

function parseDuration(d: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(us|ms|s|min|h|d)?$/.exec(d);
  if (!m) return 5000;
  const unit = { us: 0.001, ms: 1, s: 1000, min: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] ?? 'ms']!;
  return Number(m[1]) * unit;
}

/** A connection holding `sql`'s locks in an open transaction until released. */
async function hold(db: TrialDb, sql: string): Promise<{ pid: number; release(): Promise<void> }> {
  const c = new pg.Client({ connectionString: db.url, application_name: 'reliability-blocker' });
  c.on('error', () => undefined);
  await c.connect();
  const pid = (await c.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
  await c.query('begin');
  await c.query(sql);
  return {
    pid,
    release: async () => {
      await c.query('rollback').catch(() => undefined);
      await c.end().catch(() => undefined);
    },
  };
}

interface Blocking {
  name: string;
  template: string;
  /** what the blocker holds */
  sql: string;
  command?: 'apply' | 'rollback';
}

const BLOCKINGS: Blocking[] = [
  { name: 'data tier 2: SHARE lock on axis.ownership (its INSERT)', template: TEMPLATES.structure, sql: 'lock table axis.ownership in share mode' },
  { name: 'gate lock: the proposal row FOR UPDATE', template: TEMPLATES.structure, sql: `select 1 from os_proposals where key = 'OS-AXIS' for update` },
  { name: 'structure tier 1: ACCESS EXCLUSIVE on directus_relations', template: TEMPLATES.s10, sql: 'lock table directus_relations in access exclusive mode' },
  { name: 'preflight: ACCESS EXCLUSIVE on os_proposals', template: TEMPLATES.s10, sql: 'lock table os_proposals in access exclusive mode' },
  { name: "tiergate's own ledger: ACCESS EXCLUSIVE on tiergate.ledger", template: TEMPLATES.structure, sql: 'lock table tiergate.ledger in access exclusive mode' },
  { name: 'rollback tier 99: ACCESS EXCLUSIVE on axis.collection_topic', template: TEMPLATES.full, sql: 'lock table axis.collection_topic in access exclusive mode', command: 'rollback' },
];

describe('lock safety', () => {
  it('a run blocked by a long transaction fails within its lock_timeout, naming the blocker', async () => {
    const tally = new Tally('locks: blocked run fails within lock_timeout, names blocker');
    let slowest = 0;
    for (let round = 0; round < trials(1, 3); round++) {
      for (const b of BLOCKINGS) {
        const db = await trialDb(b.template, 'lock');
        const problems: string[] = [];
        try {
          const blocker = await hold(db, b.sql);
          const cli = startCli([b.command ?? 'apply', '--yes', '--target', db.url], { timeoutMs: 60_000 });
          await cli.waitFor(/ → /);
          const connected = performance.now();
          const run = await cli.done;
          const waited = Math.round(performance.now() - connected);
          slowest = Math.max(slowest, waited);
          await blocker.release();
          const text = run.stdout + run.stderr;
          if (run.signal) problems.push('hung (killed after its hard timeout)');
          else if (run.code !== 1) problems.push(`expected exit 1, got ${run.code}: ${text.trim().split('\n').slice(-3).join(' / ')}`);
          // every query of the run may wait at most lock_timeout: a few in a row still end well within 3×
          if (waited > LOCK_TIMEOUT_MS * 3) problems.push(`took ${waited} ms (lock_timeout ${plan.defaults.lock_timeout})`);
          if (!/lock timeout/i.test(text)) problems.push('does not say it hit the lock timeout');
          if (!new RegExp(`pid ${blocker.pid}\\b`).test(text)) problems.push(`does not name the blocking pid ${blocker.pid}: ${text.trim().split('\n').slice(-6).join(' / ')}`);
          if (!/reliability-blocker/.test(text)) problems.push("does not name the blocker's application");
          problems.push(...(await consistency(db.url)).problems);
        } finally {
          await db.drop();
        }
        tally.add(b.name, problems);
      }
    }
    tally.record(`${BLOCKINGS.length} kinds of blocker; failed at most ${slowest} ms after connecting (lock_timeout ${plan.defaults.lock_timeout})`);
    expect(tally.reasons).toEqual([]);
  });

  it('readers of the Directus tables are never blocked behind a tier', async () => {
    const order = applyOrderIds(plan);
    const steps = ['tier-script-done', 'tier-before-commit'];
    const points = order.flatMap((tier) => steps.map((hook) => ({ tier, hook })));
    const chosen = campaignSize() === 'full' ? points : points.filter((_, i) => i % 4 === 0);
    const tally = new Tally('locks: readers of Directus tables not blocked by a tier');
    let reads = 0;
    for (const p of chosen) {
      const db = await trialDb(TEMPLATES.s10, 'readers');
      const problems: string[] = [];
      try {
        const cli = startCli(['apply', '--yes', '--target', db.url], { env: { TIERGATE_TEST_HOOK: `${p.hook}:${p.tier}`, TIERGATE_TEST_HOOK_WAIT_MS: '20000' }, timeoutMs: 90_000 });
        await cli.waitFor(new RegExp(`tiergate-test-hook ${p.hook}:${p.tier}\\b`));
        const c = new pg.Client({ connectionString: db.url, application_name: 'reliability-reader' });
        await c.connect();
        try {
          // a reader that would wait gives up at once and counts as blocked
          await c.query(`set lock_timeout = '100ms'`);
          const tables = await c.query<{ t: string }>(`select format('%I.%I', schemaname, tablename) as t from pg_tables where schemaname = 'public' order by 1`);
          for (const { t } of tables.rows) {
            try {
              await c.query(`select count(*) from ${t}`);
              reads++;
            } catch (e) {
              problems.push(`reading ${t} while tier ${p.tier} is at ${p.hook}: ${(e as Error).message}`);
              if (problems.length > 3) break;
            }
          }
        } finally {
          await c.end();
        }
        cli.kill('SIGKILL');
        await cli.done;
      } finally {
        await db.drop();
      }
      tally.add(`${p.hook}:${p.tier}`, problems);
    }
    tally.record(`${chosen.length} tier steps, ${reads} reads of public tables (lock_timeout 100 ms), none blocked`);
    expect(tally.reasons).toEqual([]);
  });

  it('no tier takes an ACCESS EXCLUSIVE lock on a Directus (public) table', async () => {
    const tally = new Tally('locks: ACCESS EXCLUSIVE on public tables during a full apply');
    const LOCKS_SQL = `
      select l.pid, c.relname as rel, l.mode
        from pg_locks l join pg_class c on c.oid = l.relation join pg_namespace n on n.oid = c.relnamespace
       where l.granted and l.locktype = 'relation' and n.nspname = 'public'
         and l.database = (select oid from pg_database where datname = current_database())
         and l.pid in (select pid from pg_stat_activity where application_name like 'tiergate%')`;
    const STRENGTH = ['AccessShareLock', 'RowShareLock', 'RowExclusiveLock', 'ShareUpdateExclusiveLock', 'ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock'];
    let longest = 0;
    let samples = 0;
    let sampledMs = 0;
    let strongest = 'none';
    const strongestOn = new Set<string>();
    const note = (mode: string, rel: string) => {
      if (STRENGTH.indexOf(mode) > STRENGTH.indexOf(strongest)) {
        strongest = mode;
        strongestOn.clear();
      }
      if (mode === strongest) strongestOn.add(rel);
    };
    // free-running: a poller samples pg_locks as fast as it can during plain full applies;
    // held at each tier's end: every lock a tier took is still held just before its COMMIT, so one look sees them all
    const runs = [...Array(trials(1, 5)).fill('free'), 'held'];
    for (const mode of runs) {
      const db = await trialDb(TEMPLATES.s10, 'axlock');
      const problems: string[] = [];
      try {
        const poller = new pg.Client({ connectionString: db.url, application_name: 'reliability-lock-poller' });
        await poller.connect();
        const open = new Map<string, number>();
        let stop = false;
        const started = performance.now();
        const polling = (async () => {
          while (!stop) {
            const now = performance.now();
            const r = await poller.query<{ pid: number; rel: string; mode: string }>(LOCKS_SQL);
            samples++;
            const seen = new Set<string>();
            for (const l of r.rows) {
              note(l.mode, l.rel);
              if (l.mode !== 'AccessExclusiveLock') continue;
              const k = `${l.pid} ${l.rel}`;
              seen.add(k);
              if (!open.has(k)) open.set(k, now);
              longest = Math.max(longest, Math.round(performance.now() - open.get(k)!));
              problems.push(`ACCESS EXCLUSIVE on public.${l.rel} held by tiergate pid ${l.pid}`);
            }
            for (const k of [...open.keys()]) if (!seen.has(k)) open.delete(k);
          }
        })();
        const env: Record<string, string> = mode === 'held' ? { TIERGATE_TEST_HOOK: 'tier-before-commit:*', TIERGATE_TEST_HOOK_WAIT_MS: '300' } : {};
        const run = await runCli(['apply', '--yes', '--target', db.url], { env });
        stop = true;
        await polling;
        sampledMs += performance.now() - started;
        await poller.end();
        if (run.code !== 0) problems.push(`apply exit ${run.code}`);
      } finally {
        await db.drop();
      }
      tally.add(`${mode} apply`, [...new Set(problems)].slice(0, 3));
    }
    tally.record(
      `${runs.length} full applies, ${samples} pg_locks samples (${Math.round(samples / (sampledMs / 1000))}/s); longest ACCESS EXCLUSIVE on a public table: ${longest ? `${longest} ms` : 'none (0 ms)'}; strongest lock on public tables: ${strongest} (${[...strongestOn].slice(0, 4).join(', ')}${strongestOn.size > 4 ? ', …' : ''})`,
    );
    expect(tally.reasons).toEqual([]);
  });
});
