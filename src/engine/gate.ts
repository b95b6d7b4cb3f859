import type { Queryable } from '../db/port.js';
import type { Plan } from '../plan/plan.js';
import { readNumber, readText } from '../probe/metrics.js';
import type { GateReading } from './result.js';

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
  if (options.lockRows && gate.lock) await q.query(gate.lock);
  const value = await readNumber(q, `gate '${gate.name}'`, gate.sql);
  const subject = gate.subject ? await readText(q, `the subject of gate '${gate.name}'`, gate.subject) : null;
  return { name: gate.name, value, min: gate.min, open: value !== null && value >= gate.min, subject };
}

/** `ospa=0`: the gate as the verdict line shows it. */
export function gateLabel(g: GateReading | null): string {
  return g ? `${g.name}=${g.value ?? 'n/a'}` : 'no gate';
}
