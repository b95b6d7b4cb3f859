import { z } from 'zod';
import { ObjectKind, TierKind } from '../plan/schema.js';
import { EVIDENCE_SCHEMA_VERSION } from './version.js';

/**
 * The one definition of tiergate's result and evidence contract: what a tier
 * run returns (engine), what a rehearsal records (`evidence.json`), what the
 * reports render and `apply --evidence` reads. The TypeScript types are
 * inferred from these schemas (`types.ts`), and the published
 * `schema/evidence.schema.json` is generated from them, so the three cannot
 * drift apart.
 *
 * Objects are `z.object` (unknown keys are dropped, not errors): newer tools
 * may add optional fields without bumping `schemaVersion`, and an older reader
 * must still accept them.
 */

const Count = z.number().int().nonnegative();
const Millis = z.number().nonnegative().describe('milliseconds');
/** A metric's value; null means "n/a" (the objects it reads do not exist yet). */
const MetricValue = z.number().nullable();
const TierId = z.number().int().nonnegative();

export const SqlFailureSchema = z
  .object({
    message: z.string(),
    sqlstate: z.string().nullable(),
    detail: z.string().nullable(),
    hint: z.string().nullable(),
    where: z.string().nullable(),
    file: z.string().nullable().describe('plan-relative file of the failing statement, when known'),
    line: z.number().int().nullable(),
    column: z.number().int().nullable(),
    excerpt: z.string().nullable().describe('the failing SQL line (or statement first line)'),
  })
  .meta({ id: 'SqlFailure', description: 'Everything PostgreSQL reported about a failed statement, plus where it is in the plan.' });

export const ObjectChangesSchema = z
  .object({ added: z.array(z.string()), removed: z.array(z.string()), changed: z.array(z.string()) })
  .meta({ id: 'ObjectChanges', description: 'Qualified names of objects of one kind added, removed or whose definition changed.' });

export const RowChangesSchema = z
  .object({ added: Count, removed: Count, changed: Count })
  .meta({ id: 'RowChanges', description: 'Rows of one table added, removed and changed.' });

export const MetricChangeSchema = z
  .object({ before: MetricValue, after: MetricValue })
  .meta({ id: 'MetricChange', description: "A metric's value before and after a tier; null is n/a." });

export const DeltaSchema = z
  .object({
    objects: z.partialRecord(ObjectKind, ObjectChangesSchema),
    rows: z.record(z.string(), RowChangesSchema).describe('per table (schema.table)'),
    metrics: z.record(z.string(), MetricChangeSchema),
  })
  .meta({ id: 'Delta', description: 'The measured difference a tier made.' });

export const PostResultSchema = z
  .object({ expr: z.string(), ok: z.boolean(), value: MetricValue })
  .meta({ id: 'PostResult', description: 'A post-condition checked inside the tier transaction.' });

export const ExpectationResultSchema = z
  .object({ what: z.string(), expected: z.string(), actual: z.string(), ok: z.boolean() })
  .meta({ id: 'ExpectationResult', description: "One expectation of the plan (evaluated with this environment's figures) compared with what was measured." });

export const DifferenceSchema = z
  .object({ what: z.string(), rehearsal: z.string(), production: z.string() })
  .meta({ id: 'Difference', description: "Where a production tier's delta differs from the rehearsal's (apply --evidence)." });

export const TierStatusSchema = z.enum(['Applied', 'Skipped', 'Blocked', 'Failed', 'Reverted', 'Passed']);

export const TierResultSchema = z
  .object({
    id: TierId,
    name: z.string(),
    kind: TierKind,
    file: z.string(),
    sha256: z.string(),
    status: TierStatusSchema,
    reason: z.string().nullable().describe('why a tier was Skipped / Blocked, in words'),
    durationMs: Millis,
    appliedBefore: z.array(TierId).optional().describe('the structure and data tiers applied when this tier ran: the state its delta belongs to'),
    fingerprintUnchanged: z.boolean().optional().describe("Blocked / Failed tiers in rehearsal: the clone's fingerprint did not move"),
    guardProven: z.boolean().optional().describe("Blocked gated tiers in rehearsal: the file's own guard aborted it, with the plan's guard SQLSTATE"),
    expectedOutcome: z.string().optional().describe('in rehearsal: why this status is the expected one (a blocked tier or a failing verify with the gate closed), e.g. "the gate is closed"'),
    delta: DeltaSchema.nullable(),
    figures: z.record(z.string(), MetricValue).optional().describe("the plan's figures read before the tier, for its expectations"),
    post: z.array(PostResultSchema),
    expectations: z.array(ExpectationResultSchema).optional(),
    differences: z.array(DifferenceSchema).optional().describe('apply --evidence: where this tier differed from the rehearsal'),
    failedAssertions: z.array(SqlFailureSchema).optional().describe('verify tiers: the assertions that failed'),
    error: SqlFailureSchema.nullable(),
  })
  .meta({ id: 'TierResult', description: 'What happened to one tier in one run.' });

export const ApprovalSchema = z
  .object({
    id: z.string(),
    approver: z.string(),
    at: z.string().nullable().describe('ISO 8601'),
    subject: z.string().nullable().describe('what this approval approves'),
    counts: z.boolean(),
    why: z.string().nullable().describe('why it does not count (null when it counts)'),
  })
  .meta({ id: 'Approval', description: 'One approval as the gate judges it.' });

export const GateReadingSchema = z
  .object({
    name: z.string(),
    value: MetricValue,
    min: z.number(),
    open: z.boolean(),
    subject: z.string().nullable().describe('what the approvals approve (the bundled plan: the payload sha256), or null'),
    approvals: z.array(ApprovalSchema).optional().describe('every approval, whether it counts and why not (plans with gate.approvals)'),
    unread: z
      .string()
      .optional()
      .describe("when value is null: why the gate reads no value here (its query's error for an object that does not exist — a table not created yet, a misspelt column — or what it returned)"),
  })
  .meta({ id: 'GateReading', description: "The gate's value read on a database, and whether it is open (value >= min)." });

export const DatabaseIdentitySchema = z
  .object({
    engine: z.enum(['pglite', 'postgres']).nullable().describe('null: unknown (a plain SQL dump)'),
    database: z.string(),
    systemIdentifier: z.string().nullable().describe("the cluster's system identifier (pg_control_system()), null when unknown"),
    instance: z.string().nullable().describe('a PGlite data directory: the id tiergate gave it when it made it'),
    serverVersion: z.number().int().nullable().describe('server_version_num'),
  })
  .meta({ id: 'DatabaseIdentity', description: 'Which database this is: evidence is bound to it.' });

export const CheckRecordSchema = z
  .object({ name: z.string(), ok: z.boolean(), detail: z.string(), expected: z.boolean().optional().describe('an outcome the scenario expects (a failing verify with the gate closed)') })
  .meta({ id: 'CheckRecord', description: 'A check a stage made beyond its tiers (fingerprints, honest gaps …).' });

export const StageRecordSchema = z
  .object({
    name: z.enum(['A', 'B', 'C']),
    title: z.string(),
    tiers: z.array(TierResultSchema).max(10_000),
    checks: z.array(CheckRecordSchema).max(10_000),
  })
  .meta({ id: 'StageRecord', description: 'A: gate closed; B: gate opened on the clone; C: rollback and re-apply.' });

export const FingerprintDiffSchema = z
  .object({ objects: z.array(z.string()), tables: z.array(z.string()) })
  .meta({ id: 'FingerprintDiff', description: 'Objects and tables whose fingerprints differ.' });

export const SignatureSchema = z
  .object({ algorithm: z.literal('hmac-sha256'), keyId: z.string(), value: z.string() })
  .meta({ id: 'Signature', description: 'HMAC of the evidence without this field, with a key from the environment (TIERGATE_EVIDENCE_KEY).' });

/** A kept copy of the source on the scratch server, the clones' template: which, when it was taken, and whether this rehearsal reused it. */
export const CloneSnapshotSchema = z
  .object({
    database: z.string().describe('the snapshot database on the scratch server (tiergate_snap_<source>_<idhash8>_<yyyymmdd>t<hhmmss>)'),
    takenAt: z.string().describe('ISO 8601: when the snapshot was taken (pg_dump of the source began); equals source.snapshotAt'),
    reused: z.boolean().describe('true: an earlier rehearsal made it (--reuse-snapshot), the source was not dumped this time'),
    readyCopy: z.boolean().optional().describe('true: the clone is the copy of the snapshot the rehearsal before made ready (renamed, not copied now)'),
  })
  .meta({ id: 'CloneSnapshot' });

export const EvidenceSchema = z
  .object({
    schemaVersion: z.number().int().meta({ const: EVIDENCE_SCHEMA_VERSION, description: 'bumped on incompatible change' }),
    tool: z.object({ name: z.literal('tiergate'), version: z.string() }),
    createdAt: z.string().describe('ISO 8601 timestamp of the rehearsal'),
    plan: z.object({
      name: z.string(),
      dir: z.string(),
      sha256: z.string(),
      files: z.record(z.string(), z.string()).describe('plan-relative file → sha256'),
      sql: z.record(z.string(), z.string()).optional().describe('plan-relative tier file → its text, as rehearsed'),
    }),
    source: z.object({
      kind: z.enum(['pglite-sample', 'pglite', 'postgres', 'dump']),
      location: z.string().describe('redacted URL or file name'),
      identity: DatabaseIdentitySchema,
      snapshotAt: z.string().describe('ISO 8601: when the copy of the source was taken'),
      gate: GateReadingSchema.nullable(),
      preflight: TierResultSchema.nullable(),
    }),
    clone: z.object({
      kind: z.enum(['pglite', 'postgres']),
      location: z.string(),
      kept: z.boolean(),
      copyMs: Millis,
      identity: DatabaseIdentitySchema.optional(),
      snapshot: CloneSnapshotSchema.optional().describe('the kept snapshot the clones were copied from (a PostgreSQL source, `rehearse --source URL --scratch URL`); absent: the clones were made directly'),
    }),
    stages: z.array(StageRecordSchema).max(3),
    rollback: z
      .object({
        tier: TierId,
        reverted: z.array(TierId),
        matchesKeptTiers: z.boolean(),
        reapplyMatches: z.boolean(),
        keptDiff: FingerprintDiffSchema.nullable(),
        reapplyDiff: FingerprintDiffSchema.nullable(),
        reference: z
          .object({
            reused: z.boolean().describe("true: the kept tiers' clean apply on a copy of the same snapshot, stored by an earlier rehearsal of the same snapshot (the same tiergate.yaml, kept tier files, rollback tier and code), not applied again on a second clone"),
            madeAt: z.string().describe('ISO 8601: when the rehearsal that applied the kept tiers on its second clone ran'),
          })
          .optional()
          .describe('where the reference of `matchesKeptTiers` came from (a source with a kept snapshot); absent: a second clone of this rehearsal'),
      })
      .nullable(),
    verdict: z.object({
      rehearsal: z.enum(['PASS', 'FAIL']),
      execution: z.enum(['GO', 'NO-GO']),
      reason: z.string(),
      failures: z.array(z.string()),
      /** what would turn NO-GO into GO, in words */
      next: z.string().optional(),
    }),
    durationMs: Millis,
    signature: SignatureSchema.optional(),
  })
  .meta({
    title: 'tiergate evidence',
    description: 'The full record of a tiergate rehearsal (evidence.json).',
  });
