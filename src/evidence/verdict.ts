import { compareExpectations, fmt, signed } from '../engine/expectations.js';
import type { Plan } from '../plan/plan.js';
import { ObjectKind } from '../plan/schema.js';
import { checkPostCondition, parsePostCondition } from '../plan/post-condition.js';
import { GATE_UNREAD_FIX, type Evidence, type GateReading, type StageRecord, type TierResult } from './types.js';

export type Verdict = Evidence['verdict'];

/** What a verdict is computed from: the rehearsal's own records, nothing it says about itself. */
export interface VerdictInput {
  preflight: TierResult | null;
  gate: GateReading | null;
  stages: StageRecord[];
  rollback: Evidence['rollback'];
}

/**
 * The verdict of a rehearsal, computed from its records: PASS exactly when
 * the source's preflight passed, every check of every stage holds, and the
 * rollback was rehearsed when the plan has one; GO exactly when it passed and
 * the source's gate is open. The rehearsal writes it; `apply --evidence`
 * computes it again from the evidence and refuses evidence whose verdict
 * says otherwise (an edited file).
 *
 * @example computeVerdict(plan, evidence).rehearsal // 'PASS'
 */
export function computeVerdict(plan: Pick<Plan, 'tiers' | 'gate'>, input: VerdictInput): Verdict {
  const failures: string[] = [];
  if (input.preflight && input.preflight.status !== 'Passed') {
    failures.push(`preflight on the source failed: ${input.preflight.error?.message ?? input.preflight.reason ?? input.preflight.status}`);
  }
  for (const stage of input.stages) for (const c of stage.checks) if (!c.ok) failures.push(`${c.name}: ${c.detail}`);
  failures.push(...postConditionRecordProblems(input.stages));
  failures.push(...expectationRecordProblems(plan, input.stages));
  const gateProblem = gateRecordProblem(input.gate);
  if (gateProblem) failures.push(gateProblem);
  failures.push(...checkRecordProblems(input.stages));
  if (plan.tiers.some((t) => t.kind === 'rollback') && input.rollback === null && input.preflight?.status !== 'Failed') {
    failures.push(failures.length ? 'C: rollback not rehearsed, because an earlier stage failed' : 'C: rollback not rehearsed');
  }
  const passed = failures.length === 0;
  const gate = input.gate;
  const go = passed && (gate?.open ?? true);
  const reason = !passed ? 'rehearsal failed' : gate ? `${gate.name}=${gate.value ?? 'n/a'}` : 'no gate';
  const next = !passed
    ? 'fix what failed (listed above) and rehearse again'
    : go
      ? `apply it: tiergate apply --target <the source> --evidence evidence.json`
      : gate?.unread
        ? `the gate ${gate.name} reads no value on the source (${gate.unread}): no approval can open it — ${GATE_UNREAD_FIX}, then rehearse again`
        : (plan.gate?.when_closed ?? `the gate ${gate!.name} is ${gate!.value ?? 'n/a'} on the source and needs ≥ ${gate!.min}: obtain the approvals it counts, then apply with --evidence`);
  return { rehearsal: passed ? 'PASS' : 'FAIL', execution: go ? 'GO' : 'NO-GO', reason, failures, next };
}

/**
 * The source's gate record against itself: open exactly when its value is at
 * least its minimum (an edited `open` or `value` makes the GO or NO-GO it
 * gives unfounded). Null when it holds, or when there is no gate.
 */
export function gateRecordProblem(gate: GateReading | null): string | null {
  if (!gate) return null;
  const open = gate.value !== null && gate.value >= gate.min;
  return gate.open === open ? null : `the source's gate record says ${gate.open ? 'open' : 'closed'}, but its value ${gate.value ?? 'n/a'} and minimum ${gate.min} make it ${open ? 'open' : 'closed'}`;
}

/**
 * Whether each stage's checks that hold agree with the tier records they are
 * about: "tier N applies (re-applies) as expected" needs a record of tier N
 * in that stage that is Applied, "tier N stops itself with the gate closed"
 * one that is Blocked with its guard proven, and "verify passes" a record
 * that Passed. The rehearsal writes them together; a file edited to say a
 * tier failed while its check still held was once rendered as a PASS.
 * Returns what disagrees.
 */
export function checkRecordProblems(stages: StageRecord[]): string[] {
  const problems: string[] = [];
  for (const s of stages) {
    for (const c of s.checks) {
      if (!c.ok) continue;
      const tier = /^\S+: tier (\d+) (applies|re-applies|stops itself)/.exec(c.name);
      const records = tier ? s.tiers.filter((t) => t.id === Number(tier[1])) : [];
      const bad = tier
        ? tier[2] === 'stops itself'
          ? !records.some((t) => t.status === 'Blocked' && t.guardProven === true)
          : !records.some((t) => t.status === 'Applied')
        : /: verify passes/.test(c.name) && !s.tiers.some((t) => t.status === 'Passed');
      if (bad) problems.push(`stage ${s.name}: '${c.name}' is recorded as holding, but ${tier ? `tier ${tier[1]} is recorded ${records.map((t) => t.status).join(', ') || 'nowhere'} there` : 'no verify there passed'}`);
    }
  }
  return problems;
}

/**
 * Whether each tier's post-condition records agree with themselves and with
 * the tier's metrics: the value a post-condition read is its metric's value
 * after the tier (as the delta records it), its `ok` is what the condition
 * says of that value, and an applied tier's post-conditions all held (one
 * that does not rolls the tier back). The rehearsal writes them so; a file
 * edited to show another metric beside a post-condition that still reads
 * `owner_gap = 0 ✓` was once reported as a PASS. Returns what disagrees.
 */
export function postConditionRecordProblems(stages: StageRecord[]): string[] {
  const problems: string[] = [];
  for (const s of stages) {
    for (const t of s.tiers) {
      for (const p of t.post ?? []) {
        const at = `stage ${s.name}: tier ${t.id}: post-condition '${p.expr}'`;
        const parsed = parsePostCondition(p.expr);
        if ('error' in parsed) {
          problems.push(`${at} is not one`);
          continue;
        }
        if (checkPostCondition(parsed, p.value) !== p.ok) problems.push(`${at} is recorded ${p.ok ? 'as holding' : 'as failing'} with value ${p.value ?? 'n/a'}`);
        const metric = t.delta?.metrics?.[parsed.metric];
        if (metric && metric.after !== p.value) problems.push(`${at} read ${p.value ?? 'n/a'}, but the tier's metric ${parsed.metric} is ${metric.after ?? 'n/a'} after it`);
        if (t.status === 'Applied' && !p.ok) problems.push(`${at} failed, yet the tier is recorded as applied`);
      }
    }
  }
  return problems;
}

/**
 * Whether each tier's expectation records agree with the tier's delta: the
 * value each one says was measured (`rows axis.ownership added`: 6) is the
 * delta's (its rows, objects or metric), and — when `plan` holds the tier's
 * `expect` (apply has the plan; a report may not) — the records are what
 * the plan's expectations give for that delta and the figures recorded
 * beside it (`compareExpectations`): expected values, measured ones and
 * whether each held. The rehearsal writes them from the same delta; a file
 * whose delta was edited (+6 to +7 rows) beside an expectation still saying
 * 6 ✓ was once accepted, and apply then blamed production for the
 * difference. Returns what disagrees.
 */
export function expectationRecordProblems(plan: Pick<Plan, 'tiers'>, stages: StageRecord[]): string[] {
  const problems: string[] = [];
  const byId = new Map(plan.tiers.map((t) => [t.id, t]));
  for (const s of stages) {
    for (const t of s.tiers) {
      const delta = t.delta;
      if (!delta) continue;
      const at = `stage ${s.name}: tier ${t.id}`;
      for (const e of t.expectations ?? []) {
        const measured = measuredFor(e.what, delta);
        if (measured !== undefined && measured !== e.actual) problems.push(`${at}: expectation '${e.what}' records ${e.actual} measured, but the tier's delta says ${measured}`);
      }
      const tier = byId.get(t.id);
      // (only an applied tier records its expectations: a guard proof that ran to the end keeps its delta, the proof of the failure, without them)
      if (!tier?.expect || problems.length || t.status !== 'Applied') continue;
      const recorded = JSON.stringify(t.expectations ?? []);
      const again = compareExpectations(tier, delta, t.figures ?? {}).map(({ what, expected, actual, ok }) => ({ what, expected, actual, ok }));
      if (JSON.stringify(again) !== recorded) problems.push(`${at}: its expectation records are not what the plan's expectations give for its delta and figures`);
    }
  }
  return problems;
}

/** What a tier's delta says was measured for an expectation (`rows T added`, `rows T`, `tables removed`, `metric M`), as `compareExpectations` writes it; undefined for one it does not name. */
function measuredFor(what: string, delta: NonNullable<TierResult['delta']>): string | undefined {
  const metric = /^metric (.+)$/.exec(what);
  if (metric) {
    const m = delta.metrics[metric[1]!];
    return `${fmt(m?.before)} → ${fmt(m?.after)}`;
  }
  const rows = /^rows (.+?)(?: (added|removed|changed))?$/.exec(what);
  const objects = /^(\w+)(?: (added|removed|changed))?$/.exec(what);
  let counts: { added: number; removed: number; changed: number } | undefined;
  let k: string | undefined;
  if (rows) {
    counts = delta.rows[rows[1]!] ?? { added: 0, removed: 0, changed: 0 };
    k = rows[2];
  } else if (objects && OBJECT_KINDS.has(objects[1]!)) {
    const o = delta.objects[objects[1] as keyof typeof delta.objects];
    counts = { added: o?.added.length ?? 0, removed: o?.removed.length ?? 0, changed: o?.changed.length ?? 0 };
    k = objects[2];
  }
  if (!counts) return undefined;
  return k ? String(counts[k as 'added' | 'removed' | 'changed']) : signed(counts.added - counts.removed);
}

const OBJECT_KINDS = new Set<string>(ObjectKind.options);

/**
 * Whether the evidence's records cover this plan as a rehearsal does: every
 * structure and data tier rehearsed (applied, or already applied on the
 * source), every gated tier's guard proven with the gate closed, the rollback
 * tier run in stage C, each record naming a tier of the plan with the plan's
 * file hash, and no tier recorded more often than a rehearsal records it.
 * Returns what is wrong (empty: nothing).
 */
export function coverageProblems(plan: Pick<Plan, 'tiers'>, evidence: Pick<Evidence, 'stages' | 'rollback'>): string[] {
  const problems: string[] = [];
  const byId = new Map(plan.tiers.map((t) => [t.id, t]));
  const stage = (name: 'A' | 'B' | 'C') => evidence.stages.find((s) => s.name === name)?.tiers ?? [];
  const names = evidence.stages.map((s) => s.name);
  if (new Set(names).size !== names.length) problems.push(`stages ${names.join(', ')}: a stage is recorded twice`);
  for (const s of evidence.stages) {
    // a tier is recorded at most twice in a stage (stage C: reverted, then re-applied)
    const counts = new Map<number, number>();
    for (const t of s.tiers) {
      const tier = byId.get(t.id);
      if (!tier) {
        problems.push(`stage ${s.name}: tier ${t.id} is not a tier of the plan`);
        continue;
      }
      if (t.sha256 !== tier.sha256) problems.push(`stage ${s.name}: tier ${t.id} was recorded with sha256 ${t.sha256.slice(0, 12)}, the plan's file has ${tier.sha256.slice(0, 12)}`);
      counts.set(t.id, (counts.get(t.id) ?? 0) + 1);
      if (t.status === 'Applied' && t.error) problems.push(`stage ${s.name}: tier ${t.id} is Applied with an error`);
      if (t.status === 'Blocked' && s.name === 'A' && tier.gated && t.guardProven !== true) problems.push(`stage A: gated tier ${t.id} is Blocked without its guard proven`);
    }
    for (const [id, n] of counts) if (n > 2) problems.push(`stage ${s.name}: tier ${id} is recorded ${n} times`);
  }
  if (problems.length) return problems;
  const rehearsed = (id: number) =>
    [...stage('A'), ...stage('B')].some((t) => t.id === id && (t.status === 'Applied' || (t.status === 'Skipped' && /already applied/.test(t.reason ?? ''))));
  for (const t of plan.tiers) {
    if ((t.kind === 'structure' || t.kind === 'data') && !rehearsed(t.id)) problems.push(`tier ${t.id} was not applied in the rehearsal`);
    if (t.gated && !stage('A').some((r) => r.id === t.id && (r.guardProven === true || /already applied/.test(r.reason ?? '')))) {
      problems.push(`gated tier ${t.id}: its guard was not proven with the gate closed`);
    }
  }
  // the rollback the rehearsal proves: the plan's full one, or (a rehearsal of an amendment) the one of scope subject
  const rollbacks = plan.tiers.filter((t) => t.kind === 'rollback');
  const proven = rollbacks.find((t) => t.id === evidence.rollback?.tier) ?? rollbacks.find((t) => t.scope !== 'subject') ?? rollbacks[0];
  if (proven && !stage('C').some((r) => r.id === proven.id && r.status === 'Applied')) problems.push(`rollback tier ${proven.id} was not rehearsed`);
  if (plan.tiers.some((t) => t.kind === 'rollback') && !(evidence.rollback?.matchesKeptTiers && evidence.rollback.reapplyMatches)) {
    problems.push('the rollback proof is missing or did not hold');
  }
  return problems;
}
