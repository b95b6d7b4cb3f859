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
export { lintPlan, splitStatements, touchedRelations, type LintFinding, type SqlStatement } from './plan/lint.js';
export { openDb, withDb, parseTarget, type Target } from './db/open-db.js';
export type { Db, Queryable, Capabilities } from './db/port.js';
export { apply, rollback, verify, status, type RunResult, type StatusResult, type EngineEvent, type ApplyOptions } from './engine/apply.js';
export type { TierResult, TierStatus, Delta, GateReading } from './engine/result.js';
export { fingerprint, diffFingerprints, sameFingerprint, type Fingerprint } from './probe/fingerprint.js';
export { rehearse, openGate, type RehearseOptions, type RehearsalEvent, type SourceInfo } from './rehearsal/rehearse.js';
export { withClones, markClone, isMarkedClone, type Clone, type CloneSource } from './rehearsal/clone.js';
export { bindEvidence } from './rehearsal/bind-evidence.js';
export { EVIDENCE_SCHEMA_VERSION, type Evidence } from './rehearsal/evidence.js';
export { renderMarkdown, renderHtml, renderJson, parseEvidence, renderVerdictLine } from './report/index.js';
export { PlanError, UsageError, LockHeldError, DriftError, ConnectionError, TargetError, BlockedError, CommitInDoubtError, TiergateError, type ExitCode } from './errors.js';
export { redactUrl, scrub } from './secrets.js';
