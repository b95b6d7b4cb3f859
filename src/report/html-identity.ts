import type { Evidence } from '../evidence/types.js';
import { identityRows, type IdentityCell } from './identity.js';
import { html, type SafeHtml } from './html.js';

/**
 * Which database the evidence belongs to (the source: the production
 * `apply --evidence` is bound to) and which clone the tiers ran on, side by
 * side.
 */
export function identitySection(e: Evidence): SafeHtml {
  const rows = identityRows(e).map(
    (r) => html`<tr><th scope="row">${r.label}</th><td>${cell(r.source)}</td><td>${cell(r.clone)}</td></tr>`,
  );
  return html`<section id="identity"><h2>Source and target identity</h2>
<p class="muted">The rehearsal read the source (read-only) and ran every tier on the clone. Evidence is bound to the source's cluster, database, gate subject and snapshot time.</p>
<div class="scroll"><table class="identity"><thead><tr><th></th><th>Source</th><th>Clone (rehearsal target)</th></tr></thead><tbody>${rows}</tbody></table></div>
</section>`;
}

function cell(c: IdentityCell | null): SafeHtml {
  if (c === null) return html`<span class="muted">—</span>`;
  return html`<div class="clip">${c.code ? html`<code>${c.text}</code>` : c.text}</div>`;
}
