/**
 * Day two (issue 14): governance kept true as Directus changes. After a full
 * rollout, collections of each kind are created the way Directus creates them
 * (a new anchor with a many-to-one, a junction, a translations collection, a
 * composition child) → scan shows each → propose suggests owners and topics
 * with reasons → submit (the gate closes: earlier approvals approve another
 * payload) → approve → rehearse PASS with the amendment's deltas and its own
 * rollback proven → apply --evidence → verify passes; then the amendment
 * alone is rolled back: the findings return, the first rollout is intact.
 * A collection dropped from Directus is released by the next amendment.
 * Both backends.
 */
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDb, withDb } from '../src/db/open-db.js';
import type { Db } from '../src/db/port.js';
import { draft, scan, submit } from '../src/engine/amend.js';
import type { Evidence } from '../src/evidence/types.js';
import { apply } from '../src/engine/apply.js';
import { dryRun } from '../src/engine/dry-run.js';
import { readGate } from '../src/engine/gate.js';
import { rollback } from '../src/engine/rollback.js';
import { status, unfinished } from '../src/engine/status.js';
import { loadPlan } from '../src/plan/load-plan.js';
import { bundledPlanDir } from '../src/plan/plan.js';
import { verify } from '../src/engine/verify.js';
import { diffFingerprints, fingerprintClone } from '../src/probe/fingerprint.js';
import { NAMED_SHAPES, writeGenerated } from '../fixtures/directus-gen/index.js';
import { VARIANT_TARGETS, writeSample } from '../fixtures/directus-sample/generate.js';
import { scalar } from './fixtures/axis-harness/harness.js';
import { runCli } from './helpers/cli.js';
import { startCli } from './helpers/cli-live.js';
import { applyBound, approveAs, bundled as plan, evidenceFile, rehearseSource } from './helpers/rollout.js';
import { expected, realDirectus } from './helpers/real-directus.js';
import { freshDatabase, testTargets, type TargetKind, type TestDatabase } from './helpers/targets.js';

const ADMIN = 'admin@northwind.example';

let target: TestDatabase | null = null;
afterEach(async () => {
  await target?.drop();
  target = null;
});

/** The sample as production (a database named directus, no clone mark), rolled out in full with an approval of its payload. */
async function rolledOut(kind: TargetKind): Promise<TestDatabase> {
  const t = await freshDatabase(kind, 'directus', { exactName: true });
  await withDb(t.url, async (db) => {
    await writeSample(db, {});
    await approveAs(db, ADMIN);
    const r = await apply(db, plan);
    expect(r.outcome, JSON.stringify(r.tiers.filter((x) => x.status !== 'Applied'))).toBe('ok');
  });
  return t;
}

/** A table and its Directus metadata: the collection (in `folder`), a field per column, and `relations`. */
async function createCollection(
  db: Db,
  name: string,
  options: { folder?: string | null; hidden?: boolean; columns: [string, string][]; relations?: { field: string; one: string; oneField?: string | null; junction?: string | null; deselect?: string }[] },
): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.exec(`create table "${name}" (${options.columns.map(([c, type]) => `"${c}" ${type}`).join(', ')})`);
    await tx.query(
      `insert into directus_collections (collection, icon, hidden, singleton, accountability, collapse, "group") values ($1, 'box', $2, false, 'all', 'open', $3)`,
      [name, options.hidden ?? false, options.folder ?? null],
    );
    for (const [i, [field]] of options.columns.entries()) {
      await tx.query(`insert into directus_fields (collection, field, interface, readonly, hidden, sort, width) values ($1, $2, 'input', false, false, $3, 'full')`, [name, field, i + 1]);
    }
    for (const r of options.relations ?? []) {
      await tx.query(
        `insert into directus_relations (many_collection, many_field, one_collection, one_field, junction_field, one_deselect_action) values ($1, $2, $3, $4, $5, $6)`,
        [name, r.field, r.one, r.oneField ?? null, r.junction ?? null, r.deselect ?? 'nullify'],
      );
    }
  });
}

/** What a Directus admin does after the rollout: one collection of each kind. */
async function directusChanges(db: Db): Promise<void> {
  await createCollection(db, 'reviews', {
    folder: 'editorial',
    columns: [['id', 'serial primary key'], ['article', 'uuid'], ['rating', 'integer']],
    relations: [{ field: 'article', one: 'articles' }],
  });
  // a many-to-many junction between reviews and tags
  await createCollection(db, 'reviews_tags', {
    hidden: true,
    columns: [['id', 'serial primary key'], ['reviews_id', 'integer'], ['tags_id', 'integer']],
    relations: [
      { field: 'reviews_id', one: 'reviews', oneField: 'tags', junction: 'tags_id' },
      { field: 'tags_id', one: 'tags', junction: 'reviews_id' },
    ],
  });
  // translations of reviews
  await createCollection(db, 'reviews_translations', {
    hidden: true,
    columns: [['id', 'serial primary key'], ['reviews_id', 'integer'], ['languages_code', 'varchar(255)'], ['body', 'text']],
    relations: [
      { field: 'reviews_id', one: 'reviews', oneField: 'translations', junction: 'languages_code' },
      { field: 'languages_code', one: 'languages', junction: 'reviews_id' },
    ],
  });
  // a composition child (deleted with its review)
  await createCollection(db, 'review_notes', {
    folder: 'editorial',
    columns: [['id', 'serial primary key'], ['review', 'integer'], ['note', 'text']],
    relations: [{ field: 'review', one: 'reviews', oneField: 'notes', deselect: 'delete' }],
  });
}

/** A rehearsal of the database at `url` that PASSes, proving rollback tier `tier` (98: the pending amendment's own; 99: the rollout's) both ways. */
async function provenRehearsal(kind: TargetKind, url: string, tier: 98 | 99): Promise<Evidence> {
  const evidence = await rehearseSource(kind, url);
  expect(evidence.verdict.rehearsal, JSON.stringify(evidence.stages.flatMap((s) => s.checks.filter((c) => !c.ok)))).toBe('PASS');
  expect(evidence.rollback).toMatchObject({ tier, matchesKeptTiers: true, reapplyMatches: true });
  return evidence;
}

/** An apply of the plan that succeeds, every tier's expectations met. */
async function appliedAsExpected(db: Db): Promise<Awaited<ReturnType<typeof apply>>> {
  const r = await apply(db, plan);
  expect(r.outcome).toBe('ok');
  expect(r.tiers.flatMap((t) => (t.expectations ?? []).filter((e) => !e.ok))).toEqual([]);
  return r;
}

/** Verify passes and scan finds nothing: governance is true of the database. */
async function expectGoverned(db: Db): Promise<void> {
  expect((await verify(db, plan)).tiers[0]!.status).toBe('Passed');
  expect((await scan(db, plan)).findings).toEqual([]);
}

/** The tags of legacy_pages's topic and reconcile decision rows. */
async function released(db: Db): Promise<{ topics: string[]; decisions: string[] }> {
  const tags = async (table: string) => (await db.query<{ tag: string }>(`select tag from ${table} where collection = 'legacy_pages' order by tag`)).rows.map((r) => r.tag);
  return { topics: await tags('axis.collection_topic'), decisions: await tags('axis.reconcile_decision') };
}

/** A collection's containment assignment: its container and tag (null: none). */
async function assignment(db: Db, collection: string): Promise<string | null> {
  return scalar<string | null>(db, `select (select container || ' ' || tag from axis.containment_assignment where collection = '${collection}') as v`);
}

/** Rows the first rollout wrote (tags without an amendment's @sha). */
async function firstRollout(db: Db): Promise<Record<string, number>> {
  const n = (sql: string) => scalar<number>(db, sql).then(Number);
  return {
    ownership: await n(`select count(*) as v from axis.ownership where tag in ('PROD_T2', 'PROD_T3')`),
    topics: await n(`select count(*) as v from axis.collection_topic where tag = 'PROD_T3'`),
    assignments: await n(`select count(*) as v from axis.containment_assignment where tag = 'PROD_T3'`),
  };
}

describe.each(testTargets())('governance after the rollout (%s)', (kind) => {
  it('scan → propose → submit → approve → rehearse → apply closes every finding; rollback --amendment brings them back and leaves the rollout', async () => {
    target = await rolledOut(kind);
    const url = target.url;
    let db = await openDb(url);
    let before: Record<string, number>;
    let subjectBefore: string | null;
    try {
      before = await firstRollout(db);
      subjectBefore = (await db.transaction((tx) => readGate(tx, plan)))!.subject;
      expect((await scan(db, plan)).findings).toEqual([]);
      await directusChanges(db);

      // 1. detect
      const found = await scan(db, plan);
      const byItem = Object.fromEntries(found.findings.map((f) => [f.item, f]));
      expect(byItem.reviews).toMatchObject({ kind: 'new collection without owner', severity: 'critical' });
      for (const c of ['reviews_tags', 'reviews_translations', 'review_notes']) expect(byItem[c], c).toMatchObject({ kind: 'contained collection not governed', severity: 'critical' });
      expect(found.critical).toBe(4);
      expect(found.metrics.owner_gap).toBe(3);
      expect(Number(await scalar(db, 'select count(*) as v from axis.scan_run'))).toBeGreaterThan(0);

      // 2. propose: owner from the many-to-one, topic from the folder; contained ones need no entry
      const d = await draft(db, plan);
      const own = d.suggestions.find((s) => s.item === 'reviews')!;
      expect(own).toMatchObject({ action: 'own', owner: 'team-editorial', topic: 'editorial' });
      expect(own.reason).toMatch(/its field article is a many-to-one to articles, owned by team-editorial; its folder editorial is the label of topic editorial/);
      for (const c of ['reviews_tags', 'reviews_translations', 'review_notes']) {
        expect(d.suggestions.find((s) => s.item === c), c).toMatchObject({ action: 'contain', owner: 'team-editorial' });
      }
      const payload = d.payload as { amends: string; amendment: number; anchors: { collection: string; added_in?: number }[]; contained: { collection: string; added_in: number }[] };
      expect(payload).toMatchObject({ amends: subjectBefore, amendment: 1 });
      expect(payload.anchors.find((a) => a.collection === 'reviews')).toEqual({ collection: 'reviews', owner: 'team-editorial', topic: 'editorial', added_in: 1 });
      expect(payload.anchors.filter((a) => a.added_in === undefined)).toHaveLength(30);
      expect(payload.contained.map((c) => c.collection).sort()).toEqual(['review_notes', 'reviews_tags', 'reviews_translations']);
      // nothing was written by the draft
      expect((await db.transaction((tx) => readGate(tx, plan)))!.subject).toBe(subjectBefore);

      // 3. submit: the subject changes, the earlier approval no longer counts, tiers 2, 3, 4 are pending again
      const s = await submit(db, plan, d.payload);
      expect(s.before).toBe(subjectBefore);
      expect(s.after).not.toBe(subjectBefore);
      expect(s.gate).toMatchObject({ value: 0, open: false });
      expect(s.pending).toEqual([2, 3, 4]);
      const st = await status(db, plan);
      expect(st.tiers.filter((t) => t.state === 'pending').map((t) => t.id)).toEqual([2, 3, 4]);
      expect(st.tiers.find((t) => t.id === 2)!.note).toMatch(/an amendment \(applied for subject [0-9a-f]{12}, the subject is now [0-9a-f]{12}\)/);
      await expect(submit(db, plan, d.payload)).rejects.toThrow(/the payload is the one already proposed/);
      // the gate is closed: apply writes nothing for the amendment (NO-GO)
      const closed = await apply(db, plan);
      expect(closed.outcome).toBe('no-go');
      expect(closed.tiers.filter((t) => t.status === 'Blocked').map((t) => t.id)).toEqual([2, 3, 4]);
      expect(Number(await scalar(db, `select count(*) as v from axis.ownership where collection = 'reviews'`))).toBe(0);
      // --structure-only skips the amended tiers, which are pending, not applied: apply skips verify, and its dry run says so
      const dry = await dryRun(db, plan, { structureOnly: true });
      expect(dry.tiers.filter((t) => t.id >= 2 && t.id <= 4).map((t) => [t.id, t.action])).toEqual([[2, 'skip'], [3, 'skip'], [4, 'skip']]);
      expect(dry.verify).toBe('skipped: tier 2, 3, 4 would not be applied');
      const structure = await apply(db, plan, { structureOnly: true });
      expect(structure.tiers.find((t) => t.kind === 'verify')).toMatchObject({ status: 'Skipped', reason: 'not every tier is applied' });
    } finally {
      await db.close();
    }

    // 4. rehearse the amendment on a clone of production
    const evidence = await rehearseSource(kind, url);
    expect(evidence.verdict.failures).toEqual([]);
    expect(evidence.verdict).toMatchObject({ rehearsal: 'PASS', execution: 'NO-GO' });
    const b = (id: number) => evidence.stages.find((x) => x.name === 'B')!.tiers.find((t) => t.id === id)!;
    expect(b(2).delta?.rows['axis.ownership']).toEqual({ added: 1, removed: 0, changed: 0 });
    expect(b(2).delta?.metrics.owner_gap).toEqual({ before: 3, after: 0 });
    expect(b(3).delta?.rows['axis.containment_assignment']).toEqual({ added: 3, removed: 0, changed: 0 });
    expect(b(3).delta?.rows['axis.ownership']).toEqual({ added: 3, removed: 0, changed: 0 });
    expect(b(3).delta?.rows['axis.collection_topic']).toEqual({ added: 4, removed: 0, changed: 0 });
    expect((b(3).expectations ?? []).filter((e) => !e.ok)).toEqual([]);
    // the gated tiers were proven to stop themselves, and the amendment's own rollback (98) proven
    expect(evidence.stages.find((x) => x.name === 'A')!.tiers.filter((t) => t.guardProven).map((t) => t.id)).toEqual([2, 3, 4]);
    expect(evidence.rollback).toMatchObject({ tier: 98, reverted: [4, 3, 2], matchesKeptTiers: true, reapplyMatches: true });

    // 5. approve the new payload, apply bound to the evidence
    await withDb(url, (d) => approveAs(d, ADMIN));
    const applied = await applyBound(url, evidence);
    expect(applied.outcome).toBe('ok');
    expect(applied.tiers.filter((t) => t.status === 'Applied').map((t) => t.id)).toEqual([2, 3, 4]);
    expect(applied.tiers.filter((t) => t.status === 'Applied').flatMap((t) => t.differences ?? [])).toEqual([]);

    db = await openDb(url);
    try {
      const v = await verify(db, plan);
      expect(v.tiers[0]!.status).toBe('Passed');
      expect((await scan(db, plan)).findings).toEqual([]);
      expect(await scalar(db, `select owner as v from axis.ownership where collection = 'reviews'`)).toBe('team-editorial');
      expect(await scalar(db, `select tag as v from axis.ownership where collection = 'reviews'`)).toBe('PROD_T2#1');
      // a second apply skips the amendment: applied for this subject
      const again = await apply(db, plan);
      expect(again.tiers.filter((t) => t.status === 'Applied')).toEqual([]);

      // 6. the amendment alone rolled back: the findings return, the first rollout intact
      const fpAfter = await fingerprintClone(db);
      const rb = await rollback(db, plan, { scope: 'subject' });
      expect(rb.outcome).toBe('ok');
      expect(rb.tiers.filter((t) => t.status === 'Reverted').map((t) => t.id)).toEqual([4, 3, 2]);
      expect(await firstRollout(db)).toEqual(before);
      const back = await scan(db, plan);
      expect([...new Set(back.findings.map((f) => f.item))].sort()).toEqual(['review_notes', 'reviews', 'reviews_tags', 'reviews_translations']);
      // the payload still names reviews: it is an anchor without owner now, which apply closes again
      expect(back.findings.find((f) => f.item === 'reviews' && f.kind === 'anchor without owner')).toBeTruthy();
      const st = await status(db, plan);
      expect(st.tiers.find((t) => t.id === 2)).toMatchObject({ state: 'reverted' });
      expect(st.tiers.find((t) => t.id === 2)!.note).toMatch(/the amendment for subject [0-9a-f]{12} reverted; what it wrote for subject [0-9a-f]{12} stays/);
      // a rollback of the amendment again is refused: it is not applied
      await expect(rollback(db, plan, { scope: 'subject' })).rejects.toThrow(/tiers 4, 3, 2 are not applied/);
      // and apply writes it again, exactly as before
      const re = await apply(db, plan);
      expect(re.tiers.filter((t) => t.status === 'Applied').map((t) => t.id)).toEqual([2, 3, 4]);
      // the same database as after the first apply of the amendment, but for the scans this test ran (axis.scan_run, axis.drift_state)
      expect(diffFingerprints(fpAfter, await fingerprintClone(db))).toEqual({ objects: [], tables: ['axis.drift_state', 'axis.scan_run'] });
    } finally {
      await db.close();
    }
  });

  it('new collections related only to each other, a many-to-many target and many-to-any targets: propose follows the relations to an owner', async () => {
    target = await rolledOut(kind);
    await withDb(target.url, async (db) => {
      // a chain of new collections: meetup_slots → meetups (new) → articles (owned)
      await createCollection(db, 'meetups', { columns: [['id', 'serial primary key'], ['article', 'uuid']], relations: [{ field: 'article', one: 'articles' }] });
      await createCollection(db, 'meetup_slots', { columns: [['id', 'serial primary key'], ['event', 'integer']], relations: [{ field: 'event', one: 'meetups' }] });
      // a new collection reached only through a new many-to-many junction of an anchor
      await createCollection(db, 'stickers', { columns: [['id', 'serial primary key'], ['name', 'text']] });
      await createCollection(db, 'articles_stickers', {
        hidden: true,
        columns: [['id', 'serial primary key'], ['articles_id', 'uuid'], ['stickers_id', 'integer']],
        relations: [
          { field: 'articles_id', one: 'articles', oneField: 'stickers', junction: 'stickers_id' },
          { field: 'stickers_id', one: 'stickers', junction: 'articles_id' },
        ],
      });
      // a many-to-any: articles_blks.item is a blk_hero or a blk_text (one_collection null, one_allowed_collections)
      await createCollection(db, 'blk_hero', { columns: [['id', 'serial primary key'], ['title', 'text']] });
      await createCollection(db, 'blk_text', { columns: [['id', 'serial primary key'], ['body', 'text']] });
      await createCollection(db, 'articles_blks', {
        hidden: true,
        columns: [['id', 'serial primary key'], ['articles_id', 'uuid'], ['item', 'varchar(255)'], ['collection', 'varchar(255)']],
        relations: [{ field: 'articles_id', one: 'articles', oneField: 'blocks', junction: 'item' }],
      });
      await db.exec(`insert into directus_relations (many_collection, many_field, one_collection, one_allowed_collections, one_collection_field, junction_field, one_deselect_action)
                     values ('articles_blks', 'item', null, 'blk_hero,blk_text', 'collection', 'articles_id', 'nullify')`);
      // blk_text allowed by a second many-to-any too, of an anchor another team owns: the draft says so beside its choice
      const other = await scalar<string>(db, `select o.owner as v from axis.ownership o where o.basis = 'anchor' and o.owner <> (select owner from axis.ownership where collection = 'articles') order by o.collection limit 1`);
      const otherAnchor = await scalar<string>(db, `select collection as v from axis.ownership where basis = 'anchor' and owner = '${other}' order by collection limit 1`);
      await createCollection(db, 'other_blks', {
        hidden: true,
        columns: [['id', 'serial primary key'], ['parent_id', 'text'], ['item', 'varchar(255)'], ['collection', 'varchar(255)']],
        relations: [{ field: 'parent_id', one: otherAnchor, oneField: 'blocks', junction: 'item' }],
      });
      await db.exec(`insert into directus_relations (many_collection, many_field, one_collection, one_allowed_collections, one_collection_field, junction_field, one_deselect_action)
                     values ('other_blks', 'item', null, 'blk_text', 'collection', 'parent_id', 'nullify')`);
      // a new collection's own new many-to-many: its target reached only through the new collection's junction
      await createCollection(db, 'venues', { columns: [['id', 'serial primary key'], ['article', 'uuid']], relations: [{ field: 'article', one: 'articles' }] });
      await createCollection(db, 'amenities', { columns: [['id', 'serial primary key'], ['name', 'text']] });
      await createCollection(db, 'venues_amenities', {
        hidden: true,
        columns: [['id', 'serial primary key'], ['venues_id', 'integer'], ['amenities_id', 'integer']],
        relations: [
          { field: 'venues_id', one: 'venues', oneField: 'amenities', junction: 'amenities_id' },
          { field: 'amenities_id', one: 'amenities', junction: 'venues_id' },
        ],
      });
      const owner = await scalar<string>(db, `select owner as v from axis.ownership where collection = 'articles'`);
      const d = await draft(db, plan);
      const own = Object.fromEntries(d.suggestions.filter((x) => x.action === 'own').map((x) => [x.item, x]));
      expect(own.meetups).toMatchObject({ owner, reason: expect.stringMatching(/^its field article is a many-to-one to articles, owned by /) });
      expect(own.meetup_slots).toMatchObject({ owner, reason: expect.stringMatching(/^meetup_slots\.event relates it to meetups, which this draft gives owner .*; topic .*, as meetups's$/) });
      expect(own.stickers).toMatchObject({ owner, reason: expect.stringMatching(/^articles_stickers\.stickers_id refers to it, and articles_stickers is contained in articles, owned by /) });
      expect(own.blk_hero).toMatchObject({ owner, reason: expect.stringMatching(/^articles_blks\.item refers to it, and articles_blks is contained in articles, owned by /) });
      expect(own.blk_text).toMatchObject({
        owner,
        reason: expect.stringMatching(new RegExp(`^articles_blks\\.item refers to it, and articles_blks is contained in articles, owned by ${owner} \\(but other_blks\\.item refers to it too, and other_blks is contained in ${otherAnchor}, owned by ${other}: choose between them\\);`)),
      });
      expect(own.blk_hero?.reason).not.toMatch(/choose between them/);
      expect(own.amenities).toMatchObject({ owner, reason: expect.stringMatching(/^venues_amenities\.amenities_id relates it to venues_amenities, contained in venues, which this draft gives owner /) });
      expect(Object.values(own).filter((x) => x.owner === null)).toEqual([]);
    });
  });

  it('a collection dropped from Directus: scan reports it, the amendment releases it, rollback 98 restores it, rollback 99 reverts every amendment', async () => {
    target = await rolledOut(kind);
    const url = target.url;
    let db = await openDb(url);
    let first: Record<string, number> = {};
    try {
      first = await firstRollout(db);
      expect(await assignment(db, 'legacy_order_lines')).toBe('legacy_orders PROD_T3');
      // Directus deletes a collection: its table and its metadata; and a contained one (a composition child)
      await db.exec(`delete from directus_relations where many_collection = 'legacy_pages' or one_collection = 'legacy_pages';
        delete from directus_fields where collection = 'legacy_pages'; delete from directus_collections where collection = 'legacy_pages'; drop table legacy_pages;
        delete from directus_relations where many_collection = 'legacy_order_lines'; delete from directus_fields where collection = 'legacy_order_lines';
        delete from directus_collections where collection = 'legacy_order_lines'; drop table legacy_order_lines`);
      const found = await scan(db, plan);
      expect(found.findings.filter((f) => f.item === 'legacy_pages').map((f) => f.kind).sort()).toEqual(['proposal names a collection Directus does not have', 'removed collection still owned']);
      const recorded = await released(db);
      const d = await draft(db, plan);
      expect(d.suggestions.find((s) => s.item === 'legacy_pages')).toMatchObject({ action: 'release', owner: 'team-data', reason: expect.stringMatching(/its ownership is released$/) });
      expect((d.payload as { anchors: { collection: string }[] }).anchors.map((a) => a.collection)).not.toContain('legacy_pages');
      // their rows are recorded in the payload as they are: what the approvers approve deleting, what tier 98 writes back
      const releasedList = (d.payload as { released: { collection: string; added_in: number; topics: { tag: string }[]; assignment: { container: string } | null; decisions: { tag: string }[] }[] })
        .released;
      expect(releasedList.map((e) => [e.collection, e.added_in, e.topics.map((t) => t.tag), e.assignment?.container ?? null, e.decisions.map((x) => x.tag)])).toEqual([
        ['legacy_order_lines', 1, ['PROD_T3'], 'legacy_orders', ['PROD_T4']],
        ['legacy_pages', 1, recorded.topics, null, recorded.decisions],
      ]);
      expect(recorded).toEqual({ topics: ['PROD_T3'], decisions: ['PROD_T4'] });
      await submit(db, plan, d.payload);
      await approveAs(db, ADMIN);
      // rehearsed first: the release, its deltas as the plan expects them, and its own rollback (98) proven
      await db.close();
      const amendment = await provenRehearsal(kind, url, 98);
      db = await openDb(url);
      const r = await apply(db, plan);
      expect(r.outcome).toBe('ok');
      const t2 = r.tiers.find((t) => t.id === 2)!;
      expect(t2.delta?.rows['axis.ownership']).toEqual({ added: 0, removed: 0, changed: 2 }); // both owners released
      expect(r.tiers.flatMap((t) => (t.expectations ?? []).filter((e) => !e.ok))).toEqual([]);
      expect(await scalar(db, `select tag as v from axis.ownership where collection = 'legacy_pages'`)).toBe('RELEASED#1:PROD_T2');
      // its topic and reconcile decision are deleted (tiers 3 and 4), as the payload recorded them
      expect(await released(db)).toEqual({ topics: [], decisions: [] });
      expect(r.tiers.find((t) => t.id === 3)!.delta?.rows['axis.collection_topic']).toEqual({ added: 0, removed: 2, changed: 0 });
      expect(r.tiers.find((t) => t.id === 3)!.delta?.rows['axis.containment_assignment']).toEqual({ added: 0, removed: 1, changed: 0 });
      expect(await assignment(db, 'legacy_order_lines')).toBeNull();
      expect(r.tiers.find((t) => t.id === 4)!.delta?.rows['axis.reconcile_decision']).toEqual({ added: 0, removed: 2, changed: 0 });
      await expectGoverned(db);
    } finally {
      await db.close();
    }

    // a rehearsal with no amendment pending proves the full rollback: the payload writes the same rows again
    // (the released ones were deleted), so re-applying reproduces stage B
    await provenRehearsal(kind, url, 99);

    db = await openDb(url);
    try {
      // the amendment rolled back: the release undone, the recorded rows written back
      const back = await rollback(db, plan, { scope: 'subject' });
      expect(back.outcome).toBe('ok');
      expect((back.tiers[0]!.expectations ?? []).filter((e) => !e.ok)).toEqual([]);
      expect(await scalar(db, `select tag as v from axis.ownership where collection = 'legacy_pages'`)).toBe('PROD_T2');
      expect(await firstRollout(db)).toEqual(first);

      expect(await released(db)).toEqual({ topics: ['PROD_T3'], decisions: ['PROD_T4'] });
      expect(await assignment(db, 'legacy_order_lines')).toBe('legacy_orders PROD_T3');

      // re-applied, then the full rollback: nothing of tiers 3, 4 remains, of any amendment
      expect((await apply(db, plan)).outcome).toBe('ok');
      const full = await rollback(db, plan);
      expect(full.outcome).toBe('ok');
      expect(Number(await scalar(db, `select count(*) as v from axis.collection_topic`))).toBe(0);
      // (but the owner the amendment released stays released: it owns nothing)
      expect(await scalar(db, `select string_agg(collection || ' ' || tag, ', ') as v from axis.ownership where basis = 'containment'`)).toBe('legacy_order_lines RELEASED#1:PROD_T3');
      const again = await appliedAsExpected(db);
      expect(await released(db)).toEqual({ topics: [], decisions: [] });
      expect((await verify(db, plan)).tiers[0]!.status).toBe('Passed');
    } finally {
      await db.close();
    }
  });

  it('a dropped collection Directus has again: the next amendment owns it anew, and its own rollback writes the released owner back', async () => {
    target = await rolledOut(kind);
    const url = target.url;
    let db = await openDb(url);
    try {
      // dropped (the table kept aside), released by amendment 1
      await db.exec(`delete from directus_relations where many_collection = 'legacy_pages' or one_collection = 'legacy_pages';
        delete from directus_fields where collection = 'legacy_pages'; delete from directus_collections where collection = 'legacy_pages'; alter table legacy_pages rename to legacy_pages_aside`);
      await submit(db, plan, (await draft(db, plan)).payload);
      await approveAs(db, ADMIN);
      expect((await apply(db, plan)).outcome).toBe('ok');
      expect(await scalar(db, `select tag as v from axis.ownership where collection = 'legacy_pages'`)).toBe('RELEASED#1:PROD_T2');
      // back in Directus, in its folder
      await db.exec(`alter table legacy_pages_aside rename to legacy_pages;
        insert into directus_collections (collection, icon, hidden, singleton, accountability, collapse, "group") values ('legacy_pages', 'box', false, false, 'all', 'open', 'legacy');
        insert into directus_fields (collection, field, interface, readonly, hidden, sort, width) values ('legacy_pages', 'id', 'input', false, false, 1, 'full')`);
      const d = await draft(db, plan);
      expect(d.suggestions.map((s) => [s.item, s.action])).toEqual([['legacy_pages', 'own']]);
      // the released owner it drops to own the collection anew is recorded, as it is
      expect((d.payload as { returned: unknown[] }).returned).toEqual([{ collection: 'legacy_pages', owner: 'team-data', basis: 'anchor', tag: 'RELEASED#1:PROD_T2', added_in: 2 }]);
      await submit(db, plan, d.payload);
      await approveAs(db, ADMIN);
    } finally {
      await db.close();
    }

    await provenRehearsal(kind, url, 98);

    db = await openDb(url);
    try {
      const r = await apply(db, plan);
      expect(r.outcome).toBe('ok');
      expect(r.tiers.find((t) => t.id === 2)!.delta?.rows['axis.ownership']).toEqual({ added: 0, removed: 0, changed: 1 });
      expect(r.tiers.flatMap((t) => (t.expectations ?? []).filter((e) => !e.ok))).toEqual([]);
      expect(await scalar(db, `select tag as v from axis.ownership where collection = 'legacy_pages'`)).toBe('PROD_T2#2');
      const back = await rollback(db, plan, { scope: 'subject' });
      expect(back.outcome).toBe('ok');
      expect((back.tiers[0]!.expectations ?? []).filter((e) => !e.ok)).toEqual([]);
      expect(await scalar(db, `select tag as v from axis.ownership where collection = 'legacy_pages'`)).toBe('RELEASED#1:PROD_T2');
    } finally {
      await db.close();
    }
  });

  it('an anchor Directus now contains (a relation that deletes it with its parent): propose contains it, the amendment re-owns it, both rollbacks proven', async () => {
    target = await rolledOut(kind);
    const url = target.url;
    await withDb(url, async (db) => {
      const teamsOwner = await scalar<string>(db, `select owner as v from axis.ownership where collection = 'teams'`);
      // skills becomes a child of teams: a many-to-one whose one side deletes it on deselect
      await db.exec(`alter table skills add column team integer;
        insert into directus_fields (collection, field, interface, readonly, hidden, sort, width) values ('skills', 'team', 'select-dropdown-m2o', false, false, 99, 'full'), ('teams', 'skills', 'list-o2m', false, false, 99, 'full');
        insert into directus_relations (many_collection, many_field, one_collection, one_field, one_deselect_action) values ('skills', 'team', 'teams', 'skills', 'delete')`);
      const d = await draft(db, plan);
      expect(d.suggestions.filter((s) => s.item === 'skills')).toMatchObject([{ action: 'contain', owner: teamsOwner }]);
      const payload = d.payload as { anchors: { collection: string }[]; contained: { collection: string; added_in: number }[]; returned: { collection: string; basis: string }[] };
      expect(payload.anchors.map((a) => a.collection)).not.toContain('skills');
      expect(payload.contained.filter((c) => c.collection === 'skills')).toEqual([{ collection: 'skills', added_in: 1 }]);
      expect(payload.returned.filter((r) => r.collection === 'skills').map((r) => r.basis)).toEqual(['anchor']);
      await submit(db, plan, d.payload);
      await approveAs(db, ADMIN);
    });
    await provenRehearsal(kind, url, 98);
    await withDb(url, async (db) => {
      const r = await apply(db, plan);
      expect(r.outcome).toBe('ok');
      expect(await scalar(db, `select basis || ' ' || tag as v from axis.ownership where collection = 'skills'`)).toBe('containment PROD_T3#1');
      await expectGoverned(db);
    });
    await provenRehearsal(kind, url, 99);
  });

  it('an anchor moved into the folder of another topic on its axis (divergent): propose says how to keep it; kept by the payload\'s "decide", both rollbacks proven', async () => {
    target = await rolledOut(kind);
    const url = target.url;
    const file = join(mkdtempSync(join(tmpdir(), 'tiergate-payload-')), 'keep.json');
    await withDb(url, async (db) => {
      await db.exec(`update directus_collections set "group" = 'commerce' where collection = 'skills'`);
      const found = await scan(db, plan);
      expect(found.findings.find((f) => f.item === 'skills')?.detail).toMatch(/to keep its topic, list it under "decide" in the amendment's payload/);
      const d = await draft(db, plan);
      const move = d.suggestions.find((s) => s.item === 'skills');
      expect(move).toMatchObject({ action: 'move', reason: expect.stringMatching(/\{"collection": "skills", "topic": "people", "added_in": 1\} under "decide"/) });
      // submitted as drafted, tier 4 would fail on it (divergent = 0): refused, saying what to add, nothing submitted
      await expect(submit(db, plan, d.payload)).rejects.toThrow(
        /skills has topic people and is in folder commerce, the label of topic commerce on the same axis \(divergent\): tier 4 would fail \(divergent = 0\); move it back in Directus, or keep its topic by adding \{"collection": "skills", "topic": "people", "added_in": 1\} under "decide"/,
      );
      // the steward keeps its topic: the approvers approve that decision
      const payload = d.payload as { decide: object[] };
      payload.decide.push({ collection: 'skills', topic: 'people', added_in: 1 });
      writeFileSync(file, JSON.stringify(payload));
    });
    const before = await withDb(url, async (db) => (await db.transaction((tx) => readGate(tx, plan)))!.subject);
    const submitted = await runCli(['propose', '--target', url, '--submit', file, '--yes', '--json']);
    expect(submitted.code, submitted.stdout + submitted.stderr).toBe(0);
    // --json: the subject is the new one (what approvers approve), the payload the one submitted; the draft's subject is draftedFor
    const result = JSON.parse(submitted.stdout) as { subject: string; draftedFor: string; payload: { decide: object[] }; submitted: { before: string; after: string } };
    const after = await withDb(url, async (db) => (await db.transaction((tx) => readGate(tx, plan)))!.subject);
    expect(after).not.toBe(before);
    expect(result).toMatchObject({ subject: after, draftedFor: before, submitted: { before, after } });
    expect(result.payload.decide).toContainEqual({ collection: 'skills', topic: 'people', added_in: 1 });
    await withDb(url, (db) => approveAs(db, ADMIN));
    await provenRehearsal(kind, url, 98);
    await withDb(url, async (db) => {
      expect((await apply(db, plan)).outcome).toBe('ok');
      expect(await scalar(db, `select reconcile_flag || ' ' || tag as v from axis.reconcile_decision where collection = 'skills'`)).toBe('divergent PROD_T4#1');
      expect((await verify(db, plan)).tiers[0]!.status).toBe('Passed');
    });
    await provenRehearsal(kind, url, 99);
  });

  it('collections with a decision moved into folders (one into its own topic\'s, one into a label of another axis): their stale decisions released, the new flag decided, both rollbacks proven', async () => {
    target = await rolledOut(kind);
    const url = target.url;
    await withDb(url, async (db) => {
      expect(await scalar(db, `select string_agg(reconcile_flag, ',' order by collection) as v from axis.reconcile_decision where collection in ('articles_tags', 'pages_tags')`)).toBe('no_label_rule,no_label_rule');
      await db.exec(`update directus_collections set "group" = 'editorial' where collection = 'articles_tags'; update directus_collections set "group" = 'legacy' where collection = 'pages_tags'`);
      const d = await draft(db, plan);
      expect(d.suggestions.filter((s) => s.item.endsWith('_tags')).map((s) => [s.item, s.action])).toEqual([
        ['articles_tags', 'undecide'],
        ['pages_tags', 'undecide'],
        ['pages_tags', 'decide'],
      ]);
      await submit(db, plan, d.payload);
      await approveAs(db, ADMIN);
    });
    await provenRehearsal(kind, url, 98);
    await withDb(url, async (db) => {
      expect((await apply(db, plan)).outcome).toBe('ok');
      expect(await scalar(db, `select string_agg(collection || ' ' || reconcile_flag || ' ' || tag, ', ' order by collection) as v from axis.reconcile_decision where collection in ('articles_tags', 'pages_tags')`)).toBe(
        'pages_tags orthogonal_facet PROD_T4#1',
      );
      expect((await verify(db, plan)).tiers[0]!.status).toBe('Passed');
    });
    await provenRehearsal(kind, url, 99);
  });

  it('two collections that contain each other (a cycle): scan and propose say no anchor governs them and how to break it; the draft leaves them out', async () => {
    target = await rolledOut(kind);
    await withDb(target.url, async (db) => {
      await createCollection(db, 'kits', { folder: 'commerce', columns: [['id', 'serial primary key'], ['part', 'integer']] });
      await createCollection(db, 'kit_parts', { folder: 'commerce', columns: [['id', 'serial primary key'], ['kit', 'integer']], relations: [{ field: 'kit', one: 'kits', oneField: 'parts', deselect: 'delete' }] });
      await db.query(`insert into directus_relations (many_collection, many_field, one_collection, one_field, one_deselect_action) values ('kits', 'part', 'kit_parts', 'subkits', 'delete')`);
      // and a composition child of an anchor the rollout governs, which no amendment covers yet
      await createCollection(db, 'article_notes', { folder: 'editorial', columns: [['id', 'serial primary key'], ['article', 'uuid']], relations: [{ field: 'article', one: 'articles', oneField: 'notes', deselect: 'delete' }] });
      const found = await scan(db, plan);
      // each collection said once, as it is: critical as verify fails on it (the plan's critical and emittable)
      expect(found.findings.filter((f) => f.item.startsWith('kit')).map((f) => [f.kind, f.item])).toEqual([
        ['contained collection in a cycle', 'kit_parts'],
        ['contained collection in a cycle', 'kits'],
      ]);
      expect(found.findings.find((f) => f.item === 'article_notes')).toMatchObject({
        kind: 'contained collection not governed',
        severity: 'critical',
        detail: `contained collection article_notes (in articles) is not governed: its anchor articles is, but proposal OS-AXIS does not cover it yet; propose lists it under "contained" in an amendment (it takes its anchor's owner and topic)`,
      });
      expect(found.critical).toBe(3);
      expect(found.critical).toBe(found.metrics.critical! + found.metrics.emittable!);
      const d = await draft(db, plan);
      expect(d.suggestions.filter((s) => s.item.startsWith('kit')).map((s) => [s.item, s.action])).toEqual([
        ['kit_parts', 'fix'],
        ['kits', 'fix'],
      ]);
      expect(d.suggestions.find((s) => s.item === 'kits')?.reason).toMatch(/break the cycle in Directus/);
      expect((d.payload as { contained: { collection: string }[] }).contained.map((c) => c.collection)).not.toContain('kits');
    });
  });

  it('a dropped contained collection Directus has again: governed anew by the next amendment, whose rollback is proven', async () => {
    target = await rolledOut(kind);
    const url = target.url;
    await withDb(url, async (db) => {
      await db.exec(`delete from directus_relations where many_collection = 'legacy_order_lines'; delete from directus_fields where collection = 'legacy_order_lines';
        delete from directus_collections where collection = 'legacy_order_lines'; drop table legacy_order_lines`);
      await submit(db, plan, (await draft(db, plan)).payload);
      await approveAs(db, ADMIN);
      expect((await apply(db, plan)).outcome).toBe('ok');
      expect(await scalar(db, `select tag as v from axis.ownership where collection = 'legacy_order_lines'`)).toBe('RELEASED#1:PROD_T3');
      // created again, a child of legacy_orders as before
      await createCollection(db, 'legacy_order_lines', {
        folder: 'legacy',
        columns: [['id', 'serial primary key'], ['legacy_order', 'integer'], ['sku', 'varchar(255)']],
        relations: [{ field: 'legacy_order', one: 'legacy_orders', oneField: 'lines', deselect: 'delete' }],
      });
      const d = await draft(db, plan);
      expect(d.suggestions.map((s) => [s.item, s.action])).toEqual([['legacy_order_lines', 'contain']]);
      expect((d.payload as { contained: { collection: string; added_in: number }[] }).contained.filter((c) => c.collection === 'legacy_order_lines')).toEqual([{ collection: 'legacy_order_lines', added_in: 2 }]);
      await submit(db, plan, d.payload);
      await approveAs(db, ADMIN);
    });
    await provenRehearsal(kind, url, 98);
    await withDb(url, async (db) => {
      expect((await apply(db, plan)).outcome).toBe('ok');
      expect(await scalar(db, `select tag as v from axis.ownership where collection = 'legacy_order_lines'`)).toBe('PROD_T3#2');
      expect((await verify(db, plan)).tiers[0]!.status).toBe('Passed');
    });
  });

  it('a contained collection whose relation Directus removed is an anchor now: scan and propose name it, the amendment owns it as an anchor, and both rollbacks are proven', async () => {
    target = await rolledOut(kind);
    const url = target.url;
    await withDb(url, async (db) => {
      const owner = await scalar<string>(db, `select owner as v from axis.ownership where collection = 'legacy_order_lines'`);
      // as Directus deletes the many-to-one field (and the alias on the other side)
      await db.exec(`delete from directus_fields where collection = 'legacy_orders' and field = 'lines'; delete from directus_fields where collection = 'legacy_order_lines' and field = 'legacy_order';
        delete from directus_relations where many_collection = 'legacy_order_lines' and one_collection = 'legacy_orders'; alter table legacy_order_lines drop column legacy_order`);
      const found = await scan(db, plan);
      expect(found.findings.filter((f) => f.item === 'legacy_order_lines').map((f) => [f.kind, f.severity])).toEqual([['contained collection is an anchor now', 'critical']]);
      const d = await draft(db, plan);
      expect(d.suggestions.filter((s) => s.item === 'legacy_order_lines')).toMatchObject([{ action: 'own', owner, reason: expect.stringMatching(/no longer contained in legacy_orders/) }]);
      expect((d.payload as { anchors: { collection: string; owner: string; added_in?: number }[] }).anchors.find((a) => a.collection === 'legacy_order_lines')).toMatchObject({ owner, added_in: 1 });
      await submit(db, plan, d.payload);
      await approveAs(db, ADMIN);
    });
    await provenRehearsal(kind, url, 98);
    await withDb(url, async (db) => {
      const r = await appliedAsExpected(db);
      expect(await scalar(db, `select basis || ' ' || tag as v from axis.ownership where collection = 'legacy_order_lines'`)).toBe('anchor PROD_T2#1');
      expect(await scalar(db, `select count(*)::int as v from axis.containment_assignment where collection = 'legacy_order_lines'`)).toBe(0);
      await expectGoverned(db);
    });
    // nothing pending: tier 99 and the re-apply of the same payload proven
    await provenRehearsal(kind, url, 99);
  });

  it('a folder that is a topic\'s label deleted in Directus: scan warns, the amendment keeps the topic and decides the flags, both rollbacks proven; a new topic naming a missing folder is refused at submit', async () => {
    target = await rolledOut(kind);
    const url = target.url;
    await withDb(url, async (db) => {
      // as Directus deletes a folder: its collections moved to the root first, then the folder
      await db.exec(`update directus_collections set "group" = null where "group" = 'people'; delete from directus_collections where collection = 'people'`);
      const found = await scan(db, plan);
      expect(found.findings.filter((f) => f.kind === 'topic label folder gone').map((f) => [f.item, f.severity])).toEqual([['people', 'warning']]);
      const d = await draft(db, plan);
      expect(d.suggestions.filter((s) => s.action === 'decide').length).toBeGreaterThan(0);
      await submit(db, plan, d.payload);
      await approveAs(db, ADMIN);
    });
    await provenRehearsal(kind, url, 98);
    await withDb(url, async (db) => {
      expect((await apply(db, plan)).outcome).toBe('ok');
      expect((await verify(db, plan)).tiers[0]!.status).toBe('Passed');
    });
    await provenRehearsal(kind, url, 99);

    // a topic the payload brings, naming a folder Directus does not have: refused when it is submitted
    const file = join(mkdtempSync(join(tmpdir(), 'tiergate-payload-')), 'typo.json');
    await withDb(url, async (db) => {
      const p = (await db.query<{ payload: { topics: object[] } }>(`select payload from os_proposals where key = 'OS-AXIS'`)).rows[0]!.payload;
      p.topics.push({ key: 'archive', axis: 'kg-domain-x', label: 'Archive', directus_folder: 'archvie' });
      writeFileSync(file, JSON.stringify(p));
    });
    const typo = await runCli(['propose', '--target', url, '--submit', file, '--yes']);
    expect(typo.code, typo.stdout + typo.stderr).toBe(2);
    expect(typo.stderr).toMatch(/topic archive names folder archvie, which this Directus database does not have/);
    expect(typo.stderr).not.toMatch(/topic people names folder/);
  });

  it('a collection with a table that Directus uses as a group is a topic\'s label: submitted, rehearsed, applied; what is in it matches the topic, and propose labels by it', async () => {
    target = await rolledOut(kind);
    const url = target.url;
    await withDb(url, async (db) => {
      // Directus lets a collection with a table be the group of others (the Data Studio's "move to collection")
      await createCollection(db, 'catalog', { columns: [['id', 'serial primary key'], ['name', 'text']] });
      await createCollection(db, 'catalog_items', { folder: 'catalog', columns: [['id', 'serial primary key'], ['catalog', 'integer']], relations: [{ field: 'catalog', one: 'catalog' }] });
      const d = await draft(db, plan);
      const payload = d.payload as { amendment: number; topics: object[]; anchors: { collection: string; owner: string | null; topic: string | null }[] };
      const topic = { key: 'catalog', axis: 'kg-domain-x', label: 'Catalog', directus_folder: 'catalog' };
      payload.topics.push(topic);
      for (const a of payload.anchors) if (a.collection.startsWith('catalog')) Object.assign(a, { owner: 'team-commerce', topic: 'catalog' });
      // a topic the amendment brings is the amendment's: without its number tier 98 could not take it back
      await expect(submit(db, plan, payload)).rejects.toThrow(
        new RegExp(`topic catalog is new in amendment ${payload.amendment}, but has no "added_in": give it "added_in": ${payload.amendment} \\(tier 98`),
      );
      Object.assign(topic, { added_in: payload.amendment });
      await submit(db, plan, payload);
      await approveAs(db, ADMIN);
    });
    await provenRehearsal(kind, url, 98);
    await withDb(url, async (db) => {
      await appliedAsExpected(db);
      await expectGoverned(db);
      const flags = await db.query<{ collection: string; topic: string; reconcile_flag: string }>(
        `select collection, topic, reconcile_flag from axis.v_reconcile_collection_topic_vs_label where collection like 'catalog%' order by 1`,
      );
      // in the group catalog: the label of topic catalog; catalog itself is in no group
      expect(flags.rows).toEqual([
        { collection: 'catalog', topic: 'catalog', reconcile_flag: 'no_label_rule' },
        { collection: 'catalog_items', topic: 'catalog', reconcile_flag: 'match' },
      ]);
      // a collection put in the group later: propose takes its topic from the group's label
      await createCollection(db, 'catalog_notes', { folder: 'catalog', columns: [['id', 'serial primary key'], ['item', 'integer']], relations: [{ field: 'item', one: 'catalog_items' }] });
      const next = await draft(db, plan);
      expect(next.suggestions.find((s) => s.item === 'catalog_notes')).toMatchObject({ action: 'own', owner: 'team-commerce', topic: 'catalog', reason: expect.stringMatching(/its folder catalog is the label of topic catalog/) });
      await submit(db, plan, next.payload);
    });
  });

  it('after the full rollback a draft amends the payload without asking the first rollout\'s topics and axes for an "added_in" (they come back as the first rollout\'s)', async () => {
    target = await rolledOut(kind);
    await withDb(target.url, async (db) => {
      expect((await rollback(db, plan)).outcome).toBe('ok');
      // its views back (tier 6, no approval needed): scan and propose read them
      expect((await apply(db, plan, { structureOnly: true })).tiers.filter((t) => t.status === 'Applied').map((t) => t.id)).toEqual([6]);
      await createCollection(db, 'reviews', { folder: 'editorial', columns: [['id', 'serial primary key'], ['article', 'uuid']], relations: [{ field: 'article', one: 'articles' }] });
      const d = await draft(db, plan);
      expect(d.suggestions.map((x) => [x.item, x.action])).toContainEqual(['reviews', 'own']);
      await submit(db, plan, d.payload);
    });
  });

  it('after rollback --amendment the full rollback still reverts the rollout; a rehearsal proves the amendment rollback, and after the full rollback the full one', async () => {
    target = await rolledOut(kind);
    const url = target.url;
    let db = await openDb(url);
    try {
      await db.exec(`delete from directus_relations where many_collection = 'legacy_pages' or one_collection = 'legacy_pages';
        delete from directus_fields where collection = 'legacy_pages'; delete from directus_collections where collection = 'legacy_pages'; drop table legacy_pages`);
      await submit(db, plan, (await draft(db, plan)).payload);
      await approveAs(db, ADMIN);
      expect((await apply(db, plan)).outcome).toBe('ok');
      expect((await rollback(db, plan, { scope: 'subject' })).outcome).toBe('ok');
    } finally {
      await db.close();
    }

    // the amendment is pending again: a rehearsal applies it and proves its own rollback (98), not the full one
    const evidence = await rehearseSource(kind, url);
    expect(evidence.verdict.rehearsal, JSON.stringify(evidence.verdict)).toBe('PASS');
    expect(evidence.rollback).toMatchObject({ tier: 98, reverted: [4, 3, 2], matchesKeptTiers: true, reapplyMatches: true });

    db = await openDb(url);
    try {
      // tiers 3 and 4 are reverted for the amendment only: what the rollout wrote is there, and the full rollback takes it
      expect(Number(await scalar(db, `select count(*) as v from axis.collection_topic where tag = 'PROD_T3'`))).toBeGreaterThan(0);
      const full = await rollback(db, plan);
      expect(full.outcome).toBe('ok');
      expect(full.tiers.filter((t) => t.status === 'Reverted').map((t) => t.id)).toEqual([6, 4, 3]);
      expect(Number(await scalar(db, `select count(*) as v from axis.collection_topic`))).toBe(0);
      const st = await status(db, plan);
      // reverted by the full rollback: no note of an amendment; tier 2 (kept) still reverted for the amendment only
      for (const id of [3, 4]) expect(st.tiers.find((t) => t.id === id)).toMatchObject({ state: 'reverted', note: null });
      expect(st.tiers.find((t) => t.id === 2)!.note).toMatch(/the amendment for subject [0-9a-f]{12} reverted; what it wrote for subject [0-9a-f]{12} stays/);
      // once is enough: the full rollback again is refused
      await expect(rollback(db, plan)).rejects.toThrow(/tiers 6, 4, 3 are not applied/);
    } finally {
      await db.close();
    }
    // a rehearsal of that state applies the rollout's tiers 3 and 4 from nothing (and tier 2's amendment): it proves the
    // full rollback, the one that takes them back; bound to it, apply brings everything back for the current payload
    const again = await rehearseSource(kind, url);
    expect(again.verdict.failures).toEqual([]);
    expect(again.rollback).toMatchObject({ tier: 99, reverted: [6, 4, 3], matchesKeptTiers: true, reapplyMatches: true });
    expect((await applyBound(url, again)).outcome).toBe('ok');
    await withDb(url, async (db2) => expect((await verify(db2, plan)).tiers[0]!.status).toBe('Passed'));
  });
});

describe.each(testTargets())('a first payload that misses an anchor (%s)', (kind) => {
  it('after --structure-only, propose revises the payload itself (no amendment: nothing is applied to amend), and the rollout applies it as the first', { timeout: 300_000 }, async () => {
    target = await freshDatabase(kind, 'directus', { exactName: true });
    const url = target.url;
    await withDb(url, async (db) => {
      await writeSample(db, {});
      // the payload leaves out one anchor Directus has
      await db.exec(`update os_proposals set payload = jsonb_set(payload, '{anchors}', (select coalesce(jsonb_agg(a), '[]') from jsonb_array_elements(payload -> 'anchors') a where a ->> 'collection' <> 'authors'))
                      where key = 'OS-AXIS';
                     update os_proposals set payload_sha256 = encode(sha256(convert_to(payload::text, 'UTF8')), 'hex') where key = 'OS-AXIS'`);
      expect((await apply(db, plan, { structureOnly: true })).outcome).not.toBe('failed');
      const found = await scan(db, plan);
      expect(found.findings.find((f) => f.item === 'authors')).toMatchObject({ kind: 'new collection without owner', severity: 'critical' });
      // a contained collection of an anchor the payload names: its data tiers govern it, it needs no entry
      const contained = found.findings.filter((f) => f.kind === 'contained collection not governed');
      expect(contained.length).toBeGreaterThan(0);
      for (const f of contained.filter((x) => !x.detail.includes('(in authors)'))) expect(f.detail).toMatch(/^contained collection \S+ \(in \S+\) is not governed yet: its anchor \S+ is named by proposal OS-AXIS, and tier 3 gives it that anchor's owner and topic once the proposal's data tiers are applied \(approve, rehearse, apply\); it needs no entry of its own$/);
      const d = await draft(db, plan);
      const payload = d.payload as { amendment?: number; amends?: string; anchors: { collection: string; owner: string; added_in?: number }[]; contained: unknown[]; decide: unknown[] };
      // a revision of the first payload: no amendment number, no added_in, no contained or decide entries (tiers 3 and 4 of a first rollout do them all)
      expect(payload.amendment).toBeUndefined();
      expect(payload.amends).toBeUndefined();
      expect(payload.anchors.find((a) => a.collection === 'authors')).toEqual({ collection: 'authors', owner: expect.any(String), topic: expect.any(String) });
      expect(payload.anchors.some((a) => a.added_in !== undefined)).toBe(false);
      expect(payload.contained).toEqual([]);
      expect(payload.decide).toEqual([]);
      expect(d.suggestions.map((s) => [s.item, s.action])).toEqual([['authors', 'own']]);
      await submit(db, plan, d.payload);
      await approveAs(db, ADMIN);
    });
    const evidence = await rehearseSource(kind, url);
    expect(evidence.verdict.failures).toEqual([]);
    // the full rollback is proven: this is the rollout itself, not an amendment of it
    expect(evidence.rollback).toMatchObject({ tier: 99, matchesKeptTiers: true, reapplyMatches: true });
    expect((await applyBound(url, evidence)).outcome).toBe('ok');
    await withDb(url, async (db) => {
      expect((await verify(db, plan)).outcome).toBe('ok');
      // the first rollout's own tags: nothing tagged as an amendment
      expect(await scalar(db, `select count(*)::int as v from axis.ownership where tag ~ '#'`)).toBe(0);
      expect(await scalar(db, `select count(*)::int as v from axis.ownership where collection = 'authors' and tag = 'PROD_T2'`)).toBe(1);
    });
  });
  it("the README's first payload, one anchor of thirty: propose drafts the other 29 at once, following relations between new collections to an owner", async () => {
    target = await freshDatabase(kind, 'directus', { exactName: true });
    await withDb(target.url, async (db) => {
      await writeSample(db, {});
      await db.exec(`update os_proposals set payload = jsonb_set(payload, '{anchors}', (select jsonb_agg(a) from jsonb_array_elements(payload -> 'anchors') a where a ->> 'collection' = 'articles'))
                      where key = 'OS-AXIS';
                     update os_proposals set payload_sha256 = encode(sha256(convert_to(payload::text, 'UTF8')), 'hex') where key = 'OS-AXIS'`);
      expect((await apply(db, plan, { structureOnly: true })).outcome).not.toBe('failed');
      // every path between the new collections followed (the draft before 2026-12-07) ran until statement_timeout (5 min)
      const d = await draft(db, plan);
      const own = d.suggestions.filter((s) => s.action === 'own');
      expect(own).toHaveLength(29);
      // ten owned only through a chain of new collections, each by its nearest link
      const chained = Object.fromEntries(own.filter((s) => /relates it to/.test(s.reason)).map((s) => [s.item, s]));
      expect(Object.keys(chained)).toHaveLength(10);
      expect(chained.suppliers).toMatchObject({
        owner: 'team-editorial',
        reason: expect.stringMatching(/^purchase_orders\.supplier relates it to purchase_orders, which this draft gives owner team-editorial; /),
      });
      // and those no relation or folder reaches are left for the author to choose
      expect(own.filter((s) => s.owner === null).map((s) => s.item).sort()).toEqual(
        ['departments', 'discounts', 'employees', 'incidents', 'job_openings', 'legacy_customers', 'legacy_orders', 'legacy_pages', 'site_settings', 'skills', 'teams'],
      );
    });
  });

  it('scan and propose before the structure is applied: exit 2, saying to apply it with --structure-only (no approval needed)', async () => {
    target = await freshDatabase(kind, 'directus', { exactName: true });
    await withDb(target.url, (db) => writeSample(db, {}));
    for (const command of ['scan', 'propose']) {
      const r = await runCli([command, '--target', target.url]);
      expect(r.code, r.stdout + r.stderr).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`is not applied on .*: apply its structure first \\(tiergate apply --target URL --structure-only: no approval needed\\), then ${command}`));
    }
  });

  it('a collection in the folder of another topic (an anchor, and a child moved there): propose, before any data tier, says to move it or keep it under "decide"; kept, the rollout passes', { timeout: 300_000 }, async () => {
    target = await freshDatabase(kind, 'directus', { exactName: true });
    const url = target.url;
    const { collection, topic } = VARIANT_TARGETS.divergent;
    let child = '';
    await withDb(url, async (db) => {
      await writeSample(db, { variant: 'divergent' });
      expect((await apply(db, plan, { structureOnly: true })).outcome).not.toBe('failed');
      // a composition child of a commerce anchor, moved into the editorial folder (the label of another topic on the axis)
      child = await scalar<string>(db, `select collection as v from axis.v_governed_collection where role = 'contained' and folder = 'commerce' order by collection limit 1`);
      const anchor = await scalar<string>(db, `select anchor as v from axis.v_governed_collection where collection = '${child}'`);
      await db.exec(`update directus_collections set "group" = 'editorial' where collection = '${child}'`);
      const d = await draft(db, plan);
      const moves = Object.fromEntries(d.suggestions.filter((x) => x.action === 'move').map((x) => [x.item, x.reason]));
      expect(moves[collection]).toMatch(new RegExp(`^in folder editorial, the label of topic editorial on the axis of topic ${topic}, which it takes \\(the payload's\\): move it, or keep its topic by adding \\{"collection": "${collection}", "topic": "${topic}"\\} under "decide" in this payload`));
      expect(moves[child]).toMatch(new RegExp(`which it takes \\(its anchor ${anchor}'s\\): move it, or keep its topic by adding \\{"collection": "${child}", "topic": "commerce"\\} under "decide"`));
      // submitted as drafted, both would fail tier 4: refused, naming each and what to add
      await expect(submit(db, plan, d.payload)).rejects.toThrow(new RegExp(`${child} is in folder editorial, the label of topic editorial on the axis of topic commerce, which it would take \\(its anchor ${anchor}'s\\): tier 4 would fail`));
      // the person decides to keep both: the payload lists them, submitted and approved
      const payload = d.payload as { decide: unknown[] };
      payload.decide = [{ collection, topic }, { collection: child, topic: 'commerce' }];
      await submit(db, plan, payload);
      expect((await draft(db, plan)).suggestions.filter((x) => x.action === 'move')).toEqual([]);
      await approveAs(db, ADMIN);
    });
    const evidence = await rehearseSource(kind, url);
    expect(evidence.verdict.failures).toEqual([]);
    expect(evidence.rollback).toMatchObject({ tier: 99, matchesKeptTiers: true, reapplyMatches: true });
  });
});

describe.runIf(testTargets().includes('postgres'))('the payload replaced while an apply runs (postgres)', () => {
  it('the next gated tier finds the new subject under its lock and stops the run: nothing applied for a payload the run did not start with, exit 1', async () => {
    target = await freshDatabase('postgres', 'directus', { exactName: true });
    const url = target.url;
    await withDb(url, async (db) => {
      await writeSample(db, {});
      await approveAs(db, ADMIN);
    });
    const before = await withDb(url, (db) => scalar<string>(db, `select payload_sha256 as v from os_proposals where key = 'OS-AXIS'`));
    // held once tier 2 committed: another session submits a new payload and an approval of it (as Directus would record both)
    const run = startCli(['apply', '--yes', '--target', url], { env: { TIERGATE_TEST_HOOK: 'tier-committed:2' } });
    try {
      await run.waitFor(/tiergate-test-hook tier-committed:2/);
      await withDb(url, async (db) => {
        await db.exec(`update os_proposals set payload = jsonb_set(payload, '{note}', '"amended mid-run"') where key = 'OS-AXIS';
                       update os_proposals set payload_sha256 = encode(sha256(convert_to(payload::text, 'UTF8')), 'hex') where key = 'OS-AXIS'`);
        await approveAs(db, ADMIN);
      });
    } finally {
      run.kill('SIGUSR2');
    }
    const r = await run.done;
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toMatch(new RegExp(`the gate's subject changed during this run \\(${before.slice(0, 12)} → [0-9a-f]{12}\\)`));
    expect(r.stdout).not.toMatch(/apply: OK/);
    await withDb(url, async (db) => {
      // tier 2 for the payload the run began with, and nothing after it
      const rows = await db.query<{ tier_id: number; subject: string | null }>(`select tier_id, subject from tiergate.ledger where kind = 'data' and status = 'applied' order by id`);
      expect(rows.rows.filter((x) => [2, 3, 4].includes(x.tier_id))).toEqual([{ tier_id: 2, subject: before }]);
    });
  });
});

/** A new PostgreSQL database 'directus' (the test's target) with the sample and the plan's structure tiers applied: its URL. */
async function structureOnlySample(): Promise<string> {
  target = await freshDatabase('postgres', 'directus', { exactName: true });
  await withDb(target.url, (db) => writeSample(db, {}));
  const structure = await runCli(['apply', '--yes', '--structure-only', '--target', target.url]);
  expect(structure.code, structure.stdout + structure.stderr).toBe(0);
  return target.url;
}

describe.runIf(testTargets().includes('postgres'))('a database nothing can be written on (postgres)', () => {
  it('approve and scan say so before they write (exit 2, nothing recorded), as apply does', async () => {
    const url = await structureOnlySample();
    const counts = () =>
      withDb(url, async (db) => [Number(await scalar(db, 'select count(*) as v from os_proposal_approvals')), Number(await scalar(db, 'select count(*) as v from axis.scan_run'))]);
    const before = await counts();
    await withDb(url, (db) => db.exec(`alter database "${target!.database}" set default_transaction_read_only = on`));
    try {
      const approved = await runCli(['approve', '--yes', '--target', url, '--as', ADMIN]);
      expect(approved.code, approved.stdout + approved.stderr).toBe(2);
      expect(approved.stderr).toMatch(/cannot approve on .*: its sessions are read-only \(default_transaction_read_only = on, .*\): point --target at a writable database.*; nothing was recorded/);
      const scanned = await runCli(['scan', '--target', url]);
      expect(scanned.code, scanned.stdout + scanned.stderr).toBe(2);
      expect(scanned.stderr).toMatch(/cannot scan .*: the plan's scanner records its run there, and its sessions are read-only .*; nothing was changed/);
    } finally {
      await withDb(url, async (db) => {
        await db.exec('set default_transaction_read_only = off');
        await db.exec(`alter database "${target!.database}" reset default_transaction_read_only`);
      });
    }
    expect(await counts()).toEqual(before);
    // a reader (pg_read_all_data) may read everything the scanner reads, not write its run: which GRANT, exit 2
    const reader = `tg_reader_${Math.random().toString(36).slice(2, 8)}`;
    await withDb(url, (db) => db.exec(`create role ${reader} login in role pg_read_all_data`));
    try {
      const { editPostgresUrl } = await import('../src/db/pg-url.js');
      const scanned = await runCli(['scan', '--target', editPostgresUrl(url, (u) => void (u.username = reader))]);
      expect(scanned.code, scanned.stdout + scanned.stderr).toBe(2);
      // every table the scanner's body writes, at once (a user once learnt them one a run)
      const message = new RegExp(
        `cannot scan on .*: user ${reader} lacks privileges it needs: the plan's scanner \\(amend\\.scan in tiergate\\.yaml, and the functions it calls\\) needs .*axis\\.scan_run.*axis\\.drift_state.*; nothing was changed — (GRANT .*)$`,
        'm',
      );
      expect(scanned.stderr).toMatch(message);
      expect(await counts()).toEqual(before);
      // granted exactly what it says, the reader scans (exit 1: this target has the substrate alone, its anchors have no owner yet)
      const grants = message.exec(scanned.stderr)![1]!;
      await withDb(url, (db) => db.exec(grants));
      const granted = await runCli(['scan', '--target', editPostgresUrl(url, (u) => void (u.username = reader))]);
      expect(granted.code, granted.stdout + granted.stderr).toBe(1);
      expect(granted.stdout).toMatch(/^scan axis-governance on .*: \d+ critical/m);
      // (its run recorded)
      before[1]! += 1;
      // a steward who reads Directus and the substrate, not tiergate's ledger: propose (the draft reads the ledger) names the GRANT, exit 2
      await withDb(url, (db) => db.exec(`create role ${reader}_s login; grant usage on schema public, axis to ${reader}_s; grant select on all tables in schema public, axis to ${reader}_s`));
      const drafted = await runCli(['propose', '--target', editPostgresUrl(url, (u) => void (u.username = `${reader}_s`))]);
      expect(drafted.code, drafted.stdout + drafted.stderr).toBe(2);
      // (every GRANT at once: the ledger, and the audit schema the findings read)
      expect(drafted.stderr).toMatch(
        new RegExp(`cannot draft the amendment on .*: user ${reader}_s lacks privileges it needs: tiergate's ledger needs USAGE on schema tiergate; .*nothing was changed — GRANT USAGE ON SCHEMA tiergate, axis_audit TO ${reader}_s; GRANT SELECT ON tiergate.ledger, tiergate.attempt TO ${reader}_s`),
      );
    } finally {
      for (const role of [reader, `${reader}_s`]) await withDb(url, (db) => db.exec(`drop owned by ${role}; drop role ${role}`)).catch(() => undefined);
    }
    expect(await counts()).toEqual(before);
  });
});

describe.runIf(testTargets().includes('postgres'))('a role granted nothing (postgres)', () => {
  /** A new role with CONNECT and tiergate's ledger (which every command reads), nothing of Directus's or the substrate's; its URL. */
  async function bareRole(url: string): Promise<{ role: string; asRole: string }> {
    const role = `tg_bare_${Math.random().toString(36).slice(2, 8)}`;
    await withDb(url, (db) =>
      db.exec(`create role ${role} login; grant usage on schema tiergate to ${role}; grant select, insert on all tables in schema tiergate to ${role}; grant usage on all sequences in schema tiergate to ${role}`),
    );
    const { editPostgresUrl } = await import('../src/db/pg-url.js');
    return { role, asRole: editPostgresUrl(url, (u) => void (u.username = role)) };
  }

  it('approve and scan name, at once, every GRANT they need — reads too, USAGE on the plan\'s schemas — and no more; granted exactly those, each works', async () => {
    const url = await structureOnlySample();
    const { role, asRole } = await bareRole(url);
    const grantsOf = (stderr: string) => /nothing was changed — (GRANT .*)$/m.exec(stderr)?.[1] ?? '';
    try {
      const approved = await runCli(['approve', '--yes', '--target', asRole, '--as', ADMIN]);
      expect(approved.code, approved.stdout + approved.stderr).toBe(2);
      expect(approved.stderr).toMatch(new RegExp(`cannot approve on .*: user ${role} lacks privileges it needs: the plan's approval \\(gate\\.approve\\.sql in tiergate\\.yaml\\) needs `));
      const approveGrants = grantsOf(approved.stderr);
      // what approve reads (the proposal, the approvers, their roles, access and policies), what it writes (the approval, its id): SELECT on what it only reads
      for (const read of ['os_proposals', 'directus_users', 'directus_roles', 'directus_access', 'directus_policies']) {
        expect(approveGrants).toMatch(new RegExp(`GRANT SELECT ON [^;]*\\b${read}\\b[^;]* TO ${role}`));
        expect(approveGrants).not.toMatch(new RegExp(`GRANT [^;]*(INSERT|UPDATE)[^;]* ON [^;]*\\b${read}\\b`));
      }
      expect(approveGrants).toMatch(new RegExp(`GRANT SELECT, INSERT ON os_proposal_approvals TO ${role}`));
      expect(approveGrants).toMatch(new RegExp(`GRANT USAGE ON SEQUENCE os_proposal_approvals_id_seq TO ${role}`));
      await withDb(url, (db) => db.exec(approveGrants));
      const again = await runCli(['approve', '--yes', '--target', asRole, '--as', ADMIN]);
      expect(again.code, again.stdout + again.stderr).toBe(0);
      expect(again.stdout).toMatch(/gate ospa = 1 \(needs ≥ 1\): OPEN/);

      const scanned = await runCli(['scan', '--target', asRole]);
      expect(scanned.code, scanned.stdout + scanned.stderr).toBe(2);
      const scanGrants = grantsOf(scanned.stderr);
      // the substrate's schema first (nothing in it is usable without it), then what the scanner, the findings, the metrics and the gate read and write
      expect(scanGrants).toMatch(new RegExp(`^GRANT USAGE ON SCHEMA axis, axis_audit TO ${role}; `));
      expect(scanGrants).toMatch(/GRANT SELECT ON [^;]*axis\.v_governance_finding/);
      expect(scanGrants).toMatch(/GRANT SELECT, INSERT, UPDATE ON [^;]*axis\.drift_state/);
      expect(scanGrants).toMatch(/GRANT SELECT, INSERT ON [^;]*axis\.scan_run/);
      // not a write on what only gated tiers write, nor on the proposal
      expect(scanGrants).not.toMatch(/(INSERT|UPDATE|DELETE)[^;]* ON [^;]*(axis\.ownership|axis\.collection_topic|axis\.reconcile_decision|os_proposals\b)/);
      expect(scanGrants).not.toMatch(/ALL TABLES/);
      await withDb(url, (db) => db.exec(scanGrants));
      const granted = await runCli(['scan', '--target', asRole]);
      // (exit 1: the substrate alone, its anchors have no owner yet)
      expect(granted.code, granted.stdout + granted.stderr).toBe(1);
      expect(granted.stdout).toMatch(/^scan axis-governance on .*: \d+ critical/m);
    } finally {
      await withDb(url, (db) => db.exec(`drop owned by ${role} cascade; drop role if exists ${role}`)).catch(() => undefined);
    }
  });

  it('status, verify and propose name, at once, every GRANT they need to read (no write); granted exactly those, each works', async () => {
    const url = await structureOnlySample();
    const grantsOf = (stderr: string) => /nothing was changed — (GRANT .*)$/m.exec(stderr)?.[1] ?? '';
    for (const [command, action, runs] of [
      ['status', 'read the status', 0],
      ['verify', 'verify', 1], // (the substrate alone: its anchors have no owner yet)
      ['propose', 'draft the amendment', 0],
    ] as const) {
      // a role of its own for each command
      const { role, asRole } = await bareRole(url);
      try {
        const refused = await runCli([command, '--target', asRole]);
        expect(refused.code, refused.stdout + refused.stderr).toBe(2);
        expect(refused.stderr).toMatch(new RegExp(`cannot ${action} on .*: user ${role} lacks privileges it needs: `));
        const grants = grantsOf(refused.stderr);
        // the gate's proposal and approvers, and (status, verify) the substrate's schema, in the one message
        for (const read of ['os_proposals', 'os_proposal_approvals', 'directus_users']) expect(grants, command).toMatch(new RegExp(`GRANT SELECT ON [^;]*\\b${read}\\b[^;]* TO ${role}`));
        if (command !== 'propose') expect(grants, command).toMatch(/GRANT USAGE ON SCHEMA axis\b/);
        // reading only
        expect(grants, command).not.toMatch(/INSERT|UPDATE|DELETE|TRUNCATE/);
        await withDb(url, (db) => db.exec(grants));
        const granted = await runCli([command, '--target', asRole]);
        expect(granted.code, `${command}: ${granted.stdout}${granted.stderr}`).toBe(runs);
        expect(granted.stderr, command).not.toMatch(/permission denied|lacks privileges/);
      } finally {
        await withDb(url, (db) => db.exec(`drop owned by ${role} cascade; drop role if exists ${role}`)).catch(() => undefined);
      }
    }
  });

  it("Directus in a schema of its own (the database's search_path) that the role may not use: approve names USAGE on it and its tables, not a missing relation; granted, it approves", async () => {
    target = await freshDatabase('postgres', 'directus', { exactName: true });
    const url = target.url;
    await withDb(url, (db) => db.exec('create schema cms; alter database directus set search_path = cms'));
    expect((await runCli(['sample', '--url', url], { timeoutMs: 300_000 })).code).toBe(0);
    const structure = await runCli(['apply', '--yes', '--structure-only', '--target', url]);
    expect(structure.code, structure.stdout + structure.stderr).toBe(0);
    const { role, asRole } = await bareRole(url);
    try {
      const refused = await runCli(['approve', '--yes', '--target', asRole, '--as', ADMIN]);
      expect(refused.code, refused.stdout + refused.stderr).toBe(2);
      expect(refused.stderr).not.toMatch(/does not exist/);
      const grants = /nothing was changed — (GRANT .*)$/m.exec(refused.stderr)?.[1] ?? '';
      expect(grants).toMatch(new RegExp(`^GRANT USAGE ON SCHEMA cms TO ${role}; `));
      expect(grants).toMatch(new RegExp(`GRANT SELECT, INSERT ON cms\\.os_proposal_approvals TO ${role}`));
      expect(grants).toMatch(/GRANT SELECT ON [^;]*cms\.directus_users/);
      await withDb(url, (db) => db.exec(grants));
      const approved = await runCli(['approve', '--yes', '--target', asRole, '--as', ADMIN]);
      expect(approved.code, approved.stdout + approved.stderr).toBe(0);
    } finally {
      await withDb(url, (db) => db.exec(`drop owned by ${role} cascade; drop role if exists ${role}`)).catch(() => undefined);
    }
  });
});

describe.runIf(testTargets().includes('postgres'))('a deploying user that owns none of Directus (postgres)', () => {
  it('apply refuses before any tier naming the privileges the tiers need and the GRANTs (exit 2), the dry run says so; granted, it applies', async () => {
    target = await freshDatabase('postgres', 'directus', { exactName: true });
    const url = target.url;
    const deployer = `tg_deploy_${Math.random().toString(36).slice(2, 8)}`;
    await withDb(url, async (db) => {
      await writeSample(db, {});
      await approveAs(db, ADMIN);
      // CREATE on the database and reading Directus: what a read-only operator would think enough
      await db.exec(`create role ${deployer} login; grant create on database directus to ${deployer}; grant usage on schema public to ${deployer};
                     grant select on all tables in schema public to ${deployer}`);
    });
    const { editPostgresUrl } = await import('../src/db/pg-url.js');
    const asDeployer = editPostgresUrl(url, (u) => void (u.username = deployer));
    try {
      const refused = await runCli(['apply', '--yes', '--target', asDeployer]);
      expect(refused.code, refused.stdout + refused.stderr).toBe(2);
      expect(refused.stderr).toMatch(new RegExp(`cannot apply on .*: user ${deployer} lacks what the tiers need: tier 7 'Approval rules' needs [^;]*TRIGGER[^;]* on os_proposal_approvals.*tier 8 .* needs INSERT on directus_\\w+.*; no structure or data tier was run — GRANT .*TRIGGER.* ON os_proposal_approvals TO ${deployer}`));
      // the gate's lock (FOR SHARE on the proposal, its approvals and the approvers' access) in the same message: one round of GRANTs, not five
      expect(refused.stderr).toMatch(/the gate's lock \(gate\.lock in tiergate\.yaml, taken by each gated tier\) needs UPDATE on os_proposals, os_proposal_approvals, directus_users, directus_access, directus_policies/);
      // and the sequences tier 8's INSERTs draw their ids from
      expect(refused.stderr).toMatch(/tier 8 [^;]*; USAGE on sequences? [^;]*directus_fields_id_seq/);
      expect(refused.stderr).toMatch(/GRANT USAGE ON SEQUENCE [^;]*directus_fields_id_seq/);
      const ledger = await withDb(url, (db) => scalar<string | null>(db, `select to_regclass('tiergate.ledger')::text as v`));
      if (ledger) expect(Number(await withDb(url, (db) => scalar(db, 'select count(*) as v from tiergate.ledger')))).toBe(0);
      const dry = await runCli(['apply', '--dry-run', '--target', asDeployer]);
      expect(dry.code, dry.stdout + dry.stderr).toBe(1);
      expect(dry.stdout).toMatch(/privileges — apply would stop before any tier: tier 7 'Approval rules' needs .*TRIGGER/);
      // granted as the message says: the rollout applies
      const grants = /no structure or data tier was run — (.*) \(or apply as a user who has them\)/.exec(refused.stderr)![1]!;
      await withDb(url, (db) => db.exec(grants.replace(/; /g, ';\n')));
      const applied = await runCli(['apply', '--yes', '--target', asDeployer], { timeoutMs: 300_000 });
      expect(applied.code, applied.stdout + applied.stderr).toBe(0);
      // approve by a user who may insert an approval but not draw its id: the sequence's GRANT (USAGE), exit 2, before anything is sent
      await withDb(url, (db) => db.exec(`grant insert on os_proposal_approvals to ${deployer}; revoke usage on sequence os_proposal_approvals_id_seq from ${deployer}`));
      const approved = await runCli(['approve', '--yes', '--target', asDeployer, '--as', 'elif.demir@northwind.example']);
      expect(approved.code, approved.stdout + approved.stderr).toBe(2);
      expect(approved.stderr).toMatch(
        new RegExp(
          `cannot approve on .*: user ${deployer} lacks privileges it needs: the plan's approval \\(gate\\.approve\\.sql in tiergate\\.yaml\\) needs USAGE on sequence os_proposal_approvals_id_seq; nothing was changed — GRANT USAGE ON SEQUENCE os_proposal_approvals_id_seq TO ${deployer}$`,
          'm',
        ),
      );
    } finally {
      await withDb(url, (db) => db.exec(`drop owned by ${deployer} cascade; drop role if exists ${deployer}`)).catch(() => undefined);
    }
  });
});

describe.each(testTargets())('amendments in a row (%s)', (kind) => {
  // four rehearsals, four applies, two rollbacks: minutes on a busy machine
  it('three amendments, each rehearsed and applied; then the full rollback and a re-apply give the fingerprint the rehearsal proves; rollback --amendment takes only the last', { timeout: 300_000 }, async () => {
    target = await rolledOut(kind);
    const url = target.url;
    for (const n of [1, 2, 3]) {
      await withDb(url, async (db) => {
        await createCollection(db, `reviews_${n}`, { folder: 'editorial', columns: [['id', 'serial primary key'], ['article', 'uuid']], relations: [{ field: 'article', one: 'articles' }] });
        // amendment 2 also brings a junction between two anchors of the first rollout
        if (n === 2) {
          await createCollection(db, 'articles_authors', {
            hidden: true,
            columns: [['id', 'serial primary key'], ['articles_id', 'uuid'], ['authors_id', 'uuid']],
            relations: [
              { field: 'articles_id', one: 'articles', oneField: 'coauthors', junction: 'authors_id' },
              { field: 'authors_id', one: 'authors', junction: 'articles_id' },
            ],
          });
        }
        const d = await draft(db, plan);
        expect((d.payload as { amendment: number }).amendment).toBe(n);
        await submit(db, plan, d.payload);
        await approveAs(db, ADMIN);
      });
      const evidence = await rehearseSource(kind, url);
      expect(evidence.verdict.failures, `amendment ${n}`).toEqual([]);
      expect(evidence.rollback).toMatchObject({ tier: 98, matchesKeptTiers: true, reapplyMatches: true });
      const applied = await applyBound(url, evidence);
      expect(applied.outcome, `amendment ${n}`).toBe('ok');
    }
    const tags = (db: Db) => db.query<{ tag: string; n: number }>(`select tag, count(*)::int as n from axis.ownership group by tag order by tag`).then((r) => r.rows);
    const before = await withDb(url, tags);
    expect(before).toEqual([
      { tag: 'PROD_T2', n: 30 },
      { tag: 'PROD_T2#1', n: 1 },
      { tag: 'PROD_T2#2', n: 1 },
      { tag: 'PROD_T2#3', n: 1 },
      { tag: 'PROD_T3', n: 35 },
      { tag: 'PROD_T3#2', n: 1 },
    ]);

    // a rehearsal with nothing pending proves the full rollback: re-applying after it reproduces this state
    const evidence = await rehearseSource(kind, url);
    expect(evidence.verdict.failures).toEqual([]);
    expect(evidence.rollback).toMatchObject({ tier: 99, reverted: [6, 4, 3], matchesKeptTiers: true, reapplyMatches: true });

    const db = await openDb(url);
    try {
      const fp = await fingerprintClone(db);
      expect((await rollback(db, plan)).outcome).toBe('ok');
      expect(await scalar(db, `select count(*)::int as v from axis.ownership where basis = 'containment'`)).toBe(0);
      expect((await apply(db, plan)).outcome).toBe('ok');
      expect(diffFingerprints(fp, await fingerprintClone(db))).toEqual({ objects: [], tables: [] });
      expect(await tags(db)).toEqual(before);
      // the last amendment alone: reviews_3 loses its owner, 1 and 2 and the junction keep theirs
      expect((await rollback(db, plan, { scope: 'subject' })).outcome).toBe('ok');
      expect((await db.query<{ collection: string }>(`select collection from axis.ownership where tag ~ '#' order by 1`)).rows.map((r) => r.collection)).toEqual(['articles_authors', 'reviews_1', 'reviews_2']);
    } finally {
      await db.close();
    }
  });
});

describe.each(testTargets())('governance after the rollout of a database made by a real Directus 11 (%s)', (kind) => {
  it('a new collection and a junction: scanned, proposed from its relation, rehearsed, applied, and rolled back alone', async () => {
    target = await realDirectus(kind);
    const url = target.url;
    const approver = expected.emails.approver!;
    const booksOwner = await withDb(url, async (db) => {
      await approveAs(db, approver);
      expect((await apply(db, plan)).outcome).toBe('ok');
      await createCollection(db, 'book_awards', {
        folder: 'publishing',
        columns: [['id', 'serial primary key'], ['book', 'integer'], ['title', 'varchar(255)']],
        relations: [{ field: 'book', one: 'books' }],
      });
      await createCollection(db, 'book_awards_writers', {
        hidden: true,
        columns: [['id', 'serial primary key'], ['book_awards_id', 'integer'], ['writers_id', 'integer']],
        relations: [
          { field: 'book_awards_id', one: 'book_awards', oneField: 'jury', junction: 'writers_id' },
          { field: 'writers_id', one: 'writers', junction: 'book_awards_id' },
        ],
      });
      const found = await scan(db, plan);
      expect(found.findings.map((f) => `${f.kind}: ${f.item}`).sort()).toEqual(['contained collection not governed: book_awards_writers', 'new collection without owner: book_awards']);
      const owner = await scalar<string>(db, `select owner as v from axis.ownership where collection = 'books'`);
      const d = await draft(db, plan);
      expect(d.suggestions.find((x) => x.item === 'book_awards')).toMatchObject({ action: 'own', owner, reason: expect.stringMatching(/its field book is a many-to-one to books, owned by/) });
      await submit(db, plan, d.payload);
      await approveAs(db, approver);
      return owner;
    });
    const evidence = await provenRehearsal(kind, url, 98);
    expect((await applyBound(url, evidence)).outcome).toBe('ok');
    await withDb(url, async (db) => {
      expect((await verify(db, plan)).tiers[0]!.status).toBe('Passed');
      expect(await scalar(db, `select owner as v from axis.ownership where collection = 'book_awards_writers'`)).toBe(booksOwner);
      expect((await rollback(db, plan, { scope: 'subject' })).outcome).toBe('ok');
      expect((await scan(db, plan)).critical).toBeGreaterThan(0);
      expect(Number(await scalar(db, `select count(*) as v from axis.ownership where tag !~ '#'`))).toBe(expected.anchors + expected.contained);
    });
  });
});

describe.each(testTargets())('collections a real Directus 11 dropped after the rollout (%s)', (kind) => {
  it('an anchor and a contained collection dropped: the amendment releases them, rehearsed (98) and applied; a later rehearsal proves the full rollback', async () => {
    target = await realDirectus(kind);
    const url = target.url;
    const approver = expected.emails.approver!;
    await withDb(url, async (db) => {
      await approveAs(db, approver);
      expect((await apply(db, plan)).outcome).toBe('ok');
      // as Directus deletes a collection: its relations (and the alias fields they back), its fields, its row, its table
      await db.exec(`delete from directus_fields where (collection, field) in (select one_collection, one_field from directus_relations where many_collection in ('reviews', 'book_chapters') and one_field is not null);
        delete from directus_relations where many_collection in ('reviews', 'book_chapters') or one_collection in ('reviews', 'book_chapters');
        delete from directus_fields where collection in ('reviews', 'book_chapters'); delete from directus_collections where collection in ('reviews', 'book_chapters');
        drop table reviews; drop table book_chapters`);
      const d = await draft(db, plan);
      // the contained one too: what the approvers approve deleting is shown to them
      expect(d.suggestions.filter((x) => x.action === 'release').map((x) => x.item)).toEqual(['book_chapters', 'reviews']);
      expect(d.suggestions.find((x) => x.item === 'book_chapters')?.reason).toMatch(/recorded under "released", are deleted \(tier 98 writes them back\)/);
      expect((d.payload as { released: { collection: string }[] }).released.map((e) => e.collection)).toEqual(['book_chapters', 'reviews']);
      await submit(db, plan, d.payload);
      await approveAs(db, approver);
    });
    const amendment = await provenRehearsal(kind, url, 98);
    expect((await applyBound(url, amendment)).outcome).toBe('ok');
    await withDb(url, async (db) => {
      await expectGoverned(db);
      expect(Number(await scalar(db, `select count(*) as v from axis.collection_topic where collection in ('reviews', 'book_chapters')`))).toBe(0);
    });
    // nothing pending: the rehearsal proves tier 99 and the re-apply of the same payload
    await provenRehearsal(kind, url, 99);
  });
});

describe.each(testTargets())('an anchor a real Directus 11 dropped with what referred to it (%s)', (kind) => {
  it('its junction and translations released, its child an anchor now: named by scan and propose, the amendment rehearsed (98) and applied, tier 99 proven after', async () => {
    target = await realDirectus(kind);
    const url = target.url;
    const approver = expected.emails.approver!;
    await withDb(url, async (db) => {
      await approveAs(db, approver);
      expect((await apply(db, plan)).outcome).toBe('ok');
      // as an admin does it in the Data Studio (Directus refuses to drop a collection others still refer to):
      // the fields referring to books, the junction and the translations, then books
      await db.exec(`delete from directus_fields where (collection, field) in (select one_collection, one_field from directus_relations where one_collection = 'books' and one_field is not null)
          or (collection, field) in (('reviews', 'book'), ('shop_items', 'book'), ('book_chapters', 'book'));
        delete from directus_relations where (many_collection, many_field) in (('reviews', 'book'), ('shop_items', 'book'), ('book_chapters', 'book'));
        alter table reviews drop column book; alter table shop_items drop column book; alter table book_chapters drop column book;
        delete from directus_fields where collection in ('books_writers', 'books_translations') or (collection, field) in (('writers', 'books'), ('languages', 'books'));
        delete from directus_relations where many_collection in ('books_writers', 'books_translations');
        delete from directus_collections where collection in ('books_writers', 'books_translations'); drop table books_writers; drop table books_translations;
        delete from directus_fields where collection = 'books' or (collection, field) in (select one_collection, one_field from directus_relations where many_collection = 'books' and one_field is not null);
        delete from directus_relations where many_collection = 'books'; delete from directus_collections where collection = 'books'; drop table books`);
      const found = await scan(db, plan);
      expect(found.findings.filter((f) => f.item === 'book_chapters').map((f) => f.kind)).toEqual(['contained collection is an anchor now']);
      const d = await draft(db, plan);
      expect(d.suggestions.filter((x) => x.item.startsWith('book')).map((x) => [x.item, x.action])).toEqual([
        ['book_chapters', 'own'],
        ['books', 'release'],
        ['books_translations', 'release'],
        ['books_writers', 'release'],
      ]);
      expect((d.payload as { released: { collection: string }[] }).released.map((e) => e.collection)).toEqual(['book_chapters', 'books', 'books_translations', 'books_writers']);
      await submit(db, plan, d.payload);
      await approveAs(db, approver);
    });
    const amendment = await provenRehearsal(kind, url, 98);
    expect((await applyBound(url, amendment)).outcome).toBe('ok');
    await withDb(url, async (db) => {
      await expectGoverned(db);
      expect(await scalar(db, `select basis as v from axis.ownership where collection = 'book_chapters'`)).toBe('anchor');
    });
    await provenRehearsal(kind, url, 99);
  });
});

describe.each(testTargets())('governance after the rollout of generated databases unlike the sample (%s)', (kind) => {
  it.each(['no-containment', 'camel-case'] as const)('%s: a new collection pointing at an anchor is proposed, rehearsed, applied and rolled back alone', async (name) => {
    target = await freshDatabase(kind, 'directus', { exactName: true });
    const url = target.url;
    const before = await withDb(url, async (db) => {
      await writeGenerated(db, NAMED_SHAPES[name]);
      await approveAs(db, 'approver@gen.example');
      expect((await apply(db, plan)).outcome).toBe('ok');
      const anchor = await scalar<string>(db, `select collection as v from axis.ownership where basis = 'anchor' order by collection limit 1`);
      const owner = await scalar<string>(db, `select owner as v from axis.ownership where collection = '${anchor}'`);
      await createCollection(db, 'newFeedback', { columns: [['id', 'serial primary key'], ['ref', 'integer']], relations: [{ field: 'ref', one: anchor }] });
      expect((await scan(db, plan)).findings.map((f) => `${f.kind}: ${f.item}`)).toEqual(['new collection without owner: newFeedback']);
      const d = await draft(db, plan);
      expect(d.suggestions).toEqual([expect.objectContaining({ item: 'newFeedback', action: 'own', owner, reason: expect.stringContaining(`its field ref is a many-to-one to ${anchor}, owned by ${owner}`) })]);
      expect(d.suggestions[0]!.topic).not.toBeNull();
      await submit(db, plan, d.payload);
      await approveAs(db, 'approver@gen.example');
      return firstRollout(db);
    });
    const evidence = await provenRehearsal(kind, url, 98);
    expect((await applyBound(url, evidence)).outcome).toBe('ok');
    await withDb(url, async (db) => {
      expect((await verify(db, plan)).tiers[0]!.status).toBe('Passed');
      expect((await rollback(db, plan, { scope: 'subject' })).outcome).toBe('ok');
      expect(await firstRollout(db)).toEqual(before);
    });
  });
});

describe.each(testTargets())('scan and propose through the CLI (%s)', (kind) => {
  it('a draft on an amendment not in effect (submitted, not applied; or rolled back) revises it: the same number, the same payload amended', async () => {
    target = await rolledOut(kind);
    const url = target.url;
    const applied = await withDb(url, async (db) => (await db.transaction((tx) => readGate(tx, plan)))!.subject!);
    await withDb(url, async (db) => {
      await directusChanges(db);
      const first = await draft(db, plan);
      expect(first.payload).toMatchObject({ amendment: 1, amends: applied });
      await submit(db, plan, first.payload);
      // not applied yet: drafted again, it is amendment 1 again (its new entries added in 1), amending the applied payload
      const again = (await draft(db, plan)).payload as { amendment: number; amends: string; anchors: { collection: string; added_in?: number }[] };
      expect(again).toMatchObject({ amendment: 1, amends: applied });
      expect(again.anchors.find((a) => a.collection === 'reviews')?.added_in).toBe(1);
      // the revision (as an operator edits the draft) is submitted, approved, rehearsed: its own rollback is proven
      await submit(db, plan, { ...again, note: 'revised' });
      await approveAs(db, ADMIN);
    });
    const evidence = await provenRehearsal(kind, url, 98);
    expect((await applyBound(url, evidence)).outcome).toBe('ok');
    await withDb(url, async (db) => {
      const inEffect = (await db.transaction((tx) => readGate(tx, plan)))!.subject!;
      // in effect: the next draft is amendment 2, amending it
      expect((await draft(db, plan)).payload).toMatchObject({ amendment: 2, amends: inEffect });
      // rolled back: amendment 1 again, amending the payload before it
      expect((await rollback(db, plan, { scope: 'subject' })).outcome).toBe('ok');
      expect((await draft(db, plan)).payload).toMatchObject({ amendment: 1, amends: applied });
    });
  });

  it('a governed collection moved to a folder without a label rule: the amendment decides its flag and its own rollback reverts the decision', async () => {
    target = await rolledOut(kind);
    const url = target.url;
    let moved = '';
    await withDb(url, async (db) => {
      moved = String(await scalar(db, `select collection as v from axis.v_reconcile_collection_topic_vs_label where reconcile_flag = 'match' order by collection limit 1`));
      // a Directus folder is a collection without a table
      await db.exec(`insert into directus_collections (collection, icon, hidden, singleton, accountability, collapse) values ('archive_x', 'folder', false, false, 'all', 'open')`);
      await db.query(`update directus_collections set "group" = 'archive_x' where collection = $1`, [moved]);
      const d = await draft(db, plan);
      const decide = (d.payload as { decide: { collection: string; topic: string; added_in: number }[] }).decide;
      expect(decide.map((x) => [x.collection, x.added_in])).toEqual([[moved, 1]]);
      expect(d.suggestions.find((x) => x.action === 'decide')).toMatchObject({ item: moved });
      await submit(db, plan, d.payload);
      await approveAs(db, ADMIN);
    });
    const evidence = await provenRehearsal(kind, url, 98);
    const b4 = evidence.stages[1]!.tiers.find((t) => t.id === 4)!;
    expect(b4.delta?.rows['axis.reconcile_decision']).toEqual({ added: 1, removed: 0, changed: 0 });
    expect((await applyBound(url, evidence)).outcome).toBe('ok');
    await withDb(url, async (db) => {
      expect(await scalar(db, `select tag as v from axis.reconcile_decision where collection = $1`, [moved])).toBe('PROD_T4#1');
      expect((await rollback(db, plan, { scope: 'subject' })).outcome).toBe('ok');
      expect(Number(await scalar(db, `select count(*) as v from axis.reconcile_decision where collection = $1`, [moved]))).toBe(0);
    });
  });

  it('propose --submit refuses a payload its tiers would refuse (an anchor without owner, lists missing), naming each problem; nothing is submitted', async () => {
    target = await rolledOut(kind);
    const url = target.url;
    // a new collection nothing suggests an owner for
    await withDb(url, (db) => createCollection(db, 'orphans', { columns: [['id', 'serial primary key']] }));
    const subject = await withDb(url, async (db) => (await db.transaction((tx) => readGate(tx, plan)))!.subject);
    const asDrafted = await runCli(['propose', '--target', url, '--submit', '--yes']);
    expect(asDrafted.code, asDrafted.stdout + asDrafted.stderr).toBe(2);
    expect(asDrafted.stderr).toMatch(/the payload cannot be submitted \((\d+) problems?\):\n/);
    // every problem at once, a line each: its topic is missing too
    expect(asDrafted.stderr).toMatch(/^ {2}- anchor orphans has no owner: choose one/m);
    expect(asDrafted.stderr).toMatch(/^ {2}- anchor orphans has no topic: choose one of the payload's topics/m);
    const count = Number(/cannot be submitted \((\d+) problems?\)/.exec(asDrafted.stderr)![1]);
    expect(asDrafted.stderr.match(/^ {2}- /gm)?.length).toBe(count);
    expect(asDrafted.stderr).toMatch(/nothing was submitted \(tiergate propose --out FILE drafts it, edit FILE, then --submit FILE\)/);
    const file = join(mkdtempSync(join(tmpdir(), 'tiergate-payload-')), 'bad.json');
    writeFileSync(file, JSON.stringify({ ['__proto__']: { x: 1 }, axes: [] }));
    const bad = await runCli(['propose', '--target', url, '--submit', file, '--yes']);
    expect(bad.code, bad.stdout + bad.stderr).toBe(2);
    expect(bad.stderr).toMatch(/^  - "anchors" is missing, not a list\n  - "topics" is missing, not a list$/m);
    // a byte-order mark an editor wrote is not the payload's (the same problems, not a JSON error); bytes that are not UTF-8 are refused
    writeFileSync(file, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify({ axes: [] }))]));
    expect((await runCli(['propose', '--target', url, '--submit', file, '--yes'])).stderr).toMatch(/"anchors" is missing, not a list/);
    writeFileSync(file, Buffer.concat([Buffer.from('{"axes": ["'), Buffer.from([0xff]), Buffer.from('"]}')]));
    const latin = await runCli(['propose', '--target', url, '--submit', file, '--yes']);
    expect(latin.code).toBe(2);
    expect(latin.stderr).toMatch(/not valid UTF-8: save the payload as UTF-8; nothing was submitted/);
    // an owner changed in the payload: the tiers would not change it, so the payload is refused rather than approved for nothing
    const changed = await withDb(url, async (db) => {
      const p = (await db.query<{ payload: { anchors: { collection: string; owner: string }[] } }>(`select payload from os_proposals where key = 'OS-AXIS'`)).rows[0]!.payload;
      const anchor = p.anchors.find((a) => a.collection === 'legacy_pages')!;
      anchor.owner = 'team-someone-else';
      (p.anchors.find((a) => a.collection === 'legacy_orders') as { topic?: string }).topic = 'editorial';
      return p;
    });
    writeFileSync(file, JSON.stringify(changed));
    const reowned = await runCli(['propose', '--target', url, '--submit', file, '--yes']);
    expect(reowned.code, reowned.stdout + reowned.stderr).toBe(2);
    expect(reowned.stderr).toMatch(/anchor legacy_pages is owned by team-data, the payload says team-someone-else: the tiers write only what is missing/);
    expect(reowned.stderr).toMatch(/anchor legacy_orders has topic \w+, the payload says editorial: .* a second topic/);
    // an anchor also listed as contained, a decide entry without its amendment number
    const both = { ...(changed as object), amendment: 1, contained: [{ collection: 'articles', added_in: 1 }], decide: [{ collection: 'skills', topic: 'people' }] };
    writeFileSync(file, JSON.stringify(both));
    const inconsistent = await runCli(['propose', '--target', url, '--submit', file, '--yes']);
    expect(inconsistent.code, inconsistent.stdout + inconsistent.stderr).toBe(2);
    expect(inconsistent.stderr).toMatch(/articles is listed as an anchor and under "contained"/);
    expect(inconsistent.stderr).toMatch(/"decide" entry 1 \(skills, topic people\) has no "added_in"/);
    // the proposal is as it was: its approvals still count
    await withDb(url, async (db) => expect((await db.transaction((tx) => readGate(tx, plan)))).toMatchObject({ subject, open: true }));
  });

  it('a collection whose name holds a line break is one finding on one line in scan and propose', async () => {
    target = await rolledOut(kind);
    const url = target.url;
    await withDb(url, (db) => createCollection(db, 'nl\nname', { folder: 'editorial', columns: [['id', 'serial primary key']] }));
    for (const args of [['scan'], ['propose']]) {
      const r = await runCli([...args, '--target', url]);
      expect(r.stdout).toMatch(/nl name/);
      // no line of its own for the part after the break
      expect(r.stdout.split('\n').filter((l) => /^\s*name\b/.test(l)), r.stdout).toEqual([]);
    }
  });

  it('scan exits 1 naming each critical finding; propose --out drafts, --submit writes it; rollback --amendment refuses what is not applied', async () => {
    target = await rolledOut(kind);
    const url = target.url;
    const clean = await runCli(['scan', '--target', url]);
    expect(clean.code, clean.stderr).toBe(0);
    expect(clean.stdout).toMatch(/nothing to govern that is not governed/);
    // nothing to amend: submitting the draft would only void the approvals
    const noop = await runCli(['propose', '--target', url, '--submit', '--yes']);
    expect(noop.code, noop.stdout + noop.stderr).toBe(2);
    expect(noop.stderr).toMatch(/nothing to amend: the draft has no suggestion/);
    await withDb(url, directusChanges);

    const found = await runCli(['scan', '--target', url]);
    expect(found.code).toBe(1);
    expect(found.stdout).toMatch(/4 critical/);
    expect(found.stdout).toMatch(/CRITICAL new collection without owner: reviews/);
    const json = await runCli(['scan', '--target', url, '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, critical: 4 });

    const file = join(mkdtempSync(join(tmpdir(), 'tiergate-propose-')), 'payload.json');
    const drafted = await runCli(['propose', '--target', url, '--out', file]);
    expect(drafted.code, drafted.stderr).toBe(0);
    expect(drafted.stdout).toMatch(/own +reviews: owner team-editorial, topic editorial — its field article is a many-to-one to articles/);
    expect(drafted.stdout).toMatch(/nothing was written/);
    const payload = JSON.parse(readFileSync(file, 'utf8')) as { anchors: { collection: string }[] };
    expect(payload.anchors.some((a) => a.collection === 'reviews')).toBe(true);
    // --json names the file it wrote
    const draftedJson = await runCli(['propose', '--target', url, '--out', file, '--json']);
    expect(JSON.parse(draftedJson.stdout)).toMatchObject({ ok: true, file, submitted: null });

    const rollout = await runCli(['rollback', '--amendment', '--yes', '--target', url]);
    expect(rollout.code).toBe(2);
    expect(rollout.stderr).toMatch(/tiers 4, 3, 2 were only ever applied for subject [0-9a-f]{12}, the current one: that is the rollout itself, .* \(tiergate rollback\); nothing was changed/);

    // --as names who drafted it: only with --submit, and only someone Directus has (nothing submitted otherwise)
    const asAlone = await runCli(['propose', '--target', url, '--as', ADMIN]);
    expect(asAlone.code).toBe(2);
    expect(asAlone.stderr).toMatch(/--as names who drafted a payload being submitted: use it with --submit/);
    const nobody = await runCli(['propose', '--target', url, '--submit', file, '--yes', '--as', 'nobody@northwind.example']);
    expect(nobody.code, nobody.stdout + nobody.stderr).toBe(2);
    expect(nobody.stderr).toMatch(/--as nobody@northwind\.example: no Directus user with that email on .* to record as the payload's author; nothing was submitted/);
    const author = () => withDb(url, (db) => scalar<string | null>(db, `select u.email as v from os_proposals p join directus_users u on u.id = p.user_created where p.key = 'OS-AXIS'`));
    expect(await author()).toBe('elif.demir@northwind.example');
    const submitted = await runCli(['propose', '--target', url, '--submit', file, '--yes', '--as', ADMIN]);
    expect(submitted.code, submitted.stderr).toBe(0);
    expect(submitted.stdout).toMatch(/submitted: subject [0-9a-f]{12} → [0-9a-f]{12}/);
    expect(submitted.stdout).toContain(`author: ${ADMIN} drafted it (recorded as the proposal's author: cannot approve it)`);
    expect(await author()).toBe(ADMIN);
    // who drafted the payload cannot approve it; the earlier payload's author may
    const own = await runCli(['approve', '--yes', '--target', url, '--as', ADMIN]);
    expect(own.code, own.stdout + own.stderr).toBe(2);
    expect(own.stderr).toMatch(/cannot approve .*: the proposal's author cannot approve it; nothing was recorded/);
    expect(submitted.stdout).toMatch(/gate ospa = 0 \(needs ≥ 1\): CLOSED/);
    expect(submitted.stdout).toMatch(/tiers 2, 3, 4 are pending for the new subject/);
    const notYet = await runCli(['rollback', '--amendment', '--yes', '--target', url]);
    expect(notYet.code).toBe(2);
    expect(notYet.stderr).toMatch(/tier 98 reverts the amendment for subject [0-9a-f]{12}, but tiers 4, 3, 2 were last applied for subject [0-9a-f]{12}: that amendment is not applied/);
    const st = await runCli(['status', '--target', url, '--exit-code']);
    expect(st.code).toBe(1);
    expect(st.stdout).toMatch(/an amendment/);
    // a plan whose amend.author writes a column the proposal table does not have: --as says so, and nothing is submitted
    const subject = () => withDb(url, (db) => scalar<string>(db, `select payload_sha256 as v from os_proposals where key = 'OS-AXIS'`));
    const kept = await subject();
    const other = join(mkdtempSync(join(tmpdir(), 'tiergate-plan-')), 'plan');
    cpSync(bundledPlanDir(), other, { recursive: true });
    const yaml = join(other, 'tiergate.yaml');
    writeFileSync(yaml, readFileSync(yaml, 'utf8').replace('    set user_created = u.id\n', '    set drafted_by = u.id\n'));
    writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), note: 'revised' }));
    const noColumn = await runCli(['propose', '--target', url, '--plan', other, '--submit', file, '--yes', '--as', ADMIN]);
    expect(noColumn.code, noColumn.stdout + noColumn.stderr).toBe(2);
    expect(noColumn.stderr).toMatch(/--as admin@northwind\.example: the plan's amend\.author cannot record an author on .*: column "drafted_by" .*does not exist \(SQLSTATE 42703\); submit without --as.*; nothing was submitted/);
    expect(await subject()).toBe(kept);
  });
});

describe.each(testTargets())('a database rolled out with earlier revisions of the bundled plan (%s)', (kind) => {
  it('its tiers stay applied (no drift), and a rehearsal with the current files passes, both rollback proofs included', { timeout: 300_000 }, async () => {
    // the files as the previous release had them (test/fixtures/earlier-revisions): each one a revision its tier replaces
    const earlier = join(import.meta.dirname, 'fixtures', 'earlier-revisions', 'axis-governance', 'tiers');
    const dir = join(mkdtempSync(join(tmpdir(), 'tiergate-plan-')), 'plan');
    cpSync(bundledPlanDir(), dir, { recursive: true });
    for (const f of readdirSync(earlier)) {
      const bytes = readFileSync(join(earlier, f));
      expect(plan.tiers.find((t) => t.file === `tiers/${f}`)?.replaces, f).toContain(createHash('sha256').update(bytes).digest('hex'));
      writeFileSync(join(dir, 'tiers', f), bytes);
    }
    target = await freshDatabase(kind, 'directus', { exactName: true });
    await withDb(target.url, async (db) => {
      await writeSample(db, {});
      await approveAs(db, ADMIN);
      expect((await apply(db, loadPlan(dir))).outcome).toBe('ok');
      const s = await status(db, plan);
      expect(unfinished(s)).toEqual([]);
      expect(s.tiers.filter((t) => t.note?.includes('earlier revision')).map((t) => t.id).sort()).toEqual([2, 4, 7]);
      // the earlier tier 7 made no view keeping the approvals' columns: scan warns (verify still passes)
      expect((await scan(db, plan)).findings).toEqual([expect.objectContaining({ kind: 'approvals not protected', severity: 'warning', detail: expect.stringMatching(/create the view as tiers\/07_approval_rules\.sql does/) })]);
    });
    // a rehearsal re-applies the reverted tiers (6, 3, 4) with the current files: they must write the same rows
    const evidence = await rehearseSource(kind, target.url);
    expect(evidence.verdict.failures).toEqual([]);
    expect(evidence.rollback).toMatchObject({ tier: 99, matchesKeptTiers: true, reapplyMatches: true });
    expect((await applyBound(target.url, evidence)).outcome).toBe('ok');
  });
});
