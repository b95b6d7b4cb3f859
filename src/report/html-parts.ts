import type { SqlFailure } from '../errors.js';
import type { TierResult, TierStatus } from '../evidence/types.js';
import { formatLocation, isExpectedOutcome } from './format.js';
import { html, type SafeHtml } from './html.js';

/** Small pieces of the HTML report shared by its sections: status colours and pills, marks, failure cards. */

export const STATUSES: readonly TierStatus[] = ['Applied', 'Passed', 'Blocked', 'Failed', 'Skipped', 'Reverted'];

/** The CSS class of a status; an unknown one (evidence edited by hand) gets the neutral colour. */
export function statusClass(status: string): string {
  return (STATUSES as readonly string[]).includes(status) ? `st-${status.toLowerCase()}` : 'st-skipped';
}

/** A tier's colour: an expected Blocked / Failed is not painted as an error. */
export function tierClass(t: Pick<TierResult, 'status' | 'expectedOutcome'>): string {
  return isExpectedOutcome(t) ? 'st-expected' : statusClass(t.status);
}

export function statusPill(status: string): SafeHtml {
  return html`<span class="pill ${statusClass(status)}">${status}</span>`;
}

/** The status, and "expected" beside it when the rehearsal expects it. */
export function tierPills(t: TierResult): SafeHtml {
  return isExpectedOutcome(t)
    ? html`<span class="pill st-expected">${t.status}</span> <span class="pill st-expected tag">expected</span>`
    : statusPill(t.status);
}

/** A failure with what PostgreSQL reported and where: file:line:column and the SQL line. */
export function failureCard(t: TierResult, label: string, f: SqlFailure): SafeHtml {
  const where = formatLocation(f);
  const tone = isExpectedOutcome(t) ? ' expected' : t.status === 'Blocked' ? ' blocked' : '';
  return html`<div class="failure${tone}">
<p><strong>${label}</strong>${f.sqlstate ? html` <code>${f.sqlstate}</code>` : ''}${where ? html` at <code>${where}</code>` : ''}</p>
<p class="long">${f.message}</p>
${f.detail ? html`<p class="long"><span class="muted">detail:</span> ${f.detail}</p>` : ''}${f.hint ? html`<p class="long"><span class="muted">hint:</span> ${f.hint}</p>` : ''}${f.where ? html`<p class="long"><span class="muted">where:</span> ${f.where}</p>` : ''}${
    f.excerpt ? html`<pre class="excerpt">${f.line !== null ? html`<span class="ln">${f.line}</span>` : ''}${f.excerpt}</pre>` : ''
  }</div>`;
}

export function mark(ok: boolean | null): SafeHtml {
  return ok === null ? html`<span class="muted">–</span>` : ok ? html`<span class="ok">✓ yes</span>` : html`<span class="bad">✗ no</span>`;
}
