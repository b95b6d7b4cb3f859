import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOSTILE } from '../../fixtures/directus-sample/texts.js';
import { buildSampleTemplate, onRel, relUrl, runCli, STACK_LINE } from './harness.js';
import { copyPlan } from './plan-copy.js';
import { Tally } from './results.js';
import { trials } from './size.js';

/**
 * Hostile content: the sample's `hostile` variant (HTML and script in
 * collection notes, folder notes, owners, user names; quotes, newlines,
 * 5,000-character strings, non-ASCII) rehearsed with the bundled plan, and
 * again with a plan whose tier names are hostile and whose verify tier
 * raises the database's hostile text (message, detail, hint) into the
 * evidence. Every report escapes it: the Markdown and HTML hold no live
 * markup, the terminal no control sequence, and in headless Chromium the
 * HTML runs nothing (no dialog, no script, no request, no element made from
 * the data).
 */
const CHROMIUM = process.env.TIERGATE_CHROMIUM ?? '/usr/bin/chromium';
const ESC_TEXT = 'esc \u001b]0;pwned\u0007 \u001b[2J cleared';
/** the markup that must never appear raw in Markdown or HTML */
const LIVE = [/<img\s+src=x/i, /<script>alert/i, /onerror=alert\(1\)>/i];

describe('hostile content', () => {
  let context: BrowserContext | null = null;
  const source = `hostile_src_${process.pid}`;
  beforeAll(async () => {
    await buildSampleTemplate((db) => relUrl(db), source, 1, { variant: 'hostile', openGate: false });
    if (existsSync(CHROMIUM)) {
      const work = mkdtempSync(join(tmpdir(), 'tiergate-hostile-browser-'));
      context = await chromium.launchPersistentContext(join(work, 'profile'), {
        executablePath: CHROMIUM,
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      });
    }
  });
  afterAll(async () => {
    await context?.close();
    await onRel((c) => c.query(`drop database if exists "${source}" with (force)`));
  });

  it('every report escapes it; in Chromium nothing executes', async () => {
    if (!context && process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing on CI`);
    const tally = new Tally('hostile content: reports escape it, Chromium runs nothing');
    let hostileInEvidence = 0;
    for (let round = 0; round < trials(1, 2); round++) {
      for (const variant of ['bundled plan', 'hostile plan'] as const) {
        const out = mkdtempSync(join(tmpdir(), 'tiergate-hostile-'));
        const copy = variant === 'hostile plan' ? hostilePlan() : null;
        const problems: string[] = [];
        try {
          const args = ['rehearse', '--source', relUrl(source), '--scratch', relUrl('postgres'), '--out', out];
          const r = await runCli(copy ? [...args, '--plan', copy.dir] : args, { timeoutMs: 300_000 });
          if (r.code !== (copy ? 1 : 0)) problems.push(`rehearse exit ${r.code}: ${(r.stderr || r.stdout).trim().split('\n').slice(-2).join(' / ')}`);
          if (STACK_LINE.test(r.stdout + r.stderr)) problems.push('a stack trace was printed');
          if (/\u001b/.test(r.stdout + r.stderr)) problems.push('the terminal output holds a raw escape sequence');
          const json = readFileSync(join(out, 'evidence.json'), 'utf8');
          const md = readFileSync(join(out, 'evidence.md'), 'utf8');
          const html = readFileSync(join(out, 'evidence.html'), 'utf8');
          const carried = HOSTILE.slice(0, 2).filter((h) => json.includes(JSON.stringify(h).slice(1, -1))).length;
          hostileInEvidence += carried;
          if (copy && carried === 0) problems.push('the hostile plan did not carry hostile text into the evidence (the check would prove nothing)');
          for (const re of LIVE) if (re.test(html)) problems.push(`evidence.html holds live markup ${re}`);
          const rawTags = liveMarkdownHtml(md);
          if (rawTags.length) problems.push(`evidence.md holds raw HTML a Markdown viewer would render: ${rawTags.slice(0, 3).join(', ')}`);
          if (/\u001b/.test(md + html)) problems.push('a report holds a raw escape sequence');
          // the report viewer: render the HTML report again through the CLI
          const again = await runCli(['report', join(out, 'evidence.json'), '--format', 'html']);
          if (LIVE.some((re) => re.test(again.stdout))) problems.push('tiergate report --format html holds live markup');
          if (context) problems.push(...(await inBrowser(context, join(out, 'evidence.html'))));
        } finally {
          if (problems.length && process.env.TIERGATE_RELIABILITY_KEEP) console.log(`kept ${out}`);
          else rmSync(out, { recursive: true, force: true });
          copy?.remove();
        }
        tally.add(variant, problems);
      }
    }
    tally.record(`hostile sample rehearsed with the bundled plan and with hostile tier names + verify raising database text; ${hostileInEvidence} hostile strings reached the evidence; Markdown, HTML, terminal escaped${context ? '; Chromium: no dialog, script, request or injected element' : ' (Chromium not installed: browser part skipped)'}`);
    expect(tally.reasons).toEqual([]);
  });
});

/** The bundled plan with hostile tier names, and a verify tier that raises the hostile text of the database. */
function hostilePlan() {
  const p = copyPlan();
  const y = p.yaml();
  y.tiers.forEach((t, i) => (t.name = `${t.name} ${HOSTILE[i % 2]} ${i === 0 ? ESC_TEXT : ''}`.trim()));
  p.writeYaml(y);
  const verify = y.tiers.find((t) => t.kind === 'verify')!.file as string;
  p.writeFile(
    verify,
    p.readFile(verify) +
      `\n-- hostile: the database's own text, raised into the evidence\nDO $hostile$\nDECLARE n text; o text;\nBEGIN\n  SELECT note INTO n FROM directus_collections WHERE note LIKE '%<img%' LIMIT 1;\n  SELECT note INTO o FROM directus_folders WHERE note LIKE '%<script>%' LIMIT 1;\n  RAISE EXCEPTION 'finding: %', n USING DETAIL = coalesce(o, 'no folder note'), HINT = ${literal(ESC_TEXT)};\nEND\n$hostile$;\n`,
  );
  return p;
}

/**
 * Raw HTML tags a Markdown viewer would render: a `<` starting a tag that is
 * not backslash-escaped and not inside a code span or a fenced block.
 */
function liveMarkdownHtml(md: string): string[] {
  const prose = md.replace(/^(`{3,})[^\n]*\n[\s\S]*?^\1\s*$/gm, '').replace(/(`+)[^`]*?\1/g, '');
  return [...prose.matchAll(/(?<!\\)<\/?[a-z][a-z0-9]*[\s>/]/gi)].map((m) => m[0]);
}

const literal = (s: string) => `'${s.replace(/'/g, "''")}'`;

async function inBrowser(context: BrowserContext, file: string): Promise<string[]> {
  const page = await context.newPage();
  const problems: string[] = [];
  const requests: string[] = [];
  page.on('dialog', (d) => {
    problems.push(`a dialog opened: ${d.message()}`);
    void d.dismiss();
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (r) => requests.push(r.url()));
  const href = pathToFileURL(file).href;
  await page.goto(href, { waitUntil: 'load' });
  await page.waitForTimeout(300);
  const injected = await page.locator('img, iframe, object, embed').count();
  if (injected) problems.push(`${injected} element(s) made from the data (img/iframe/object/embed)`);
  const scripts = await page.evaluate(() => [...document.scripts].map((s) => s.textContent ?? '').filter((t) => /alert/.test(t)).length);
  if (scripts) problems.push(`${scripts} script(s) holding the hostile alert`);
  const other = requests.filter((u) => u !== href);
  if (other.length) problems.push(`requests made: ${other.slice(0, 3).join(', ')}`);
  await page.close();
  return problems;
}
