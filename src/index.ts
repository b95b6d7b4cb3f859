/**
 * tiergate's public API, by name. The CLI (src/cli/) is a thin layer over
 * these: plan → engine / rehearsal → report.
 *
 * @example
 *   import { loadPlan, openDb, apply } from 'tiergate';
 *   const plan = loadPlan('plans/axis-governance');
 *   const db = await openDb('postgres://deploy@prod/directus');
 *   try { const r = await apply(db, plan); console.log(r.outcome); } finally { await db.close(); }
 */
export { loadPlan } from './plan/load-plan.js';
export { openPlan } from './plan/open-plan.js';
export { bundledPlanDir, planFileHashes, type Plan, type Tier } from './plan/plan.js';
export { lintPlan, lintErrors, type LintFinding } from './plan/lint.js';
export { splitStatements, touchedRelations, type SqlStatement } from './plan/sql-facts.js';
export { openDb, withDb, parseTarget, type Target } from './db/open-db.js';
export type { Db, Queryable, Capabilities } from './db/port.js';
export { apply, decide, type ApplyOptions, type RehearsalBinding } from './engine/apply.js';
export { dryRun, type DryRunResult } from './engine/dry-run.js';
export { rollback, previewRollback } from './engine/rollback.js';
export { verify } from './engine/verify.js';
export { status, type StatusResult, type TierStatusLine } from './engine/status.js';
export { history, type HistoryResult } from './engine/history.js';
export type { RunResult, EngineEvent } from './engine/run-result.js';
export type { TierResult, TierStatus, Delta, GateReading, DatabaseIdentity } from './engine/result.js';
export { readIdentity, type TargetIdentity } from './probe/identity.js';
export { fingerprint, diffFingerprints, sameFingerprint, type Fingerprint } from './probe/fingerprint.js';
export { rehearse, openGate, type RehearseOptions, type RehearsalEvent, type SourceInfo } from './rehearsal/rehearse.js';
export { withClones, markClone, isMarkedClone, type Clone, type CloneSource } from './rehearsal/clone.js';
export { bindEvidence, diffDeltas, DEFAULT_MAX_EVIDENCE_AGE_MS } from './rehearsal/bind-evidence.js';
export { EVIDENCE_SCHEMA_VERSION } from './evidence/version.js';
export type { Evidence } from './evidence/types.js';
export { computeVerdict, coverageProblems } from './evidence/verdict.js';
export { renderMarkdown, renderHtml, renderJson, parseEvidence, renderVerdictLine } from './report/index.js';
export {
  PlanError,
  UsageError,
  LockHeldError,
  DriftError,
  ConnectionError,
  TargetError,
  BlockedError,
  CommitInDoubtError,
  DeclinedError,
  InterruptedError,
  EvidenceRefusedError,
  TiergateError,
  type ExitCode,
} from './errors.js';
export { redactUrl, scrub } from './secrets.js';
