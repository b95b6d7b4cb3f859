import { defineConfig } from 'vitest/config';

/**
 * The fast unit tests that need no database: the tests Stryker runs against
 * each mutant (stryker.config.mjs, docs/mutation-score.md), and a quick local
 * run of the pure modules' tests (~10 s):
 *
 *   npx vitest run --config vitest.stryker.config.ts
 *
 * No globalSetup: the repo's vitest.config.ts starts a PostgreSQL cluster and
 * builds a PGlite template, which none of these files uses. Left out, although
 * they need no database:
 * - test/report.test.ts: it renders its reports in describe blocks, while the
 *   file is collected. Stryker counts every mutant reached there as "static"
 *   (it cannot tell which test covers it) and runs the whole of every test file
 *   that imports the module for each (92 % of the run's time), and the vitest
 *   runner reports such a mutant as Survived when it breaks the collection (no
 *   test ran): docs/mutation-score.md. test/unit-report-*.test.ts check the
 *   renderers inside their tests instead.
 * - test/cache.test.ts: one of its tests runs the CLI in a child process, which
 *   never runs the mutant under test; the rest tests the cache, not mutated.
 * - test/report-browser.test.ts: a headless browser, slow.
 */
export default defineConfig({
  test: {
    include: [
      'test/plan.test.ts',
      'test/lint.test.ts',
      'test/pg-url.test.ts',
      'test/expectations.test.ts',
      'test/unit-*.test.ts',
    ],
    // tiergate's read-through caches (validated plans, parsed scripts) are keyed by
    // the text of the code: under Stryker every mutant has the same text, so a value
    // computed under one mutant could be read under another
    env: { TIERGATE_CACHE: 'off' },
    testTimeout: 30_000,
  },
});
