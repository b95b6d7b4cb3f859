import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/**
 * The plan and lint unit tests alone: pure code, no database, so no
 * globalSetup (the repo's vitest.config.ts starts a PostgreSQL cluster).
 *
 *   npx vitest run --config test/unit.vitest.config.ts
 */
export default defineConfig({
  test: {
    root: fileURLToPath(new URL('..', import.meta.url)),
    include: ['test/plan.test.ts', 'test/lint.test.ts'],
    testTimeout: 30_000,
  },
});
