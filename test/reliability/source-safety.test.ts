import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openDb } from '../../src/db/open-db.js';
import { TargetError } from '../../src/errors.js';
import { openGate } from '../../src/rehearsal/rehearse.js';
import { buildSampleTemplate, bundledPlan, onRel, relUrl, runCli, serverLog, STACK_LINE } from './harness.js';
import { Tally } from './results.js';
import { trials } from './size.js';

/**
 * Source safety (guarantee 7): a rehearsal only reads its source. The source
 * is the database named `directus` (unmarked, as production is); after each
 * rehearsal its pg_dump is byte-identical, the server logged no modifying
 * statement in it (log_statement = mod for that database), and opening the
 * gate on it is refused.
 */
const SOURCE = 'directus';

function dump(url: string): string {
  const bin = process.env.TIERGATE_TEST_PG_BINDIR!;
  const text = execFileSync(join(bin, 'pg_dump'), ['--no-comments', '-d', url], { encoding: 'utf8', maxBuffer: 512 * 1024 * 1024 });
  // pg_dump (15.14+) brackets its output with \restrict / \unrestrict and a random key: not content
  return text.replace(/^\\(un)?restrict \S+$/gm, '');
}

/** Lines the server logged for statements in `database` that change something (log_statement = mod). */
function modifyingStatements(logFrom: number, database: string): string[] {
  const log = readFileSync(serverLog(), 'utf8').slice(logFrom);
  return log.split('\n').filter((l) => l.includes(` db=${database} `) && /\bLOG:\s+statement:/.test(l) && !l.includes('app=reliability-'));
}

/** The failed checks of a rehearsal's --json result, for the failure message. */
function failedChecks(stdout: string): string {
  try {
    const result = JSON.parse(stdout) as { verdict?: { failures?: string[] } };
    return (result.verdict?.failures ?? []).join(' / ');
  } catch {
    return stdout.slice(-400);
  }
}

interface Case {
  name: string;
  scale: number;
  variant: 'standard' | 'missing-anchor';
  approved: boolean;
  expectCode: number;
}

const CASES: Case[] = [
  { name: 'scale 1, gate closed (NO-GO)', scale: 1, variant: 'standard', approved: false, expectCode: 0 },
  // the plan's `expect` figures are the scale-1 sample's: a source of another scale fails them (exit 1) by design
  { name: 'scale 1, gate open (GO)', scale: 1, variant: 'standard', approved: true, expectCode: 0 },
  { name: 'scale 10, gate open: expectations of scale 1 missed (exit 1)', scale: 10, variant: 'standard', approved: true, expectCode: 1 },
  { name: 'a failing rehearsal (missing anchor)', scale: 1, variant: 'missing-anchor', approved: false, expectCode: 1 },
];

describe('source safety', () => {
  it('a rehearsal never writes to its source; the gate opens only on a marked clone', async () => {
    const tally = new Tally('source safety: rehearsal leaves the source byte-identical');
    const runs = trials(1, 2);
    const cases = runs === 1 ? [CASES[0]!] : CASES.flatMap((c) => Array(runs).fill(c) as Case[]);
    for (const c of cases) {
      const problems: string[] = [];
      await onRel((x) => x.query(`drop database if exists ${SOURCE} with (force)`));
      await buildSampleTemplate((db) => relUrl(db), SOURCE, c.scale, { variant: c.variant, openGate: c.approved });
      // an unmarked database: take the clone mark the builder put there away, as on production
      await onRel((x) => x.query('drop schema tiergate cascade'), SOURCE);
      await onRel((x) => x.query(`alter database ${SOURCE} set log_statement = 'mod'`));
      const out = mkdtempSync(join(tmpdir(), 'tiergate-src-'));
      try {
        const before = dump(relUrl(SOURCE));
        const logFrom = readFileSync(serverLog(), 'utf8').length;
        const r = await runCli(['rehearse', '--source', relUrl(SOURCE), '--scratch', relUrl('postgres'), '--out', out, '--json'], { timeoutMs: 300_000 });
        if (r.code !== c.expectCode) problems.push(`rehearse exit ${r.code}, expected ${c.expectCode}: ${r.stderr.trim().split('\n').slice(-3).join(' / ')} ${failedChecks(r.stdout)}`);
        if (STACK_LINE.test(r.stdout + r.stderr)) problems.push('a stack trace was printed');
        const after = dump(relUrl(SOURCE));
        if (after !== before) problems.push(`the source's pg_dump changed (${before.length} → ${after.length} bytes)`);
        const writes = modifyingStatements(logFrom, SOURCE);
        if (writes.length) problems.push(`modifying statements in the source: ${writes.slice(0, 2).join(' | ')}`);
        const clones = await onRel((x) => x.query<{ datname: string }>(`select datname from pg_database where datname like 'tiergate\\_clone\\_${SOURCE}%'`));
        if (clones.rowCount) problems.push(`clones left behind: ${clones.rows.map((x) => x.datname).join(', ')}`);
        // opening the gate on the (unmarked) source is refused, and changes nothing
        const db = await openDb(relUrl(SOURCE));
        try {
          await openGate(db, bundledPlan());
          problems.push('openGate on the unmarked source did not refuse');
        } catch (e) {
          if (!(e instanceof TargetError) || !/not a clone made by tiergate/.test(e.message)) problems.push(`openGate: unexpected ${(e as Error).message}`);
        } finally {
          await db.close();
        }
        if (dump(relUrl(SOURCE)) !== before) problems.push('the refused openGate changed the source');
        // control: a modifying statement in the source is caught by the same log check
        const logControl = readFileSync(serverLog(), 'utf8').length;
        await onRel((x) => x.query('create temp table control_write (x int)'), SOURCE, relUrl(SOURCE).replace('?', '?application_name=control-writer&'));
        if (!modifyingStatements(logControl, SOURCE).some((l) => l.includes('control_write'))) problems.push('control: the log check did not see a modifying statement');
      } finally {
        rmSync(out, { recursive: true, force: true });
        await onRel((x) => x.query(`drop database if exists ${SOURCE} with (force)`));
      }
      tally.add(c.name, problems);
    }
    tally.record(`${cases.length} rehearsal(s) --source/--scratch on one server: pg_dump identical, no modifying statement logged, openGate on the unmarked source refused`);
    expect(tally.reasons).toEqual([]);
  });
});
