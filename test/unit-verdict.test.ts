/**
 * The verdict of a rehearsal, computed from its own records, and whether
 * evidence covers a plan as a rehearsal does (src/evidence/verdict.ts): what
 * `apply --evidence` recomputes before it trusts evidence. Pure functions.
 */
import { describe, expect, it } from 'vitest';
import type { Evidence, GateReading, StageRecord, TierResult } from '../src/evidence/types.js';
import { checkRecordProblems, computeVerdict, coverageProblems, expectationRecordProblems, gateRecordProblem, type VerdictInput } from '../src/evidence/verdict.js';
import type { Plan, Tier } from '../src/plan/plan.js';

const sha = (id: number) => `${String(id).padStart(2, '0')}`.repeat(32);

function planTier(id: number, kind: Tier['kind'], gated = kind === 'data'): Tier {
  return { id, kind, gated, sha256: sha(id) } as Tier;
}

function record(id: number, status: TierResult['status'], extras: Partial<TierResult> = {}): TierResult {
  return { id, name: `t${id}`, kind: 'structure', file: `t${id}.sql`, sha256: sha(id), status, reason: null, durationMs: 1, delta: null, post: [], error: null, ...extras };
}

const stage = (name: StageRecord['name'], tiers: TierResult[], checks: StageRecord['checks'] = []): StageRecord => ({ name, title: name, tiers, checks });

const gate = (value: number | null, open: boolean): GateReading => ({ name: 'ospa', value, min: 2, open, subject: null }) as GateReading;

const passedInput = (over: Partial<VerdictInput> = {}): VerdictInput => ({
  preflight: record(0, 'Passed'),
  gate: null,
  stages: [stage('A', [], [{ name: 'A: ok', ok: true, detail: 'fine' }])],
  rollback: null,
  ...over,
});

const ROLLBACK: NonNullable<Evidence['rollback']> = { tier: 99, reverted: [2], matchesKeptTiers: true, reapplyMatches: true, keptDiff: null, reapplyDiff: null };

describe('computeVerdict', () => {
  const noRollback = { tiers: [planTier(1, 'structure')], gate: undefined };

  it('passes and goes when every check holds and the plan has no gate', () => {
    expect(computeVerdict(noRollback, passedInput())).toEqual({
      rehearsal: 'PASS',
      execution: 'GO',
      reason: 'no gate',
      failures: [],
      next: 'apply it: tiergate apply --target <the source> --evidence evidence.json',
    });
    expect(computeVerdict(noRollback, passedInput({ preflight: null })).rehearsal).toBe('PASS');
  });

  it("goes only when the source's gate is open, saying its value", () => {
    expect(computeVerdict(noRollback, passedInput({ gate: gate(2, true) }))).toMatchObject({ rehearsal: 'PASS', execution: 'GO', reason: 'ospa=2' });
    const closed = computeVerdict(noRollback, passedInput({ gate: gate(1, false) }));
    expect(closed).toEqual({
      rehearsal: 'PASS',
      execution: 'NO-GO',
      reason: 'ospa=1',
      failures: [],
      next: 'the gate ospa is 1 on the source and needs ≥ 2: obtain the approvals it counts, then apply with --evidence',
    });
    expect(computeVerdict(noRollback, passedInput({ gate: gate(null, false) }))).toMatchObject({
      reason: 'ospa=n/a',
      next: 'the gate ospa is n/a on the source and needs ≥ 2: obtain the approvals it counts, then apply with --evidence',
    });
    const withAdvice = { ...noRollback, gate: { when_closed: 'ask the owner' } as Plan['gate'] };
    expect(computeVerdict(withAdvice, passedInput({ gate: gate(0, false) })).next).toBe('ask the owner');
  });

  it('fails on a failed check, naming it, and then does not go whatever the gate says', () => {
    const input = passedInput({
      gate: gate(5, true),
      stages: [stage('A', [], [{ name: 'A: one', ok: false, detail: 'broke' }, { name: 'A: two', ok: true, detail: '' }]), stage('B', [], [{ name: 'B: three', ok: false, detail: 'too' }])],
    });
    expect(computeVerdict(noRollback, input)).toEqual({
      rehearsal: 'FAIL',
      execution: 'NO-GO',
      reason: 'rehearsal failed',
      failures: ['A: one: broke', 'B: three: too'],
      next: 'fix what failed (listed above) and rehearse again',
    });
  });

  it("fails when the source's preflight did not pass, with its error, its reason or its status", () => {
    const failed = (extras: Partial<TierResult>) => computeVerdict(noRollback, passedInput({ preflight: record(0, 'Failed', extras) })).failures;
    const error = { message: 'no such table', sqlstate: null, detail: null, hint: null, where: null, file: null, line: null, column: null, excerpt: null };
    expect(failed({ error, reason: 'why' })).toEqual(['preflight on the source failed: no such table']);
    expect(failed({ reason: 'why' })).toEqual(['preflight on the source failed: why']);
    expect(failed({})).toEqual(['preflight on the source failed: Failed']);
    expect(computeVerdict(noRollback, passedInput({ preflight: record(0, 'Blocked') })).failures).toEqual(['preflight on the source failed: Blocked']);
  });

  it('fails when the plan has a rollback tier that was not rehearsed, unless the preflight failed first', () => {
    const withRollback = { tiers: [planTier(1, 'structure'), planTier(99, 'rollback')], gate: undefined };
    expect(computeVerdict(withRollback, passedInput()).failures).toEqual(['C: rollback not rehearsed']);
    expect(computeVerdict(withRollback, passedInput({ rollback: ROLLBACK })).rehearsal).toBe('PASS');
    expect(computeVerdict(withRollback, passedInput({ stages: [stage('A', [], [{ name: 'A: x', ok: false, detail: 'd' }])] })).failures).toEqual([
      'A: x: d',
      'C: rollback not rehearsed, because an earlier stage failed',
    ]);
    expect(computeVerdict(withRollback, passedInput({ preflight: record(0, 'Failed') })).failures).toEqual(['preflight on the source failed: Failed']);
    expect(computeVerdict(withRollback, passedInput({ preflight: record(0, 'Blocked') })).failures).toEqual([
      'preflight on the source failed: Blocked',
      'C: rollback not rehearsed, because an earlier stage failed',
    ]);
  });
});

describe("the gate's record", () => {
  const gate = (value: number | null, min: number, open: boolean): GateReading => ({ name: 'ospa', value, min, open, subject: null });
  it('holds when open is exactly value ≥ min, and no gate has nothing to hold', () => {
    for (const g of [gate(1, 1, true), gate(2, 1, true), gate(0, 1, false), gate(null, 1, false), gate(-1, -1, true)]) expect(gateRecordProblem(g), JSON.stringify(g)).toBeNull();
    expect(gateRecordProblem(null)).toBeNull();
  });
  it('names an open or a value edited against the other', () => {
    expect(gateRecordProblem(gate(1, 1, false))).toBe("the source's gate record says closed, but its value 1 and minimum 1 make it open");
    expect(gateRecordProblem(gate(0, 1, true))).toBe("the source's gate record says open, but its value 0 and minimum 1 make it closed");
    expect(gateRecordProblem(gate(null, 0, true))).toBe("the source's gate record says open, but its value n/a and minimum 0 make it closed");
  });
});

describe("post-conditions' records", () => {
  const noRollback = { tiers: [planTier(2, 'data')], gate: undefined };
  const tier2 = (post: TierResult['post'], after: number | null, status: TierResult['status'] = 'Applied') =>
    record(2, status, { post, delta: { objects: {}, rows: {}, metrics: { owner_gap: { before: 98, after } } } });
  const withTier = (t: TierResult) => passedInput({ stages: [stage('B', [t], [{ name: 'B: ok', ok: true, detail: 'fine' }])] });

  it('pass when each agrees with its condition and with the metric after the tier', () => {
    expect(computeVerdict(noRollback, withTier(tier2([{ expr: 'owner_gap = 0', ok: true, value: 0 }], 0))).failures).toEqual([]);
    // a failed tier records a failing one; a verify tier compares with the metric it read
    expect(computeVerdict(noRollback, withTier(tier2([{ expr: 'owner_gap = 0', ok: false, value: 3 }], 3, 'Failed'))).failures).toEqual([]);
  });

  it('fail when edited: another metric after the tier beside a holding condition, a value the condition does not hold for, a failed one on an applied tier', () => {
    // the file of a PASS edited to show owner_gap 98 → 1 beside "✓ owner_gap = 0" (it was reported as a PASS)
    expect(computeVerdict(noRollback, withTier(tier2([{ expr: 'owner_gap = 0', ok: true, value: 0 }], 1)))).toMatchObject({
      rehearsal: 'FAIL',
      failures: ["stage B: tier 2: post-condition 'owner_gap = 0' read 0, but the tier's metric owner_gap is 1 after it"],
    });
    expect(computeVerdict(noRollback, withTier(tier2([{ expr: 'owner_gap = 0', ok: true, value: 1 }], 1))).failures).toEqual([
      "stage B: tier 2: post-condition 'owner_gap = 0' is recorded as holding with value 1",
    ]);
    expect(computeVerdict(noRollback, withTier(tier2([{ expr: 'owner_gap = 0', ok: false, value: 1 }], 1))).failures).toEqual([
      "stage B: tier 2: post-condition 'owner_gap = 0' failed, yet the tier is recorded as applied",
    ]);
    expect(computeVerdict(noRollback, withTier(tier2([{ expr: 'owner_gap is fine', ok: true, value: 0 }], 0))).failures).toEqual([
      "stage B: tier 2: post-condition 'owner_gap is fine' is not one",
    ]);
    // a failure edited the other way, and n/a values (a metric whose objects do not exist never holds)
    expect(computeVerdict(noRollback, withTier(tier2([{ expr: 'owner_gap = 0', ok: false, value: 0 }], 0, 'Failed'))).failures).toEqual([
      "stage B: tier 2: post-condition 'owner_gap = 0' is recorded as failing with value 0",
    ]);
    expect(computeVerdict(noRollback, withTier(tier2([{ expr: 'owner_gap = 0', ok: true, value: null }], null))).failures).toEqual([
      "stage B: tier 2: post-condition 'owner_gap = 0' is recorded as holding with value n/a",
    ]);
    expect(computeVerdict(noRollback, withTier(tier2([{ expr: 'owner_gap = 0', ok: true, value: 0 }], null))).failures).toEqual([
      "stage B: tier 2: post-condition 'owner_gap = 0' read 0, but the tier's metric owner_gap is n/a after it",
    ]);
    expect(computeVerdict(noRollback, withTier(tier2([{ expr: 'owner_gap = 0', ok: false, value: null }], 0, 'Failed'))).failures).toEqual([
      "stage B: tier 2: post-condition 'owner_gap = 0' read n/a, but the tier's metric owner_gap is 0 after it",
    ]);
    // without a delta (a tier that failed before measuring), the record is checked against its condition alone
    expect(computeVerdict(noRollback, withTier(record(2, 'Failed', { post: [{ expr: 'owner_gap = 0', ok: false, value: 3 }] }))).failures).toEqual([]);
  });
});

describe("expectations' records", () => {
  // tier 2 of the bundled plan, as it expects: rows of axis.ownership added as the figure says, owner_gap to 0, no table
  const tier2 = { ...planTier(2, 'data'), expect: { objects: { tables: 0 }, rows: { 'axis.ownership': { added: 'approved_anchors', removed: 0 } }, metrics: { owner_gap: ['any', 0] } } } as unknown as Tier;
  const delta = (added: number, after: number) => ({
    objects: { tables: { added: [], removed: [], changed: [] } },
    rows: { 'axis.ownership': { added, removed: 0, changed: 0 } },
    metrics: { owner_gap: { before: 64, after } },
  });
  const records = [
    { what: 'rows axis.ownership added', expected: 'approved_anchors = 6', actual: '6', ok: true },
    { what: 'rows axis.ownership removed', expected: '0', actual: '0', ok: true },
    { what: 'tables', expected: '+0', actual: '+0', ok: true },
    { what: 'metric owner_gap', expected: 'any → 0', actual: '64 → 0', ok: true },
  ];
  const rehearsed = (d = delta(6, 0), expectations = records, figures: Record<string, number | null> = { approved_anchors: 6 }) =>
    [stage('B', [record(2, 'Applied', { kind: 'data', delta: d, figures, expectations })], [{ name: 'B: ok', ok: true, detail: 'fine' }])];

  it('agree with the delta, and are what the plan gives for it', () => {
    expect(expectationRecordProblems({ tiers: [tier2] }, rehearsed())).toEqual([]);
    // without the plan's expect (a report): the measured values alone
    expect(expectationRecordProblems({ tiers: [] }, rehearsed())).toEqual([]);
    // a guard proof that ran to the end (stage A, Failed): its delta is the proof of the failure, and it records no expectations
    const proof = [stage('A', [record(2, 'Failed', { kind: 'data', delta: delta(6, 0) })], [{ name: 'A: tier 2 stops itself', ok: false, detail: 'not self-guarded' }])];
    expect(expectationRecordProblems({ tiers: [tier2] }, proof)).toEqual([]);
    expect(computeVerdict({ tiers: [tier2], gate: undefined }, passedInput({ stages: rehearsed() })).failures).toEqual([]);
  });

  it("disagree when edited: a delta beside its expectation's measured value (the verdict fails); an expectation's verdict or expected value, or a figure, beside the plan's", () => {
    // +6 edited to +7 rows, the expectation still saying 6 ✓: apply then blamed production for the difference
    const edited = rehearsed(delta(7, 0));
    expect(expectationRecordProblems({ tiers: [] }, edited)).toEqual(["stage B: tier 2: expectation 'rows axis.ownership added' records 6 measured, but the tier's delta says 7"]);
    expect(computeVerdict({ tiers: [tier2], gate: undefined }, passedInput({ stages: edited }))).toMatchObject({
      rehearsal: 'FAIL',
      failures: ["stage B: tier 2: expectation 'rows axis.ownership added' records 6 measured, but the tier's delta says 7"],
    });
    expect(expectationRecordProblems({ tiers: [] }, rehearsed(delta(6, 2)))).toEqual(["stage B: tier 2: expectation 'metric owner_gap' records 64 → 0 measured, but the tier's delta says 64 → 2"]);
    const table = delta(6, 0);
    table.objects.tables.added.push('axis.extra' as never);
    expect(expectationRecordProblems({ tiers: [] }, rehearsed(table))).toEqual(["stage B: tier 2: expectation 'tables' records +0 measured, but the tier's delta says +1"]);
    const plan = { tiers: [tier2] };
    const why = "stage B: tier 2: its expectation records are not what the plan's expectations give for its delta and figures";
    expect(expectationRecordProblems(plan, rehearsed(delta(6, 0), records.map((r, i) => (i === 0 ? { ...r, ok: false } : r))))).toEqual([why]);
    expect(expectationRecordProblems(plan, rehearsed(delta(6, 0), records.map((r, i) => (i === 3 ? { ...r, expected: 'any → 1' } : r))))).toEqual([why]);
    expect(expectationRecordProblems(plan, rehearsed(delta(6, 0), records, { approved_anchors: 7 }))).toEqual([why]);
    expect(expectationRecordProblems(plan, rehearsed(delta(6, 0), records.slice(1)))).toEqual([why]);
    // a record of a tier that measured nothing (failed before its delta) is not asked
    expect(expectationRecordProblems(plan, [stage('B', [record(2, 'Failed', { expectations: records })])])).toEqual([]);
  });

  it("each measured value read as compareExpectations writes it: net counts signed, n/a, a kind or table the delta does not name (0), what it does not know left alone", () => {
    const d = {
      objects: { views: { added: ['axis.v1'], removed: ['axis.v2', 'axis.v3'], changed: [] } },
      rows: { 'axis.topic': { added: 1, removed: 4, changed: 2 } },
      metrics: { critical: { before: null, after: 3 } },
    };
    const at = (expectations: { what: string; actual: string }[]) =>
      expectationRecordProblems({ tiers: [] }, [stage('B', [record(6, 'Applied', { delta: d, expectations: expectations.map((e) => ({ ...e, expected: 'x', ok: true })) })])]);
    // as written by compareExpectations for this delta: none disagrees
    expect(
      at([
        { what: 'rows axis.topic', actual: '-3' },
        { what: 'rows axis.topic changed', actual: '2' },
        { what: 'rows axis.absent removed', actual: '0' },
        { what: 'views', actual: '-1' },
        { what: 'views removed', actual: '2' },
        { what: 'tables added', actual: '0' },
        { what: 'functions', actual: '+0' },
        { what: 'metric critical', actual: 'n/a → 3' },
        { what: 'metric emittable', actual: 'n/a → n/a' },
        { what: 'widgets added', actual: '7' },
        { what: 'something else', actual: 'anything' },
      ]),
    ).toEqual([]);
    expect(at([{ what: 'rows axis.topic', actual: '+5' }])).toEqual(["stage B: tier 6: expectation 'rows axis.topic' records +5 measured, but the tier's delta says -3"]);
    expect(at([{ what: 'views changed', actual: '1' }])).toEqual(["stage B: tier 6: expectation 'views changed' records 1 measured, but the tier's delta says 0"]);
    expect(at([{ what: 'metric critical', actual: '0 → 3' }])).toEqual(["stage B: tier 6: expectation 'metric critical' records 0 → 3 measured, but the tier's delta says n/a → 3"]);
    expect(at([{ what: 'metric emittable', actual: '0 → 0' }])).toEqual(["stage B: tier 6: expectation 'metric emittable' records 0 → 0 measured, but the tier's delta says n/a → n/a"]);
  });

  it("a tier whose expectations were taken out, beside the plan's expect, disagrees", () => {
    const [b] = rehearsed();
    delete b!.tiers[0]!.expectations;
    expect(expectationRecordProblems({ tiers: [tier2] }, [b!])).toEqual(["stage B: tier 2: its expectation records are not what the plan's expectations give for its delta and figures"]);
  });
});

describe('checks that hold against the records they are about', () => {
  const ok = (name: string) => ({ name, ok: true, detail: '' });
  it('agree: an applied tier, a re-applied one beside its reverted record, a blocked tier with its guard proven, a verify that passed', () => {
    expect(
      checkRecordProblems([
        stage('A', [record(1, 'Applied'), record(2, 'Blocked', { guardProven: true }), record(90, 'Failed')], [ok('A: tier 1 applies as expected'), ok('A: tier 2 stops itself with the gate closed'), ok('A: verify shows the honest gaps')]),
        stage('C', [record(99, 'Applied'), record(3, 'Reverted'), record(3, 'Applied'), record(90, 'Passed')], [ok('C: tier 99 applies as expected'), ok('C: tier 3 re-applies as expected'), ok('C: verify passes after the re-apply')]),
      ]),
    ).toEqual([]);
  });

  it('disagree: each named, with what the records say; a check that fails is not asked', () => {
    expect(
      checkRecordProblems([
        stage(
          'B',
          [record(2, 'Failed'), record(3, 'Blocked', { guardProven: false }), record(90, 'Failed')],
          [
            ok('B: tier 2 applies as expected'),
            ok('B: tier 3 stops itself with the gate closed'),
            ok('B: tier 4 re-applies as expected'),
            ok('B: verify passes'),
            { name: 'B: tier 2 matches the plan\'s expectations', ok: false, detail: 'x' },
          ],
        ),
      ]),
    ).toEqual([
      "stage B: 'B: tier 2 applies as expected' is recorded as holding, but tier 2 is recorded Failed there",
      "stage B: 'B: tier 3 stops itself with the gate closed' is recorded as holding, but tier 3 is recorded Blocked there",
      "stage B: 'B: tier 4 re-applies as expected' is recorded as holding, but tier 4 is recorded nowhere there",
      "stage B: 'B: verify passes' is recorded as holding, but no verify there passed",
    ]);
  });

  it('lower the verdict', () => {
    const v = computeVerdict({ tiers: [planTier(1, 'structure')], gate: undefined }, passedInput({ stages: [stage('B', [record(1, 'Failed')], [ok('B: tier 1 applies as expected')])] }));
    expect(v.rehearsal).toBe('FAIL');
    expect(v.failures).toEqual(["stage B: 'B: tier 1 applies as expected' is recorded as holding, but tier 1 is recorded Failed there"]);
  });
});

describe('coverageProblems', () => {
  const plan = { tiers: [planTier(1, 'structure'), planTier(2, 'data'), planTier(3, 'data', false), planTier(90, 'verify'), planTier(99, 'rollback')] };
  /** Evidence that covers the plan: A applies 1, stops 2 by its guard, applies 3; B applies 2; C rolls back. */
  const covering = (): Pick<Evidence, 'stages' | 'rollback'> => ({
    stages: [
      stage('A', [record(1, 'Applied'), record(2, 'Blocked', { guardProven: true }), record(3, 'Applied'), record(90, 'Failed')]),
      stage('B', [record(2, 'Applied'), record(90, 'Passed')]),
      stage('C', [record(99, 'Applied'), record(2, 'Reverted'), record(2, 'Applied')]),
    ],
    rollback: { ...ROLLBACK },
  });

  it('finds nothing wrong with evidence that covers the plan', () => {
    expect(coverageProblems(plan, covering())).toEqual([]);
  });

  it('accepts tiers already applied on the source instead of applied ones', () => {
    const e = covering();
    e.stages[0]!.tiers = [record(1, 'Skipped', { reason: 'already applied (ledger)' }), record(2, 'Skipped', { reason: 'already applied (ledger)' }), record(3, 'Applied')];
    e.stages[1]!.tiers = [];
    expect(coverageProblems(plan, e)).toEqual([]);
    e.stages[0]!.tiers[0]!.reason = 'skipped by hand';
    expect(coverageProblems(plan, e)).toEqual(['tier 1 was not applied in the rehearsal']);
    e.stages[0]!.tiers[0]!.reason = null;
    expect(coverageProblems(plan, e)).toEqual(['tier 1 was not applied in the rehearsal']);
  });

  it('refuses a tier that was not applied, a guard not proven, a rollback tier not run', () => {
    const e = covering();
    e.stages[0]!.tiers = [record(2, 'Blocked', { guardProven: true })];
    e.stages[1]!.tiers = [record(1, 'Failed'), record(2, 'Applied')];
    e.stages[2]!.tiers = [record(99, 'Failed')];
    expect(coverageProblems(plan, e)).toEqual(['tier 1 was not applied in the rehearsal', 'tier 3 was not applied in the rehearsal', 'rollback tier 99 was not rehearsed']);
    const noGuard = covering();
    noGuard.stages[0]!.tiers[1] = record(2, 'Skipped', { reason: 'skipped' });
    expect(coverageProblems(plan, noGuard)).toEqual(['gated tier 2: its guard was not proven with the gate closed']);
    // the guard is proven in stage A only
    const guardInB = covering();
    guardInB.stages[0]!.tiers.splice(1, 1);
    guardInB.stages[1]!.tiers[0]!.guardProven = true;
    expect(coverageProblems(plan, guardInB)).toEqual(['gated tier 2: its guard was not proven with the gate closed']);
    // a rollback applied in stage B is not stage C's
    const rollbackInB = covering();
    rollbackInB.stages[1]!.tiers.push(record(99, 'Applied'));
    rollbackInB.stages[2]!.tiers = [];
    expect(coverageProblems(plan, rollbackInB)).toEqual(['rollback tier 99 was not rehearsed']);
  });

  it('refuses a Blocked gated tier in stage A whose guard was not proven', () => {
    const e = covering();
    e.stages[0]!.tiers[1]!.guardProven = false;
    expect(coverageProblems(plan, e)).toEqual(['stage A: gated tier 2 is Blocked without its guard proven']);
    delete e.stages[0]!.tiers[1]!.guardProven;
    expect(coverageProblems(plan, e)).toEqual(['stage A: gated tier 2 is Blocked without its guard proven']);
    // not gated, or not stage A: nothing to prove there
    const ungated = covering();
    ungated.stages[0]!.tiers.push(record(3, 'Blocked'));
    expect(coverageProblems(plan, ungated)).toEqual([]);
    const inB = covering();
    inB.stages[1]!.tiers.push(record(2, 'Blocked'));
    expect(coverageProblems(plan, inB)).toEqual([]);
  });

  it('refuses the rollback proof when it is missing or did not hold, for a plan with a rollback tier', () => {
    for (const rollback of [null, { ...ROLLBACK, matchesKeptTiers: false }, { ...ROLLBACK, reapplyMatches: false }]) {
      expect(coverageProblems(plan, { ...covering(), rollback })).toEqual(['the rollback proof is missing or did not hold']);
    }
    const noRollbackPlan = { tiers: plan.tiers.filter((t) => t.kind !== 'rollback') };
    const e = { ...covering(), rollback: null };
    e.stages[2]!.tiers = [];
    expect(coverageProblems(noRollbackPlan, e)).toEqual([]);
  });

  it('proves the rollback tier the evidence names; without one, the rollback not of scope subject, wherever the plan lists it', () => {
    const amendPlan = { tiers: [...plan.tiers.filter((t) => t.id !== 99), { ...planTier(98, 'rollback'), scope: 'subject' } as Tier, planTier(99, 'rollback')] };
    // a rehearsal of an amendment proves tier 98: applying 99 instead does not cover it
    const wrong = covering();
    wrong.rollback = { ...ROLLBACK, tier: 98 };
    expect(coverageProblems(amendPlan, wrong)).toEqual(['rollback tier 98 was not rehearsed']);
    const right = covering();
    right.rollback = { ...ROLLBACK, tier: 98 };
    right.stages[2]!.tiers[0] = record(98, 'Applied');
    expect(coverageProblems(amendPlan, right)).toEqual([]);
    // evidence naming no rollback tier (or an unknown one): the full rollback, 99, though 98 is listed first
    const unnamed = covering();
    unnamed.rollback = { ...ROLLBACK, tier: 7 };
    unnamed.stages[2]!.tiers[0] = record(98, 'Applied');
    expect(coverageProblems({ tiers: [...amendPlan.tiers].sort((a, b) => (a.id === 98 ? -1 : b.id === 98 ? 1 : 0)) }, unnamed)).toEqual(['rollback tier 99 was not rehearsed']);
  });

  it("refuses records that are not the plan's: unknown tiers, other files, stages or tiers recorded too often, an Applied tier with an error", () => {
    const e = covering();
    e.stages[0]!.tiers.push(record(7, 'Applied'));
    e.stages[1]!.tiers[0]!.sha256 = 'f'.repeat(64);
    e.stages[2]!.tiers.push(record(2, 'Applied'));
    e.stages[0]!.tiers[0]!.error = { message: 'x', sqlstate: null, detail: null, hint: null, where: null, file: null, line: null, column: null, excerpt: null };
    expect(coverageProblems(plan, e)).toEqual([
      'stage A: tier 1 is Applied with an error',
      'stage A: tier 7 is not a tier of the plan',
      `stage B: tier 2 was recorded with sha256 ffffffffffff, the plan's file has 020202020202`,
      'stage C: tier 2 is recorded 3 times',
    ]);
    const twice = covering();
    twice.stages.push(stage('B', [record(2, 'Applied')]));
    expect(coverageProblems(plan, twice)).toEqual(['stages A, B, C, B: a stage is recorded twice']);
  });

  it('stops at problems of the records before judging what they cover', () => {
    const e = covering();
    e.stages[0]!.tiers[0]!.id = 8;
    expect(coverageProblems(plan, e)).toEqual(['stage A: tier 8 is not a tier of the plan']);
  });
});
