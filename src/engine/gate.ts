import type { Queryable } from '../db/port.js';
import type { Plan } from '../plan/plan.js';
import { assertOneQuery, readNumber, readRows, readText } from '../probe/metrics.js';
import type { Approval, GateReading } from './result.js';

/**
 * Reads the plan's gate: its value and, when the plan names one, its subject
 * (what the approvals approve). Inside a gated tier's transaction `lockRows`
 * first runs the gate's `lock` query (FOR SHARE on the approval rows), so an
 * approval cannot be revoked between this read and COMMIT. A gate whose
 * objects do not exist reads as closed (value null); any other error is
 * thrown (a gate read under someone's lock is not a closed gate). Null when
 * the plan has no gate.
 */
export async function readGate(q: Queryable, plan: Plan, options: { lockRows?: boolean } = {}): Promise<GateReading | null> {
  const gate = plan.gate;
  if (!gate) return null;
  if (options.lockRows && gate.lock) {
    await assertOneQuery(`the lock of gate '${gate.name}'`, gate.lock);
    await q.query(gate.lock);
  }
  const value = await readNumber(q, `gate '${gate.name}'`, gate.sql);
  const subject = gate.subject ? await readText(q, `the subject of gate '${gate.name}'`, gate.subject) : null;
  const reading: GateReading = { name: gate.name, value, min: gate.min, open: value !== null && value >= gate.min, subject };
  if (gate.approvals) reading.approvals = await readApprovals(q, gate.name, gate.approvals);
  return reading;
}

/**
 * Why the gate reads no value (null when it reads one): the server's message
 * when a relation its query reads does not exist here (the bundled plan's
 * proposal tables, before anyone created them), or that it returned no row.
 */
export async function whyGateReadsNothing(q: Queryable, plan: Plan): Promise<string | null> {
  const sql = plan.gate?.sql;
  if (!sql) return null;
  await q.exec('savepoint tiergate_gate_why');
  try {
    const r = await q.query(sql);
    const v = r.rows[0] ? Object.values(r.rows[0])[0] : null;
    return v === null || v === undefined ? 'its query returned no value' : null;
  } catch (e) {
    return `its query fails here: ${e instanceof Error ? e.message : String(e)}`;
  } finally {
    await q.exec('rollback to savepoint tiergate_gate_why; release savepoint tiergate_gate_why');
  }
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

/** `ospa=0`: the gate as the verdict line shows it. */
export function gateLabel(g: GateReading | null): string {
  return g ? `${g.name}=${g.value ?? 'n/a'}` : 'no gate';
}
