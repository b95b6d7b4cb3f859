/**
 * Hostile database text stays inert in every report (the guarantee that
 * test/report.test.ts states at length), checked inside tests rather than at
 * collection, so that mutation testing can tell which test kills what
 * (a report rendered in a describe block is "static" for Stryker).
 */
import { describe, expect, it } from 'vitest';
import { renderHtml } from '../src/report/render-html.js';
import { renderMarkdown } from '../src/report/render-markdown.js';
import { renderTierLine, renderVerdictLine } from '../src/report/render-terminal.js';
import { tiersInOrder } from '../src/report/format.js';
import { axisGovernanceEvidence, HOSTILE, hostileEvidence, UNSAFE_CHARS } from './fixtures/evidence-sample.js';

describe('hostile text in the reports', () => {
  it('HTML: no tag, attribute or character comes through from the data', () => {
    const page = renderHtml(hostileEvidence());
    expect(page).not.toMatch(/<img|<script|<b>|<\/pre><\/details><b>/i);
    expect(page).not.toMatch(UNSAFE_CHARS);
    expect(page.replace(/"[^"]*"/g, '""')).not.toMatch(/<[a-z][^>]*\son[a-z]+\s*=/i);
    for (const [, id] of page.matchAll(/\sid="([^"]+)"/g)) expect(id).toMatch(/^[a-z0-9-]+$/);
    expect(page).toContain('&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;');
    expect(page).toContain('it&#39;s &quot;quoted&quot; &amp; &lt;b&gt;bold&lt;/b&gt;');
    expect(page).toContain('invoiceabdgnp.exe ijk end');
    expect(page).toContain(HOSTILE.long.slice(0, 200));
  });

  it('HTML: loads and runs nothing', () => {
    const page = renderHtml(axisGovernanceEvidence());
    expect(page).toContain('<meta http-equiv="Content-Security-Policy" content="default-src &#39;none&#39;; style-src &#39;unsafe-inline&#39;; img-src data:; base-uri &#39;none&#39;; form-action &#39;none&#39;">');
    expect(page).not.toMatch(/<script|<link rel="stylesheet"|src="http|href="http/i);
    expect(page.startsWith('<!doctype html>\n<html lang="en">')).toBe(true);
    expect(page.endsWith('</html>\n')).toBe(true);
  });

  it('Markdown: tables keep their columns and nothing outside code is markup', () => {
    const md = renderMarkdown(hostileEvidence());
    expect(md).not.toMatch(UNSAFE_CHARS);
    const lines = md.split('\n');
    expect(lines).not.toContain('# not a heading');
    for (const line of lines.filter((l) => l.startsWith('| ') && !l.startsWith('|---'))) {
      const cells = line.match(/(?<!\\)\|/g)!.length;
      expect([4, 9], line.slice(0, 80)).toContain(cells);
    }
    const outsideCode = md.replace(/^ *(`{3,})[^\n]*\n[\s\S]*?^ *\1 *$/gm, '').replace(/(`+)[^`]*?\1/g, '');
    expect(outsideCode).not.toMatch(/(?<!\\)</);
    expect(md).toContain('\\<img src=x onerror="window.\\_\\_pwned=1"\\>');
  });

  it('terminal: one line per tier, without control or bidi characters', () => {
    const e = hostileEvidence();
    expect(renderVerdictLine(e)).toBe(`Rehearsal PASS · Execution NO-GO (ospa=0 ${HOSTILE.quotes})`);
    for (const { stage, tier } of tiersInOrder(e)) {
      const line = renderTierLine(stage, tier);
      expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
      expect(Array.from(line).length).toBeLessThanOrEqual(250);
    }
  });
});
