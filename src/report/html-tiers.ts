import type { SqlFailure } from '../errors.js';
import type { TierResult, TierStatus } from '../evidence/types.js';
import type { Evidence } from '../evidence/types.js';
import { formatCounts, formatLocation, formatMetricChange, formatMs, metricChanges, objectChanges, rowChanges, tiersInOrder } from './format.js';
import { html, type SafeHtml } from './html.js';
import { stageLabel } from './metric-chart.js';

/** The HTML report's tier views: timeline, delta table, failures and stop-gates. */

const STATUSES: readonly TierStatus[] = ['Applied', 'Passed', 'Blocked', 'Failed', 'Skipped', 'Reverted'];

/** The CSS class of a status; an unknown one (evidence edited by hand) gets the neutral colour. */
export function statusClass(status: string): string {
  return (STATUSES as readonly string[]).includes(status) ? `st-${status.toLowerCase()}` : 'st-skipped';
}

export function statusPill(status: string): SafeHtml {
  return html`<span class="pill ${statusClass(status)}">${status}</span>`;
}

/** Stages A–C (and the preflight) as rows of coloured cells, one per tier, in run order. */
export function timeline(e: Evidence): SafeHtml {
  const rows: { name: string; title: string; tiers: TierResult[] }[] = [
    ...(e.source.preflight ? [{ name: 'Preflight', title: 'on the source, read-only', tiers: [e.source.preflight] }] : []),
    ...e.stages.map((s) => ({ name: `Stage ${s.name}`, title: s.title, tiers: s.tiers })),
  ];
  return html`<section id="timeline"><h2>Timeline</h2>
<div class="legend">${STATUSES.map(statusPill)}</div>
${rows.map(
  (r) => html`<div class="stage-row"><div class="stage-name">${r.name}<small>${r.title}</small></div>
<ol class="cells">${r.tiers.map(cell)}</ol></div>`,
)}</section>`;
}

function cell(t: TierResult): SafeHtml {
  const proof =
    t.status === 'Blocked' ? [t.guardProven ? 'guard ✓' : 'guard ✗', t.fingerprintUnchanged ? 'unchanged ✓' : 'changed ✗'].join(' · ') : '';
  const tip = `Tier ${t.id} ${t.name}: ${t.status}, ${formatMs(t.durationMs)}${t.reason ? ` (${t.reason})` : ''}`;
  return html`<li class="cell ${statusClass(t.status)}" title="${tip}"><span class="id">${t.id}</span><span class="nm">${t.name}</span><span class="meta">${t.status} · ${formatMs(t.durationMs)}</span>${proof ? html`<span class="meta">${proof}</span>` : ''}</li>`;
}

/** One row per tier run: status, time and the delta in figures, object names behind a disclosure. */
export function tierTable(e: Evidence): SafeHtml {
  const rows = tiersInOrder(e).map(({ stage, tier: t }) => {
    const objects = objectChanges(t.delta).map(
      (c) => html`<li><details><summary>${c.kind} ${formatCounts({ added: c.added.length, removed: c.removed.length, changed: c.changed.length })}</summary><ul>
${c.added.map((n) => html`<li>+ ${n}</li>`)}${c.removed.map((n) => html`<li>− ${n}</li>`)}${c.changed.map((n) => html`<li>~ ${n}</li>`)}</ul></details></li>`,
    );
    const rowsList = rowChanges(t.delta).map(([table, r]) => html`<li><code>${table}</code> <span class="nw">${formatCounts(r)}</span></li>`);
    const metrics = metricChanges(t.delta).map(([name, m]) => html`<li><code>${name}</code> <span class="nw">${formatMetricChange(m)}</span></li>`);
    return html`<tr><td>${stageLabel(stage)}</td><td class="num">${t.id}</td><td><div class="clip">${t.name}</div>${t.reason ? html`<div class="muted clip">${t.reason}</div>` : ''}</td><td class="nowrap">${t.kind}</td><td>${statusPill(t.status)}</td><td class="num">${formatMs(t.durationMs)}</td><td>${list(objects)}</td><td>${list(rowsList)}</td><td>${list(metrics)}</td></tr>`;
  });
  return html`<section id="tiers"><h2>Tiers and deltas</h2><div class="scroll"><table>
<thead><tr><th>Stage</th><th class="num">Tier</th><th class="w-name">Name</th><th>Kind</th><th>Status</th><th class="num">Time</th><th class="w-objects">Objects</th><th class="w-rows">Rows</th><th class="w-metrics">Metrics</th></tr></thead>
<tbody>${rows}</tbody></table></div></section>`;
}

function list(items: SafeHtml[]): SafeHtml {
  return items.length > 0 ? html`<ul>${items}</ul>` : html`<span class="muted">—</span>`;
}

/** Stop-gates proven (Blocked tiers) and every error, with what PostgreSQL reported and where. */
export function failures(e: Evidence): SafeHtml {
  const all = tiersInOrder(e);
  const blocked = all.filter(({ tier }) => tier.status === 'Blocked');
  const gates = blocked.length
    ? html`<h3>Stop-gates proven</h3><div class="scroll"><table><thead><tr><th>Stage</th><th class="num">Tier</th><th>Name</th><th>Guard aborted it</th><th>Clone fingerprint unchanged</th></tr></thead><tbody>
${blocked.map(({ stage, tier: t }) => html`<tr><td>${stageLabel(stage)}</td><td class="num">${t.id}</td><td><div class="clip">${t.name}</div></td><td>${mark(t.guardProven === true)}</td><td>${mark(t.fingerprintUnchanged === true)}</td></tr>`)}
</tbody></table></div>`
    : '';
  const errors = all.flatMap(({ stage, tier: t }) => [
    ...(t.error ? [failureCard(stage, t, t.status === 'Blocked' ? (t.guardProven ? 'stopped by its guard' : 'blocked') : 'error', t.error)] : []),
    ...(t.failedAssertions ?? []).map((f) => failureCard(stage, t, 'assertion failed', f)),
  ]);
  return html`<section id="errors"><h2>Stop-gates and errors</h2>${gates}<h3>Errors</h3>${errors.length ? errors : html`<p class="muted">No tier reported an error.</p>`}</section>`;
}

function failureCard(stage: string, t: TierResult, label: string, f: SqlFailure): SafeHtml {
  const where = formatLocation(f);
  return html`<div class="failure${t.status === 'Blocked' ? ' blocked' : ''}">
<p class="long"><strong>${stageLabel(stage)} · tier ${t.id} ${t.name}</strong> — ${label}${f.sqlstate ? html` <code>${f.sqlstate}</code>` : ''}${where ? html` at <code>${where}</code>` : ''}</p>
<p class="long">${f.message}</p>
${f.detail ? html`<p class="long"><span class="muted">detail:</span> ${f.detail}</p>` : ''}${f.hint ? html`<p class="long"><span class="muted">hint:</span> ${f.hint}</p>` : ''}${f.where ? html`<p class="long"><span class="muted">where:</span> ${f.where}</p>` : ''}${f.excerpt ? html`<pre>${f.excerpt}</pre>` : ''}</div>`;
}

export function mark(ok: boolean): SafeHtml {
  return ok ? html`<span class="ok">✓ yes</span>` : html`<span class="bad">✗ no</span>`;
}
