/**
 * The types of tiergate's results and evidence, inferred from their one
 * schema (`schema.ts`). Type-only: importing them loads nothing at run time,
 * so the engine uses them without loading the schema library.
 */
import type { z } from 'zod';
import type {
  ApprovalSchema,
  CheckRecordSchema,
  CloneSnapshotSchema,
  DatabaseIdentitySchema,
  DeltaSchema,
  DifferenceSchema,
  EvidenceSchema,
  ExpectationResultSchema,
  FingerprintDiffSchema,
  GateReadingSchema,
  MetricChangeSchema,
  ObjectChangesSchema,
  PostResultSchema,
  RowChangesSchema,
  StageRecordSchema,
  TierResultSchema,
  TierStatusSchema,
} from './schema.js';

export type ObjectChanges = z.infer<typeof ObjectChangesSchema>;
export type RowChanges = z.infer<typeof RowChangesSchema>;
export type MetricChange = z.infer<typeof MetricChangeSchema>;
/** The measured difference a tier made. */
export type Delta = z.infer<typeof DeltaSchema>;
export type PostResult = z.infer<typeof PostResultSchema>;
/** One expectation of the plan compared with what was measured. */
export type ExpectationResult = z.infer<typeof ExpectationResultSchema>;
/** Where a production tier differs from its rehearsal. */
export type Difference = z.infer<typeof DifferenceSchema>;
/** What happened to one tier in one run. */
export type TierStatus = z.infer<typeof TierStatusSchema>;
export type TierResult = z.infer<typeof TierResultSchema>;
export type GateReading = z.infer<typeof GateReadingSchema>;
/** One approval as the gate judges it: counts, or why not. */
export type Approval = z.infer<typeof ApprovalSchema>;
/** Which database this is (cluster, database, engine): evidence is bound to it. */
export type DatabaseIdentity = z.infer<typeof DatabaseIdentitySchema>;
/** The kept snapshot of the source the clones were copied from. */
export type CloneSnapshot = z.infer<typeof CloneSnapshotSchema>;
export type CheckRecord = z.infer<typeof CheckRecordSchema>;
export type StageRecord = z.infer<typeof StageRecordSchema>;
export type FingerprintDiff = z.infer<typeof FingerprintDiffSchema>;
/** The evidence contract (`evidence.json`). */
export type Evidence = z.infer<typeof EvidenceSchema>;

// The failure record is defined beside the error taxonomy (errors.ts, the bottom layer); the schema must describe exactly it.
import type { SqlFailure } from '../errors.js';
import type { SqlFailureSchema } from './schema.js';
type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const failureSchemaMatches: Equals<z.infer<typeof SqlFailureSchema>, SqlFailure> = true;
void failureSchemaMatches;

/** What helps a gate that reads no value (`GateReading.unread`): approvals do not. (A string: loading it loads nothing else.) */
export const GATE_UNREAD_FIX = 'create what gate.sql reads, or correct it in tiergate.yaml';
