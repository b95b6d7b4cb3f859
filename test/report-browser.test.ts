import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Evidence } from '../src/evidence/types.js';
import { renderHtml } from '../src/report/index.js';
import { renderFleetHtml } from '../src/fleet/report.js';
import type { TargetRow } from '../src/fleet/rollout.js';
import { safeText } from '../src/text.js';
import { axisGovernanceEvidence, HOSTILE, hostileEvidence, UNSAFE_CHARS } from './fixtures/evidence-sample.js';

/**
 * The HTML report opened in a real browser (Debian's Chromium, headless):
 * hostile database text must render as text and run nothing, the page must
 * load without errors or requests, its links and disclosures must work, and
 * it must read well at 1280 px (screenshots are kept in a temporary folder
 * whose path is printed).
 */

/** Debian's Chromium; TIERGATE_CHROMIUM points elsewhere (or nowhere, to check the CI guard). */
const CHROMIUM = process.env.TIERGATE_CHROMIUM ?? '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
const inCi = process.env.CI === 'true';

if (!hasChromium && !inCi) {
  console.warn(
    `\n⚠️  ${CHROMIUM} not found: SKIPPING the HTML report's browser test.\n` +
      `   Install it with: bash .ci/install-chromium.sh (Debian's chromium package)\n`,
  );
}

describe('HTML report in headless Chromium', () => {
  it.runIf(!hasChromium && inCi)('has Chromium in CI', () => {
    throw new Error(`${CHROMIUM} is missing on CI: the browser test cannot run. Run .ci/install-chromium.sh in the CI script.`);
  });

  describe.runIf(hasChromium)('rendered pages', () => {
    let work: string;
    let context: BrowserContext;

    beforeAll(async () => {
      work = mkdtempSync(join(tmpdir(), 'tiergate-report-browser-'));
      context = await chromium.launchPersistentContext(join(work, 'profile'), {
        executablePath: CHROMIUM,
        headless: true,
        viewport: { width: 1280, height: 900 },
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      });
    });

    afterAll(async () => {
      await context?.close();
      // keep the screenshots for a human to look at; drop the browser profile
      rmSync(join(work, 'profile'), { recursive: true, force: true });
      console.info(`report screenshots: ${work}`);
    });

    /** Opens a report from disk, as a user would, recording every error, dialog and request. */
    async function open(name: string, e: Evidence): Promise<{ page: Page; problems: string[]; requests: string[]; href: string }> {
      return openHtml(name, renderHtml(e));
    }

    /** Opens a page written from `html` as a file, recording every error, dialog and request. */
    async function openHtml(name: string, markup: string): Promise<{ page: Page; problems: string[]; requests: string[]; href: string }> {
      const file = join(work, `${name}.html`);
      writeFileSync(file, markup);
      const page = await context.newPage();
      const problems: string[] = [];
      const requests: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
      });
      page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
      page.on('dialog', (d) => {
        problems.push(`a dialog opened: ${d.message()}`);
        void d.dismiss();
      });
      page.on('request', (r) => requests.push(r.url()));
      const href = pathToFileURL(file).href;
      await page.goto(href, { waitUntil: 'load' });
      return { page, problems, requests, href };
    }

    /**
     * The page is no wider than the window: long text wraps, or scrolls inside
     * its own box. `widest` names the first element that sticks out of the
     * window without a scrolling box around it (empty: none).
     */
    async function overflow(page: Page): Promise<{ page: number; view: number; widest: string }> {
      return page.evaluate(() => {
        const view = document.documentElement.clientWidth;
        const clipped = (el: Element): boolean => {
          for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
            if (getComputedStyle(p).overflowX !== 'visible') return p.getBoundingClientRect().right <= view + 0.5;
          }
          return false;
        };
        const out = Array.from(document.body.querySelectorAll('*')).find((el) => el.getBoundingClientRect().right > view + 0.5 && !clipped(el));
        const widest = out ? `${out.tagName.toLowerCase()}.${out.className} right=${Math.round(out.getBoundingClientRect().right)}` : '';
        return { page: document.documentElement.scrollWidth, view, widest };
      });
    }

    /** Opens every disclosure (clicking one is tested on its own): the widest the page can get. */
    async function openAllDetails(page: Page): Promise<number> {
      return page.locator('details').evaluateAll((ds) => ds.map((d) => ((d as HTMLDetailsElement).open = true)).length);
    }

    it('renders hostile database text inertly: no dialog, script, request, injected element or bidi override', async () => {
      const { page, problems, requests, href } = await open('hostile', hostileEvidence());
      await page.waitForTimeout(200);

      expect(problems).toEqual([]);
      expect(requests.filter((u) => u !== href)).toEqual([]);
      expect(await page.evaluate(() => (window as unknown as { __pwned?: unknown }).__pwned)).toBeUndefined();
      expect(await page.locator('script, img, iframe, object, embed, b, form, input, link[rel=stylesheet]').count()).toBe(0);
      expect(await page.evaluate(() => document.querySelectorAll('[onerror], [onload], [onclick]').length)).toBe(0);

      // the markup shows up as the text it is
      await expect.poll(() => page.locator('h1').textContent()).toBe(`Rollout rehearsal: axis ${HOSTILE.img}`);
      expect(await page.locator('#identity tbody tr').filter({ hasText: 'Database' }).locator('td').first().textContent()).toBe(HOSTILE.script);
      expect(await page.locator('#tier-a-1 h4').textContent()).toBe(`A · 1 ${HOSTILE.img}`);
      expect(await page.locator('#summary .failures-list li').allTextContents()).toEqual([HOSTILE.script, HOSTILE.multiline.replace(/\r\n/g, '\n'), safeText(HOSTILE.unicode)]);
      expect(await page.locator('#summary .next').textContent()).toBe(safeText(`${HOSTILE.img} ${HOSTILE.bidi} ${HOSTILE.control}`));

      // the hostile SQL opens as text, inside its block
      const sql = page.locator('#tier-a-2 details.sql');
      await sql.locator('summary').click();
      expect(await sql.evaluate((d) => (d as HTMLDetailsElement).open)).toBe(true);
      const text = await sql.locator('pre').textContent();
      expect(text).toContain(HOSTILE.script);
      expect(text).toContain('</pre></details><b>');
      expect(await page.locator('#tier-a-2 details.sql pre .l').count()).toBe(8);

      // no bidirectional override or isolate, no control character, in any text or attribute
      const all = await page.evaluate(() => {
        const attributes = Array.from(document.querySelectorAll('*')).flatMap((el) => Array.from(el.attributes, (a) => a.value));
        return [document.title, document.body.textContent ?? '', ...attributes].join('\n');
      });
      expect(all).not.toMatch(UNSAFE_CHARS);
      expect(all).toContain('invoiceabdgnp.exe ijk end');

      // a 5,000-character name wraps or scrolls inside its box: the page does not widen, even with every disclosure open
      expect(await overflow(page)).toMatchObject({ widest: '' });
      expect(await openAllDetails(page)).toBeGreaterThan(20);
      const widths = await overflow(page);
      expect(widths.widest).toBe('');
      expect(widths.page).toBeLessThanOrEqual(widths.view);

      await page.screenshot({ path: join(work, 'hostile.png'), fullPage: true });
      expect(statSync(join(work, 'hostile.png')).size).toBeGreaterThan(20_000);
      await page.close();
    });

    it('opens with the summary box, then a table of contents whose links all land', async () => {
      const { page, problems, requests, href } = await open('axis-governance', axisGovernanceEvidence());
      expect(problems).toEqual([]);
      expect(requests.filter((u) => u !== href)).toEqual([]);

      // the first screen: the verdict in its colour, why, what would turn it GO
      const summary = page.locator('#summary');
      expect(await summary.isVisible()).toBe(true);
      expect((await summary.boundingBox())!.y).toBeLessThan(300);
      await expect.poll(() => summary.locator('.badge').allTextContents()).toEqual(['Rehearsal PASS', 'Execution NO-GO ospa=0']);
      const colours = await summary.locator('.badge').evaluateAll((els) => els.map((el) => getComputedStyle(el).backgroundColor));
      expect(colours).toEqual(['rgb(26, 127, 55)', 'rgb(154, 103, 0)']);
      expect(await summary.evaluate((el) => getComputedStyle(el).borderTopColor)).toBe('rgb(212, 167, 44)');
      expect(await summary.locator('h3').allTextContents()).toEqual(['Why', 'What would turn it GO', 'What was proven']);
      expect(await summary.locator('.proof li').count()).toBeGreaterThanOrEqual(12);
      expect(await summary.locator('.proof .bad').count()).toBe(0);

      // every in-page link has its target, and following one scrolls it into view
      const targets = await page.locator('a[href^="#"]').evaluateAll((as) => as.map((a) => (a as HTMLAnchorElement).hash.slice(1)));
      expect(targets.length).toBeGreaterThan(30);
      const missing = await page.evaluate((ids) => ids.filter((id) => !document.getElementById(id)), targets);
      expect(missing).toEqual([]);
      expect(await page.locator('#contents a').allTextContents()).toEqual([
        'Summary',
        'Source and target identity',
        'Timeline',
        'Durations',
        'Preflight',
        'Stage A',
        'Stage B',
        'Stage C',
        'Metrics across the run',
        'Rollback proof',
      ]);
      await page.locator('#contents a', { hasText: 'Stage B' }).click();
      await expect.poll(() => page.evaluate(() => location.hash)).toBe('#stage-b');
      await expect.poll(() => page.locator('#stage-b h2').evaluate((el) => Math.round(el.getBoundingClientRect().top))).toBeLessThan(60);
      await page.locator('#summary a', { hasText: 'tier 2 Ownership seed' }).first().click();
      await expect.poll(() => page.evaluate(() => location.hash)).toBe('#tier-a-2');

      await page.screenshot({ path: join(work, 'axis-governance-top.png') });
      await page.close();
    });

    it('shows identity, stages and tier cards: expected outcomes calm, only changed metrics, SQL behind a click', async () => {
      const { page, problems } = await open('axis-governance-cards', axisGovernanceEvidence());
      expect(problems).toEqual([]);

      const identity = page.locator('#identity table');
      expect(await identity.locator('tbody tr').filter({ hasText: 'Cluster system identifier' }).locator('td').allTextContents()).toEqual(['7715110484324614186', '7715110484324614186']);
      expect(await identity.locator('tbody tr').filter({ hasText: 'Server version' }).locator('td').first().textContent()).toBe('18.6 (180006)');

      // preflight + 7 tiers in stage A + 4 in B + 7 in C
      expect(await page.locator('article.tier').count()).toBe(19);
      expect(await page.locator('#timeline .cell').count()).toBe(19);

      // an expected Blocked / Failed tier is neither amber nor red
      const expectedColour = 'rgb(10, 108, 116)';
      for (const id of ['tier-a-2', 'tier-a-90']) {
        const c = page.locator(`#${id}`);
        expect(await c.evaluate((el) => getComputedStyle(el).borderLeftColor)).toBe(expectedColour);
        expect(await c.locator('.pills').textContent()).toMatch(/^(Blocked|Failed) expected$/);
      }
      expect(await page.locator('#tier-a-90 .failure').first().evaluate((el) => getComputedStyle(el).borderLeftColor)).toBe(expectedColour);
      expect(await page.locator('#tier-b-2').evaluate((el) => getComputedStyle(el).borderLeftColor)).toBe('rgb(26, 127, 55)');

      // only what the tier changed, beside what the plan expected
      const seed = page.locator('#tier-b-2');
      const metrics = seed.locator('dd').filter({ has: page.locator('table.checked') }).last();
      expect(await metrics.locator('tbody tr td:first-child').allTextContents()).toEqual(['owner_gap', 'critical']);
      expect(await metrics.locator('tbody tr').first().locator('td').allTextContents()).toEqual(['owner_gap', '210 → 0', 'any → 0', '210 → 0', '✓ yes']);

      // disclosures are closed, and open on click
      const sql = seed.locator('details.sql');
      expect(await sql.locator('pre').isVisible()).toBe(false);
      await sql.locator('summary').click();
      expect(await sql.evaluate((d) => (d as HTMLDetailsElement).open)).toBe(true);
      expect(await sql.locator('pre').isVisible()).toBe(true);
      expect(await sql.locator('pre .l').count()).toBe(40);
      const expectations = seed.locator('details.expectations');
      await expectations.locator('summary').click();
      expect(await expectations.locator('tbody tr').count()).toBe(5);
      expect(await expectations.locator('tbody tr').first().isVisible()).toBe(true);
      const alt = page.locator('#durations details.alt');
      await alt.locator('summary').click();
      expect(await alt.locator('tbody tr').count()).toBe(19);

      // the duration chart: one bar per tier run, labelled for assistive technology
      const chart = page.locator('#durations svg.dchart');
      expect(await chart.isVisible()).toBe(true);
      expect(await chart.getAttribute('aria-labelledby')).toBe('durations-title durations-desc');
      expect(await page.locator('#durations-title').textContent()).toBe('Tier durations by stage');
      expect(await chart.locator('g.bar').count()).toBe(19);
      expect((await chart.boundingBox())!.width).toBeGreaterThan(600);
      expect(await page.locator('#metrics svg.chart').count()).toBe(8);

      expect(await openAllDetails(page)).toBeGreaterThan(30);
      const o = await overflow(page);
      expect(o.widest).toBe('');
      expect(o.page).toBeLessThanOrEqual(o.view);

      await page.screenshot({ path: join(work, 'axis-governance.png'), fullPage: true });
      expect(statSync(join(work, 'axis-governance.png')).size).toBeGreaterThan(50_000);
      await page.close();
    });

    it('shows a fleet report: waves, a timeline of every step, each target with its evidence link; hostile error text stays text', async () => {
      const at = (s: number) => new Date(Date.UTC(2026, 11, 4, 3, 0, s));
      const rollout = { id: '20261204-030000-abcdef', key: 'k', plan_name: 'axis-governance', plan_sha256: 'a'.repeat(64), targets_file: `/ops/${HOSTILE.img}.yaml`, targets_sha256: 'b'.repeat(64), scratch: null, total: 2, per_server: 1, plan_database: 'plan' as const, state: 'stopped' as const, reason: "wave 'rest' failed", created_at: at(0), finished_at: at(50) };
      const target = (name: string, wave: number, state: TargetRow['state'], error: string | null, s: number) => ({ rollout: rollout.id, name, ord: s, wave, url: `postgres://deploy@db/${name}`, password_env: null, server: 'db:5432', labels: {}, state, attempts: 2, worker: 'w', started_at: at(s), finished_at: at(s + 9), rehearsal: 'PASS', execution: 'GO', applied: state === 'applied' ? [1, 5, 6, 7, 8, 2, 3, 4] : [], evidence_sha256: 'c'.repeat(64), error });
      const snapshot = {
        rollout,
        waves: [
          { rollout: rollout.id, idx: 0, name: 'canary', failure_budget: 0, on_error: 'stop' as const, no_go: 'report' as const, state: 'succeeded' as const, started_at: at(0), finished_at: at(10) },
          { rollout: rollout.id, idx: 1, name: 'rest', failure_budget: 0, on_error: 'stop' as const, no_go: 'report' as const, state: 'failed' as const, started_at: at(10), finished_at: at(50) },
        ],
        targets: [target('acme', 0, 'applied', null, 0), target('globex', 1, 'failed', `tier 2 'Ownership seed': ${HOSTILE.img} ${HOSTILE.script} ${HOSTILE.bidi}`, 12), target('initech', 1, 'no-go', 'no accountable approval', 25)],
      };
      const steps = snapshot.targets.flatMap((t) => [
        { target: t.name, step: 'rehearse', server: 'db:5432', worker: 'w', started_at: t.started_at, finished_at: new Date(t.started_at.getTime() + 6000), outcome: t.state === 'no-go' ? 'no-go' : 'rehearsed' },
        ...(t.state === 'no-go' ? [] : [{ target: t.name, step: 'apply', server: 'db:5432', worker: 'w', started_at: new Date(t.started_at.getTime() + 6000), finished_at: t.finished_at, outcome: t.state }]),
      ]);
      const { page, problems, requests, href } = await openHtml('fleet-report', renderFleetHtml(snapshot, steps, (name) => `${name}/evidence.html`));
      await page.waitForTimeout(200);
      expect(problems).toEqual([]);
      expect(requests.filter((u) => u !== href)).toEqual([]);
      expect(await page.evaluate(() => (window as unknown as { __pwned?: unknown }).__pwned)).toBeUndefined();
      expect(await page.locator('script, img, iframe, b').count()).toBe(0);
      expect(await page.locator('.verdict').innerText()).toContain('STOPPED — 3 targets: 1 applied, 1 NO-GO, 1 failed');
      expect(await page.locator('table.waves tbody tr').allInnerTexts()).toEqual([expect.stringMatching(/^canary\s+succeeded\s+1\s+1/), expect.stringMatching(/^rest\s+failed\s+2\s+0\s+1\s+1/)]);
      expect(await page.locator('svg rect').count()).toBe(5);
      expect(await page.locator('table.targets a').evaluateAll((as) => as.map((a) => a.getAttribute('href')))).toEqual(['acme/evidence.html', 'globex/evidence.html', 'initech/evidence.html']);
      expect(await page.locator('#failures .card').innerText()).toContain('<img src=x onerror=');
      const o = await overflow(page);
      expect(o.widest).toBe('');
      await page.screenshot({ path: join(work, 'fleet-report.png'), fullPage: true });
      await page.close();
    });
  });
});
