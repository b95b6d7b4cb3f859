import type { Evidence } from '../evidence/types.js';
import { html, type SafeHtml } from './html.js';
import type { TierAnchors } from './html-tiers.js';
import type { ProofItem, Summary } from './summary.js';

/**
 * The box the HTML report opens with: the verdict in its colour (green GO,
 * amber NO-GO, red FAIL), why, what would turn it GO, and what was proven,
 * each a short list from the evidence's own records.
 */
export function summaryBox(e: Evidence, s: Summary, anchors: TierAnchors): SafeHtml {
  const v = e.verdict;
  const why = html`<p class="long">${s.why.reason ? html`<strong>${s.why.reason}</strong>` : ''}${s.why.reason && s.why.gate ? ' — ' : ''}${s.why.gate ?? ''}</p>${
    s.why.failures.length ? html`<ul class="failures-list">${s.why.failures.map((f) => html`<li><div class="long">${f}</div></li>`)}</ul>` : ''
  }${s.why.approvals.length ? html`<ul class="proof approvals">${s.why.approvals.map((i) => proofItem(i, anchors))}</ul>` : ''}`;
  return html`<section id="summary" class="summary tone-${s.tone}" aria-labelledby="summary-title">
<h2 id="summary-title">Summary</h2>
<div class="badges">
<span class="badge ${v.rehearsal === 'PASS' ? 'pass' : 'fail'}">Rehearsal ${v.rehearsal}</span>
<span class="badge ${v.execution === 'GO' ? 'go' : 'no-go'}">Execution ${v.execution}${v.reason ? html` <small>${v.reason}</small>` : ''}</span>
</div>
<div class="summary-grid">
<div><h3>Why</h3>${why}</div>
<div><h3>${s.next.title}</h3><p class="long next">${s.next.text}</p>${s.next.recorded ? '' : html`<p class="muted">(not recorded in this evidence: tiergate's general advice)</p>`}</div>
</div>
<h3>What was proven</h3>
<div class="proven">${s.proven.map(
    (g) => html`<div class="proof-group"><h4>${g.title}</h4>${
      g.items.length ? html`<ul class="proof">${g.items.map((i) => proofItem(i, anchors))}</ul>` : html`<p class="muted">${g.none}</p>`
    }</div>`,
  )}</div>
</section>`;
}

function proofItem(i: ProofItem, anchors: TierAnchors): SafeHtml {
  const icon = i.ok === null ? html`<span class="muted" aria-label="information">•</span>` : i.ok ? html`<span class="ok" aria-label="holds">✓</span>` : html`<span class="bad" aria-label="does not hold">✗</span>`;
  const anchor = i.tier ? anchors.tier(i.tier) : undefined;
  const subject = i.subject ? html`${anchor ? html`<a href="#${anchor}">${i.subject}</a>` : i.subject}: ` : '';
  return html`<li>${icon} ${subject}${i.text}${i.detail ? html`<div class="muted long">${i.detail}</div>` : ''}</li>`;
}

/** The table of contents: every section of the report, linked. */
export function toc(entries: { id: string; title: string; sub?: string }[]): SafeHtml {
  return html`<nav id="contents" aria-label="Contents"><h2>Contents</h2><ol>${entries.map(
    (x) => html`<li><a href="#${x.id}">${x.title}</a>${x.sub ? html` <span class="muted">${x.sub}</span>` : ''}</li>`,
  )}</ol></nav>`;
}
