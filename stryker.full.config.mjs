// @ts-check
/**
 * Every pure module of tiergate under mutation testing: `stryker.config.mjs`
 * (`npm run test:mutation`, the subset CI runs) plus the report renderers'
 * markup, charts and style. Results and timings: docs/mutation-score.md.
 *
 *   npx stryker run stryker.full.config.mjs
 */
import base, { PURE_MODULES } from './stryker.config.mjs';

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  ...base,
  mutate: PURE_MODULES,
  // the full run reports; it does not fail on the score (the HTML markup is tested in Chromium, not by these unit tests)
  thresholds: { high: 90, low: 80, break: null },
  htmlReporter: { fileName: '.tmp/mutation-full/mutation.html' },
  jsonReporter: { fileName: '.tmp/mutation-full/mutation.json' },
};
