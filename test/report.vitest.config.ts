import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/**
 * The report tests alone: pure renderers and a headless browser, no database,
 * so no globalSetup (the repo's vitest.config.ts starts a PostgreSQL cluster).
 *
 *   npx vitest run --config test/report.vitest.config.ts
 */
export default defineConfig({
  test: {
    root: fileURLToPath(new URL('..', import.meta.url)),
    include: ['test/report.test.ts', 'test/report-browser.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
