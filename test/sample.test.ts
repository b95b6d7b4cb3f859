/**
 * The sample Directus database generator: deterministic scripts, and a
 * database that has the spec's shape, checked with SQL of its own (not the
 * plan's views), on PGlite and on a real PostgreSQL server.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { openDb } from '../src/db/open-db.js';
import type { Db } from '../src/db/port.js';
import { MAX_SCALE, SAMPLE_VARIANTS, sampleFigures, sampleScripts, sampleSteps, writeSample, type SampleOptions } from '../fixtures/directus-sample/generate.js';
import { repetitionPieces, repetitionTemplate } from '../fixtures/directus-sample/tables.js';
import { fingerprint } from '../src/probe/fingerprint.js';
import { freshDatabase, testTargets } from './helpers/targets.js';

const hash = (o?: SampleOptions) => createHash('sha256').update([...sampleScripts(o)].join('\u0000')).digest('hex');

describe('sample scripts', () => {
  it('are deterministic and differ by option', () => {
    expect(hash()).toBe(hash({ scale: 1, variant: 'standard' }));
    expect(new Set(SAMPLE_VARIANTS.map((variant) => hash({ variant }))).size).toBe(SAMPLE_VARIANTS.length);
    expect(hash({ scale: 2 })).not.toBe(hash());
  });

  it('change only the proposal for the payload variants', () => {
    const body = (o: SampleOptions) => [...sampleScripts(o)].map((c) => c.replace(/^-- tiergate sample .*\n/, ''));
    const standard = body({});
    for (const variant of ['divergent', 'missing-anchor', 'dangling-name'] as const) {
      const v = body({ variant });
      expect(v.slice(0, -1)).toEqual(standard.slice(0, -1));
      expect(v.at(-1)).not.toBe(standard.at(-1));
    }
  });

  it('come in chunks of at most ten repetitions, a few MB at most even at scale 1000', () => {
    const chunks = [...sampleScripts({ scale: 1000 })];
    expect(chunks.length).toBe(1 + 100 + 1);
    expect(Math.max(...chunks.map((c) => Buffer.byteLength(c)))).toBeLessThan(2_000_000);
  });

  it('give the figures of the spec, × scale', () => {
    const one = { anchors: 30, anchorFields: 210, contained: 35, composition: 10, junctions: 25, folders: 5, governed: 65 };
    expect(sampleFigures()).toEqual(one);
    expect(sampleFigures({ scale: 7 })).toEqual(Object.fromEntries(Object.entries(one).map(([k, v]) => [k, v * 7])));
  });

  it('refuse a scale or variant they cannot build', () => {
    expect(() => sampleFigures({ scale: 0 })).toThrow(RangeError);
    expect(() => sampleFigures({ scale: 1.5 })).toThrow(/integer from 1 to 9999/);
    expect(() => [...sampleScripts({ scale: MAX_SCALE + 1 })]).toThrow(RangeError);
    expect(() => [...sampleScripts({ variant: 'nope' as never })]).toThrow(/unknown sample variant 'nope'/);
  });

  it('come as steps for progress: the same statements, table by table at scale 1, a repetition a step above', () => {
    for (const fks of [true, false]) {
      const pieces = repetitionPieces(fks, 5);
      expect(pieces.map((p) => p.sql).join('\n')).toBe(repetitionTemplate(fks));
      expect(Math.max(...pieces.map((p) => p.tables))).toBe(5);
      expect(pieces.filter((p) => p.step === 'create').reduce((n, p) => n + p.tables, 0)).toBe(65);
    }
    const one = [...sampleSteps()].map((s) => s.done);
    expect(one).toContain('65 of 65 tables created');
    expect(one).toContain('65 of 65 tables filled');
    expect(one.length).toBeGreaterThan(20);
    expect([...sampleSteps({ scale: 3 })].map((s) => s.done)).toEqual([
      'Directus system tables created',
      'repetition 1 of 3 created',
      'repetition 2 of 3 created',
      'repetition 3 of 3 created',
      'Directus metadata of repetitions 1–3',
      'proposals written, tables analysed',
    ]);
  });

  it('keep every identifier within 63 bytes up to MAX_SCALE', () => {
    const sql = repetitionTemplate(true).replaceAll('{s}', `_${MAX_SCALE}`);
    const idents = [...sql.matchAll(/"([^"]+)"/g)].map((m) => m[1]!);
    expect(idents.length).toBeGreaterThan(300);
    const longest = idents.reduce((a, b) => (Buffer.byteLength(b) > Buffer.byteLength(a) ? b : a));
    expect(Buffer.byteLength(longest)).toBeLessThanOrEqual(63);
  });
});

/** The sample's shape, measured with the spec's definitions written independently of the plan. */
const SHAPE_SQL = `
with uc as (
  select dc.collection::text as collection, dc."group"::text as folder, dc.hidden
  from directus_collections dc
  where dc.collection not like 'directus\\_%' and to_regclass(quote_ident(dc.collection)) is not null),
rel as (select r.* from directus_relations r join uc m on m.collection = r.many_collection join uc o on o.collection = r.one_collection),
contained as (select distinct many_collection as collection from rel where junction_field is not null or one_deselect_action = 'delete'),
composition as (select distinct many_collection as collection from rel where one_deselect_action = 'delete'),
anchors as (select * from uc where collection not in (select collection from contained))
select
  (select count(*) from directus_collections dc where to_regclass(quote_ident(dc.collection)) is null)::int as folders,
  (select count(*) from anchors)::int as anchors,
  (select count(*) from directus_fields f join anchors a on a.collection = f.collection)::int as "anchorFields",
  (select count(*) from contained)::int as contained,
  (select count(*) from composition)::int as composition,
  (select count(*) from contained where collection not in (select collection from composition))::int as junctions,
  (select count(*) from uc)::int as governed`;

async function shape(db: Db) {
  return (await db.query(SHAPE_SQL)).rows[0];
}

describe.each(testTargets())('the sample database (%s)', (kind) => {
  it('has the shape of the spec at scale 1', async () => {
    const t = await freshDatabase(kind);
    const db = await openDb(t.url);
    try {
      await writeSample(db);
      expect(await shape(db)).toEqual(sampleFigures());

      const perFolder = await db.query<{ folder: string | null; n: number }>(`
        select dc."group" as folder, count(*)::int as n from directus_collections dc
        where to_regclass(quote_ident(dc.collection)) is not null and dc.collection not like 'directus\\_%'
          and not exists (select 1 from directus_relations r where r.many_collection = dc.collection and (r.junction_field is not null or r.one_deselect_action = 'delete'))
        group by 1 order by 1 nulls last`);
      expect(perFolder.rows).toEqual([
        { folder: 'commerce', n: 8 }, { folder: 'editorial', n: 8 }, { folder: 'legacy', n: 3 },
        { folder: 'operations', n: 4 }, { folder: 'people', n: 5 }, { folder: null, n: 2 },
      ]);

      // composition children: 9 beside their container, 1 in legacy
      const children = await db.query<{ same: boolean; folder: string }>(`
        select c."group" = p."group" as same, c."group" as folder from directus_relations r
        join directus_collections c on c.collection = r.many_collection join directus_collections p on p.collection = r.one_collection
        where r.one_deselect_action = 'delete' order by 2`);
      expect(children.rows.length).toBe(10);
      expect(children.rows.filter((r) => r.same).length).toBe(9 + 1); // legacy_order_lines sits beside legacy_orders, in legacy
      expect(children.rows.filter((r) => r.folder === 'legacy').length).toBe(1);

      // junctions and translations: hidden, at the root, two relations naming each other
      const junctions = await db.query<{ collection: string; hidden: boolean; grp: string | null; relations: number; paired: boolean }>(`
        select dc.collection, dc.hidden, dc."group" as grp, count(r.id)::int as relations,
               bool_and(exists (select 1 from directus_relations o where o.many_collection = r.many_collection and o.id <> r.id
                                 and o.many_field = r.junction_field and o.junction_field = r.many_field)) as paired
        from directus_collections dc join directus_relations r on r.many_collection = dc.collection
        where exists (select 1 from directus_relations j where j.many_collection = dc.collection and j.junction_field is not null)
        group by 1, 2, 3 order by 1`);
      expect(junctions.rows.length).toBe(25);
      expect(junctions.rows.every((j) => j.hidden && j.grp === null && j.relations === 2 && j.paired)).toBe(true);
      expect(junctions.rows.filter((j) => j.collection.endsWith('_translations')).length).toBe(5);

      // real tables with real rows: every user table has content
      const empty = await db.query(`
        select dc.collection from directus_collections dc
        where to_regclass(quote_ident(dc.collection)) is not null
          and (xpath('/row/n/text()', query_to_xml(format('select count(*) as n from %I', dc.collection), false, true, '')))[1]::text::int = 0`);
      expect(empty.rows).toEqual([]);

      // Directus's own collections have no metadata rows
      expect((await db.query(`select 1 from directus_collections where collection like 'directus\\_%'
                              union all select 1 from directus_fields where collection like 'directus\\_%'
                              union all select 1 from directus_relations where many_collection like 'directus\\_%'`)).rows).toEqual([]);

      // an administrator through the Administrator role's policy
      const admins = await db.query(`select u.email from directus_users u join directus_access a on a.role = u.role
                                     join directus_policies p on p.id = a.policy where p.admin_access`);
      expect(admins.rows).toEqual([{ email: 'admin@northwind.example' }]);

      // foreign keys named as Directus names them
      const fkNames = await db.query<{ n: number }>(`select count(*)::int as n from pg_constraint c join pg_class t on t.oid = c.conrelid
        where c.contype = 'f' and t.relname not like 'directus\\_%' and t.relname not like 'os\\_%' and c.conname not like '%\\_foreign'`);
      expect(fkNames.rows[0]!.n).toBe(0);

      // the proposal: its payload names exactly the anchors, with owner and topic; its hash is PostgreSQL's; no approvals
      const p = await db.query<{ axes: number; topics: number; anchors: number; named_anchors: number; owners: number; hash_ok: boolean; approvals: number }>(`
        with p as (select * from os_proposals where key = 'OS-AXIS'),
        a as (select e->>'collection' as collection, e->>'owner' as owner, e->>'topic' as topic from p, jsonb_array_elements(p.payload->'anchors') e)
        select jsonb_array_length(p.payload->'axes') as axes, jsonb_array_length(p.payload->'topics') as topics,
               (select count(*)::int from a) as anchors,
               (select count(*)::int from a join directus_collections dc on dc.collection = a.collection
                  where not exists (select 1 from directus_relations r where r.many_collection = a.collection
                                      and (r.junction_field is not null or r.one_deselect_action = 'delete'))) as named_anchors,
               (select count(*)::int from a where owner like 'team-%' and topic is not null) as owners,
               p.payload_sha256 = encode(sha256(convert_to(p.payload::text, 'UTF8')), 'hex') as hash_ok,
               (select count(*)::int from os_proposal_approvals x where x.proposal = p.id) as approvals
        from p`);
      expect(p.rows).toEqual([{ axes: 2, topics: 5, anchors: 30, named_anchors: 30, owners: 30, hash_ok: true, approvals: 0 }]);
    } finally {
      await db.close();
      await t.drop();
    }
  });

  it('is the same database built step by step (writeSample) as by its scripts run whole', async () => {
    for (const scale of [1, 2]) {
      const hashes: string[] = [];
      for (const stepwise of [true, false]) {
        const t = await freshDatabase(kind);
        const db = await openDb(t.url);
        try {
          const steps: string[] = [];
          if (stepwise) await writeSample(db, { scale }, (done) => steps.push(done));
          else for (const chunk of sampleScripts({ scale })) await db.exec(chunk);
          if (stepwise) expect(steps).toEqual([...sampleSteps({ scale })].map((s) => s.done));
          hashes.push((await fingerprint(db)).hash);
        } finally {
          await db.close();
          await t.drop();
        }
      }
      expect(hashes[0], `scale ${scale}`).toBe(hashes[1]);
    }
  });

  it('multiplies every figure by the scale', async () => {
    const t = await freshDatabase(kind);
    const db = await openDb(t.url);
    try {
      await writeSample(db, { scale: 3 });
      expect(await shape(db)).toEqual(sampleFigures({ scale: 3 }));
      const p = await db.query(`select jsonb_array_length(payload->'anchors') as anchors, jsonb_array_length(payload->'topics') as topics,
                                       jsonb_array_length(payload->'axes') as axes from os_proposals where key = 'OS-AXIS'`);
      expect(p.rows).toEqual([{ anchors: 90, topics: 15, axes: 2 }]);
      expect((await db.query(`select count(*)::int as n from directus_collections where collection in ('orders', 'orders_2', 'orders_3', 'commerce_3')`)).rows).toEqual([{ n: 4 }]);
    } finally {
      await db.close();
      await t.drop();
    }
  });
});
