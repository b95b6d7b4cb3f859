/**
 * The summary every report opens with (src/report/summary.ts): the verdict's
 * tone, why, what would turn it GO, and what was proven, computed from the
 * evidence's own records so that Markdown and HTML say the same.
 */
import { describe, expect, it } from 'vitest';
import type { Evidence, TierResult } from '../src/evidence/types.js';
import { proofLine, summarize } from '../src/report/summary.js';
import { axisGovernanceEvidence } from './fixtures/evidence-sample.js';

const group = (e: Evidence, title: RegExp) => summarize(e).proven.find((g) => title.test(g.title))!;
const strip = (items: { ok: boolean | null; subject?: string; text: string; detail?: string }[]) =>
  items.map(({ ok, subject, text, detail }) => ({ ok, ...(subject ? { subject } : {}), text, ...(detail !== undefined ? { detail } : {}) }));

describe('summarize', () => {
  it('sets the tone and the headline from the verdict', () => {
    const e = axisGovernanceEvidence();
    expect(summarize(e)).toMatchObject({ tone: 'no-go', headline: 'Rehearsal PASS · Execution NO-GO (ospa=0)' });
    e.verdict = { ...e.verdict, execution: 'GO', reason: 'ospa=1' };
    expect(summarize(e)).toMatchObject({ tone: 'go', headline: 'Rehearsal PASS · Execution GO (ospa=1)' });
    e.verdict = { ...e.verdict, rehearsal: 'FAIL', execution: 'GO' };
    expect(summarize(e).tone).toBe('fail');
  });

  it("says why, with the source's gate", () => {
    const e = axisGovernanceEvidence();
    e.verdict.failures = ['one', 'two'];
    expect(summarize(e).why).toEqual({ reason: 'ospa=0', gate: 'the gate ospa is 0 on the source; it needs ≥ 1', failures: ['one', 'two'], approvals: [] });
    e.source.gate = { ...e.source.gate!, value: 2, open: true };
    expect(summarize(e).why.gate).toBe('the gate ospa is 2 on the source (≥ 1: open)');
    e.source.gate = { ...e.source.gate, value: null, open: false };
    expect(summarize(e).why.gate).toBe('the gate ospa is n/a on the source; it needs ≥ 1');
    e.source.gate = null;
    expect(summarize(e).why.gate).toBe('the plan has no gate');
  });

  it('lists the approvals the gate judged, which count and why the others do not', () => {
    const e = axisGovernanceEvidence();
    e.source.gate!.approvals = [
      { id: '1', approver: 'ann@example.com', at: '2026-06-01T10:00:00Z', subject: 's', counts: true, why: null },
      { id: '2', approver: 'bob@example.com', at: null, subject: 's', counts: false, why: 'the author cannot approve' },
      { id: '3', approver: 'cy@example.com', at: null, subject: 's', counts: false, why: null },
    ] as NonNullable<NonNullable<Evidence['source']['gate']>['approvals']>;
    const approvals = summarize(e).why.approvals;
    expect(strip(approvals)).toEqual([
      { ok: true, subject: 'approval by ann@example.com', text: 'counts', detail: '2026-06-01T10:00:00Z' },
      { ok: false, subject: 'approval by bob@example.com', text: 'does not count: the author cannot approve' },
      { ok: false, subject: 'approval by cy@example.com', text: 'does not count' },
    ]);
    expect(approvals[1]).not.toHaveProperty('detail');
    expect(proofLine(approvals[0]!)).toBe('approval by ann@example.com: counts');
    expect(proofLine({ ok: null, text: 'alone' })).toBe('alone');
  });

  it('says what would turn it GO, as recorded, or tiergate’s general advice for old evidence', () => {
    const e = axisGovernanceEvidence();
    expect(summarize(e).next).toEqual({ title: 'What would turn it GO', text: e.verdict.next, recorded: true });
    e.verdict.next = '  ';
    expect(summarize(e).next).toEqual({
      title: 'What would turn it GO',
      text: 'the gate ospa must reach 1 on the source (it is 0): obtain the approvals it counts, then apply with --evidence',
      recorded: false,
    });
    delete e.verdict.next;
    expect(summarize(e).next.recorded).toBe(false);
    e.source.gate = null;
    expect(summarize(e).next.text).toBe('rehearse again');
    e.verdict.execution = 'GO';
    expect(summarize(e).next).toEqual({ title: 'What next', text: 'apply it: tiergate apply --target <the source> --evidence evidence.json', recorded: false });
    e.verdict.rehearsal = 'FAIL';
    expect(summarize(e).next.text).toBe('fix what failed and rehearse again');
  });

  it('lists the guards proven in stage A, and those that were not', () => {
    const e = axisGovernanceEvidence();
    expect(strip(group(e, /^Guards/).items)).toEqual([2, 3, 4].map((id) => ({ ok: true, subject: expect.stringMatching(new RegExp(`^tier ${id} `)), text: 'its own guard aborted it; clone fingerprint unchanged' })));
    const a = e.stages[0]!.tiers;
    a[3]!.guardProven = false;
    a[4]!.fingerprintUnchanged = false;
    delete a[5]!.guardProven;
    const items = group(e, /^Guards/).items;
    expect(items.map((i) => [i.ok, i.text])).toEqual([
      [false, 'its own guard was not proven; clone fingerprint unchanged'],
      [false, 'its own guard aborted it; clone fingerprint changed or not checked'],
      [false, 'its own guard was not proven; clone fingerprint unchanged'],
    ]);
    expect(items[0]!.tier).toBe(a[3]);
    // an Applied tier with a guard record is listed too; others are not
    a[0]!.guardProven = true;
    a[0]!.fingerprintUnchanged = true;
    expect(group(e, /^Guards/).items).toHaveLength(4);
    e.stages = [];
    expect(group(e, /^Guards/)).toEqual({ title: 'Guards proven with the gate closed', none: 'no gated tier was stopped with the gate closed', items: [] });
  });

  it("lists each data tier's post-conditions in stage B", () => {
    const e = axisGovernanceEvidence();
    const b = e.stages[1]!.tiers;
    expect(strip(group(e, /post-conditions/).items)).toEqual([
      { ok: true, subject: 'tier 2 Ownership seed', text: 'owner_gap = 0' },
      { ok: true, subject: 'tier 3 Axis/topic values + containment', text: 'containment_gap = 0' },
      { ok: true, subject: 'tier 4 Promotion', text: 'divergent = 0, projection_gap = 0' },
    ]);
    b[0]!.post = [{ expr: 'owner_gap = 0', ok: false, value: 3 }, { expr: 'x = 1', ok: true, value: 1 }];
    b[1]!.status = 'Failed';
    b[2]!.post = [];
    expect(strip(group(e, /post-conditions/).items)).toEqual([
      { ok: false, subject: 'tier 2 Ownership seed', text: 'owner_gap = 0 does not hold (3), x = 1' },
      { ok: false, subject: 'tier 3 Axis/topic values + containment', text: 'Failed (containment_gap = 0)' },
      { ok: null, subject: 'tier 4 Promotion', text: 'declares no post-condition' },
    ]);
    b[1]!.post = [];
    expect(group(e, /post-conditions/).items[1]!.text).toBe('Failed');
    e.stages = [e.stages[0]!];
    expect(group(e, /post-conditions/)).toMatchObject({ none: 'no data tier ran with the gate open', items: [] });
  });

  it('counts the expectations met per stage, and lists each one missed', () => {
    const e = axisGovernanceEvidence();
    expect(group(e, /^Expectations/).items.map((i) => [i.ok, i.text])).toEqual([
      [true, 'stage A: 15 of 15 expectations met (tiers 1, 5, 6)'],
      [true, 'stage B: 30 of 30 expectations met (tiers 2, 3, 4)'],
      [true, 'stage C: 32 of 32 expectations met (tiers 99, 6, 3, 4)'],
    ]);
    const seed = e.stages[1]!.tiers[0]! as TierResult;
    seed.expectations![0] = { what: 'rows axis.ownership added', expected: 'approved_anchors = 30', actual: '27', ok: false };
    const items = group(e, /^Expectations/).items;
    expect(strip(items.slice(1, 3))).toEqual([
      { ok: false, text: 'stage B: 29 of 30 expectations met (tiers 2, 3, 4)' },
      { ok: false, subject: 'stage B tier 2 Ownership seed', text: 'rows axis.ownership added: expected approved_anchors = 30, actual 27' },
    ]);
    expect(items[2]!.tier).toBe(seed);
    e.stages.forEach((s) => s.tiers.forEach((t) => delete t.expectations));
    expect(group(e, /^Expectations/)).toMatchObject({ none: 'no expectation was checked', items: [] });
  });

  it('states the rollback proof, and its absence', () => {
    const e = axisGovernanceEvidence();
    expect(group(e, /^Rollback/)).toEqual({
      title: 'Rollback proven',
      none: '',
      items: [
        { ok: true, text: 'after rollback tier 99 reverted tiers 6, 4, 3, the clone equals a clean apply of the kept tiers' },
        { ok: true, text: 're-applying tiers 6, 4, 3 reproduces stage B' },
      ],
    });
    e.rollback = { ...e.rollback!, reverted: [], matchesKeptTiers: false, reapplyMatches: false };
    expect(group(e, /^Rollback/).items).toEqual([
      { ok: false, text: 'after rollback tier 99 reverted no tier, the clone differs from a clean apply of the kept tiers' },
      { ok: false, text: 're-applying no tier does not reproduce stage B' },
    ]);
    e.rollback = null;
    expect(group(e, /^Rollback/)).toEqual({ title: 'Rollback proven', none: 'no rollback was rehearsed', items: [] });
  });

  it('lists the checks recorded as expected outcomes', () => {
    const e = axisGovernanceEvidence();
    expect(group(e, /^Expected/)).toEqual({
      title: 'Expected outcomes',
      none: 'none recorded',
      items: [{ ok: true, text: 'A: verify shows the honest gaps', detail: 'Failed: owner_gap=210, containment_gap=35, projection_gap=65, critical=30, emittable=65' }],
    });
    e.stages[1]!.checks.push({ name: 'B: x', ok: false, detail: 'd', expected: true }, { name: 'B: y', ok: true, detail: 'd', expected: false });
    expect(group(e, /^Expected/).items.map((i) => [i.ok, i.text])).toEqual([[true, 'A: verify shows the honest gaps'], [false, 'B: x']]);
  });

  it('keeps the groups in reading order', () => {
    expect(summarize(axisGovernanceEvidence()).proven.map((g) => g.title)).toEqual([
      'Guards proven with the gate closed',
      "Each data tier's post-conditions (gate open)",
      'Expectations of the plan met',
      'Rollback proven',
      'Expected outcomes',
    ]);
  });
});
