import type { Queryable } from '../db/port.js';
import type { Plan } from '../plan/plan.js';
import { DbError } from '../errors.js';
import { assertOneQuery, MetricReadError, readNumberSaying, readRows, readText } from '../probe/metrics.js';
import type { Approval, GateReading } from './result.js';

/**
 * Reads the plan's gate: its value and, when the plan names one, its subject
 * (what the approvals approve). Inside a gated tier's transaction `lockRows`
 * first runs the gate's `lock` query (FOR SHARE on the approval rows), so an
 * approval cannot be revoked between this read and COMMIT. A gate whose
 * objects do not exist reads as closed (value null, and `unread` says why: the server's error, or what it returned); any other error is
 * thrown (a gate read under someone's lock is not a closed gate). Null when
 * the plan has no gate.
 */
export async function readGate(q: Queryable, plan: Plan, options: { lockRows?: boolean } = {}): Promise<GateReading | null> {
  const gate = plan.gate;
  if (!gate) return null;
  if (options.lockRows && gate.lock) {
    const what = `the lock of gate '${gate.name}'`;
    await assertOneQuery(what, gate.lock);
    // a failure is the plan's query's (tiergate.yaml), not the tier file's
    await q.query(gate.lock).catch((e: unknown) => {
      throw e instanceof DbError ? new MetricReadError(what, e.sqlstate === '42501' ? lockNotPermitted(e) : e) : e;
    });
  }
  const { value, why } = await readNumberSaying(q, `gate '${gate.name}'`, gate.sql);
  const subject = gate.subject ? await readText(q, `the subject of gate '${gate.name}'`, gate.subject) : null;
  const reading: GateReading = { name: gate.name, value, min: gate.min, open: value !== null && value >= gate.min, subject };
  // closed for want of a value, not of approvals: said wherever the gate is (a typo in gate.sql reads as a missing column)
  if (why) reading.unread = why;
  if (gate.approvals) reading.approvals = await readApprovals(q, gate.name, gate.approvals);
  return reading;
}

/**
 * The gate's lock refused for want of a privilege: a row lock (FOR SHARE)
 * needs UPDATE on the table besides SELECT, which a deploying user that
 * only reads the approvals lacks. Says which, and why the lock is taken.
 */
function lockNotPermitted(e: DbError): DbError {
  const table = /permission denied for (?:table|view) "?([^"\s]+)"?/.exec(e.message)?.[1];
  const hint = `the gate's lock takes the approval rows FOR SHARE, so that no approval is revoked or changed before the tier commits; PostgreSQL allows a row lock only with UPDATE on the table: GRANT UPDATE ON ${table ?? 'the table it names'} TO the deploying user (it updates nothing), or apply as a user who has it`;
  return new DbError(e.message, e.sqlstate, e.detail, hint, e.position, e.where);
}

/** Every approval as the plan's `gate.approvals` judges it; empty when its objects do not exist yet. */
export async function readApprovals(q: Queryable, gateName: string, sql: string): Promise<Approval[]> {
  const rows = await readRows<{ id: unknown; approver: unknown; at: unknown; subject: unknown; why: unknown }>(q, `the approvals of gate '${gateName}'`, sql);
  return rows.map((r) => ({
    id: String(r.id),
    approver: String(r.approver ?? ''),
    at: r.at === null || r.at === undefined ? null : new Date(r.at as string).toISOString(),
    subject: r.subject === null || r.subject === undefined ? null : String(r.subject).trim(),
    counts: r.why === null || r.why === undefined,
    why: r.why === null || r.why === undefined ? null : String(r.why),
  }));
}

/** Why a gated tier does not run: `gate closed (ospa=0, needs ≥ 1)`, with why it reads no value when it reads none. */
export function gateClosedReason(g: GateReading): string {
  return `gate closed (${g.name}=${g.value ?? 'n/a'}, needs ≥ ${g.min}${g.unread ? `; it reads no value: ${g.unread}` : ''})`;
}

/** `ospa=0`: the gate as the verdict line shows it. */
export function gateLabel(g: GateReading | null): string {
  return g ? `${g.name}=${g.value ?? 'n/a'}` : 'no gate';
}
