import type { Evidence, TierResult } from '../evidence/types.js';
import { fitText, formatMs, statusLabel } from './format.js';
import { html, type SafeHtml } from './html.js';
import { tierClass } from './html-parts.js';

const WIDTH = 1000;
const LABEL = 270;
const VALUE = 70;
const PLOT = WIDTH - LABEL - VALUE;
const ROW = 18;
const BAR = 11;
const GROUP = 24;
const TOP = 18;

interface Group {
  title: string;
  tiers: TierResult[];
}

/**
 * How long each tier took, stage by stage, as an inline SVG bar chart (no
 * script): a bar per tier run in its status colour, grouped by stage with
 * the stage's total. Accessible: the SVG has a title and a description, and
 * the same figures follow as a table behind a disclosure.
 *
 * @example durationChart(evidence) // <figure id="durations"><svg role="img" …><title>Tier durations by stage</title>…
 */
export function durationChart(e: Evidence): SafeHtml {
  const groups: Group[] = [
    ...(e.source.preflight ? [{ title: 'Preflight (source)', tiers: [e.source.preflight] }] : []),
    ...e.stages.map((s) => ({ title: `Stage ${s.name}`, tiers: s.tiers })),
  ];
  const runs = groups.flatMap((g) => g.tiers);
  if (runs.length === 0) return html`<p class="muted">No tier ran.</p>`;
  const scale = niceCeil(Math.max(1, ...runs.map((t) => (Number.isFinite(t.durationMs) ? t.durationMs : 0))));
  const x = (ms: number) => (Number.isFinite(ms) ? Math.min(PLOT, (Math.max(0, ms) / scale) * PLOT) : 0);

  let y = TOP;
  const parts: SafeHtml[] = [];
  for (const g of groups) {
    const total = g.tiers.reduce((sum, t) => sum + (Number.isFinite(t.durationMs) ? t.durationMs : 0), 0);
    y += GROUP - ROW;
    parts.push(html`<text x="0" y="${n(y + 2)}" class="group">${g.title} · ${formatMs(total)}</text>`);
    y += 6;
    for (const t of g.tiers) {
      const w = x(t.durationMs);
      const label = fitText(`${t.id} ${t.name}`, 40);
      parts.push(
        html`<g class="bar ${tierClass(t)}"><title>${g.title} · tier ${t.id} ${t.name}: ${statusLabel(t)}, ${formatMs(t.durationMs)}</title><text x="12" y="${n(y + BAR - 1)}" class="label">${label}</text><rect x="${LABEL}" y="${n(y + 1)}" width="${n(t.durationMs > 0 ? Math.max(1.5, w) : 0)}" height="${BAR}" rx="2"/><text x="${n(LABEL + w + 5)}" y="${n(y + BAR - 1)}" class="value">${formatMs(t.durationMs)}</text></g>`,
      );
      y += ROW;
    }
  }
  const height = Math.ceil(y + 6);
  const ticks = [0, scale / 2, scale].map(
    (v) => html`<line x1="${n(LABEL + x(v))}" x2="${n(LABEL + x(v))}" y1="${TOP - 4}" y2="${height - 4}" class="grid"/><text x="${n(LABEL + x(v))}" y="${TOP - 8}" class="tick" text-anchor="middle">${formatMs(v)}</text>`,
  );
  const description = groups
    .map((g) => `${g.title}: ${g.tiers.map((t) => `tier ${t.id} ${t.name} ${statusLabel(t)} ${formatMs(t.durationMs)}`).join('; ') || 'no tier'}`)
    .join('. ');
  return html`<figure class="durations">
<svg class="dchart" viewBox="0 0 ${WIDTH} ${height}" width="${WIDTH}" height="${height}" role="img" aria-labelledby="durations-title durations-desc"><title id="durations-title">Tier durations by stage</title><desc id="durations-desc">${description}</desc>${ticks}${parts}</svg>
<figcaption class="muted">Each bar is one tier run, in its status colour; the scale runs from 0 to ${formatMs(scale)}.</figcaption>
<details class="alt"><summary>The durations as a table</summary><div class="scroll"><table><thead><tr><th>Stage</th><th class="num">Tier</th><th>Name</th><th>Status</th><th class="num">Time</th></tr></thead><tbody>${groups.flatMap((g) =>
    g.tiers.map((t) => html`<tr><td>${g.title}</td><td class="num">${t.id}</td><td><div class="clip">${t.name}</div></td><td class="nw">${statusLabel(t)}</td><td class="num">${formatMs(t.durationMs)}</td></tr>`),
  )}</tbody></table></div></details>
</figure>`;
}

/** The smallest 1, 2 or 5 × 10ⁿ at or above `v`: a scale people read at a glance. */
function niceCeil(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v));
  return ([1, 2, 5, 10].find((m) => m * p >= v) ?? 10) * p;
}

function n(v: number): string {
  return String(Math.round(v * 10) / 10);
}
