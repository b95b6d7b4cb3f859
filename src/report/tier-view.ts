import type { SqlFailure } from '../errors.js';
import type { ExpectationResult, MetricChange, RowChanges, TierResult } from '../evidence/types.js';
import { changedMetrics, metricChanges, objectChanges, rowChanges, type ObjectKindChanges } from './format.js';

/**
 * What the reports show of one tier, shared by Markdown and HTML so they
 * cannot disagree: the objects, rows and metrics it changed (a metric that
 * did not move is left out), each beside the plan's expectation for it, as
 * recorded. Expectations are matched by the name the rehearsal gives them
 * (`metric owner_gap`, `rows axis.ownership added`, `tables added`).
 */
export interface TierView {
  objects: (ObjectKindChanges & { expectations: Checked[] })[];
  rows: { table: string; changes: RowChanges; expectations: Checked[] }[];
  metrics: { name: string; change: MetricChange; expectation: Checked | null }[];
  /** metrics measured but not moved by the tier */
  unchangedMetrics: string[];
  expectations: { all: ExpectationResult[]; met: number; missed: ExpectationResult[] };
}

/** An expectation shown beside what it is about: `part` names which figure (`added`), empty for the whole. */
export interface Checked extends ExpectationResult {
  part: string;
}

export function tierView(t: TierResult): TierView {
  const all = t.expectations ?? [];
  const about = (prefix: string): Checked[] =>
    all.flatMap((x) => (x.what === prefix ? [{ ...x, part: '' }] : x.what.startsWith(`${prefix} `) ? [{ ...x, part: x.what.slice(prefix.length + 1) }] : []));
  const changed = changedMetrics(t.delta);
  const moved = new Set(changed.map(([name]) => name));
  return {
    objects: objectChanges(t.delta).map((c) => ({ ...c, expectations: about(c.kind).filter(worthShowing) })),
    rows: rowChanges(t.delta).map(([table, changes]) => ({ table, changes, expectations: about(`rows ${table}`).filter(worthShowing) })),
    metrics: changed.map(([name, change]) => ({ name, change, expectation: about(`metric ${name}`)[0] ?? null })),
    unchangedMetrics: metricChanges(t.delta)
      .map(([name]) => name)
      .filter((name) => !moved.has(name)),
    expectations: { all, met: all.filter((x) => x.ok).length, missed: all.filter((x) => !x.ok) },
  };
}

/** Beside a figure, an expectation that held at zero (`removed: 0`, `+0`) says nothing: it stays in the full list. */
function worthShowing(x: ExpectationResult): boolean {
  const zero = (s: string) => /^[+±]?0$/.test(s.trim());
  return !x.ok || !(zero(x.expected) && zero(x.actual));
}

/** The reason worth showing: not one that only repeats the error or the failed assertions shown with it. */
export function shownReason(t: TierResult): string | null {
  const reason = t.reason;
  if (!reason || reason === t.error?.message) return null;
  const assertions = t.failedAssertions ?? [];
  return assertions.length > 0 && assertions.every((a) => reason.includes(a.message)) ? null : reason;
}

/** A tier's failures to show: its error (unless it is the first failed assertion again), then each failed assertion. */
export function tierFailures(t: TierResult): { kind: 'error' | 'assertion'; failure: SqlFailure }[] {
  const assertions = t.failedAssertions ?? [];
  const first = assertions[0];
  const repeated = t.error && first && t.error.message === first.message && t.error.line === first.line && t.error.file === first.file;
  return [
    ...(t.error && !repeated ? [{ kind: 'error' as const, failure: t.error }] : []),
    ...assertions.map((failure) => ({ kind: 'assertion' as const, failure })),
  ];
}
