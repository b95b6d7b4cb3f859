import type { Db } from '../db/port.js';
import { appliedRevision, type Plan, type Tier } from '../plan/plan.js';
import { checkPostCondition } from '../plan/post-condition.js';
import type { TargetIdentity } from '../probe/identity.js';
import { readMetrics } from '../probe/metrics.js';
import { amendment } from './apply.js';
import { readGate } from './gate.js';
import { readHandEdits, type HandEdits } from './hand-edits.js';
import { gateReads, LEDGER_READ, metricReads, refuseLacking } from './privileges.js';
import { readHistory, type HistoryEvent } from './ledger.js';
import { openPlanSession } from './preflight.js';
import type { GateReading } from './result.js';
import { namingBlockers } from './session-bounds.js';
import { plural } from '../text.js';

/** A tier's state on a target: its last result, whatever it was. */
export type TierState = 'applied' | 'reverted' | 'pending' | 'drift' | 'failed' | 'passed' | 'failing' | 'not run' | 'superseded';

export interface TierStatusLine {
  id: number;
  name: string;
  kind: string;
  file: string;
  sha256: string;
  state: TierState;
  /** when, by which database user, with which tiergate version the last result was recorded */
  at: string | null;
  by: string | null;
  version: string | null;
  /** the file's sha256 when it was last applied */
  appliedSha256: string | null;
  /** gated tiers: the gate subject it was applied for */
  subject: string | null;
  /** the last failure, when the last result is one */
  error: HistoryEvent['error'];
  /** more about the state, in words */
  note: string | null;
}

export interface StatusResult {
  plan: { name: string; sha256: string };
  target: string;
  identity: TargetIdentity;
  gate: GateReading | null;
  /** why the gate reads no value here (a relation its query reads does not exist …), null when it reads one */
  gateUnread: string | null;
  metrics: Record<string, number | null>;
  tiers: TierStatusLine[];
  /** tier ids the ledger has rows of under this plan's name that the plan does not have (another revision of it, or rows written by hand) */
  unknownTiers: number[];
  /** objects of the plan's schemas changed outside tiergate since its last tier here (src/engine/hand-edits.ts), null: none, or nothing to compare with */
  handEdits: HandEdits | null;
}

/**
 * Every tier's last result (applied, reverted, failed, passed …, with when,
 * who and which version), the gate and every metric, read-only (takes no
 * lock), on the plan's database only (another is refused, exit 2).
 */
export async function status(db: Db, plan: Plan): Promise<StatusResult> {
  const identity = await openPlanSession(db, plan);
  // every GRANT a reading user lacks in one message, not one a run
  await refuseLacking(db, 'read the status', [LEDGER_READ, ...gateReads(plan), ...metricReads(plan)]);
  const history = await namingBlockers(db, `reading the ledger of plan '${plan.name}'`, 'select from tiergate.ledger, tiergate.attempt', () => readHistory(db, plan.name));
  const { gate, metrics, handEdits } = await namingBlockers(db, 'reading the gate and metrics', [plan.gate?.sql ?? '', ...Object.values(plan.metrics)].join(';\n'), () =>
    db.transaction(
      // (the objects last: the comparison sets the settings their record was read with, for the rest of the transaction)
      async (tx) => ({ gate: await readGate(tx, plan), metrics: await readMetrics(tx, plan.metrics), handEdits: await readHandEdits(tx, plan) }),
      { readOnly: true },
    ),
  );
  const gateUnread = gate?.unread ?? null;
  const ids = new Set(plan.tiers.map((t) => t.id));
  const known = history.filter((e) => ids.has(e.tierId));
  return {
    plan: { name: plan.name, sha256: plan.sha256 },
    target: db.displayUrl,
    identity,
    gate,
    gateUnread,
    metrics,
    // (a tier the plan does not have is none of its tiers' history: a verify is not said to have passed before it)
    tiers: plan.tiers.map((t) => tierLine(t, known, gate, metrics, handEdits)),
    unknownTiers: [...new Set(history.filter((e) => !ids.has(e.tierId)).map((e) => e.tierId))].sort((a, b) => a - b),
    handEdits,
  };
}

function tierLine(t: Tier, history: HistoryEvent[], gate: GateReading | null, metrics: Record<string, number | null>, handEdits: HandEdits | null): TierStatusLine {
  const own = history.filter((e) => e.tierId === t.id);
  const lastLedger = own.filter((e) => e.source === 'ledger').at(-1);
  const last = own.at(-1);
  const base = { id: t.id, name: t.name, kind: t.kind, file: t.file, sha256: t.sha256, appliedSha256: lastLedger?.sha256 ?? null, subject: lastLedger?.subject ?? null };
  const when = (e: HistoryEvent | undefined) => ({ at: e?.at ?? null, by: e?.dbUser ?? null, version: e?.tiergateVersion ?? null });
  // a rollback tier that never ran is not waiting to run: only structure and data tiers are pending
  if (!last) return { ...base, state: t.kind === 'structure' || t.kind === 'data' ? 'pending' : 'not run', ...when(undefined), error: null, note: null };
  if (last.source === 'attempt' && last.outcome !== 'passed') {
    const note = lastLedger ? `last ${lastLedger.outcome} ${lastLedger.at}` : null;
    return { ...base, state: 'failed', ...when(last), error: last.error, note };
  }
  if (last.source === 'attempt') {
    // a check that passed before tiers changed (a rollback, an apply since) says nothing of now
    const latest = t.kind === 'verify' ? history.filter((e) => e.source === 'ledger' && e.at > last.at).at(-1) : undefined;
    const note = latest ? `passed before tier ${latest.tierId} was ${latest.outcome} (${latest.at}): run tiergate verify to check it now` : null;
    // a verify that passed, whose post-conditions the metrics read now refute (the database changed since): failing now
    const refuted = t.kind === 'verify' ? t.post.filter((p) => !checkPostCondition(p, metrics[p.metric] ?? null)) : [];
    // and one that fails now on the plan's objects changed outside tiergate (verify does)
    const edited = t.kind === 'verify' && handEdits ? handEdits : null;
    if (refuted.length || edited) {
      const now = [
        ...(refuted.length ? [`the metrics read now fail its post-conditions: ${refuted.map((p) => `${p.metric} = ${metrics[p.metric] ?? 'n/a'} (needs ${p.expr})`).join(', ')}`] : []),
        ...(edited ? [`${plural(edited.edits.length, 'object')} of the plan's schemas changed outside tiergate since (below)`] : []),
      ].join('; ');
      const then = latest ? `passed before tier ${latest.tierId} was ${latest.outcome} (${latest.at})` : 'passed then';
      return { ...base, state: 'failing', ...when(last), error: null, note: `${then}; ${now} — run tiergate verify for every failing assertion` };
    }
    return { ...base, state: 'passed', ...when(last), error: null, note };
  }
  if (t.kind === 'rollback') {
    // a rollback is in effect until a tier it reverted is applied again
    const reapplied = t.reverts.filter((id) => history.some((e) => e.tierId === id && e.source === 'ledger' && e.outcome === 'applied' && e.at > last.at));
    if (reapplied.length) return { ...base, state: 'superseded', ...when(last), error: null, note: `tier ${reapplied.join(', ')} applied again since` };
    return { ...base, state: 'applied', ...when(last), error: null, note: `tiers ${t.reverts.join(', ')} reverted` };
  }
  const revision = last.outcome === 'applied' ? appliedRevision(t, last.sha256) : 'current';
  const state = revision === 'drift' ? 'drift' : (last.outcome as 'applied' | 'reverted');
  if (state === 'drift') return { ...base, state, ...when(last), error: null, note: `applied from sha256 ${last.sha256.slice(0, 12)}, the file now has ${t.sha256.slice(0, 12)}` };
  const amended = lastLedger ? amendment(t, { status: lastLedger.outcome === 'applied' ? 'applied' : 'reverted', subject: lastLedger.subject ?? null }, gate) : null;
  if (amended) return { ...base, state: 'pending', ...when(last), error: null, note: `${amended}: apply runs it for the new subject once the gate is open` };
  const earlier = state === 'reverted' && t.gated && lastLedger?.subject ? own.filter((e) => e.source === 'ledger' && e.outcome === 'applied' && e.subject && e.subject !== lastLedger?.subject).at(-1) : undefined;
  const note = earlier
    ? `the amendment for subject ${lastLedger!.subject!.slice(0, 12)} reverted; what it wrote for subject ${earlier.subject!.slice(0, 12)} stays`
    : revision === 'replaced'
      ? `applied from an earlier revision (sha256 ${last.sha256.slice(0, 12)}) that the plan says this file replaces`
      : null;
  return { ...base, state, ...when(last), error: null, note };
}

/** Tiers whose state `status --exit-code` treats as not done: pending, failed or drifted structure and data tiers, failed checks, a verify failing now. */
export function unfinished(s: StatusResult): TierStatusLine[] {
  return s.tiers.filter((t) => t.state === 'failed' || t.state === 'failing' || t.state === 'drift' || ((t.kind === 'structure' || t.kind === 'data') && (t.state === 'pending' || t.state === 'reverted')));
}
