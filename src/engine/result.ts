/**
 * What the engine returns: a result per tier, with its delta, post-conditions,
 * expectations and error. The types come from the one result and evidence
 * schema (src/evidence/schema.ts); this module names them for the engine.
 */
export type {
  Approval,
  Delta,
  DatabaseIdentity,
  Difference,
  ExpectationResult,
  GateReading,
  MetricChange,
  ObjectChanges,
  PostResult,
  RowChanges,
  TierResult,
  TierStatus,
} from '../evidence/types.js';
