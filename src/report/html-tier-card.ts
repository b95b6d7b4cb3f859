import type { Evidence, TierResult } from '../evidence/types.js';
import { expectedOutcomeText, formatCounts, formatMetricChange, formatMs, formatValue, isExpectedOutcome, shortSha } from './format.js';
import { html, type SafeHtml } from './html.js';
import { failureCard, mark, tierClass, tierPills } from './html-parts.js';
import { stageLabel } from './metric-chart.js';
import { shownReason, tierFailures, tierView, type Checked, type TierView } from './tier-view.js';

/**
 * One tier run as a card: status (an expected Blocked / Failed labelled so,
 * not painted as an error), duration, the objects, rows and metrics it
 * changed beside the plan's expectations as recorded, post-conditions, its
 * errors with file:line and the SQL line, and the file's SQL as rehearsed
 * behind a disclosure.
 */
export function tierCard(e: Evidence, stage: string, t: TierResult, anchor: string): SafeHtml {
  const v = tierView(t);
  const expected = isExpectedOutcome(t);
  const reason = shownReason(t);
  const facts: SafeHtml[] = [];
  const fact = (term: string, body: SafeHtml | string) => facts.push(html`<dt>${term}</dt><dd>${body}</dd>`);

  if (t.status === 'Blocked' || t.guardProven !== undefined || t.fingerprintUnchanged !== undefined) {
    fact(
      'Stop-gate',
      html`${mark(t.guardProven === true)} its own guard aborted it · ${mark(t.fingerprintUnchanged === true)} clone fingerprint unchanged`,
    );
  }
  if (v.objects.length) {
    fact(
      'Objects',
      checkedTable(
        ['Kind', 'Change'],
        v.objects.map((c) => ({
          name: html`<details><summary>${c.kind}</summary><ul class="names">${c.added.map((n) => html`<li>+ ${n}</li>`)}${c.removed.map((n) => html`<li>− ${n}</li>`)}${c.changed.map((n) => html`<li>~ ${n}</li>`)}</ul></details>`,
          figure: formatCounts({ added: c.added.length, removed: c.removed.length, changed: c.changed.length }),
          checks: c.expectations,
        })),
      ),
    );
  }
  if (v.rows.length) {
    fact(
      'Rows',
      checkedTable(
        ['Table', 'Rows'],
        v.rows.map((r) => ({ name: html`<code>${r.table}</code>`, figure: formatCounts(r.changes), checks: r.expectations })),
      ),
    );
  }
  if (t.delta) {
    const unchanged = v.unchangedMetrics.length;
    const rest = unchanged ? html`<p class="muted">${unchanged} other metric${unchanged === 1 ? '' : 's'} measured, unchanged by this tier.</p>` : '';
    fact(
      'Metrics changed',
      v.metrics.length
        ? html`${checkedTable(
            ['Metric', 'Before → after'],
            v.metrics.map((m) => ({ name: html`<code>${m.name}</code>`, figure: formatMetricChange(m.change), checks: m.expectation ? [m.expectation] : [] })),
          )}${rest}`
        : html`<span class="muted">none${unchanged ? ` (${unchanged} measured, unchanged)` : ''}</span>`,
    );
  }
  const figures = Object.entries(t.figures ?? {});
  if (figures.length) {
    fact('Figures read before', html`<ul class="plain inline">${figures.map(([name, value]) => html`<li><code>${name}</code> = ${formatValue(value)}</li>`)}</ul>`);
  }
  if (t.post.length) {
    fact(
      'Post-conditions',
      html`<ul class="plain">${t.post.map((p) => html`<li>${mark(p.ok)} <code>${p.expr}</code> <span class="muted">(value ${formatValue(p.value)})</span></li>`)}</ul>`,
    );
  }
  if (v.expectations.all.length) fact('Expectations', expectationsBlock(v.expectations));
  if (t.differences?.length) {
    fact(
      'Differences from the rehearsal',
      html`<div class="scroll"><table><thead><tr><th>What</th><th>Rehearsal</th><th>Production</th></tr></thead><tbody>${t.differences.map(
        (d) => html`<tr><td><div class="clip">${d.what}</div></td><td><div class="clip">${d.rehearsal}</div></td><td><div class="clip">${d.production}</div></td></tr>`,
      )}</tbody></table></div>`,
    );
  }

  const label = t.status === 'Blocked' ? (t.guardProven ? 'stopped by its own guard' : 'blocked') : 'error';
  const failures = tierFailures(t).map(({ kind, failure }) =>
    failureCard(t, `${kind === 'error' ? label : 'assertion failed'}${expected ? ' (expected)' : ''}`, failure),
  );
  const before = t.appliedBefore ?? null;
  const applied = before?.length ? ` · after tier${before.length === 1 ? '' : 's'} ${before.join(', ')}` : before ? ' · no tier applied before it' : '';

  return html`<article class="tier ${tierClass(t)}" id="${anchor}">
<div class="tier-head"><h4><span class="tid">${stageLabel(stage)} · ${t.id}</span> ${t.name}</h4><span class="pills">${tierPills(t)}</span></div>
<p class="tier-meta">${t.kind} · ${formatMs(t.durationMs)} · <code>${t.file}</code> · sha256 <code title="${t.sha256}">${shortSha(t.sha256)}</code>${applied}</p>
${expected ? html`<p class="outcome"><strong>Expected:</strong> ${expectedOutcomeText(t)}</p>` : ''}${reason ? html`<p class="reason long">${reason}</p>` : ''}
${facts.length ? html`<dl class="facts">${facts}</dl>` : ''}
${failures.length ? html`<div class="failures">${failures}</div>` : ''}
${sqlBlock(e, t)}
</article>`;
}

/** Names with their figure and, where the plan had an expectation for it, the expectation as recorded and what was measured. */
function checkedTable([what, figureHead]: [string, string], rows: { name: SafeHtml; figure: string; checks: Checked[] }[]): SafeHtml {
  const body = rows.map(({ name, figure, checks }) => {
    if (checks.length === 0) return html`<tr><td>${name}</td><td class="nw">${figure}</td><td colspan="3" class="muted">no expectation for it</td></tr>`;
    return checks.map(
      (x, i) =>
        html`<tr>${i === 0 ? html`<td rowspan="${checks.length}">${name}</td><td rowspan="${checks.length}" class="nw">${figure}</td>` : ''}<td>${x.part ? html`<span class="muted">${x.part}:</span> ` : ''}<code>${x.expected}</code></td><td><code>${x.actual}</code></td><td>${mark(x.ok)}</td></tr>`,
    );
  });
  return html`<div class="scroll"><table class="checked"><thead><tr><th>${what}</th><th>${figureHead}</th><th>Expected (as planned)</th><th>Actual</th><th>Met</th></tr></thead><tbody>${body}</tbody></table></div>`;
}

function expectationsBlock(x: TierView['expectations']): SafeHtml {
  const rows = x.all.map(
    (r) => html`<tr${r.ok ? '' : html` class="missed"`}><td><div class="clip">${r.what}</div></td><td><div class="clip"><code>${r.expected}</code></div></td><td><div class="clip"><code>${r.actual}</code></div></td><td>${mark(r.ok)}</td></tr>`,
  );
  const missed = x.missed.length
    ? html`<ul class="plain">${x.missed.map((r) => html`<li>${mark(false)} ${r.what}: expected <code>${r.expected}</code>, actual <code>${r.actual}</code></li>`)}</ul>`
    : '';
  return html`${missed}<details class="expectations"><summary>${x.met} of ${x.all.length} met${x.missed.length ? html` — <span class="bad">${x.missed.length} not met</span>` : ''}</summary><div class="scroll"><table><thead><tr><th>Expectation</th><th>Expected (as planned)</th><th>Actual</th><th>Met</th></tr></thead><tbody>${rows}</tbody></table></div></details>`;
}

/** The tier file's text as rehearsed (`plan.sql`), line-numbered, the lines its errors point at marked. */
function sqlBlock(e: Evidence, t: TierResult): SafeHtml | '' {
  // a Reverted record is the rollback tier's work: this file did not run in that step
  if (t.status === 'Reverted') return '';
  const sql = e.plan.sql?.[t.file];
  if (sql === undefined) {
    return html`<p class="muted sql-missing">SQL of <code>${t.file}</code> not recorded in this evidence${e.plan.sql ? '' : ' (written by a tiergate that did not record it)'}; the file's sha256 is <code>${t.sha256}</code>.</p>`;
  }
  const hits = new Set(
    [t.error, ...(t.failedAssertions ?? [])].flatMap((f) => (f && f.line !== null && (f.file === null || f.file === t.file) ? [f.line] : [])),
  );
  const lines = sql.replace(/\r\n?/g, '\n').replace(/\n$/, '').split('\n');
  return html`<details class="sql"><summary>SQL <code>${t.file}</code> <span class="muted">as rehearsed, ${lines.length} line${lines.length === 1 ? '' : 's'}${hits.size ? `, line ${[...hits].join(', ')} marked` : ''}</span></summary><pre class="sql"><code>${lines.map(
    (l, i) => html`<span class="l${hits.has(i + 1) ? ' hit' : ''}">${l}</span>\n`,
  )}</code></pre></details>`;
}
