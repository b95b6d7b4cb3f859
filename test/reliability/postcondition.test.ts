import { describe, expect, it } from 'vitest';
import { applyOrderIds, buildSampleTemplate, bundledPlan, consistency, fingerprintOf, onRel, references, relUrl, runCli, stateKey, TEMPLATES, trialDb } from './harness.js';
import { copyPlan } from './plan-copy.js';
import { Tally } from './results.js';
import { campaignSize } from './size.js';

/**
 * Post-condition failure (guarantee 1): a tier whose post-condition does not
 * hold commits nothing. Proven by fingerprint: the whole database (catalog
 * and rows, outside tiergate's own schema) is exactly the reference state of
 * the tiers before it, its ledger has no row for it, and a failure record
 * names the post-condition.
 */
describe('post-condition failure', () => {
  it('commits nothing: the fingerprint is the state before the tier', async () => {
    const plan = bundledPlan();
    const order = applyOrderIds(plan);
    const refs = references();
    const tally = new Tally('post-condition failure: nothing committed (fingerprint)');
    const tiers = campaignSize() === 'full' ? [...order, ...order] : order.filter((_, i) => i % 2 === 0);

    for (const id of tiers) {
      const copy = copyPlan();
      const db = await trialDb(TEMPLATES.s10, 'post');
      const problems: string[] = [];
      try {
        // an impossible post-condition on tier `id`: the tier runs to the end, then must roll back
        const y = copy.yaml();
        const t = copy.tier(y, id);
        t.post = ['axis_tables = -1'];
        copy.writeYaml(y);
        const before = order.slice(0, order.indexOf(id));
        const r = await runCli(['apply', '--yes', '--plan', copy.dir, '--target', db.url]);
        if (r.code !== 1) problems.push(`exit ${r.code}, expected 1`);
        if (!/post-condition 'axis_tables = -1' does not hold/.test(r.stdout)) problems.push('the output does not name the failing post-condition');
        const state = await consistency(db.url, 'database');
        problems.push(...state.problems);
        if (state.key !== stateKey(before)) problems.push(`the ledger says [${state.key}], expected [${stateKey(before)}]`);
        const fp = await fingerprintOf(db.url, 'database');
        if (fp !== refs.database[stateKey(before)]) problems.push(`tier ${id}: the fingerprint is not the state before it`);
        const attempts = await onRel((c) => c.query<{ message: string }>('select message from tiergate.attempt where tier_id = $1', [id]), 'postgres', db.url);
        if (!attempts.rows.some((a) => /axis_tables = -1/.test(a.message))) problems.push('no failure record naming the post-condition');
      } finally {
        await db.drop();
        copy.remove();
      }
      tally.add(`tier ${id}`, problems);
    }

    // the rollback tier: a failing post-condition leaves every tier applied, nothing reverted
    {
      const copy = copyPlan();
      const db = await trialDb(TEMPLATES.full, 'post');
      const problems: string[] = [];
      try {
        const y = copy.yaml();
        const rb = y.tiers.find((t) => t.kind === 'rollback' && t.scope !== 'subject')!;
        rb.post = ['tagged_t34 = -1'];
        copy.writeYaml(y);
        const r = await runCli(['rollback', '--yes', '--plan', copy.dir, '--target', db.url]);
        if (r.code !== 1) problems.push(`exit ${r.code}, expected 1`);
        if ((await fingerprintOf(db.url, 'database')) !== refs.database[stateKey(order)]) problems.push('rollback: the fingerprint changed');
        const reverted = await onRel((c) => c.query(`select 1 from tiergate.ledger where status = 'reverted'`), 'postgres', db.url);
        if (reverted.rowCount) problems.push('rollback: tiers marked reverted');
      } finally {
        await db.drop();
        copy.remove();
      }
      tally.add('rollback tier', problems);
    }

    // the file's own closing assertion: a sample whose payload forgot an anchor (tier 2 cannot close owner_gap)
    {
      const tpl = `post_missing_${process.pid}`;
      await buildMissingAnchorTemplate(tpl);
      const db = await trialDb(tpl, 'post');
      const problems: string[] = [];
      try {
        const before = await fingerprintOf(db.url, 'database');
        const ledgerBefore = await ledgerCount(db.url);
        const r = await runCli(['apply', '--yes', '--target', db.url]);
        if (r.code !== 1) problems.push(`exit ${r.code}, expected 1`);
        if (!/tier 2 'Ownership seed' failed at tiers\/02_ownership_seed\.sql:\d+/.test(r.stdout)) problems.push('the output does not name tier 2 and its file:line');
        if ((await fingerprintOf(db.url, 'database')) !== before) problems.push('missing-anchor: the fingerprint changed');
        if ((await ledgerCount(db.url)) !== ledgerBefore) problems.push('missing-anchor: ledger rows were written');
      } finally {
        await db.drop();
        await onRel((c) => c.query(`drop database if exists "${tpl}" with (force)`));
      }
      tally.add('missing-anchor sample: the file assertion fails', problems);
    }
    tally.record(`${tiers.length} tiers with an impossible post-condition, the rollback tier, and a failing closing assertion; database fingerprint unchanged each time`);
    expect(tally.reasons).toEqual([]);
  });
});

async function ledgerCount(url: string): Promise<number> {
  return onRel(async (c) => (await c.query<{ n: number }>('select count(*)::int as n from tiergate.ledger')).rows[0]!.n, 'postgres', url);
}

/** The missing-anchor variant at scale 1, marked, gate open, structure tiers applied. */
async function buildMissingAnchorTemplate(name: string): Promise<void> {
  await buildSampleTemplate(relUrlOf, name, 1, { variant: 'missing-anchor' });
  const r = await runCli(['apply', '--yes', '--structure-only', '--target', relUrl(name)]);
  if (r.code !== 0 && r.code !== 3) throw new Error(`structure tiers on the missing-anchor sample: exit ${r.code}: ${r.stderr}`);
}

const relUrlOf = (db: string) => relUrl(db);
