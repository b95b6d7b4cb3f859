/**
 * Global setup of the reliability campaign (vitest.reliability.config.ts):
 *
 * - starts the campaign's own throwaway PostgreSQL cluster (Unix socket,
 *   trust auth except the `canary` role, which needs its password);
 * - builds the template databases every trial copies (the sample Directus
 *   database at scale 10 and 1, marked as a tiergate clone of `directus` and
 *   its gate opened with the plan's `rehearsal.open_gate`; then with the
 *   structure tiers and with every tier applied);
 * - computes the reference fingerprint of every state an apply or a rollback
 *   can leave (each plan-order prefix of the tiers, and after the rollback);
 * - at the end prints the `check | trials | failures` table and writes it to
 *   results.md in the results folder.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb } from '../../src/db/open-db.js';
import { apply } from '../../src/engine/apply.js';
import { rollback } from '../../src/engine/rollback.js';
import { ensureLedger } from '../../src/engine/ledger.js';
import { runTier } from '../../src/engine/run-tier.js';
import { startCluster } from './cluster.js';
import { buildSampleTemplate, bundledPlan, CANARY_PASSWORD, CANARY_USER, fingerprintOf, onRel, REL_ENV, stateKey, TEMPLATES, type References } from './harness.js';
import { readResults, renderTable, RESULTS_DIR_KEY } from './results.js';
import { campaignSize } from './size.js';

export default async function setup(): Promise<() => Promise<void>> {
  const started = performance.now();
  const size = campaignSize();
  const results = mkdtempSync(join(tmpdir(), 'tiergate-reliability-'));
  process.env[RESULTS_DIR_KEY] = results;
  const cluster = startCluster({ passwordRoles: [CANARY_USER], label: 'shared' });
  process.env[REL_ENV.url] = cluster.url();
  process.env[REL_ENV.socket] = cluster.socket;
  process.env[REL_ENV.port] = String(cluster.port);
  process.env[REL_ENV.log] = cluster.log;
  process.env.TIERGATE_TEST_PG_BINDIR ??= cluster.bin;
  try {
    await onRel(async (c) => {
      // the server log names database and application, for the source-safety and secrets checks;
      // the canary's password must not reach the log through our own CREATE ROLE
      await c.query(`alter system set log_line_prefix = '%m [%p] db=%d app=%a '`);
      await c.query('select pg_reload_conf()');
      await c.query(`set log_statement = 'none'`);
      await c.query(`create role ${CANARY_USER} login superuser password '${CANARY_PASSWORD.replace(/'/g, "''")}'`);
      await c.query('reset log_statement');
    });
    const plan = bundledPlan();
    if (!plan.rehearsal?.open_gate) throw new Error('the bundled plan has no rehearsal.open_gate');

    await buildSampleTemplate((db) => cluster.url(db), TEMPLATES.s10, 10);
    await buildSampleTemplate((db) => cluster.url(db), TEMPLATES.s1, 1);
    await onRel((c) => c.query(`create database "${TEMPLATES.structure}" template "${TEMPLATES.s10}"`));
    await withDb(cluster.url(TEMPLATES.structure), async (db) => {
      const r = await apply(db, plan, { structureOnly: true });
      if (r.outcome === 'failed') throw new Error('structure tiers failed on the template');
    });
    await onRel((c) => c.query(`create database "${TEMPLATES.full}" template "${TEMPLATES.s10}"`));
    await withDb(cluster.url(TEMPLATES.full), async (db) => {
      const r = await apply(db, plan);
      if (r.outcome !== 'ok') throw new Error(`apply on the full template: ${r.outcome}`);
    });

    // Reference fingerprints: every plan-order prefix, the rollback, and the re-apply after it.
    const refs: References = { plan: {}, database: {} };
    await onRel((c) => c.query(`create database rel_refs template "${TEMPLATES.s10}"`));
    const refsUrl = cluster.url('rel_refs');
    const remember = async (applied: number[]) => {
      refs.plan[stateKey(applied)] = await fingerprintOf(refsUrl, 'plan', plan);
      refs.database[stateKey(applied)] = await fingerprintOf(refsUrl, 'database', plan);
    };
    await withDb(refsUrl, async (db) => {
      await ensureLedger(db);
      const applied: number[] = [];
      await remember(applied);
      for (const tier of plan.tiers.filter((t) => t.kind === 'structure' || t.kind === 'data')) {
        const r = await runTier(db, plan, tier);
        if (r.status !== 'Applied') throw new Error(`reference: tier ${tier.id} did not apply: ${r.error?.message ?? r.reason}`);
        applied.push(tier.id);
        await remember(applied);
      }
      const rb = await rollback(db, plan);
      if (rb.outcome !== 'ok') throw new Error(`reference: rollback failed: ${JSON.stringify(rb.tiers.map((t) => [t.id, t.status, t.error?.message, t.reason]))}`);
      const rolled = applied.filter((id) => !plan.tiers.find((t) => t.kind === 'rollback' && t.scope !== 'subject')!.reverts.includes(id));
      await remember(rolled);
      const again = await apply(db, plan);
      if (again.outcome !== 'ok') throw new Error('reference: re-apply after the rollback failed');
      if ((await fingerprintOf(refsUrl, 'database', plan)) !== refs.database[stateKey(applied)]) throw new Error('reference: re-applying after the rollback does not reproduce the full apply');
    });
    await onRel((c) => c.query('drop database rel_refs with (force)'));
    const refsFile = join(results, 'refs.json');
    writeFileSync(refsFile, JSON.stringify(refs, null, 2));
    process.env[REL_ENV.refs] = refsFile;
    console.info(`reliability campaign (${size}): cluster ${cluster.root}, templates and ${Object.keys(refs.plan).length} reference states ready in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } catch (e) {
    cluster.destroy();
    throw e;
  }

  return async () => {
    const rows = readResults(results);
    const table = renderTable(rows);
    const total = rows.reduce((n, r) => n + r.failures, 0);
    const summary = `\nreliability campaign (TIERGATE_RELIABILITY_SIZE=${size}), ${((performance.now() - started) / 1000).toFixed(0)} s:\n\n${table}\n\n${rows.length} checks, ${rows.reduce((n, r) => n + r.trials, 0)} trials, ${total} failures\n`;
    console.log(summary);
    writeFileSync(join(results, 'results.md'), summary);
    const keep = join(process.cwd(), '.tmp');
    mkdirSync(keep, { recursive: true });
    writeFileSync(join(keep, `reliability-${size}.md`), summary);
    console.log(`(also written to .tmp/reliability-${size}.md)`);
    cluster.destroy();
    rmSync(results, { recursive: true, force: true });
  };
}

async function withDb<T>(url: string, fn: (db: Awaited<ReturnType<typeof openDb>>) => Promise<T>): Promise<T> {
  const db = await openDb(url);
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}
