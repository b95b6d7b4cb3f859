/**
 * The sample's variants against the plan's SQL, and the preflight's refusals,
 * on PGlite and on a real PostgreSQL server.
 */
import { describe, expect, it } from 'vitest';
import { openDb } from '../src/db/open-db.js';
import type { Db } from '../src/db/port.js';
import { VARIANT_TARGETS } from '../fixtures/directus-sample/generate.js';
import { freshDatabase, testTargets } from './helpers/targets.js';
import {
  applyTier, content, markClone, metric, metrics, openGate, sampleDatabase, scalar, scanVersusPlan, tierError,
} from './fixtures/axis-harness/harness.js';

async function withSample(kind: Parameters<typeof sampleDatabase>[0], variant: Parameters<typeof sampleDatabase>[1], fn: (db: Db) => Promise<void>) {
  const s = await sampleDatabase(kind, variant);
  try {
    await fn(s.db);
  } finally {
    await s.close();
  }
}

/** Preflight and the structure tiers, then an approval of the current payload. */
async function stageAThenOpen(db: Db): Promise<void> {
  for (const id of [0, 1, 5, 6]) await applyTier(db, id);
  await openGate(db);
}

describe.each(testTargets())('sample variants against the plan (%s)', (kind) => {
  it('divergent: tier 4 aborts on its post-condition and writes nothing', async () => {
    await withSample(kind, { variant: 'divergent' }, async (db) => {
      await stageAThenOpen(db);
      await applyTier(db, 2);
      await applyTier(db, 3);
      expect(await metric(db, 'divergent')).toBe(32);
      const before = await content(db);
      const err = await tierError(db, 4);
      expect(err?.sqlstate).toBe('TG002');
      expect(err?.message).toContain(`tier 4 post-condition divergent = 0 failed: divergent = 1 (${VARIANT_TARGETS.divergent.collection} (divergent in folder editorial))`);
      expect(await content(db)).toEqual(before);
      expect(await scalar(db, 'select count(*)::int as v from axis.reconcile_decision')).toBe(0);
      expect(await scalar(db, `select count(*)::int as v from axis.topic where status <> 'candidate'`)).toBe(0);
      // the finding a person must act on
      const f = await db.query('select key, severity, emittable from axis.v_governance_finding where severity <> $1', ['info']);
      expect(f.rows).toContainEqual({ key: 'divergent:tags/commerce', severity: 'warning', emittable: true });
      const { scan, plan } = await scanVersusPlan(db);
      expect(scan).toEqual(plan);
    });
  });

  it('missing-anchor: tier 2 aborts on owner_gap and writes nothing', async () => {
    await withSample(kind, { variant: 'missing-anchor' }, async (db) => {
      await stageAThenOpen(db);
      const err = await tierError(db, 2);
      expect(err).toEqual({
        sqlstate: 'TG002',
        message: `tier 2 post-condition owner_gap = 0 failed: owner_gap = 4 (1 anchor without an owner: ${VARIANT_TARGETS.missingAnchor})`,
      });
      expect(await scalar(db, 'select count(*)::int as v from axis.ownership')).toBe(0);
      expect(await metric(db, 'owner_gap')).toBe(210);
    });
  });

  it('missing-anchor with no field rows (a table registered as it was): owner_gap does not count it, tier 2 names it all the same', async () => {
    await withSample(kind, { variant: 'missing-anchor' }, async (db) => {
      await db.exec(`delete from directus_fields where collection = '${VARIANT_TARGETS.missingAnchor}'`);
      await stageAThenOpen(db);
      expect(await metric(db, 'owner_gap')).toBe(206);
      const err = await tierError(db, 2);
      expect(err).toEqual({
        sqlstate: 'TG002',
        message: `tier 2 post-condition failed: 1 anchor without an owner (no field rows in Directus, so owner_gap does not count it): ${VARIANT_TARGETS.missingAnchor}`,
      });
      expect(await scalar(db, 'select count(*)::int as v from axis.ownership')).toBe(0);
    });
  });

  it('after the rollout, a table registered in Directus with no field rows: verify names the anchor without an owner', async () => {
    await withSample(kind, {}, async (db) => {
      await stageAThenOpen(db);
      for (const id of [2, 3, 4, 90]) await applyTier(db, id);
      await db.exec(`create table legacy_raw (id integer primary key); insert into directus_collections (collection) values ('legacy_raw')`);
      expect(await metric(db, 'owner_gap')).toBe(0);
      expect((await tierError(db, 90))?.message).toMatch(/^verify: 1 anchor has no owner \(no field rows in Directus, so owner_gap does not count it\): legacy_raw/);
    });
  });

  it('dangling-name: tier 2 refuses, naming the collection Directus does not have; nothing is written', async () => {
    await withSample(kind, { variant: 'dangling-name' }, async (db) => {
      await stageAThenOpen(db);
      const err = await tierError(db, 2);
      expect(err).toEqual({
        sqlstate: 'TG003',
        message: `tier 2 refused: proposal OS-AXIS does not fit this Directus database (1 problem): '${VARIANT_TARGETS.danglingName}' is not a collection of this Directus database (no directus_collections row with a table)`,
      });
      expect(await scalar(db, 'select count(*)::int as v from axis.ownership')).toBe(0);
      // the finding view names it too, for a rollout that predates the check
      const f = await db.query(`select key, severity from axis.v_governance_finding where key like 'payload_dangling:%'`);
      expect(f.rows).toEqual([{ key: `payload_dangling:${VARIANT_TARGETS.danglingName}`, severity: 'critical' }]);
    });
  });

  it('hostile: hostile text everywhere, the same figures, and verify passes', async () => {
    await withSample(kind, { variant: 'hostile' }, async (db) => {
      expect(await scalar(db, `select count(*)::int as v from directus_collections where note like '%<script>alert(1)</script>%'`)).toBeGreaterThan(0);
      expect(await scalar(db, `select max(length(note))::int as v from directus_fields`)).toBe(5000);
      expect(await scalar(db, `select count(*)::int as v from directus_users where first_name like '<img%'`)).toBeGreaterThan(0);
      expect(await scalar(db, `select title as v from os_proposals where key = 'OS-AXIS'`)).toMatch(/^<script>alert\("OS-AXIS"\)<\/script> Ratify 'axes' & "topics" —\nÜnïcødé/);
      await stageAThenOpen(db);
      expect(await metrics(db)).toMatchObject({ owner_gap: 210, containment_gap: 35, projection_gap: 65 });
      for (const id of [2, 3, 4, 90]) await applyTier(db, id);
      expect(await scalar(db, `select count(*)::int as v from axis.ownership where owner like '%onerror=alert(1)%'`)).toBeGreaterThan(0);
      expect(await scalar(db, `select count(*)::int as v from axis.reconcile_decision`)).toBe(31);
    });
  });

  it('preflight refuses a database that is neither directus nor a tiergate clone of it', async () => {
    const s = await sampleDatabase(kind, {}, false, 'postgres');
    try {
      const err = await tierError(s.db, 0);
      expect(err).toMatchObject({ sqlstate: 'TG003', message: `tier 0 preflight refused: database "${s.t.database}" is not the Directus database "directus"` });
      await markClone(s.db, 'staging');
      expect((await tierError(s.db, 0))?.sqlstate).toBe('TG003');
      await markClone(s.db, 'directus');
      expect(await tierError(s.db, 0)).toBeUndefined();
    } finally {
      await s.close();
    }
  });

  it('preflight refuses a clone of directus that does not look like Directus', async () => {
    const t = await freshDatabase(kind, 'postgres');
    const db = await openDb(t.url);
    try {
      await markClone(db, 'directus');
      expect(await tierError(db, 0)).toEqual({
        sqlstate: 'TG003',
        message: `tier 0 preflight refused: database "${t.database}" does not look like Directus with governance proposals: missing directus_access, directus_collections, directus_fields, directus_policies, directus_relations, directus_roles, directus_users, os_proposal_approvals, os_proposals`,
      });
      // where it looked, and what a Directus in another schema needs
      const err = (await applyTier(db, 0).catch((e: unknown) => e)) as { detail?: string; hint?: string };
      expect(err.detail).toBe('looked up on this session\'s search_path: "$user", public');
      expect(err.hint).toMatch(/a Directus in another schema than public \(DB_SEARCH_PATH\) needs that schema on the search_path/);
    } finally {
      await db.close();
      await t.drop();
    }
  });
});
