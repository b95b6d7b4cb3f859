import type { Db, Queryable, TransactionOptions } from '../db/port.js';
import { DbError, TargetError, UsageError } from '../errors.js';
import type { Plan } from '../plan/plan.js';
import { MISSING_OBJECT, readMetrics } from '../probe/metrics.js';
import type { TargetIdentity } from '../probe/identity.js';
import { TURN_OFF_LOCAL } from '../probe/jit.js';
import { amendment } from './apply.js';
import { readGate } from './gate.js';
import { readLedger, type LedgerEntry } from './ledger.js';
import { openPlanSession } from './preflight.js';
import { whyReadOnly } from './rollout.js';
import type { GateReading } from './result.js';
import { gateReads, LEDGER_READ, metricReads, refuseLacking } from './privileges.js';
import { namingBlockers } from './session-bounds.js';

/**
 * Day two: the loop that keeps governance true as the database changes —
 * scan (what governance misses here), propose (an amended payload drafted
 * from the approved one and the findings), submit (the draft becomes the
 * proposal to approve: the gate's subject changes, earlier approvals stop
 * counting). Approving, rehearsing and applying the amendment are the usual
 * commands: a gated tier applied for another subject is pending again.
 * What is found and how a payload is drafted is the plan's (`amend:`).
 */

export interface Finding {
  kind: string;
  item: string;
  severity: 'critical' | 'warning';
  detail: string;
}

export interface ScanResult {
  plan: { name: string };
  target: string;
  identity: TargetIdentity;
  findings: Finding[];
  critical: number;
  metrics: Record<string, number | null>;
  gate: GateReading | null;
}

export interface Suggestion {
  item: string;
  action: string;
  owner: string | null;
  topic: string | null;
  reason: string;
}

export interface DraftResult {
  plan: { name: string };
  target: string;
  /** the gate's subject now (what the approvals approve) */
  subject: string | null;
  payload: unknown;
  suggestions: Suggestion[];
  findings: Finding[];
}

function amendOf(plan: Plan): NonNullable<Plan['amend']> {
  if (!plan.amend) throw new UsageError(`plan '${plan.name}' has no amend: section (findings, draft, submit): it cannot scan or propose`);
  return plan.amend;
}

/** The plan's objects must exist here: a query over a missing one means the rollout has not been applied. */
function notApplied(plan: Plan, db: Db, e: unknown, command: 'scan' | 'propose'): never {
  if (e instanceof DbError && e.sqlstate && MISSING_OBJECT.has(e.sqlstate)) {
    throw new TargetError(`plan '${plan.name}' is not applied on ${db.displayUrl} (${e.message}): apply its structure first (tiergate apply --target URL --structure-only: no approval needed), then ${command}`);
  }
  throw e;
}

async function readFindings(tx: Queryable, sql: string): Promise<Finding[]> {
  const r = await tx.query<Record<string, unknown>>(sql);
  return r.rows.map((row) => ({
    kind: String(row.kind ?? ''),
    item: String(row.item ?? ''),
    severity: row.severity === 'critical' ? 'critical' : 'warning',
    detail: String(row.detail ?? ''),
  }));
}

/**
 * `tiergate scan`: runs the plan's scanner (`amend.scan`, in its own
 * committed transaction: it records its run), then reads the findings,
 * the metrics and the gate read-only.
 *
 * @example (await scan(db, plan)).findings // [{ kind: 'new collection without owner', item: 'reviews', severity: 'critical', … }]
 */
export async function scan(db: Db, plan: Plan): Promise<ScanResult> {
  const amend = amendOf(plan);
  const identity = await openPlanSession(db, plan);
  try {
    if (amend.scan) {
      // the scanner records its run: a database nothing can be written on is said so, not refused by the server
      const readOnly = await whyReadOnly(db);
      if (readOnly) throw new TargetError(`cannot scan ${db.displayUrl}: the plan's scanner records its run there, and ${readOnly}; nothing was changed`);
      await refuseLacking(db, 'scan', [
        { label: "the plan's scanner (amend.scan in tiergate.yaml, and the functions it calls)", sql: amend.scan },
        { label: "the plan's findings (amend.findings)", sql: amend.findings },
        ...metricReads(plan),
        ...gateReads(plan),
      ]);
      await namingBlockers(db, "running the plan's scanner", amend.scan, () =>
        withoutJitTx(db, async (tx) => {
          await tx.query(`select set_config('application_name', $1, true)`, [`tiergate scan ${plan.name}`]);
          await tx.query(amend.scan!);
        }),
        // (it records its run: the bundled plan's inserts a row, and updates its metrics' last values)
        ['SELECT', 'INSERT', 'UPDATE'],
      );
    }
    const read = await namingBlockers(db, 'reading the findings', amend.findings, () =>
      withoutJitTx(db, async (tx) => ({ findings: await readFindings(tx, amend.findings), metrics: await readMetrics(tx, plan.metrics), gate: await readGate(tx, plan) }), { readOnly: true }),
    );
    return { plan: { name: plan.name }, target: db.displayUrl, identity, ...read, critical: read.findings.filter((f) => f.severity === 'critical').length };
  } catch (e) {
    return notApplied(plan, db, e, 'scan');
  }
}

/**
 * Whether the proposal's current payload is in effect on this database, for
 * the plan's draft (`tiergate.payload_in_effect`, a setting of the draft's
 * transaction): 'true' when every gated tier is applied for the gate's
 * current subject, 'false' when not (an amendment submitted but not
 * applied, or rolled back: a new draft revises it instead of amending it),
 * 'none' when no gated tier was ever applied here (the substrate alone,
 * `apply --structure-only`: a draft revises the proposal itself, there is
 * nothing to amend yet), '' when nothing tells (no subject).
 */
export function payloadInEffect(plan: Plan, ledger: Map<number, LedgerEntry>, gate: GateReading | null): 'true' | 'false' | 'none' | '' {
  const gated = plan.tiers.filter((t) => t.gated);
  if (!gate?.subject) return '';
  if (!gated.some((t) => ledger.has(t.id))) return 'none';
  return gated.every((t) => ledger.get(t.id)?.status === 'applied' && ledger.get(t.id)?.subject === gate.subject) ? 'true' : 'false';
}

/**
 * `tiergate propose`: the plan's draft of an amended payload (the approved
 * one plus the findings, each suggestion with its reason), read-only:
 * nothing is written until it is submitted.
 */
export async function draft(db: Db, plan: Plan): Promise<DraftResult> {
  const amend = amendOf(plan);
  await openPlanSession(db, plan);
  // every GRANT a reading user lacks in one message, not one a run
  await refuseLacking(db, 'draft the amendment', [
    LEDGER_READ,
    { label: "the plan's findings (amend.findings in tiergate.yaml)", sql: amend.findings },
    { label: "the plan's draft (amend.draft, and the functions it calls)", sql: amend.draft },
    ...gateReads(plan),
  ]);
  try {
    const ledger = await namingBlockers(db, `reading the ledger of plan '${plan.name}'`, 'select from tiergate.ledger', () => readLedger(db, plan.name));
    return await namingBlockers(db, 'drafting the amendment', amend.draft, () =>
      withoutJitTx(
        db,
        async (tx) => {
          const findings = await readFindings(tx, amend.findings);
          const gate = await readGate(tx, plan);
          await tx.query(`select set_config('tiergate.payload_in_effect', $1, true)`, [payloadInEffect(plan, ledger, gate)]);
          const r = await tx.query<{ payload: unknown; suggestions: unknown }>(amend.draft);
          const row = r.rows[0];
          if (!row) throw new TargetError(`the plan's draft query returned no row on ${db.displayUrl}: is its proposal there?`);
          const payload = typeof row.payload === 'string' ? JSON.parse(row.payload) : row.payload;
          const raw = typeof row.suggestions === 'string' ? JSON.parse(row.suggestions) : row.suggestions;
          const suggestions = (Array.isArray(raw) ? raw : []).map((s: Record<string, unknown>) => ({
            item: String(s.item ?? ''),
            action: String(s.action ?? ''),
            owner: s.owner === null || s.owner === undefined ? null : String(s.owner),
            topic: s.topic === null || s.topic === undefined ? null : String(s.topic),
            reason: String(s.reason ?? ''),
          }));
          return { plan: { name: plan.name }, target: db.displayUrl, subject: gate?.subject ?? null, payload, suggestions, findings };
        },
        { readOnly: true },
      ),
    );
  } catch (e) {
    return notApplied(plan, db, e, 'propose');
  }
}

export interface SubmitResult {
  plan: { name: string };
  target: string;
  /** the subject before and after: approvals of `before` no longer count */
  before: string | null;
  after: string;
  gate: GateReading | null;
  /** gated tiers applied for the previous subject: pending again */
  pending: number[];
}

/**
 * `propose --submit`: writes the payload as the proposal to approve, in one
 * transaction (it waits at most the plan's lock_timeout for a tier that
 * holds the proposal, naming it). Refused when nothing would change.
 */
export async function submit(db: Db, plan: Plan, payload: unknown, options: { as?: string } = {}): Promise<SubmitResult> {
  const amend = amendOf(plan);
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) throw new UsageError('the payload to submit must be a JSON object');
  const as = options.as?.trim();
  if (options.as !== undefined && !as) throw new UsageError('--as is empty: give the email of the Directus user who drafted the payload; nothing was submitted');
  if (as && !amend.author) throw new UsageError(`plan '${plan.name}' records no author of a payload (amend.author in tiergate.yaml): submit without --as; nothing was submitted`);
  await openPlanSession(db, plan);
  const readOnly = await whyReadOnly(db);
  if (readOnly) throw new TargetError(`cannot submit the amendment on ${db.displayUrl}: ${readOnly}; nothing was submitted`);
  await refuseLacking(db, 'submit the amendment', [
    { label: "the plan's submit (amend.submit in tiergate.yaml, and the functions it calls)", sql: amend.submit },
    ...(as && amend.author ? [{ label: "the plan's author of a payload (amend.author)", sql: amend.author }] : []),
    ...(amend.check ? [{ label: "the plan's check of a payload (amend.check)", sql: amend.check }] : []),
    ...gateReads(plan),
  ]);
  const text = JSON.stringify(payload);
  const out = await namingBlockers(db, 'submitting the amendment', amend.submit, () =>
    withoutJitTx(db, async (tx) => {
      await tx.query(`select set_config('application_name', $1, true)`, [`tiergate propose ${plan.name}`]);
      const before = (await readGate(tx, plan))?.subject ?? null;
      if (amend.check) {
        // the plan's own check of the payload: a payload its tiers would refuse is not submitted (its approvals would stop counting for nothing)
        const problems = (await tx.query<Record<string, unknown>>(amend.check, [text])).rows.map((row) => String(Object.values(row)[0] ?? '')).filter(Boolean);
        if (problems.length) {
          throw new UsageError(
            // every one, a line each: the payload is edited once, not once a run
            `the payload cannot be submitted (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${problems.map((p) => `  - ${p.replace(/\s*\n\s*/g, ' ')}`).join('\n')}\nnothing was submitted (tiergate propose --out FILE drafts it, edit FILE, then --submit FILE)`,
          );
        }
      }
      const r = await tx.query<Record<string, unknown>>(amend.submit, [text]);
      const v = r.rows[0] ? Object.values(r.rows[0])[0] : null;
      if (v === null || v === undefined) throw new TargetError(`the plan's submit query wrote nothing on ${db.displayUrl}: is its proposal there?`);
      const after = String(v).trim();
      if (after === before) throw new UsageError(`the payload is the one already proposed (subject ${after.slice(0, 12)}): nothing to submit; nothing was changed`);
      // who drafted it: the proposal's author from now on, whom the gate does not count (a submitter could otherwise approve their own payload)
      if (as && amend.author) {
        const recorded = await tx.query(amend.author, [as]).catch((e: unknown) => {
          // a proposal table without the author's column (Directus's user_created): said so, not the bare SQL error
          if (e instanceof DbError && e.sqlstate !== null && MISSING_OBJECT.has(e.sqlstate)) {
            throw new TargetError(
              `--as ${as}: the plan's amend.author cannot record an author on ${db.displayUrl}: ${e.message} (SQLSTATE ${e.sqlstate}); submit without --as, or give the proposal table the column it writes; nothing was submitted`,
            );
          }
          throw e;
        });
        if (!recorded.rows.length) throw new UsageError(`--as ${as}: no Directus user with that email on ${db.displayUrl} to record as the payload's author; nothing was submitted`);
      }
      return { before, after, gate: await readGate(tx, plan) };
    }),
    ['SELECT', 'UPDATE'],
  );
  const ledger = await namingBlockers(db, `reading the ledger of plan '${plan.name}'`, 'select from tiergate.ledger', () => readLedger(db, plan.name));
  const pending = plan.tiers.filter((t) => amendment(t, ledger.get(t.id), { subject: out.after })).map((t) => t.id);
  return { plan: { name: plan.name }, target: db.displayUrl, ...out, pending };
}

/**
 * A transaction for the plan's amend queries (scanner, findings, draft,
 * check, submit): they read Directus's whole metadata, where compiling them
 * costs more than it saves (src/probe/jit.ts; the draft at 6,500 collections
 * 6.5 s with JIT, 1.6 s without), so JIT is off until it ends.
 */
function withoutJitTx<T>(db: Db, fn: (tx: Queryable) => Promise<T>, options?: TransactionOptions): Promise<T> {
  return db.transaction(async (tx) => {
    await tx.query(TURN_OFF_LOCAL);
    return fn(tx);
  }, options);
}
