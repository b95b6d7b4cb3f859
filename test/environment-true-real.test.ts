/**
 * The rehearsal that is true on a real Directus database, and production that
 * reproduces it (issue: rehearse any real Directus database to a true
 * verdict): a database made by a real Directus 11 through its REST API
 * rehearses to PASS and applies as rehearsed; proposals that do not fit the
 * database fail at the right tier, naming the collection and the cause; a
 * source changed since its rehearsal rolls back the first tier that differs;
 * evidence of another database, engine, subject or age is refused.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openDb, withDb } from '../src/db/open-db.js';
import type { Db } from '../src/db/port.js';
import { EvidenceRefusedError } from '../src/errors.js';
import { writeSample } from '../fixtures/directus-sample/generate.js';
import { createCollectionAsDirectus, markClone, scalar, tierSql } from './fixtures/axis-harness/harness.js';
import { expected, realDirectus } from './helpers/real-directus.js';
import { runCli } from './helpers/cli.js';
import { applyBound, approveAs, evidenceFile, rehearseSource } from './helpers/rollout.js';
import { freshDatabase, testTargets, type TargetKind, type TestDatabase } from './helpers/targets.js';

let source: TestDatabase | null = null;
afterEach(async () => {
  await source?.drop();
  source = null;
});

describe.each(testTargets())('a database made by a real Directus 11 (%s)', (kind) => {
  it('rehearses to PASS with its own figures; after an approval apply --evidence matches the rehearsal in every tier; verify passes', async () => {
    source = await realDirectus(kind);
    const evidence = await rehearseSource(kind, source.url);
    expect(evidence.verdict.failures).toEqual([]);
    expect(evidence.verdict).toMatchObject({ rehearsal: 'PASS', execution: 'NO-GO', reason: 'ospa=0' });
    const a1 = evidence.stages[0]!.tiers.find((t) => t.id === 1)!;
    expect(a1.delta?.metrics.owner_gap).toEqual({ before: null, after: expected.anchorFields });
    expect(a1.delta?.metrics.containment_gap).toEqual({ before: null, after: expected.contained });
    const b2 = evidence.stages[1]!.tiers.find((t) => t.id === 2)!;
    expect(b2.delta?.rows['axis.ownership']).toEqual({ added: expected.anchors, removed: 0, changed: 0 });
    expect(evidence.source.identity).toMatchObject({ engine: kind, database: 'directus' });
    expect(evidence.source.gate?.subject).toMatch(/^[0-9a-f]{64}$/);

    await withDb(source.url, (db) => approveAs(db, expected.emails.approver!));
    const file = evidenceFile(evidence);
    // rehearsed with the gate closed (NO-GO): accepted, and the dry run says so
    const dry = await runCli(['apply', '--dry-run', '--target', source.url, '--evidence', file]);
    expect(dry.code, dry.stdout + dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/\(Rehearsal PASS · Execution NO-GO\): accepted for this target/);
    expect(dry.stdout).toMatch(/note: the rehearsal's execution verdict was NO-GO \(ospa=0\): apply reads the gate itself/);
    const applied = await runCli(['apply', '--yes', '--target', source.url, '--evidence', file], { timeoutMs: 300_000 });
    expect(applied.code, applied.stdout + applied.stderr).toBe(0);
    expect(applied.stdout).toMatch(/production matches the rehearsal \(8 tiers compared before COMMIT\)/);
    expect(applied.stdout + applied.stderr).not.toMatch(/differs from the plan's expectations/);
    const verified = await runCli(['verify', '--target', source.url]);
    expect(verified.code, verified.stdout).toBe(0);
  });
});

describe.each(testTargets())('proposals that do not fit the database fail at the right tier, naming the cause (%s)', (kind) => {
  let t: TestDatabase;
  let db: Db;
  afterEach(async () => {
    await db?.close();
    await t?.drop();
  });

  /** The sample with the gate open and the structure tiers applied; `edit` changes the payload (its hash follows) in a transaction that rolls back. */
  async function withPayload(edit: string, tier: number): Promise<{ sqlstate: string; message: string }> {
    let error: { sqlstate: string; message: string } | null = null;
    await db
      .transaction(async (tx) => {
        await tx.exec(`update os_proposals set payload = ${edit}, payload_sha256 = encode(sha256(convert_to((${edit})::text, 'UTF8')), 'hex') where key = 'OS-AXIS'`);
        await tx.exec(`insert into os_proposal_approvals (proposal, approver, payload_sha256) select id, '0b9a8e3c-3f2a-4c6e-9a51-6d2f1c7e8a01', payload_sha256 from os_proposals where key = 'OS-AXIS'`);
        for (const id of tier === 3 ? [2, 3] : [2]) {
          await tx.exec('savepoint s');
          try {
            await tx.exec(tierSql(id));
            await tx.exec('release savepoint s');
          } catch (e) {
            error = { sqlstate: (e as { sqlstate: string }).sqlstate, message: (e as Error).message };
            break;
          }
        }
        throw new Error('roll back');
      })
      .catch(() => undefined);
    return error!;
  }

  it('a collection Directus does not have, an owner missing, an anchor that is contained: tier 2; a topic folder that does not exist: tier 3', async () => {
    t = await freshDatabase(kind, 'directus');
    db = await openDb(t.url);
    await writeSample(db);
    if (t.database !== 'directus') await markClone(db);
    for (const id of [1, 5, 6]) await db.transaction((tx) => tx.exec(tierSql(id)));

    const dangling = await withPayload(`jsonb_set(payload, '{anchors}', (payload -> 'anchors') || '[{"collection": "gift_cards", "owner": "team-commerce", "topic": "commerce"}]')`, 2);
    expect(dangling).toEqual({ sqlstate: 'TG003', message: expect.stringContaining(`'gift_cards' is not a collection of this Directus database`) });
    const ownerless = await withPayload(`jsonb_set(payload, '{anchors,0,owner}', 'null')`, 2);
    expect(ownerless).toEqual({ sqlstate: 'TG003', message: expect.stringContaining(`anchor 'languages' has no owner`) });
    const contained = await withPayload(`jsonb_set(payload, '{anchors}', (payload -> 'anchors') || '[{"collection": "articles_tags", "owner": "team-editorial", "topic": "editorial"}]')`, 2);
    expect(contained).toEqual({ sqlstate: 'TG003', message: expect.stringContaining(`'articles_tags' is contained in 'articles'`) });
    const folder = await withPayload(`jsonb_set(payload, '{topics,0,directus_folder}', '"nowhere"')`, 3);
    expect(folder).toEqual({ sqlstate: 'TG003', message: expect.stringContaining(`names folder 'nowhere', which this Directus database does not have`) });
    // nothing of it was written
    expect(await scalar(db, 'select count(*)::int as v from axis.ownership')).toBe(0);
  });
});

describe('a rehearsal reports a proposal that does not fit, at tier 2 (PGlite)', () => {
  it('fails the rehearsal naming the collection', async () => {
    source = await freshDatabase('pglite', 'directus', { exactName: true });
    await withDb(source.url, async (db) => {
      await writeSample(db);
      const edit = `jsonb_set(payload, '{anchors}', (payload -> 'anchors') || '[{"collection": "gift_cards", "owner": "team-commerce", "topic": "commerce"}]')`;
      await db.exec(`update os_proposals set payload = ${edit}, payload_sha256 = encode(sha256(convert_to((${edit})::text, 'UTF8')), 'hex') where key = 'OS-AXIS'`);
    });
    const e = await rehearseSource('pglite', source.url);
    expect(e.verdict.rehearsal).toBe('FAIL');
    expect(e.verdict.failures[0]).toMatch(/^B: tier 2 applies: TG003 tier 2 refused: proposal OS-AXIS does not fit this Directus database \(1 problem\): 'gift_cards' is not a collection/);
  });
});

describe.each(testTargets())('production that no longer is what was rehearsed (%s)', (kind) => {
  it('a collection added, or an anchor given a field, since the rehearsal: tier 1 rolls back, nothing is left; with --accept-differences it commits and records them', async () => {
    source = await freshDatabase(kind, 'directus', { exactName: true });
    await withDb(source.url, (db) => writeSample(db));
    const evidence = await rehearseSource(kind, source.url);
    expect(evidence.verdict.rehearsal).toBe('PASS');
    await withDb(source.url, async (db) => {
      await approveAs(db, 'admin@northwind.example');
      await createCollectionAsDirectus(db, 'reviews');
    });

    const r = await applyBound(source.url, evidence);
    expect(r.outcome).toBe('failed');
    const t1 = r.tiers.find((t) => t.id === 1)!;
    expect(t1.status).toBe('Failed');
    expect(t1.error?.message).toMatch(/^production differs from the rehearsal: /);
    expect(t1.differences).toEqual(expect.arrayContaining([{ what: 'metric owner_gap after', rehearsal: '210', production: '216' }]));
    expect(r.tiers.filter((t) => t.status === 'Applied')).toEqual([]);
    await withDb(source.url, async (db) => {
      expect(await scalar(db, `select count(*)::int as v from pg_namespace where nspname = 'axis'`)).toBe(0);
      expect(await scalar(db, `select count(*)::int as v from tiergate.ledger`)).toBe(0);
      expect(await scalar(db, `select count(*)::int as v from tiergate.attempt where tier_id = 1 and outcome = 'failed'`)).toBe(1);
      // the same for an anchor given one more field
      await db.exec(`drop table reviews; delete from directus_fields where collection = 'reviews'; delete from directus_relations where many_collection = 'reviews'; delete from directus_collections where collection = 'reviews'`);
      await db.exec(`insert into directus_fields (collection, field, interface) values ('orders', 'gift_message', 'input')`);
    });
    const again = await applyBound(source.url, evidence);
    expect(again.tiers.find((t) => t.id === 1)?.differences).toEqual(expect.arrayContaining([{ what: 'metric owner_gap after', rehearsal: '210', production: '211' }]));

    // the CLI shows both side by side and exits 1
    const cli = await runCli(['apply', '--yes', '--target', source.url, '--evidence', evidenceFile(evidence)], { timeoutMs: 300_000 });
    expect(cli.code).toBe(1);
    expect(cli.stdout).toMatch(/metric owner_gap after\s+210\s+211/);
    expect(cli.stdout).toMatch(/the tier was rolled back: nothing of it was committed/);

    const accepted = await applyBound(source.url, evidence, { acceptDifferences: true });
    expect(accepted.outcome).toBe('ok');
    await withDb(source.url, async (db) => {
      const rec = await db.query<{ evidence: { differencesAccepted: { what: string }[] } }>(`select evidence from tiergate.ledger where tier_id = 1`);
      expect(rec.rows[0]?.evidence.differencesAccepted.map((d) => d.what)).toContain('metric owner_gap after');
    });
  });
});

describe('evidence that belongs to another database is refused (exit 2), touching nothing', () => {
  /** The evidence of `npm start` (the embedded sample). */
  let sampleEvidence: string;
  beforeAll(async () => {
    const out = mkdtempSync(join(tmpdir(), 'tiergate-evidence-'));
    const r = await runCli(['rehearse', '--out', out], { timeoutMs: 300_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    sampleEvidence = join(out, 'evidence.json');
  }, 300_000);

  it('the embedded sample, another PGlite directory, a changed payload, too old', async () => {
    source = await freshDatabase('pglite', 'directus', { exactName: true });
    await withDb(source.url, (db) => writeSample(db));
    const fromSample = await runCli(['apply', '--yes', '--target', source.url, '--evidence', sampleEvidence]);
    expect(fromSample.code).toBe(2);
    expect(fromSample.stderr).toMatch(/refused: it rehearses the embedded sample database \(npm start\), not a database of yours/);

    const evidence = await rehearseSource('pglite', source.url);
    const file = evidenceFile(evidence);
    const other = await freshDatabase('pglite', 'directus');
    try {
      await withDb(other.url, (db) => writeSample(db));
      const elsewhere = await runCli(['apply', '--yes', '--target', other.url, '--evidence', file]);
      expect(elsewhere.code).toBe(2);
      expect(elsewhere.stderr).toMatch(/refused: it rehearses PGlite directory [0-9a-f-]{36}, and the target is [0-9a-f-]{36}/);
    } finally {
      await other.drop();
    }
    const old = await runCli(['apply', '--yes', '--target', source.url, '--evidence', file, '--max-evidence-age', '1ms']);
    expect(old.code).toBe(2);
    expect(old.stderr).toMatch(/older than --max-evidence-age/);
    await withDb(source.url, (db) => db.exec(`update os_proposals set payload = payload || '{"revision": 2}', payload_sha256 = encode(sha256(convert_to((payload || '{"revision": 2}')::text, 'UTF8')), 'hex') where key = 'OS-AXIS'`));
    const changed = await runCli(['apply', '--yes', '--target', source.url, '--evidence', file]);
    expect(changed.code).toBe(2);
    expect(changed.stderr).toMatch(/the gate's subject changed since the rehearsal/);
    await withDb(source.url, async (db) => expect(await scalar(db, `select count(*)::int as v from pg_namespace where nspname in ('axis', 'tiergate')`)).toBe(0));
  });

  it.runIf(testTargets().includes('postgres'))('evidence of a PGlite rehearsal on a PostgreSQL target, and of the embedded sample', async () => {
    const t = await freshDatabase('pglite', 'directus', { exactName: true });
    const server = await freshDatabase('postgres', 'directus');
    try {
      await withDb(t.url, (db) => writeSample(db));
      const evidence = await rehearseSource('pglite', t.url);
      await withDb(server.url, async (db) => {
        await writeSample(db);
        await markClone(db);
      });
      const err = await applyBound(server.url, evidence).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EvidenceRefusedError);
      expect((err as Error).message).toMatch(/it rehearses a PGlite database, and the target is PostgreSQL/);
      const cli = await runCli(['apply', '--yes', '--target', server.url, '--evidence', sampleEvidence]);
      expect(cli.code).toBe(2);
      expect(cli.stderr).toMatch(/refused: it rehearses the embedded sample database \(npm start\)/);
    } finally {
      await t.drop();
      await server.drop();
    }
  });
});
