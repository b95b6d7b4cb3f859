/**
 * What the Markdown report (src/report/render-markdown.ts) says of a tier, a
 * stage and the rollback: each figure beside its expectation, failures with
 * where they happened, and the rollback proof as recorded.
 */
import { describe, expect, it } from 'vitest';
import type { Evidence, TierResult } from '../src/evidence/types.js';
import { renderMarkdown } from '../src/report/render-markdown.js';
import { axisGovernanceEvidence } from './fixtures/evidence-sample.js';
import { emptyFailure } from '../src/engine/run-result.js';

const failure = (message: string, extras: Partial<NonNullable<TierResult['error']>> = {}): NonNullable<TierResult['error']> => ({ ...emptyFailure(), message, ...extras });

/** The evidence with stage B's tiers replaced by `tier` alone. */
function withTier(tier: Partial<TierResult>): Evidence {
  const e = axisGovernanceEvidence();
  const base = e.stages[1]!.tiers[0]!;
  e.stages[1]!.tiers = [{ ...base, reason: null, post: [], expectations: [], figures: {}, delta: null, error: null, failedAssertions: undefined, appliedBefore: undefined, ...tier }];
  return e;
}

/** The lines of stage B's tier note (from its title to the next section). */
function note(e: Evidence): string[] {
  const md = renderMarkdown(e);
  const stage = md.slice(md.indexOf('## Stage B'));
  const lines = stage.slice(stage.indexOf('- **Tier ')).split('\n');
  const end = lines.findIndex((l, i) => i > 0 && (l.startsWith('## ') || l.startsWith('- **Tier ')));
  return lines.slice(0, end < 0 ? undefined : end).filter((l) => l !== '');
}

describe('the Markdown tier note', () => {
  it('says which tiers were applied before it', () => {
    expect(note(withTier({ appliedBefore: [1] }))[0]).toMatch(/, after tier 1\)$/);
    expect(note(withTier({ appliedBefore: [1, 5] }))[0]).toMatch(/, after tiers 1, 5\)$/);
    expect(note(withTier({ appliedBefore: [] }))[0]).toMatch(/, no tier applied before it\)$/);
    expect(note(withTier({}))[0]).toBe('- **Tier 2 Ownership seed** — Applied, 120 ms (`tiers/02_ownership_seed.sql`, sha256 `33b222abe826`)');
  });

  it('names the objects per change, each beside the expectations about it, and the others after', () => {
    const lines = note(
      withTier({
        delta: { objects: { tables: { added: ['a.t', 'a.u'], removed: [], changed: ['a.c'] } }, rows: {}, metrics: {} },
        expectations: [
          { what: 'tables added', expected: '2', actual: '2', ok: true },
          { what: 'tables removed', expected: '1', actual: '0', ok: false },
          { what: 'tables', expected: '+2', actual: '+2', ok: true },
        ],
      }),
    );
    expect(lines.slice(1, 5)).toEqual([
      '  - tables added: `a.t`, `a.u` — ✓ expected `2`, actual `2`',
      '  - tables changed: `a.c`',
      '  - tables: ✗ removed: expected `1`, actual `0`',
      '  - tables: ✓ expected `+2`, actual `+2`',
    ]);
  });

  it('shows rows and moved metrics with their expectations or none, and counts the metrics that did not move', () => {
    const lines = note(
      withTier({
        delta: {
          objects: {},
          rows: { 'a.t': { added: 3, removed: 1, changed: 0 } },
          metrics: { gap: { before: 3, after: 0 }, flat: { before: 1, after: 1 }, same: { before: 2, after: 2 } },
        },
        expectations: [{ what: 'metric gap', expected: 'any → 0', actual: '3 → 0', ok: true }],
      }),
    );
    expect(lines.slice(1, 4)).toEqual([
      '  - rows `a.t` +3 \u22121 — no expectation',
      '  - metric `gap` 3 → 0 — ✓ expected `any → 0`, actual `3 → 0`',
      '  - 2 other metrics measured, unchanged',
    ]);
    const none = note(withTier({ delta: { objects: {}, rows: {}, metrics: { flat: { before: 1, after: 1 } } } }));
    expect(none[1]).toBe('  - no metric changed (1 measured)');
    expect(note(withTier({ delta: { objects: {}, rows: {}, metrics: {} } }))).toHaveLength(1);
  });

  it('lists figures, post-conditions and the expectations missed', () => {
    const lines = note(
      withTier({
        figures: { anchors: 30, gone: null },
        post: [
          { expr: 'gap = 0', ok: true, value: 0 },
          { expr: 'crit = 0', ok: false, value: null },
        ],
        expectations: [
          { what: 'rows a.t added', expected: 'anchors = 30', actual: '27', ok: false },
          { what: 'metric gap', expected: 'any → 0', actual: '3 → 0', ok: true },
        ],
      }),
    );
    expect(lines.slice(1)).toEqual([
      '  - figures read before the tier: `anchors` = 30, `gone` = n/a',
      '  - post-condition ✓ `gap = 0` (value 0)',
      '  - post-condition ✗ `crit = 0` (value n/a)',
      '  - expectations: 1 of 2 met',
      '    - ✗ rows a.t added: expected `anchors = 30`, actual `27`',
    ]);
  });

  it('shows the differences from the rehearsal, and failures with what PostgreSQL said and where', () => {
    const lines = note(
      withTier({
        status: 'Failed',
        differences: [{ what: 'rows a.t', rehearsal: '+30 −0 ~0', production: '+27 −0 ~0' }],
        error: failure('boom', { sqlstate: '23505', detail: 'Key (id)=(1) exists.', hint: 'dedupe', where: 'SQL statement', file: 't.sql', line: 7, column: 3, excerpt: 'INSERT …' }),
      }),
    );
    expect(lines.slice(1)).toEqual([
      '  - differs from the rehearsal: rows a.t: rehearsal `+30 −0 ~0`, production `+27 −0 ~0`',
      '  - error `23505`: boom at `t.sql:7:3`',
      '    - detail: Key (id)=(1) exists.',
      '    - hint: dedupe',
      '    - where: SQL statement',
      '    ```sql',
      '    7 | INSERT …',
      '    ```',
    ]);
    const bare = note(withTier({ status: 'Failed', error: failure('boom', { excerpt: 'SELECT x' }) }));
    expect(bare.slice(1)).toEqual(['  - error: boom', '    ```sql', '    SELECT x', '    ```']);
    const blocked = note(withTier({ status: 'Blocked', error: failure('gated') }));
    expect(blocked).toContain('  - stopped by: gated');
    expect(blocked).toContain("  - stop-gate: ✗ the file's own guard was not proven; ✗ clone fingerprint changed or not checked");
    const assertion = note(withTier({ status: 'Failed', failedAssertions: [failure('a = 1')] }));
    expect(assertion).toContain('  - assertion failed: a = 1');
  });

  it('shows the stop-gate of a tier with a guard record even when it was not Blocked', () => {
    expect(note(withTier({ guardProven: true, fingerprintUnchanged: true }))[1]).toBe("  - stop-gate: ✓ the file's own guard aborted it; ✓ clone fingerprint unchanged");
    expect(note(withTier({ fingerprintUnchanged: false }))[1]).toBe("  - stop-gate: ✗ the file's own guard was not proven; ✗ clone fingerprint changed or not checked");
    expect(note(withTier({})).some((l) => l.includes('stop-gate'))).toBe(false);
  });
});

describe('the Markdown report around the tiers', () => {
  it('says when a stage ran no tier, and leaves out checks it has not', () => {
    const e = axisGovernanceEvidence();
    e.stages[1]!.tiers = [];
    e.stages[1]!.checks = [];
    const md = renderMarkdown(e);
    const stage = md.slice(md.indexOf('## Stage B'), md.indexOf('## Stage C'));
    expect(stage).toBe('## Stage B — Gate opened on the clone\n\n_No tiers ran in this stage._\n\n');
  });

  it('marks failed checks and expected ones', () => {
    const e = axisGovernanceEvidence();
    e.stages[1]!.checks = [
      { name: 'B: one', ok: false, detail: '' },
      { name: 'B: two', ok: true, detail: 'fine', expected: true },
    ];
    expect(renderMarkdown(e)).toContain('**Checks**\n\n- ✗ B: one\n- ✓ _(expected)_ B: two — fine\n\n');
  });

  it('counts the plan files', () => {
    const e = axisGovernanceEvidence();
    e.plan.files = { 'tiergate.yaml': 'a'.repeat(64) };
    expect(renderMarkdown(e)).toContain('sha256 `07fb69b2bed5`, 1 file\n');
  });

  it('states the rollback proof as recorded, with the differences found', () => {
    const e = axisGovernanceEvidence();
    const proof = (md: string) => md.slice(md.indexOf('## Rollback proof'));
    expect(proof(renderMarkdown(e))).toBe(
      [
        '## Rollback proof',
        '',
        '- Rollback tier 99 reverted tiers 6, 4, 3.',
        "- ✓ the clone's fingerprint after rollback equals a clean apply of the kept tiers",
        '- ✓ re-applying the reverted tiers reproduces the full-apply fingerprint',
        '',
      ].join('\n'),
    );
    e.rollback = { tier: 98, reverted: [], matchesKeptTiers: false, reapplyMatches: false, keptDiff: { objects: ['a.v'], tables: [] }, reapplyDiff: { objects: [], tables: ['a.t', 'a.u'] } };
    expect(proof(renderMarkdown(e))).toBe(
      [
        '## Rollback proof',
        '',
        '- Rollback tier 98 reverted no tier.',
        "- ✗ the clone's fingerprint after rollback differs from a clean apply of the kept tiers",
        '  - objects that differ: `a.v`',
        '- ✗ re-applying the reverted tiers does not reproduce the full-apply fingerprint',
        '  - tables whose rows differ: `a.t`, `a.u`',
        '',
      ].join('\n'),
    );
    e.rollback = null;
    expect(proof(renderMarkdown(e))).toBe('## Rollback proof\n\nNo rollback was rehearsed.\n');
  });

  it('shows a verdict without a reason, and the general advice of old evidence', () => {
    const e = axisGovernanceEvidence();
    e.verdict.reason = ' ';
    delete e.verdict.next;
    const md = renderMarkdown(e);
    expect(md).toContain('\n**Rehearsal PASS · Execution NO-GO**\n');
    expect(md).toContain("**What would turn it GO:** the gate ospa must reach 1 on the source (it is 0): obtain the approvals it counts, then apply with --evidence _(not recorded in this evidence: tiergate's general advice)_");
    expect(md).toContain('**Why:** the gate ospa is 0 on the source; it needs ≥ 1\n');
  });
});
