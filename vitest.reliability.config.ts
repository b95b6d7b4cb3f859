import { defineConfig } from 'vitest/config';

/**
 * The reliability and security campaign (`npm run test:reliability`): kills,
 * races, locks, bad input, secrets, hostile content, network faults, against
 * PostgreSQL clusters it starts itself (test/reliability/setup.ts), with a
 * `check | trials | failures` table at the end.
 * TIERGATE_RELIABILITY_SIZE=ci (default, a few minutes) or full (the README's figures).
 */
export default defineConfig({
  test: {
    include: ['test/reliability/**/*.test.ts'],
    globalSetup: ['test/reliability/setup.ts'],
    testTimeout: 1_800_000,
    hookTimeout: 300_000,
    // two cores: two test files at a time; each spawns CLI processes of its own
    pool: 'forks',
    maxWorkers: 2,
    // each check prints its one-line result; the table comes at the end
    reporters: ['default'],
  },
});
