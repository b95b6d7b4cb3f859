import type { Db } from '../db/port.js';
import { DbError, TargetError, UsageError } from '../errors.js';
import { MISSING_OBJECT } from '../probe/metrics.js';
import type { Plan } from '../plan/plan.js';
import type { TargetIdentity } from '../probe/identity.js';
import { GATE_UNREAD_FIX } from '../evidence/types.js';
import { readApprovals, readGate } from './gate.js';
import { openPlanSession } from './preflight.js';
import { gateReads, refuseLacking } from './privileges.js';
import { whyReadOnly } from './rollout.js';
import { namingBlockers } from './session-bounds.js';
import type { Approval, GateReading } from './result.js';

export interface ApproveResult {
  plan: { name: string };
  target: string;
  identity: TargetIdentity;
  /** what was approved (`--proposal`) */
  proposal: string;
  approval: Approval;
  /** the gate after the approval */
  gate: GateReading | null;
}

/**
 * Records an approval by `as` (a Directus user's email, for the bundled
 * plan) of `proposal`, with the plan's `gate.approve`, in one transaction
 * that is rolled back — nothing recorded, UsageError (exit 2) saying why —
 * when the approval would not count: the user is unknown, not active, the
 * proposal's author, without the approver policy, or has approved already.
 * The session is named `tiergate approve`, so the approval row records that
 * tiergate made it (the bundled plan's tier 7).
 *
 * @example await approve(db, plan, { as: 'admin@northwind.example' }) // { approval: { counts: true, … }, gate: { value: 1, open: true, … } }
 */
export async function approve(db: Db, plan: Plan, options: { as: string; proposal?: string }): Promise<ApproveResult> {
  const gate = plan.gate;
  if (!gate?.approve || !gate.approvals) {
    throw new UsageError(`plan '${plan.name}' says nothing of how to approve (gate.approve and gate.approvals): approve as its gate's documentation says`);
  }
  const proposal = options.proposal ?? gate.approve.proposal;
  if (!options.as.trim()) throw new UsageError('--as is empty: give the email of the Directus user who approves');
  const identity = await openPlanSession(db, plan);
  const readOnly = await whyReadOnly(db);
  if (readOnly) throw new TargetError(`cannot approve on ${db.displayUrl}: ${readOnly}; nothing was recorded`);
  await refuseLacking(db, 'approve', [{ label: "the plan's approval (gate.approve.sql in tiergate.yaml)", sql: gate.approve.sql }, ...gateReads(plan)]);
  // (a refusal for want of a privilege is named once the transaction is over: which GRANT)
  const { approval, reading } = await namingBlockers(db, `approving '${proposal}' as ${options.as}`, gate.approve.sql, () => db.transaction(async (tx) => {
    await tx.query(`select set_config('application_name', $1, true)`, [`tiergate approve ${plan.name}`]);
    const inserted = await tx.query<{ id: unknown }>(gate.approve!.sql, [options.as, proposal]).catch((e: unknown) => {
      // the proposal's tables (or the users') are not here: a database the plan's gate cannot read, said as status says it
      if (e instanceof DbError && e.sqlstate !== null && MISSING_OBJECT.has(e.sqlstate)) {
        throw new TargetError(
          `cannot approve on ${db.displayUrl}: ${e.message} (SQLSTATE ${e.sqlstate}): the gate ${gate.name} of plan '${plan.name}' reads what is not there; nothing was recorded — is this the plan's database, with its proposal tables? ('tiergate status' says what the gate reads)`,
        );
      }
      throw e;
    });
    const id = inserted.rows[0]?.id;
    if (id === undefined || id === null) {
      // which of the two: the gate's subject is its proposal's (read when the proposal is the gate's)
      const subject = proposal === gate.approve!.proposal && gate.subject ? ((await readGate(tx, plan))?.subject ?? null) : undefined;
      throw new UsageError(
        subject
          ? `nothing to approve: no Directus user with email '${options.as}' on ${db.displayUrl} (the proposal '${proposal}' is there): check the email; nothing was recorded`
          : subject === null
            ? `nothing to approve: no proposal '${proposal}' on ${db.displayUrl} (its gate has no subject to approve); nothing was recorded`
            : `nothing to approve: no Directus user with email '${options.as}', or no proposal '${proposal}' on ${db.displayUrl}; nothing was recorded`,
      );
    }
    const mine = (await readApprovals(tx, gate.name, gate.approvals!)).find((a) => a.id === String(id));
    if (!mine) {
      throw new UsageError(`an approval of '${proposal}' would not count toward gate ${gate.name} (it counts ${gate.approve!.proposal}); nothing was recorded`);
    }
    if (!mine.counts) throw new UsageError(`${options.as} cannot approve '${proposal}' on ${db.displayUrl}: ${mine.why}; nothing was recorded`);
    // the gate with this approval in it (what the command reports once it commits); one that reads no value here
    // (a misspelt column in gate.sql) is opened by no approval: this one would not count either
    const reading = await readGate(tx, plan);
    if (reading?.unread) {
      throw new TargetError(`cannot approve on ${db.displayUrl}: the gate ${gate.name} reads no value here (${reading.unread}), so no approval can open it; nothing was recorded — ${GATE_UNREAD_FIX}`);
    }
    return { approval: mine, reading };
  }), ['SELECT', 'INSERT']);
  return { plan: { name: plan.name }, target: db.displayUrl, identity, proposal, approval, gate: reading };
}
