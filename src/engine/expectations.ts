import type { Tier } from '../plan/plan.js';
import type { ObjectKind } from '../plan/schema.js';
import type { Delta, ExpectationResult } from './result.js';

type Counts = { added?: number; removed?: number; changed?: number };

/**
 * Compares a tier's measured delta with the plan's `expect`. Enforced in
 * rehearsal, reported (not enforced) in production. A number is
 * "added − removed"; an object names each count it checks.
 */
export function compareExpectations(tier: Tier, delta: Delta): ExpectationResult[] {
  const out: ExpectationResult[] = [];
  const e = tier.expect;
  if (!e) return out;
  for (const [rel, want] of Object.entries(e.rows ?? {})) {
    const got = delta.rows[rel] ?? { added: 0, removed: 0, changed: 0 };
    out.push(...compareCounts(`rows ${rel}`, want, { added: got.added, removed: got.removed, changed: got.changed }));
  }
  for (const [kind, want] of Object.entries(e.objects ?? {}) as [ObjectKind, number | Counts][]) {
    const got = delta.objects[kind];
    out.push(...compareCounts(`${kind}`, want, { added: got?.added.length ?? 0, removed: got?.removed.length ?? 0, changed: got?.changed.length ?? 0 }));
  }
  for (const [metric, [before, after]] of Object.entries(e.metrics ?? {})) {
    const got = delta.metrics[metric];
    const actual = `${fmt(got?.before)} → ${fmt(got?.after)}`;
    const expected = `${fmt(before)} → ${fmt(after)}`;
    out.push({ what: `metric ${metric}`, expected, actual, ok: got !== undefined && got.before === before && got.after === after });
  }
  return out;
}

function compareCounts(what: string, want: number | Counts, got: Required<Counts>): ExpectationResult[] {
  if (typeof want === 'number') {
    const net = got.added - got.removed;
    return [{ what, expected: signed(want), actual: signed(net), ok: net === want }];
  }
  return (['added', 'removed', 'changed'] as const)
    .filter((k) => want[k] !== undefined)
    .map((k) => ({ what: `${what} ${k}`, expected: String(want[k]), actual: String(got[k]), ok: got[k] === want[k] }));
}

const signed = (n: number) => (n >= 0 ? `+${n}` : String(n));
const fmt = (n: number | null | undefined) => (n === null || n === undefined ? 'n/a' : String(n));
