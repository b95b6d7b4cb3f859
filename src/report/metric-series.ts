import type { Evidence } from '../evidence/types.js';
import { tiersInOrder } from './format.js';

/** One value of a metric along the run: after a tier, or before the first tier that measured it. */
export interface MetricPoint {
  /** the tier's position in run order (see {@link MetricRun.stages}) */
  slot: number;
  /** `0` (preflight), `A`, `B`, `C` */
  stage: string;
  tierId: number;
  tierName: string;
  /** `after`: the value the tier left; `before`: the value it found (shown when it differs from the previous point) */
  at: 'before' | 'after';
  value: number | null;
}

export interface MetricSeries {
  name: string;
  points: MetricPoint[];
}

/** Every metric's values across the run, on one shared axis so the charts line up. */
export interface MetricRun {
  /** the stage of each tier in run order: the x axis of every chart */
  stages: string[];
  series: MetricSeries[];
}

/**
 * Each metric's values across the run, in run order (preflight, then stages
 * A, B, C, tier by tier), for charts: a `before` point is added where a
 * tier found a value other than the one the previous point left (a new
 * clone, a metric measured for the first time).
 *
 * @example
 *   metricRun(evidence).series.find((s) => s.name === 'owner_gap')
 *   // points: n/a (before A·1), 210 (after A·1), 0 (after B·2), …
 */
export function metricRun(e: Evidence): MetricRun {
  const run = tiersInOrder(e);
  const byName = new Map<string, MetricPoint[]>();
  run.forEach(({ stage, tier }, slot) => {
    for (const [name, m] of Object.entries(tier.delta?.metrics ?? {})) {
      let points = byName.get(name);
      if (!points) byName.set(name, (points = []));
      const base = { slot, stage, tierId: tier.id, tierName: tier.name };
      const last = points[points.length - 1];
      if (last ? last.value !== m.before : m.before !== m.after) {
        points.push({ ...base, at: 'before', value: m.before });
      }
      points.push({ ...base, at: 'after', value: m.after });
    }
  });
  return { stages: run.map((r) => r.stage), series: Array.from(byName, ([name, points]) => ({ name, points })) };
}
