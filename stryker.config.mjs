// @ts-check
/**
 * Mutation testing of tiergate's pure modules (StrykerJS, vitest runner).
 * Results, timings and what is left: docs/mutation-score.md.
 *
 *   npm run test:mutation                                  # this config
 *   npx stryker run stryker.config.mjs --incremental       # later runs: only what changed
 *
 * The tests Stryker runs are the fast unit tests that need no database
 * (vitest.stryker.config.ts: no PostgreSQL global setup).
 */
import { readFileSync } from 'node:fs';

/**
 * `file:from-to`, the lines of one top-level function, for the modules of
 * which only a function is pure (the rest runs SQL). Found by name, so that
 * the range follows the file as it is edited.
 */
function functionLines(file, name) {
  const lines = readFileSync(new URL(file, import.meta.url), 'utf8').split('\n');
  const start = lines.findIndex((l) => new RegExp(`^export (async )?function ${name}\\b`).test(l));
  if (start < 0) throw new Error(`stryker.config.mjs: no function ${name} in ${file}`);
  const end = lines.findIndex((l, i) => i > start && l === '}');
  if (end < 0) throw new Error(`stryker.config.mjs: no end of ${name} in ${file}`);
  return `${file}:${start + 1}-${end + 1}`;
}

/** Every pure module: what `stryker.full.config.mjs` mutates. */
export const PURE_MODULES = [
  // the plan loader and its validation
  'src/plan/plan.ts',
  'src/plan/load-plan.ts',
  'src/plan/schema.ts',
  'src/plan/post-condition.ts',
  'src/plan/expect-expr.ts',
  // expectations, deltas and catalog diffs
  'src/engine/expectations.ts',
  functionLines('src/probe/catalog.ts', 'diffCatalog'),
  functionLines('src/rehearsal/bind-evidence.ts', 'diffDeltas'),
  // redaction and text safety
  'src/secrets.ts',
  'src/db/pg-url.ts',
  'src/text.ts',
  // the evidence: verdict and coverage, parsing, renderers
  'src/evidence/verdict.ts',
  'src/evidence/evidence-json.ts',
  'src/report/*.ts',
];

/** What CI mutates (`npm run test:mutation`): redaction, the verdict and coverage of evidence, expectations. */
export const CI_MODULES = ['src/secrets.ts', 'src/db/pg-url.ts', 'src/text.ts', 'src/evidence/verdict.ts', 'src/engine/expectations.ts'];

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  $schema: './node_modules/@stryker-mutator/core/schema/stryker-schema.json',
  packageManager: 'npm',
  testRunner: 'vitest',
  plugins: ['@stryker-mutator/vitest-runner'],
  vitest: { configFile: 'vitest.stryker.config.ts' },
  // CI runs the guarantees' own pure modules (redaction, the verdict, expectations): 500 mutants,
  // about 3 min on two cores; `stryker.full.config.mjs` mutates every pure module (26 min). docs/mutation-score.md.
  mutate: CI_MODULES,
  coverageAnalysis: 'perTest',
  // Stryker rewrites the tsconfig's paths for its sandbox with TypeScript's JS
  // API, which TypeScript 7 (the native compiler) no longer has; tsconfig.json
  // has no extends or references to rewrite, so point Stryker at no file.
  tsconfigFile: '.tmp/stryker-no-tsconfig.json',
  // the machine has 2 cores
  concurrency: 2,
  incremental: false,
  incrementalFile: '.tmp/stryker-incremental.json',
  tempDirName: '.tmp/stryker',
  cleanTempDir: 'always',
  timeoutMS: 10_000,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: '.tmp/mutation/mutation.html' },
  jsonReporter: { fileName: '.tmp/mutation/mutation.json' },
  clearTextReporter: { allowColor: false, logTests: false, reportTests: false, reportMutants: false, reportScoreTable: true },
  // below 85 % the run fails (CI): a test that stopped killing what it killed is a regression
  thresholds: { high: 90, low: 80, break: 85 },
};
