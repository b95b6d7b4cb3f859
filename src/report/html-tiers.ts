import type { Evidence, StageRecord, TierResult } from '../evidence/types.js';
import { formatMs, statusLabel } from './format.js';
import { html, type SafeHtml } from './html.js';
import { mark, STATUSES, statusPill, tierClass } from './html-parts.js';
import { tierCard } from './html-tier-card.js';
import { stageLabel } from './metric-chart.js';

/** The HTML report's tier views: anchors, the timeline, a section per stage with a card per tier. */

/** The ids of the tier cards: by run (stage and position in it), and by tier result (its first run), for links. */
export interface TierAnchors {
  run(stage: string, index: number): string;
  tier(t: TierResult): string | undefined;
}

/** `#tier-b-2`: one id per tier run (stage C runs a tier twice: `tier-c-6`, `tier-c-6-2`); the preflight is `tier-pre-0`. */
export function tierAnchors(e: Evidence): TierAnchors {
  const byRun = new Map<string, string>();
  const byTier = new Map<TierResult, string>();
  const used = new Map<string, number>();
  const groups: [string, TierResult[]][] = [...(e.source.preflight ? [['0', [e.source.preflight]] as [string, TierResult[]]] : []), ...e.stages.map((s): [string, TierResult[]] => [s.name, s.tiers])];
  for (const [stage, tiers] of groups) {
    tiers.forEach((t, i) => {
      const base = `tier-${idPart(stageLabel(stage))}-${t.id}`;
      const n = (used.get(base) ?? 0) + 1;
      used.set(base, n);
      const anchor = n === 1 ? base : `${base}-${n}`;
      byRun.set(`${stage}#${i}`, anchor);
      if (!byTier.has(t)) byTier.set(t, anchor);
    });
  }
  return { run: (stage, index) => byRun.get(`${stage}#${index}`) ?? 'timeline', tier: (t) => byTier.get(t) };
}

/** The id of a stage's section: `stage-a`; the preflight is `preflight`. */
export function stageAnchor(stage: string): string {
  return stage === '0' ? 'preflight' : `stage-${idPart(stage)}`;
}

function idPart(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-') || 'x';
}

/** Stages A–C (and the preflight) as rows of coloured cells, one per tier, in run order; each links to its card. */
export function timeline(e: Evidence, anchors: TierAnchors): SafeHtml {
  const rows: { stage: string; name: string; title: string; tiers: TierResult[] }[] = [
    ...(e.source.preflight ? [{ stage: '0', name: 'Preflight', title: 'on the source, read-only', tiers: [e.source.preflight] }] : []),
    ...e.stages.map((s) => ({ stage: s.name, name: `Stage ${s.name}`, title: s.title, tiers: s.tiers })),
  ];
  return html`<section id="timeline"><h2>Timeline</h2>
<div class="legend">${STATUSES.map(statusPill)}<span class="pill st-expected">Blocked / Failed as expected</span></div>
${rows.map(
  (r) => html`<div class="stage-row"><div class="stage-name">${r.name}<small>${r.title}</small></div>
<ol class="cells">${r.tiers.map((t, i) => cell(t, anchors.run(r.stage, i)))}</ol></div>`,
)}</section>`;
}

function cell(t: TierResult, anchor: string): SafeHtml {
  const proof =
    t.status === 'Blocked' ? [t.guardProven ? 'guard ✓' : 'guard ✗', t.fingerprintUnchanged ? 'unchanged ✓' : 'changed ✗'].join(' · ') : '';
  const tip = `Tier ${t.id} ${t.name}: ${statusLabel(t)}, ${formatMs(t.durationMs)}${t.reason ? ` (${t.reason})` : ''}`;
  return html`<li class="cell ${tierClass(t)}" title="${tip}"><a href="#${anchor}"><span class="id">${t.id}</span><span class="nm">${t.name}</span><span class="meta">${statusLabel(t)} · ${formatMs(t.durationMs)}</span>${proof ? html`<span class="meta">${proof}</span>` : ''}</a></li>`;
}

/** The preflight, or one stage: its checks, then a card per tier. */
export function stageSection(e: Evidence, stage: StageRecord | 'preflight', anchors: TierAnchors): SafeHtml {
  if (stage === 'preflight') {
    const t = e.source.preflight;
    if (!t) return html``;
    return html`<section id="${stageAnchor('0')}" class="stage"><h2>Preflight <small>on the source, read-only</small></h2>
${tierCard(e, '0', t, anchors.run('0', 0))}</section>`;
  }
  const checks = stage.checks.length
    ? html`<ul class="checks">${stage.checks.map((c) => html`<li>${mark(c.ok)}${c.expected ? html` <span class="pill st-expected tag">expected</span>` : ''} ${c.name}${c.detail ? (c.detail.length > 160 ? html`<div class="muted long">${c.detail}</div>` : html` <span class="muted">— ${c.detail}</span>`) : ''}</li>`)}</ul>`
    : html`<p class="muted">No checks were recorded for this stage.</p>`;
  return html`<section id="${stageAnchor(stage.name)}" class="stage"><h2>Stage ${stage.name} <small>${stage.title}</small></h2>
<h3>Checks</h3>${checks}
<h3>Tiers</h3>${stage.tiers.length ? stage.tiers.map((t, i) => tierCard(e, stage.name, t, anchors.run(stage.name, i))) : html`<p class="muted">No tiers ran in this stage.</p>`}
</section>`;
}
