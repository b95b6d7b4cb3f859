import type { Delta, Evidence, MetricChange, ObjectChanges, RowChanges, TierResult } from '../evidence/types.js';
import { singleLine } from '../text.js';

/**
 * Plain-text formatting shared by the renderers. Nothing here escapes for a
 * format: each renderer escapes what these return for its own medium.
 */

/** `120 ms`, `1.2 s`, `2 min 5 s` */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${s % 60} s`;
}

/** A metric's value: `210`, `0.25`, or `n/a` for null (its objects do not exist yet). */
export function formatValue(v: number | null): string {
  if (v === null) return 'n/a';
  return Number.isInteger(v) ? String(v) : String(Math.round(v * 100) / 100);
}

/** `210 → 0`; a value that did not move is shown once: `0`. */
export function formatMetricChange(m: MetricChange, arrow = ' → '): string {
  return m.before === m.after ? formatValue(m.after) : `${formatValue(m.before)}${arrow}${formatValue(m.after)}`;
}

/** Counts as `+30`, `−35`, `+5 ~4` (added, removed, changed); `±0` when nothing moved. */
export function formatCounts(c: { added: number; removed: number; changed: number }): string {
  const parts = [
    c.added > 0 ? `+${c.added}` : '',
    c.removed > 0 ? `\u2212${c.removed}` : '',
    c.changed > 0 ? `~${c.changed}` : '',
  ].filter(Boolean);
  return parts.length > 0 ? parts.join(' ') : '±0';
}

/** Object kinds in the order a reader expects them (the evidence's kinds; one it does not list follows, in its own order). */
const OBJECT_KIND_ORDER = ['schemas', 'extensions', 'types', 'tables', 'views', 'functions', 'sequences', 'indexes', 'constraints', 'triggers', 'policies', 'rules'];

export interface ObjectKindChanges extends ObjectChanges {
  kind: string;
}

/** The object kinds a delta touched, in a fixed order, empty kinds left out. */
export function objectChanges(delta: Delta | null): ObjectKindChanges[] {
  if (!delta) return [];
  const objects = delta.objects as Record<string, ObjectChanges | undefined>;
  const kinds = [...OBJECT_KIND_ORDER.filter((k) => k in objects), ...Object.keys(objects).filter((k) => !OBJECT_KIND_ORDER.includes(k))];
  return kinds.flatMap((kind) => {
    const c = objects[kind];
    if (!c || c.added.length + c.removed.length + c.changed.length === 0) return [];
    return [{ kind, ...c }];
  });
}

/** `tables +6, views +5 ~5` */
export function formatObjectCounts(delta: Delta | null): string {
  return objectChanges(delta)
    .map((c) => `${c.kind} ${formatCounts({ added: c.added.length, removed: c.removed.length, changed: c.changed.length })}`)
    .join(', ');
}

/** The tables whose rows a delta changed, in the order measured, untouched tables left out. */
export function rowChanges(delta: Delta | null): [table: string, changes: RowChanges][] {
  if (!delta) return [];
  return Object.entries(delta.rows).filter(([, r]) => r.added + r.removed + r.changed > 0);
}

/** The metrics a delta measured, in the order measured. */
export function metricChanges(delta: Delta | null): [metric: string, change: MetricChange][] {
  return delta ? Object.entries(delta.metrics) : [];
}

/** The metrics a tier moved (n/a → a value counts), in the order measured: what a report shows of a tier. */
export function changedMetrics(delta: Delta | null): [metric: string, change: MetricChange][] {
  return metricChanges(delta).filter(([, m]) => m.before !== m.after);
}

/** The first 12 hex digits of a sha256: enough to tell files apart in a report. */
export function shortSha(sha: string): string {
  return sha.slice(0, 12);
}

/** `tiers/02_ownership_seed.sql:12:3` (the parts known). */
export function formatLocation(f: { file: string | null; line: number | null; column: number | null }): string {
  if (!f.file) return f.line === null ? '' : `line ${f.line}`;
  return [f.file, f.line, f.line === null ? null : f.column].filter((p) => p !== null).join(':');
}

/** `Rehearsal PASS · Execution NO-GO (ospa=0)`: the one line that answers "can we ship". */
export function verdictText(v: Evidence['verdict']): string {
  const reason = singleLine(v.reason).trim();
  return `Rehearsal ${v.rehearsal} · Execution ${v.execution}${reason ? ` (${reason})` : ''}`;
}

/** `2026-06-03` from an ISO timestamp; anything else is returned as it is. */
export function formatDate(iso: string): string {
  return /^\d{4}-\d{2}-\d{2}/.test(iso) ? iso.slice(0, 10) : iso;
}

/**
 * Shortens to `width` characters (code points) with an ellipsis.
 *
 * @example fitText('Detector / reconcile / UI-API read views', 22) // 'Detector / reconcile…'
 */
export function fitText(text: string, width: number): string {
  const chars = Array.from(text);
  return chars.length <= width ? text : chars.slice(0, Math.max(0, width - 1)).join('').trimEnd() + '…';
}

/**
 * Whether a tier's Blocked or Failed status is the outcome the rehearsal
 * expects (a gated tier with the gate closed, verify before the data tiers):
 * reports label it "expected", not as an error.
 */
export function isExpectedOutcome(t: Pick<TierResult, 'status' | 'expectedOutcome'>): boolean {
  return (t.status === 'Blocked' || t.status === 'Failed') && Boolean(t.expectedOutcome?.trim());
}

/** `Blocked (expected)`, or the status as it is. */
export function statusLabel(t: Pick<TierResult, 'status' | 'expectedOutcome'>): string {
  return isExpectedOutcome(t) ? `${t.status} (expected)` : t.status;
}

/**
 * Why an expected outcome is expected, without a leading "expected:" (the
 * reports put the word in the label).
 *
 * @example expectedOutcomeText({ expectedOutcome: 'expected: the gate is closed' }) // 'the gate is closed'
 */
export function expectedOutcomeText(t: Pick<TierResult, 'expectedOutcome'>): string {
  return (t.expectedOutcome ?? '').trim().replace(/^expected\b\s*[:—–-]?\s*/i, '');
}

/**
 * `server_version_num` as people write it: `180006` → `18.6`, `90624` → `9.6.24`.
 *
 * @example formatServerVersion(170002) // '17.2'
 */
export function formatServerVersion(n: number | null): string {
  if (n === null) return 'unknown';
  if (!Number.isInteger(n) || n <= 0) return String(n);
  return n >= 100_000 ? `${Math.floor(n / 10_000)}.${n % 10_000}` : `${Math.floor(n / 10_000)}.${Math.floor(n / 100) % 100}.${n % 100}`;
}

/** Every tier result of the evidence in run order, with its stage: the preflight first as stage `0`. */
export function tiersInOrder(e: Evidence): { stage: string; tier: TierResult }[] {
  const pre = e.source.preflight ? [{ stage: '0', tier: e.source.preflight }] : [];
  return [...pre, ...e.stages.flatMap((s) => s.tiers.map((tier) => ({ stage: s.name, tier })))];
}
