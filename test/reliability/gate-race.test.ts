import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { bundledPlan, consistency, seededRandom, sleep, startCli, TEMPLATES, trialDb, type TrialDb } from './harness.js';
import { Tally } from './results.js';
import { campaignSize, trials } from './size.js';

/**
 * The gate race (guarantee 2): an approval is revoked — its approver
 * suspended (approvals themselves are append-only), or the proposal's payload
 * changed so that no approval counts — while the
 * gated tiers are starting or running. Over many interleavings, a gated tier
 * must never commit after the revocation committed: the engine locks the
 * approval rows and the approvers FOR SHARE in the tier's transaction (the plan's gate.lock),
 * so the revoker waits until the tier ends, and the next gated tier then
 * finds the gate closed. Commits are ordered by the server's commit
 * timestamps (track_commit_timestamp).
 *
 * A control run with the locks taken out of the plan (gate.lock removed, the
 * guard's FOR SHARE removed) must show the violation: the check can fail.
 */
type Revocation = 'suspend approver' | 'change payload';
const REVOKE_SQL: Record<Revocation, string> = {
  'suspend approver': `update directus_users set status = 'suspended' where id in (select a.approver from os_proposal_approvals a join os_proposals p on p.id = a.proposal where p.key = 'OS-AXIS')`,
  'change payload': `update os_proposals set payload = jsonb_set(payload, '{revoked}', 'true'), payload_sha256 = encode(sha256(convert_to(jsonb_set(payload, '{revoked}', 'true')::text, 'UTF8')), 'hex') where key = 'OS-AXIS'`,
};

interface RaceOutcome {
  violations: string[];
  problems: string[];
  /** the revocation had to wait for a tier's transaction */
  blocked: boolean;
  exit: number | null;
}

/** Starts a revocation on its own connection; resolves with its commit timestamp and how long it waited. */
async function revoke(db: TrialDb, kind: Revocation): Promise<{ committedAt: Date; waitedMs: number }> {
  const c = new pg.Client({ connectionString: db.url, application_name: 'reliability-revoker' });
  c.on('error', () => undefined);
  await c.connect();
  try {
    await c.query(`set lock_timeout = '30s'`);
    const started = performance.now();
    await c.query('begin');
    await c.query(REVOKE_SQL[kind]);
    const x = await c.query<{ xid: string }>('select txid_current()::text as xid');
    await c.query('commit');
    const waitedMs = performance.now() - started;
    const ts = await c.query<{ ts: Date }>('select pg_xact_commit_timestamp($1::text::xid) as ts', [x.rows[0]!.xid]);
    return { committedAt: ts.rows[0]!.ts, waitedMs };
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Gated tiers whose ledger row committed after the revocation did: each a violation. */
async function gatedCommits(db: TrialDb, gated: number[]): Promise<{ tier: number; committedAt: Date }[]> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    const r = await c.query<{ tier_id: number; ts: Date }>(
      `select tier_id, pg_xact_commit_timestamp(xmin) as ts from tiergate.ledger where status = 'applied' and tier_id = any ($1::int[])`,
      [gated],
    );
    return r.rows.map((x) => ({ tier: x.tier_id, committedAt: x.ts }));
  } finally {
    await c.end();
  }
}

async function race(options: { planDir?: string; moment: { hook: string; tier: number } | { afterMs: number }; kind: Revocation }): Promise<RaceOutcome> {
  const plan = bundledPlan();
  const gated = plan.tiers.filter((t) => t.gated).map((t) => t.id);
  const db = await trialDb(TEMPLATES.structure, 'race');
  const problems: string[] = [];
  try {
    const env: Record<string, string> = options.planDir ? { TIERGATE_PLAN: options.planDir } : {};
    if ('hook' in options.moment) Object.assign(env, { TIERGATE_TEST_HOOK: `${options.moment.hook}:${options.moment.tier}`, TIERGATE_TEST_HOOK_WAIT_MS: '700' });
    const cli = startCli(['apply', '--yes', '--target', db.url], { env, timeoutMs: 90_000 });
    if ('hook' in options.moment) await cli.waitFor(new RegExp(`tiergate-test-hook ${options.moment.hook}:${options.moment.tier}\\b`));
    else {
      await cli.waitFor(/^apply \S+ → /m);
      await sleep(options.moment.afterMs);
    }
    const revocation = revoke(db, options.kind);
    const run = await cli.done;
    const { committedAt, waitedMs } = await revocation;
    const commits = await gatedCommits(db, gated);
    const violations = commits.filter((c) => c.committedAt > committedAt).map((c) => `tier ${c.tier} committed ${c.committedAt.getTime() - committedAt.getTime()} ms after the revocation (${options.kind})`);
    if (run.signal) problems.push('apply hung');
    else if (run.code !== 0 && run.code !== 3) problems.push(`apply exit ${run.code}: ${run.stderr.trim().split('\n').slice(-2).join(' / ')}`);
    if (run.code === 3 && !/NO-GO/.test(run.stdout)) problems.push('exit 3 without NO-GO');
    problems.push(...(await consistency(db.url)).problems);
    // blocked: the revocation had to wait for a tier transaction (the hook wait is 700 ms)
    return { violations, problems, blocked: waitedMs > 300, exit: run.code };
  } finally {
    await db.drop();
  }
}

/** The bundled plan with the approval locks taken out: the control that must lose the race. */
function unlockedPlan(): string {
  const plan = bundledPlan();
  const dir = join(mkdtempSync(join(tmpdir(), 'tiergate-race-')), 'plan');
  cpSync(plan.dir, dir, { recursive: true });
  const yaml = parseYaml(readFileSync(join(dir, 'tiergate.yaml'), 'utf8')) as { gate: { lock?: string } };
  delete yaml.gate.lock;
  writeFileSync(join(dir, 'tiergate.yaml'), stringifyYaml(yaml));
  for (const t of plan.tiers.filter((x) => x.gated)) {
    const f = join(dir, t.file);
    writeFileSync(f, readFileSync(f, 'utf8').replace(/\s+FOR SHARE( OF a)?;/g, ';'));
  }
  return dir;
}

describe('gate race: an approval revoked while gated tiers start', () => {
  it('a gated tier never commits after its approval was revoked', async () => {
    const gated = bundledPlan().tiers.filter((t) => t.gated).map((t) => t.id);
    const steps = ['tier-begin', 'tier-script-done', 'tier-before-commit'];
    const kinds: Revocation[] = ['suspend approver', 'change payload'];
    const points = gated.flatMap((tier) => steps.map((hook) => ({ hook, tier })));
    const chosen = campaignSize() === 'full' ? points.flatMap((p) => kinds.map((kind) => ({ ...p, kind }))) : points.filter((_, i) => i % 3 === 0).map((p, i) => ({ ...p, kind: kinds[i % 2]! }));
    const tally = new Tally('gate race: approval revoked mid-tier');
    let blocked = 0;
    let noGo = 0;
    for (const p of chosen) {
      const o = await race({ moment: { hook: p.hook, tier: p.tier }, kind: p.kind });
      if (o.blocked) blocked++;
      if (o.exit === 3) noGo++;
      tally.add(`${p.kind} at ${p.hook}:${p.tier}`, [...o.violations, ...o.problems]);
    }
    const rnd = seededRandom('gate-race');
    const random = trials(4, 40);
    for (let i = 0; i < random; i++) {
      const afterMs = Math.round(rnd.next() * 1500);
      const kind = kinds[i % 2]!;
      const o = await race({ moment: { afterMs }, kind });
      if (o.blocked) blocked++;
      if (o.exit === 3) noGo++;
      tally.add(`${kind} ${afterMs} ms after connecting`, [...o.violations, ...o.problems]);
    }

    // the control: without the locks the same check must catch a gated tier committing after the revocation
    const unlocked = unlockedPlan();
    const control = await race({ planDir: unlocked, moment: { hook: 'tier-script-done', tier: gated[0]! }, kind: 'suspend approver' });
    rmSync(join(unlocked, '..'), { recursive: true, force: true });

    tally.record(
      `${chosen.length} tier steps + ${random} random moments (seed ${rnd.seed}); revoker waited behind a tier ${blocked}×, later gated tiers NO-GO ${noGo}×; control without locks: ${control.violations.length ? 'violation caught' : 'NOT caught'}`,
    );
    expect(tally.reasons).toEqual([]);
    expect(control.violations.length, 'the control run (locks removed) must show the violation').toBeGreaterThan(0);
  });
});
