/**
 * fixtures/directus-gen: generated Directus databases of many shapes, on
 * PGlite and on a real PostgreSQL server. Each built database is checked
 * three ways against the figures computed in TypeScript: an independent SQL
 * derivation of the rules (below), tier 1's axis.v_governed_collection, and
 * a whole rollout of the bundled plan with its gate opened (the proposal is
 * consistent when the plan closes every gap and verify passes).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb } from '../src/db/open-db.js';
import type { Db } from '../src/db/port.js';
import {
  DOMAIN_AXIS, GEN_ADMIN_ID, GEN_APPROVER_ID, GEN_EDITOR_ID, GEN_SUSPENDED_ID, NAMED_SHAPES, TABLES_PER_CHUNK, generate, genModel, shapeArbitrary, writeGenerated, type GenFigures, type Payload, type Shape,
} from '../fixtures/directus-gen/index.js';
import { COLLECTIONS, FOLDERS } from '../fixtures/directus-sample/pattern.js';
import { applyTier, gate, markClone, metric, openGate } from './fixtures/axis-harness/harness.js';
import { freshDatabase, testTargets, type TargetKind, type TestDatabase } from './helpers/targets.js';

const TIER1 = readFileSync(fileURLToPath(new URL('../plans/axis-governance/tiers/01_base_substrate.sql', import.meta.url)), 'utf8');

/** The rules of shared/design/axis-governance.md "Derived notions", in plain SQL of its own (not tier 1's view). */
const DERIVATION_SQL = `
with recursive
uc as (
  select dc.collection::text as collection, dc."group"::text as folder,
         (select count(*) from directus_fields f where f.collection = dc.collection)::int as fields
  from directus_collections dc
  where dc.collection not like 'directus\\_%'
    and exists (select 1 from pg_class c
                where c.relname = dc.collection and c.relkind in ('r', 'p')
                  and c.relnamespace = (select t.relnamespace from pg_class t where t.oid = 'directus_collections'::regclass))
),
cand as (
  select r.id, r.many_collection::text as collection, r.one_collection::text as container, r.one_field
  from directus_relations r
  join uc m on m.collection = r.many_collection
  join uc o on o.collection = r.one_collection
  where (r.junction_field is not null or r.one_deselect_action = 'delete') and r.one_collection <> r.many_collection
),
container as (
  select distinct on (collection) collection, container from cand order by collection, (one_field is null), id
),
chain (collection, node, depth) as (
  select collection, container, 1 from container
  union all
  select ch.collection, c.container, ch.depth + 1 from chain ch join container c on c.collection = ch.node where ch.depth < 64
)
select u.collection, u.folder, u.fields, c.container,
       case when c.collection is null then u.collection
            else (select ch.node from chain ch where ch.collection = u.collection
                    and not exists (select 1 from container x where x.collection = ch.node) limit 1) end as anchor
from uc u left join container c on c.collection = u.collection
order by u.collection collate "C"`;

interface Derived {
  collection: string;
  folder: string | null;
  fields: number;
  container: string | null;
  anchor: string | null;
}

async function derive(db: Db): Promise<Derived[]> {
  return (await db.query<Derived>(DERIVATION_SQL)).rows;
}

function figuresOf(rows: Derived[]): Pick<GenFigures, 'anchors' | 'contained' | 'anchorFields' | 'userCollections'> {
  const anchors = rows.filter((r) => r.container === null);
  return {
    anchors: anchors.length,
    contained: rows.length - anchors.length,
    anchorFields: anchors.reduce((n, r) => n + r.fields, 0),
    userCollections: rows.length,
  };
}

/** An empty database again (one database per target, reused between shapes). */
async function reset(db: Db): Promise<void> {
  await db.exec(`drop schema if exists axis cascade; drop schema if exists staging cascade; drop schema if exists tiergate cascade;
    drop schema public cascade; create schema public;`);
}

/** The proposal against the database: hash by PostgreSQL, author, no approvals, every anchor once, the topic rules. */
async function checkProposal(db: Db, rows: Derived[]): Promise<void> {
  const p = await db.query<{ payload: Payload; intact: boolean; user_created: string; approvals: number }>(`
    select p.payload, p.payload_sha256 = encode(sha256(convert_to(p.payload::text, 'UTF8')), 'hex') as intact, p.user_created,
           (select count(*)::int from os_proposal_approvals a where a.proposal = p.id) as approvals
    from os_proposals p where p.key = 'OS-AXIS'`);
  expect(p.rows).toHaveLength(1);
  const { payload, intact, user_created, approvals } = p.rows[0]!;
  expect(intact).toBe(true);
  expect(user_created).toBe(GEN_EDITOR_ID);
  expect(approvals).toBe(0);

  const folders = new Set(
    (await db.query<{ collection: string }>(`select dc.collection from directus_collections dc where to_regclass(quote_ident(dc.collection)) is null`)).rows.map((r) => r.collection),
  );
  const axes = new Set(payload.axes.map((a) => a.key));
  const topics = new Map(payload.topics.map((t) => [t.key, t]));
  const rule = new Map(payload.topics.filter((t) => t.directus_folder !== null).map((t) => [t.directus_folder!, t]));
  expect(topics.size).toBe(payload.topics.length);
  for (const t of payload.topics) {
    expect(axes.has(t.axis), `topic ${t.key}: axis ${t.axis}`).toBe(true);
    if (t.directus_folder !== null) expect(folders.has(t.directus_folder), `topic ${t.key}: folder ${t.directus_folder}`).toBe(true);
  }
  const anchors = rows.filter((r) => r.container === null);
  expect(payload.anchors.map((a) => a.collection).sort()).toEqual(anchors.map((a) => a.collection).sort());
  const byName = new Map(rows.map((r) => [r.collection, r]));
  for (const a of payload.anchors) {
    expect(a.owner, a.collection).toMatch(/^team-[a-z0-9-]+$/);
    const topic = topics.get(a.topic);
    expect(topic?.axis, `${a.collection}: topic ${a.topic}`).toBe(DOMAIN_AXIS);
    const folder = byName.get(a.collection)!.folder;
    if (folder !== null) {
      // every folder that holds an anchor is a label rule; on the domain axis the anchor takes exactly its topic
      const r = rule.get(folder);
      expect(r, `folder ${folder} has no topic`).toBeDefined();
      if (r!.axis === DOMAIN_AXIS) expect(a.topic, `${a.collection} in ${folder}`).toBe(r!.key);
    }
  }
  for (const c of rows.filter((r) => r.container !== null)) {
    // a contained collection is at the root or in its anchor's folder: never divergent
    if (c.folder !== null) expect(c.folder, c.collection).toBe(byName.get(c.anchor!)!.folder);
  }
}

async function checkTier1(db: Db, figures: GenFigures, rows: Derived[]): Promise<void> {
  await db.transaction((tx) => tx.exec(TIER1));
  const v = await db.query<{ anchors: number; contained: number; no_anchor: number }>(`
    select count(*) filter (where role = 'anchor')::int as anchors, count(*) filter (where role = 'contained')::int as contained,
           count(*) filter (where anchor is null)::int as no_anchor
    from axis.v_governed_collection`);
  expect(v.rows[0]).toEqual({ anchors: figures.anchors, contained: figures.contained, no_anchor: 0 });
  const view = await db.query<{ collection: string; container: string | null; anchor: string }>(
    `select collection, container, anchor from axis.v_governed_collection order by collection collate "C"`,
  );
  expect(view.rows).toEqual(rows.map((r) => ({ collection: r.collection, container: r.container, anchor: r.anchor })));
}

/** The plan's own metric queries (tiergate.yaml), only those asked for. */
async function someMetrics(db: Db, names: string[]): Promise<Record<string, number | null>> {
  const out: Record<string, number | null> = {};
  for (const name of names) out[name] = await metric(db, name);
  return out;
}

/** Every check of one shape on one database: build, SQL derivation, proposal, tier 1, and (full) the whole gated rollout. */
async function proveShape(kind: TargetKind, db: Db, database: string, shape: Shape, full: boolean): Promise<void> {
  await reset(db);
  const figures = await writeGenerated(db, shape);
  const rows = await derive(db);
  const model = genModel(shape);
  expect(figuresOf(rows)).toEqual({ anchors: figures.anchors, contained: figures.contained, anchorFields: figures.anchorFields, userCollections: figures.userCollections });
  expect(rows.map((r) => ({ collection: r.collection, container: r.container, anchor: r.anchor, folder: r.folder }))).toEqual(
    model.collections
      .map((c) => ({ collection: c.name, container: c.container, anchor: c.anchor, folder: c.folder }))
      .sort((a, b) => (a.collection < b.collection ? -1 : a.collection > b.collection ? 1 : 0)),
  );
  const folders = await db.query<{ n: number }>(`select count(*)::int as n from directus_collections dc where to_regclass(quote_ident(dc.collection)) is null`);
  expect(folders.rows[0]!.n).toBe(figures.folders);
  await checkProposal(db, rows);
  await checkTier1(db, figures, rows);
  if (!full) return;

  if (database !== 'directus') await markClone(db);
  for (const id of [0, 5, 6]) await applyTier(db, id);
  // the honest gaps with the gate closed are the figures
  expect(await someMetrics(db, ['owner_gap', 'containment_gap', 'projection_gap', 'divergent'])).toEqual({
    owner_gap: figures.anchorFields, containment_gap: figures.contained, projection_gap: figures.userCollections, divergent: 0,
  });
  await openGate(db);
  await applyTier(db, 2);
  await applyTier(db, 3);
  const divergent = await db.query<{ n: number }>(`select count(*)::int as n from axis.v_reconcile_collection_topic_vs_label where reconcile_flag = 'divergent'`);
  expect(divergent.rows[0]!.n, `${kind}: divergent flags after tier 3`).toBe(0);
  await applyTier(db, 4);
  await applyTier(db, 90);
  expect(await someMetrics(db, ['owner_gap', 'containment_gap', 'divergent', 'projection_gap', 'critical', 'emittable'])).toEqual({
    owner_gap: 0, containment_gap: 0, divergent: 0, projection_gap: 0, critical: 0, emittable: 0,
  });
}

describe('directus-gen: scripts and figures', () => {
  it('is deterministic: the same shape gives the same scripts; other seeds differ', () => {
    for (const shape of Object.values(NAMED_SHAPES)) {
      expect(generate(shape)).toEqual(generate({ ...shape }));
      expect(generate({ ...shape, seed: shape.seed + 1 }).scripts).not.toEqual(generate(shape).scripts);
    }
  });

  it('named shapes have their defining figures', () => {
    const f = Object.fromEntries(Object.entries(NAMED_SHAPES).map(([k, s]) => [k, generate(s).figures])) as Record<keyof typeof NAMED_SHAPES, GenFigures>;
    expect(f['no-containment']).toMatchObject({ contained: 0, junctions: 0, translations: 0, compositions: 0 });
    expect(f['translations-only'].contained).toBe(f['translations-only'].translations);
    expect(f['translations-only'].translations).toBeGreaterThan(0);
    expect(f['single-anchor'].anchors).toBe(1);
    expect(f['single-anchor'].contained).toBeGreaterThan(0);
    expect(f['wide-300'].userCollections).toBe(300);
    const nested = genModel(NAMED_SHAPES.nested);
    expect(nested.collections.some((c) => c.kind === 'composition' && c.container !== null && nested.collections.find((p) => p.name === c.container)?.kind === 'composition')).toBe(true);
    expect(nested.folders.some((f) => f.parent !== null && nested.folders.find((p) => p.name === f.parent)?.kind === 'domain')).toBe(true);
    expect(genModel(NAMED_SHAPES['camel-case']).collections.filter((c) => c.kind === 'anchor').every((c) => /^[A-Za-z]+$/.test(c.name) && /[A-Z]/.test(c.name))).toBe(true);
    // the figures fixtures/directus-gen/README.md lists
    expect(Object.fromEntries(Object.entries(f).map(([k, v]) => [k, [v.anchors, v.contained, v.anchorFields, v.folders, v.payloadTopics]]))).toEqual({
      'no-containment': [14, 0, 79, 5, 5],
      'translations-only': [8, 6, 57, 2, 2],
      'single-anchor': [1, 6, 9, 1, 2],
      'wide-300': [115, 185, 979, 14, 13],
      nested: [10, 13, 74, 6, 5],
      'camel-case': [12, 13, 90, 4, 4],
    });
    for (const figures of Object.values(f)) {
      expect(figures.contained).toBe(figures.junctions + figures.translations + figures.compositions);
      expect(figures.userCollections).toBe(figures.anchors + figures.contained);
    }
  });

  it('names are unlike the sample, unique and at most 63 bytes; chunks stay small', () => {
    const sample = new Set([...COLLECTIONS.map((c) => c.name), ...FOLDERS.map((f) => f.key)]);
    for (const shape of Object.values(NAMED_SHAPES)) {
      const m = genModel(shape);
      const names = [...m.folders.map((f) => f.name), ...m.collections.map((c) => c.name)];
      expect(new Set(names).size).toBe(names.length);
      for (const n of names) {
        if (n !== 'languages') expect(sample.has(n), n).toBe(false);
        expect(Buffer.byteLength(n), n).toBeLessThanOrEqual(63);
      }
      for (const chunk of generate(shape).scripts.slice(1)) {
        expect((chunk.match(/^CREATE TABLE /gm) ?? []).length).toBeLessThanOrEqual(TABLES_PER_CHUNK);
      }
    }
  });

  it('any small shape generates a consistent model (fast-check, no database)', () => {
    fc.assert(
      fc.property(shapeArbitrary(fc), (shape) => {
        const { figures, proposal, scripts } = generate(shape);
        expect(figures.userCollections).toBe(figures.anchors + figures.contained);
        expect(proposal.anchors).toHaveLength(figures.anchors);
        expect(scripts.at(-1)).toContain("encode(sha256(convert_to(x.payload::text, 'UTF8')), 'hex')");
      }),
      { seed: 20260601, numRuns: 300 },
    );
  });
});

describe.each(testTargets())('directus-gen databases (%s)', (kind) => {
  let t: TestDatabase;
  let db: Db;
  beforeAll(async () => {
    t = await freshDatabase(kind, 'directus');
    db = await openDb(t.url);
  });
  afterAll(async () => {
    await db?.close();
    await t?.drop();
  });

  it.each(Object.keys(NAMED_SHAPES) as (keyof typeof NAMED_SHAPES)[])('%s: builds, derives its figures, and the whole rollout closes every gap', async (name) => {
    await proveShape(kind, db, t.database, NAMED_SHAPES[name], true);
  });

  it('users, roles, policies and access as Directus 11 links them', async () => {
    await reset(db);
    await writeGenerated(db, NAMED_SHAPES['single-anchor']);
    const r = await db.query(`
      select u.email, u.status, coalesce(bool_or(p.admin_access), false) as admin, bool_or(a."user" is not null) as user_level
      from directus_users u
      left join directus_access a on a.role = u.role or a."user" = u.id
      left join directus_policies p on p.id = a.policy
      where u.email like '%@gen.example' group by u.email, u.status order by u.email`);
    expect(r.rows).toEqual([
      { email: 'admin@gen.example', status: 'active', admin: true, user_level: false },
      { email: 'approver@gen.example', status: 'active', admin: true, user_level: true },
      { email: 'editor@gen.example', status: 'active', admin: false, user_level: false },
      { email: 'suspended@gen.example', status: 'suspended', admin: true, user_level: false },
    ]);
    const cols = await db.query(`select column_name, data_type from information_schema.columns where table_name = 'os_proposals' order by ordinal_position`);
    expect(cols.rows.map((c) => c.column_name)).toEqual(['id', 'key', 'title', 'payload', 'payload_sha256', 'user_created', 'date_created']);

    // the plan's gate (ospa) over these users: only active administrators who are not the author count, once each
    const approve = (who: string, sha = 'p.payload_sha256') =>
      db.exec(`insert into os_proposal_approvals (proposal, approver, payload_sha256) select p.id, '${who}', ${sha} from os_proposals p where p.key = 'OS-AXIS'`);
    expect(await gate(db)).toBe(0);
    await approve(GEN_EDITOR_ID);
    await approve(GEN_SUSPENDED_ID);
    await approve(GEN_ADMIN_ID, `repeat('0', 64)`);
    expect(await gate(db)).toBe(0);
    await approve(GEN_APPROVER_ID);
    expect(await gate(db)).toBe(1);
    await approve(GEN_ADMIN_ID);
    await approve(GEN_ADMIN_ID);
    expect(await gate(db)).toBe(2);
  });

  // the whole rollout of each shape on PostgreSQL; on PGlite (slower) up to tier 1, the named shapes above covering its rollout
  it(`~10 arbitrary small shapes build and derive their figures${kind === 'postgres' ? ', and the whole rollout closes every gap' : ''} (fast-check)`, async () => {
    await fc.assert(
      fc.asyncProperty(shapeArbitrary(fc), async (shape) => {
        await proveShape(kind, db, t.database, shape, kind === 'postgres');
      }),
      { seed: 4242, numRuns: 10, endOnFailure: true },
    );
  });
});
