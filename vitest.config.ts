import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/reliability/**'],
    globalSetup: ['test/setup/postgres.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // PGlite instances are heavy (WASM, ~40 MB each): keep parallelism at the machine's 2 cores.
    pool: 'forks',
    maxWorkers: 2,
  },
});
