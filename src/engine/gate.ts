import type { Queryable } from '../db/port.js';
import type { Plan } from '../plan/plan.js';
import { readNumber } from '../probe/metrics.js';
import type { GateReading } from './result.js';

/**
 * Reads the plan's gate. Inside a gated tier's transaction `lockRows` first
 * runs the gate's `lock` query (FOR SHARE on the approval rows), so an
 * approval cannot be revoked between this read and COMMIT. A gate query that
 * fails reads as closed (value null). Null when the plan has no gate.
 */
export async function readGate(q: Queryable, plan: Plan, options: { lockRows?: boolean } = {}): Promise<GateReading | null> {
  const gate = plan.gate;
  if (!gate) return null;
  if (options.lockRows && gate.lock) await q.query(gate.lock);
  const value = await readNumber(q, gate.sql);
  return { name: gate.name, value, min: gate.min, open: value !== null && value >= gate.min };
}

/** `ospa=0`: the gate as the verdict line shows it. */
export function gateLabel(g: GateReading | null): string {
  return g ? `${g.name}=${g.value ?? 'n/a'}` : 'no gate';
}
