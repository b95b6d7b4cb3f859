// Run by npm's `prepare` (so by `npm ci`), after the build: what the first
// `npm start` would otherwise compute, put in tiergate's cache
// (node_modules/.cache/tiergate/, see README "tiergate's cache"): the
// bundled plan validated and its tier files and queries parsed and linted (the YAML
// parser, the schema library and the WASM PostgreSQL parser, ~0.5 s), and
// the embedded sample Directus database built in PGlite (initdb and ~40
// scripts, seconds), which `npm start` then copies. Plain JavaScript on the
// built code: each entry is keyed by the code that reads it. Never fails the
// install: without the cache `npm start` computes it all itself.
const started = performance.now();
try {
  const { openPlan } = await import('../dist/src/plan/open-plan.js');
  const { lintErrors, touchedRelations } = await import('../dist/src/plan/lint.js');
  const { cachedSample } = await import('../dist/src/rehearsal/pglite-sample.js');
  const plan = await openPlan();
  await lintErrors(plan);
  for (const tier of plan.tiers) await touchedRelations(tier.sql);
  // the plan's own queries (metrics, figures, the gate's), which are read with the parser before they are sent
  const queries = [...Object.values(plan.metrics), ...Object.values(plan.figures ?? {}), plan.gate?.sql, plan.gate?.subject, plan.gate?.approvals, plan.gate?.lock];
  for (const sql of queries) if (sql) await touchedRelations(sql).catch(() => undefined);
  const sample = await cachedSample(1, undefined, 'directus', () => undefined);
  const took = `${((performance.now() - started) / 1000).toFixed(1)} s`;
  console.log(
    sample
      ? `tiergate: the bundled plan and the sample Directus database are in tiergate's cache (${took}): npm start uses them`
      : "tiergate: the sample Directus database was not cached (TIERGATE_CACHE=off, or a cache that cannot be written): npm start builds it",
  );
} catch (e) {
  console.warn(`tiergate: tiergate's cache could not be filled (${e instanceof Error ? e.message : String(e)}): npm start computes what it needs`);
}
