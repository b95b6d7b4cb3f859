import { safeText } from '../text.js';

/**
 * Safe-by-construction HTML: every value interpolated into the `html` tag is
 * escaped unless it is itself `SafeHtml` built by the tag. Renderers never
 * concatenate strings into markup, so no database text can become markup.
 */

/** Markup built by {@link html} (or a trusted constant given to {@link trustedHtml}). */
export class SafeHtml {
  constructor(readonly html: string) {}
  toString(): string {
    return this.html;
  }
}

/** What may be interpolated: text (escaped), numbers, markup, lists of these; `false`/null/undefined render nothing. */
export type HtmlValue = SafeHtml | string | number | false | null | undefined | readonly HtmlValue[];

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/**
 * Escapes text for HTML element content and quoted attribute values. C0 and
 * C1 control characters but tab, line feed and carriage return are dropped
 * (not text in HTML, and raw terminal escapes when the file is printed with
 * `cat`), and so are Unicode's bidirectional overrides and isolates, which
 * would make a line read other than it is (`safeText`).
 *
 * @example escapeHtml('<img src=x>') // '&lt;img src=x&gt;'
 */
export function escapeHtml(text: string): string {
  return safeText(text).replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/**
 * Tagged template for markup: interpolations are escaped, nested `html`
 * results are kept, arrays are joined. Attribute values must be quoted.
 *
 * @example html`<td title="${name}">${name}</td>`
 */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): SafeHtml {
  let out = strings[0]!;
  values.forEach((v, i) => {
    out += render(v) + strings[i + 1]!;
  });
  return new SafeHtml(out);
}

/** Marks a constant written in this code base (the style sheet) as markup. Never pass data to it. */
export function trustedHtml(constant: string): SafeHtml {
  return new SafeHtml(constant);
}

function render(v: HtmlValue): string {
  if (v instanceof SafeHtml) return v.html;
  if (Array.isArray(v)) return v.map(render).join('');
  if (v === false || v === null || v === undefined) return '';
  return escapeHtml(String(v));
}
