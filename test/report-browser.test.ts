import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderHtml } from '../src/report/index.js';
import { axisGovernanceEvidence, HOSTILE, hostileEvidence } from './fixtures/evidence-sample.js';

/**
 * The HTML report opened in a real browser (Debian's Chromium, headless):
 * hostile database text must render as text and run nothing, the page must
 * load without errors or requests, and read well (screenshots are kept in a
 * temporary folder whose path is printed).
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

    /** Opens a report from disk, as a user would, recording every error and request. */
    async function open(name: string, html: string): Promise<{ page: Page; problems: string[]; requests: string[] }> {
      const file = join(work, `${name}.html`);
      writeFileSync(file, html);
      const page = await context.newPage();
      const problems: string[] = [];
      const requests: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
      });
      page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
      page.on('request', (r) => requests.push(r.url()));
      await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
      return { page, problems, requests };
    }

    it('renders hostile database text inertly', async () => {
      const { page, problems, requests } = await open('hostile', renderHtml(hostileEvidence()));

      expect(problems).toEqual([]);
      expect(requests.filter((u) => !u.startsWith('file:'))).toEqual([]);
      expect(await page.evaluate(() => (window as unknown as { __pwned?: unknown }).__pwned)).toBeUndefined();
      expect(await page.locator('script, img, iframe, object, embed').count()).toBe(0);

      // the markup shows up as the text it is
      await expect.poll(() => page.locator('h1').textContent()).toBe(`Rollout rehearsal: axis ${HOSTILE.img}`);
      expect(await page.locator('header dd code').first().textContent()).toBe(HOSTILE.script);
      expect(await page.locator('#timeline .cell').first().getAttribute('title')).toContain('Preflight');
      expect(await page.locator('#tiers tbody tr').nth(1).locator('td').nth(2).textContent()).toBe(HOSTILE.img);
      expect(await page.locator('#verdict li').allTextContents()).toEqual([HOSTILE.script, HOSTILE.multiline.replace(/\r\n/g, '\n'), HOSTILE.unicode]);

      // a 5,000-character name wraps or scrolls inside its cell: the page does not widen
      const widths = await page.evaluate(() => ({ page: document.documentElement.scrollWidth, view: document.documentElement.clientWidth }));
      expect(widths.page).toBeLessThanOrEqual(widths.view);

      await page.screenshot({ path: join(work, 'hostile.png'), fullPage: true });
      expect(statSync(join(work, 'hostile.png')).size).toBeGreaterThan(20_000);
      await page.close();
    });

    it('shows the verdict, the timeline and the tier table', async () => {
      const { page, problems, requests } = await open('axis-governance', renderHtml(axisGovernanceEvidence()));

      expect(problems).toEqual([]);
      expect(requests.filter((u) => !u.startsWith('file:'))).toEqual([]);

      const badges = page.locator('header .badge');
      await expect.poll(() => badges.allTextContents()).toEqual(['Rehearsal PASS', 'Execution NO-GO ospa=0']);
      expect(await badges.first().isVisible()).toBe(true);
      expect(await page.locator('#verdict').isVisible()).toBe(true);

      const table = page.locator('#tiers table');
      expect(await table.isVisible()).toBe(true);
      // preflight + 7 tiers in stage A + 4 in B + 7 in C
      expect(await table.locator('tbody tr').count()).toBe(19);
      const seed = table.locator('tbody tr').filter({ hasText: 'axis.ownership +30' });
      expect(await seed.locator('td').first().textContent()).toBe('B');
      expect(await seed.textContent()).toContain('owner_gap 210 → 0');

      const cells = page.locator('#timeline .cell');
      expect(await cells.count()).toBe(19);
      const blocked = page.locator('#timeline .cell.st-blocked');
      expect(await blocked.count()).toBe(3);
      // a status is a colour, not only a word
      const colours = await page.evaluate(() =>
        ['st-applied', 'st-blocked', 'st-failed', 'st-reverted', 'st-passed'].map(
          (c) => getComputedStyle(document.querySelector(`#timeline .cell.${c}`)!).backgroundColor,
        ),
      );
      expect(new Set(colours).size).toBe(5);

      expect(await page.locator('#metrics svg.chart').count()).toBe(8);
      expect(await page.locator('#metrics svg.chart').first().isVisible()).toBe(true);

      await page.screenshot({ path: join(work, 'axis-governance.png'), fullPage: true });
      await page.screenshot({ path: join(work, 'axis-governance-top.png') });
      expect(statSync(join(work, 'axis-governance.png')).size).toBeGreaterThan(50_000);
      await page.close();
    });
  });
});
