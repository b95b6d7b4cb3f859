import { z } from 'zod';
import type { Evidence } from '../rehearsal/evidence.js';
import { EVIDENCE_SCHEMA_VERSION } from '../rehearsal/evidence.js';
import { ObjectKind, TierKind } from '../plan/schema.js';

/**
 * The zod schema of `evidence.json`, mirroring the TypeScript types in
 * `rehearsal/evidence.ts` and `engine/result.ts` (a compile-time check at the
 * bottom keeps the two identical). It is what `parseEvidence` enforces and
 * the source of the published `schema/evidence.schema.json`.
 *
 * Objects are `z.object` (unknown keys are dropped, not errors): the evidence
 * is a versioned contract where newer tools may add optional fields without
 * bumping `schemaVersion`, and an older reader must still accept them.
 */

const Count = z.number().int().nonnegative();
const Millis = z.number().nonnegative().describe('milliseconds');
/** A metric's value; null means "n/a" (the objects it reads do not exist yet). */
const MetricValue = z.number().nullable();

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
  .meta({ id: 'ExpectationResult', description: 'One expectation of the plan compared with what was measured.' });

export const TierStatusSchema = z.enum(['Applied', 'Skipped', 'Blocked', 'Failed', 'Reverted', 'Passed']);

export const TierResultSchema = z
  .object({
    id: z.number().int().nonnegative(),
    name: z.string(),
    kind: TierKind,
    file: z.string(),
    sha256: z.string(),
    status: TierStatusSchema,
    reason: z.string().nullable().describe('why a tier was Skipped / Blocked, in words'),
    durationMs: Millis,
    fingerprintUnchanged: z.boolean().optional().describe("Blocked / Failed tiers in rehearsal: the clone's fingerprint did not move"),
    guardProven: z.boolean().optional().describe("Blocked gated tiers in rehearsal: the file's own guard aborted it"),
    delta: DeltaSchema.nullable(),
    post: z.array(PostResultSchema),
    expectations: z.array(ExpectationResultSchema).optional(),
    failedAssertions: z.array(SqlFailureSchema).optional().describe('verify tiers: the assertions that failed'),
    error: SqlFailureSchema.nullable(),
  })
  .meta({ id: 'TierResult', description: 'What happened to one tier in one run.' });

export const GateReadingSchema = z
  .object({ name: z.string(), value: MetricValue, min: z.number(), open: z.boolean() })
  .meta({ id: 'GateReading', description: "The gate's value read on a database, and whether it is open (value >= min)." });

export const CheckRecordSchema = z
  .object({ name: z.string(), ok: z.boolean(), detail: z.string() })
  .meta({ id: 'CheckRecord', description: 'A check a stage made beyond its tiers (fingerprints, honest gaps …).' });

export const StageRecordSchema = z
  .object({
    name: z.enum(['A', 'B', 'C']),
    title: z.string(),
    tiers: z.array(TierResultSchema),
    checks: z.array(CheckRecordSchema),
  })
  .meta({ id: 'StageRecord', description: 'A: gate closed; B: gate opened on the clone; C: rollback and re-apply.' });

export const FingerprintDiffSchema = z
  .object({ objects: z.array(z.string()), tables: z.array(z.string()) })
  .meta({ id: 'FingerprintDiff', description: 'Objects and tables whose fingerprints differ.' });

export const EvidenceSchema = z
  .object({
    schemaVersion: z
      .number()
      .int()
      .meta({ const: EVIDENCE_SCHEMA_VERSION, description: 'bumped on incompatible change' }),
    tool: z.object({ name: z.literal('tiergate'), version: z.string() }),
    createdAt: z.string().describe('ISO 8601 timestamp of the rehearsal'),
    plan: z.object({
      name: z.string(),
      dir: z.string(),
      sha256: z.string(),
      files: z.record(z.string(), z.string()).describe('plan-relative file → sha256'),
    }),
    source: z.object({
      kind: z.enum(['pglite-sample', 'postgres', 'dump']),
      location: z.string().describe('redacted URL or file name'),
      database: z.string(),
      gate: GateReadingSchema.nullable(),
      preflight: TierResultSchema.nullable(),
    }),
    clone: z.object({
      kind: z.enum(['pglite', 'postgres']),
      location: z.string(),
      kept: z.boolean(),
      copyMs: Millis,
    }),
    stages: z.array(StageRecordSchema),
    rollback: z
      .object({
        tier: z.number().int().nonnegative(),
        reverted: z.array(z.number().int().nonnegative()),
        matchesKeptTiers: z.boolean(),
        reapplyMatches: z.boolean(),
        keptDiff: FingerprintDiffSchema.nullable(),
        reapplyDiff: FingerprintDiffSchema.nullable(),
      })
      .nullable(),
    verdict: z.object({
      rehearsal: z.enum(['PASS', 'FAIL']),
      execution: z.enum(['GO', 'NO-GO']),
      reason: z.string(),
      failures: z.array(z.string()),
    }),
    durationMs: Millis,
  })
  .meta({
    title: 'tiergate evidence',
    description: 'The full record of a tiergate rehearsal (evidence.json).',
  });

// ---- compile-time check: the schema and the TypeScript types are the same type ----
// Mutual assignability is not enough (an optional field added to one side only
// would pass), hence the exact-identity test.
type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Deep<T> = T extends object ? { [K in keyof T]: Deep<T[K]> } : T;
const schemaMatchesTypes: Equals<Deep<z.infer<typeof EvidenceSchema>>, Deep<Evidence>> = true;
void schemaMatchesTypes;
