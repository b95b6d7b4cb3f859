import type { SqlFailure } from '../errors.js';
import type { ObjectKind, TierKind } from '../plan/schema.js';

/** What happened to one tier in one run. */
export type TierStatus = 'Applied' | 'Skipped' | 'Blocked' | 'Failed' | 'Reverted' | 'Passed';

export interface ObjectChanges {
  added: string[];
  removed: string[];
  changed: string[];
}

export interface RowChanges {
  added: number;
  removed: number;
  changed: number;
}

export interface MetricChange {
  before: number | null;
  after: number | null;
}

/** The measured difference a tier made. */
export interface Delta {
  objects: Partial<Record<ObjectKind, ObjectChanges>>;
  rows: Record<string, RowChanges>;
  metrics: Record<string, MetricChange>;
}

export interface PostResult {
  expr: string;
  ok: boolean;
  /** the metric's value when checked (null: n/a) */
  value: number | null;
}

/** One expectation of the plan compared with what was measured. */
export interface ExpectationResult {
  what: string;
  expected: string;
  actual: string;
  ok: boolean;
}

export interface TierResult {
  id: number;
  name: string;
  kind: TierKind;
  file: string;
  sha256: string;
  status: TierStatus;
  /** why a tier was Skipped / Blocked, in words */
  reason: string | null;
  durationMs: number;
  /** for Blocked / Failed tiers in rehearsal: the clone's fingerprint did not move */
  fingerprintUnchanged?: boolean;
  /** for Blocked gated tiers in rehearsal: the file's own guard aborted it */
  guardProven?: boolean;
  delta: Delta | null;
  post: PostResult[];
  expectations?: ExpectationResult[];
  /** verify tiers: the assertions that failed */
  failedAssertions?: SqlFailure[];
  error: SqlFailure | null;
}

export interface GateReading {
  name: string;
  value: number | null;
  min: number;
  open: boolean;
}
