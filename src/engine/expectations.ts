import { evaluate, parseExpr } from '../plan/expect-expr.js';
import type { Tier } from '../plan/plan.js';
import type { CountExpectation, MetricExpectation, ObjectKind } from '../plan/schema.js';
import type { Delta, ExpectationResult } from './result.js';

type Counts = { added: number; removed: number; changed: number };

/**
 * Compares a tier's measured delta with the plan's `expect`, whose counts and
 * metric values may be expressions over this environment's figures: the
 * metrics' values before the tier and the plan's figures read in the tier's
 * transaction before it ran (`figures`). A count alone is "added − removed";
 * `any` checks nothing; an expression whose inputs are n/a does not hold.
 *
 * @example compareExpectations(tier, delta, { approved_anchors: 30 }) // [{ what: 'rows axis.ownership added', expected: 'approved_anchors = 30', actual: '30', ok: true }, …]
 */
export function compareExpectations(tier: Tier, delta: Delta, figures: Record<string, number | null> = {}): ExpectationResult[] {
  const e = tier.expect;
  if (!e) return [];
  const values: Record<string, number | null> = { ...Object.fromEntries(Object.entries(delta.metrics).map(([k, m]) => [k, m.before])), ...figures };
  const out: ExpectationResult[] = [];
  for (const [rel, want] of Object.entries(e.rows ?? {})) {
    const got = delta.rows[rel] ?? { added: 0, removed: 0, changed: 0 };
    out.push(...compareCounts(`rows ${rel}`, want, got, values));
  }
  for (const [kind, want] of Object.entries(e.objects ?? {}) as [ObjectKind, CountExpectation][]) {
    const got = delta.objects[kind];
    out.push(...compareCounts(kind, want, { added: got?.added.length ?? 0, removed: got?.removed.length ?? 0, changed: got?.changed.length ?? 0 }, values));
  }
  for (const [metric, want] of Object.entries(e.metrics ?? {}) as [string, MetricExpectation][]) {
    const got = delta.metrics[metric];
    const actual = `${fmt(got?.before)} → ${fmt(got?.after)}`;
    if (want === 'unchanged') {
      out.push({ what: `metric ${metric}`, expected: 'unchanged', actual, ok: got !== undefined && got.before === got.after });
      continue;
    }
    const [before, after] = [expected(want[0], values), expected(want[1], values)];
    const ok = got !== undefined && before.matches(got.before) && after.matches(got.after);
    out.push({ what: `metric ${metric}`, expected: `${before.text} → ${after.text}`, actual, ok });
  }
  return out;
}

function compareCounts(what: string, want: CountExpectation, got: Counts, values: Record<string, number | null>): ExpectationResult[] {
  if (typeof want === 'number' || typeof want === 'string') {
    const net = got.added - got.removed;
    const x = expected(want, values, true);
    return x.any ? [] : [{ what, expected: x.text, actual: signed(net), ok: x.matches(net) }];
  }
  return (['added', 'removed', 'changed'] as const).flatMap((k) => {
    const w = want[k];
    if (w === undefined) return [];
    const x = expected(w, values);
    return x.any ? [] : [{ what: `${what} ${k}`, expected: x.text, actual: String(got[k]), ok: x.matches(got[k]) }];
  });
}

interface Expected {
  any: boolean;
  text: string;
  matches(v: number | null | undefined): boolean;
}

/** One expected value: a number, null (n/a), `any`, or an expression evaluated with `values`. */
function expected(want: number | string | null, values: Record<string, number | null>, sign = false): Expected {
  if (want === null) return { any: false, text: 'n/a', matches: (v) => v === null };
  if (typeof want === 'number') return { any: false, text: sign ? signed(want) : String(want), matches: (v) => v === want };
  const parsed = parseExpr(want);
  if (!parsed.ok) return { any: false, text: want, matches: () => false };
  if (parsed.expr === 'any') return { any: true, text: 'any', matches: () => true };
  const value = evaluate(parsed.expr, values);
  const shown = value === null ? 'n/a' : sign ? signed(value) : String(value);
  const literal = /^\s*-?\d+(\.\d+)?\s*$/.test(want);
  return { any: false, text: literal ? shown : `${want.trim()} = ${shown}`, matches: (v) => value !== null && v === value };
}

/** A net count as an expectation record writes it: `+3`, `-1`. */
export const signed = (n: number) => (n >= 0 ? `+${n}` : String(n));
/** A metric's value as an expectation record writes it: a number, or `n/a`. */
export const fmt = (n: number | null | undefined) => (n === null || n === undefined ? 'n/a' : String(n));
