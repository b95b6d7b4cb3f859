/**
 * The bundled plan is true on any Directus database (issue: rehearse any real
 * Directus database to a true verdict): generated databases unlike the sample
 * — other names, counts and composition, no containment, translations only,
 * one anchor, 300 collections, nesting, camel case — each with a consistent
 * proposal, rehearse to PASS with the plan unchanged, and `apply --evidence`
 * on the source commits every tier matching the rehearsal. A property over
 * random shapes does the same.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { withDb } from '../src/db/open-db.js';
import { NAMED_SHAPES, shapeArbitrary, writeGenerated, type Shape } from '../fixtures/directus-gen/index.js';
import { writeSample } from '../fixtures/directus-sample/generate.js';
import { applyBound, approveAs, bundled, rehearseSource } from './helpers/rollout.js';
import { freshDatabase, testTargets, type TargetKind, type TestDatabase } from './helpers/targets.js';

let source: TestDatabase | null = null;
afterEach(async () => {
  await source?.drop();
  source = null;
});

/** A source database named directus holding `shape`; rehearsed, approved, applied bound to its evidence. */
async function proveOn(kind: TargetKind, shape: Shape): Promise<void> {
  source = await freshDatabase(kind, 'directus', { exactName: true });
  const figures = await withDb(source.url, (db) => writeGenerated(db, shape));
  const evidence = await rehearseSource(kind, source.url);
  expect(evidence.verdict.failures, `rehearsal of shape ${JSON.stringify(shape)}`).toEqual([]);
  expect(evidence.verdict).toMatchObject({ rehearsal: 'PASS', execution: 'NO-GO' });
  // the rehearsal measured this database's own figures
  const b2 = evidence.stages.find((s) => s.name === 'B')!.tiers.find((t) => t.id === 2)!;
  expect(b2.delta?.rows['axis.ownership']?.added).toBe(figures.anchors);
  expect(b2.delta?.metrics.owner_gap).toEqual({ before: figures.anchorFields, after: 0 });
  await withDb(source.url, (db) => approveAs(db, 'approver@gen.example'));
  const r = await applyBound(source.url, evidence);
  expect(r.outcome).toBe('ok');
  const body = r.tiers.filter((t) => t.kind === 'structure' || t.kind === 'data');
  expect(body.map((t) => [t.id, t.status, t.differences ?? []])).toEqual(bundled.tiers.filter((t) => t.kind === 'structure' || t.kind === 'data').map((t) => [t.id, 'Applied', []]));
  expect(body.every((t) => (t.expectations ?? []).every((x) => x.ok))).toBe(true);
  expect(r.tiers.find((t) => t.id === 90)?.status).toBe('Passed');
}

describe.each(testTargets())('the bundled plan on generated Directus databases (%s)', (kind) => {
  const shapes = kind === 'pglite' ? Object.keys(NAMED_SHAPES) : ['no-containment', 'wide-300', 'camel-case'];
  it.each(shapes)('%s: rehearse PASS, apply --evidence matches the rehearsal in every tier', async (name) => {
    await proveOn(kind, NAMED_SHAPES[name as keyof typeof NAMED_SHAPES]);
  });
});

describe('the bundled plan on random shapes (fast-check, PGlite)', () => {
  it('every consistent shape rehearses to PASS and applies as rehearsed', async () => {
    await fc.assert(
      fc.asyncProperty(shapeArbitrary(fc), async (shape) => {
        try {
          await proveOn('pglite', shape);
        } finally {
          await source?.drop();
          source = null;
        }
      }),
      { seed: 20261203, numRuns: 4 },
    );
  });
});

describe('the sample at scale 10 (PostgreSQL)', () => {
  it('rehearses to PASS with its own figures (ten times scale 1) and applies as rehearsed', async () => {
    source = await freshDatabase('postgres', 'directus', { exactName: true });
    await withDb(source.url, (db) => writeSample(db, { scale: 10 }));
    const evidence = await rehearseSource('postgres', source.url);
    expect(evidence.verdict.failures).toEqual([]);
    expect(evidence.verdict).toMatchObject({ rehearsal: 'PASS', execution: 'NO-GO' });
    const b2 = evidence.stages.find((s) => s.name === 'B')!.tiers.find((t) => t.id === 2)!;
    expect(b2.delta?.rows['axis.ownership']?.added).toBe(300);
    expect(b2.delta?.metrics.owner_gap).toEqual({ before: 2100, after: 0 });
    await withDb(source.url, (db) => approveAs(db, 'admin@northwind.example'));
    const r = await applyBound(source.url, evidence);
    expect(r.outcome).toBe('ok');
    const body = r.tiers.filter((t) => t.kind === 'structure' || t.kind === 'data');
    expect(body.map((t) => [t.id, t.status, t.differences ?? []])).toEqual(bundled.tiers.filter((t) => t.kind === 'structure' || t.kind === 'data').map((t) => [t.id, 'Applied', []]));
    expect(r.tiers.find((t) => t.id === 90)?.status).toBe('Passed');
  });
});
