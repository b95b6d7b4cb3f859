import { formatValue } from './format.js';
import { html, type SafeHtml } from './html.js';
import type { MetricSeries } from './metric-series.js';

const HEIGHT = 64;
const PAD = { left: 6, right: 30, top: 10, bottom: 16 };
const MAX_PLOT_WIDTH = 460;

/**
 * A metric across the run as a small inline SVG line chart on the run's
 * shared axis (one slot per tier, a shaded band per stage, so the charts of
 * all metrics line up): a dot per value, a cross where it was n/a, the line
 * broken there. No script, no external resource; every label is escaped.
 *
 * @example
 *   const run = metricRun(evidence);
 *   metricChart(run.series[0]!, run.stages) // <svg …><title>owner_gap: n/a → 210 → 0 …</title>…</svg>
 */
export function metricChart(series: MetricSeries, stages: string[]): SafeHtml {
  const slots = Math.max(1, stages.length);
  const step = Math.max(6, Math.min(24, MAX_PLOT_WIDTH / slots));
  const width = Math.round(PAD.left + PAD.right + step * slots);
  // a tier's `after` value sits in the middle of its slot, the value it found (`before`) at its left edge
  const x = (slot: number, at: 'before' | 'after') => PAD.left + step * (slot + (at === 'after' ? 0.6 : 0.15));
  const { points } = series;
  const values = points.map((p) => p.value).filter((v): v is number => v !== null);
  const low = Math.min(0, ...values);
  const high = Math.max(low + 1, ...values);
  const baseline = HEIGHT - PAD.bottom;
  const y = (v: number) => baseline - ((v - low) / (high - low)) * (baseline - PAD.top);

  const bands = stageBands(stages).map((b, i) => {
    const left = PAD.left + step * b.first;
    return html`<rect x="${n(left)}" y="0" width="${n(step * (b.last - b.first + 1))}" height="${HEIGHT}" class="band${i % 2 === 1 ? ' alt' : ''}"/><text x="${n(left + 2)}" y="${HEIGHT - 3}" class="band-label">${stageLabel(b.stage)}</text>`;
  });

  let path = '';
  points.forEach((p, i) => {
    if (p.value === null) return;
    const previous = points[i - 1];
    // hold the previous value up to this tier's slot, then move: a tier changes a metric, time between tiers does not
    path +=
      previous && previous.value !== null
        ? `H${n(Math.max(x(previous.slot, previous.at), x(p.slot, 'before')))}L${n(x(p.slot, p.at))} ${n(y(p.value))}`
        : `M${n(x(p.slot, p.at))} ${n(y(p.value))}`;
  });

  const marks = points.map((p, i) => {
    const tip = html`<title>${stageLabel(p.stage)}·${p.tierId} ${p.tierName} (${p.at}): ${formatValue(p.value)}</title>`;
    const cx = x(p.slot, p.at);
    if (p.value === null) return html`<g class="na">${tip}<path d="M${n(cx - 3)} ${baseline - 3}l6 6m0 -6l-6 6"/></g>`;
    const last = i === points.length - 1;
    return html`<circle cx="${n(cx)}" cy="${n(y(p.value))}" r="${last ? 3.5 : 2.5}"${last ? html` class="last"` : ''}>${tip}</circle>`;
  });

  const scale = values.length
    ? html`<text x="${width - 2}" y="${n(y(high) + 3)}" class="scale" text-anchor="end">${formatValue(high)}</text><text x="${width - 2}" y="${n(y(low) + 3)}" class="scale" text-anchor="end">${formatValue(low)}</text>`
    : '';
  const summary = `${series.name}: ${points.map((p) => formatValue(p.value)).join(' → ')}`;
  return html`<svg class="chart" width="${width}" height="${HEIGHT}" viewBox="0 0 ${width} ${HEIGHT}" role="img" aria-label="${summary}"><title>${summary}</title>${bands}${scale}<line x1="${PAD.left}" x2="${n(width - PAD.right + 2)}" y1="${n(y(low))}" y2="${n(y(low))}" class="axis"/>${path ? html`<path d="${path}" class="line"/>` : ''}${marks}</svg>`;
}

function stageBands(stages: string[]): { stage: string; first: number; last: number }[] {
  const bands: { stage: string; first: number; last: number }[] = [];
  stages.forEach((stage, i) => {
    const current = bands[bands.length - 1];
    if (current && current.stage === stage) current.last = i;
    else bands.push({ stage, first: i, last: i });
  });
  return bands;
}

/** `0` is the preflight on the source. */
export function stageLabel(stage: string): string {
  return stage === '0' ? 'pre' : stage;
}

function n(v: number): string {
  return String(Math.round(v * 10) / 10);
}
