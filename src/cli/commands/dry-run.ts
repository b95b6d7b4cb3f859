import type { Plan } from '../../plan/plan.js';
import { singleLine } from '../../text.js';
import type { BoundEvidence } from '../../rehearsal/bind-evidence.js';
import { openTarget } from '../open-target.js';
import type { Outcome } from '../exit-code.js';
import type { Output } from '../output.js';
import { table } from '../table.js';

/**
 * `tiergate apply --dry-run`: what apply would do here — identity, lint,
 * drift, the lock, the gate, each tier's fate and why — writing nothing.
 * Exit 0 when apply would run clean, 3 when gated tiers would be blocked,
 * 1 when apply would stop (lint errors, drift, a failing preflight).
 */
export async function dryRunCommand(
  plan: Plan,
  url: string,
  opts: { structureOnly?: boolean; bound?: (BoundEvidence & { file: string }) | null },
  out: Output,
): Promise<Outcome> {
  const { dryRun } = await import('../../engine/dry-run.js');
  const { formatServerVersion } = await import('../../report/format.js');
  const { handEditSection } = await import('../../engine/hand-edits.js');
  const bound = opts.bound ?? null;
  const { assertEvidenceGiven } = await import('../../engine/apply.js');
  assertEvidenceGiven(plan, bound !== null);
  return openTarget(url, { applicationName: `tiergate apply --dry-run ${plan.name}` }, async (db) => {
    const d = await dryRun(db, plan, { structureOnly: Boolean(opts.structureOnly) });
    // the evidence's checks against this target (database, cluster, engine, gate subject), as apply makes them before its lock: refused, exit 2
    bound?.binding.checkTarget(d.identity, d.gate);
    // each tier apply would run must have been rehearsed in the same state, or apply rolls it back: it would stop there
    let unrehearsed = false;
    if (bound) {
      for (const t of d.tiers) {
        const why = t.action === 'apply' && t.appliedBefore ? bound.binding.unrehearsedState(t.id, t.appliedBefore) : null;
        if (why) {
          Object.assign(t, { action: 'stop', reason: why });
          unrehearsed = true;
        }
      }
    }
    const lintErrors = d.lint.filter((f) => f.severity === 'error');
    const stops = lintErrors.length > 0 || d.drift !== null || d.unwritable !== null || d.lacks !== null || d.preflight?.status === 'Failed' || unrehearsed;
    const blocked = d.tiers.some((t) => t.action === 'block');
    // ok exactly when the exit code is 0: a gated tier that would block is exit 3
    out.result({ ok: !stops && !blocked, wouldStop: stops, wouldBlock: blocked, ...d, evidence: bound ? { file: bound.file, createdAt: bound.evidence.createdAt, notes: bound.notes } : null });
    out.line(`apply --dry-run ${plan.name} → ${db.displayUrl} (nothing is written)`);
    const id = d.identity;
    out.line(`target: database ${id.database}${id.cloneOf ? ` (a tiergate clone of ${id.cloneOf})` : ''}, ${id.engine === 'pglite' ? 'PGlite' : 'PostgreSQL'} ${formatServerVersion(id.serverVersion)}, cluster ${id.systemIdentifier ?? 'unknown'}`);
    out.line(`ledger: ${d.ledger ? 'present' : 'none yet (apply creates schema tiergate)'}`);
    if (d.unwritable) out.line(out.paint('red', `cannot be written — apply would stop before touching anything: ${d.unwritable}`));
    out.line(`lock: ${d.lockHeldBy ? `held by ${d.lockHeldBy} — apply would exit 4 (or wait with --wait)` : 'free'}`);
    out.line(`lint: ${lintErrors.length ? `${lintErrors.length} error(s) — apply would refuse the plan` : `no errors${d.lint.length ? ` (${d.lint.length} warning(s))` : ''}`}`);
    for (const f of lintErrors) out.line(`  ${f.file}:${f.line}:${f.column}: [${f.rule}] ${f.message}`);
    if (d.drift) out.line(out.paint('red', `drift — apply would stop before touching anything:\n${d.drift}`));
    if (d.handEdits) {
      const { head, lines } = handEditSection(d.handEdits);
      out.line(out.paint('red', head));
      for (const line of lines) out.line(`  ${singleLine(line)}`);
    }
    if (d.lacks) out.line(out.paint('red', `privileges — apply would stop before any tier: ${d.lacks}`));
    if (d.preflight) out.line(`preflight: ${d.preflight.status}${d.preflight.status === 'Failed' ? ` — ${d.preflight.error?.message ?? d.preflight.reason}` : ''}`);
    out.line(d.gate ? `gate: ${d.gate.name} = ${d.gate.value ?? 'n/a'} (needs ≥ ${d.gate.min}): ${d.gate.open ? 'OPEN' : 'CLOSED'}` : 'gate: none');
    if (bound) {
      out.line(`evidence: ${bound.file}, rehearsed ${bound.evidence.createdAt} (Rehearsal ${bound.evidence.verdict.rehearsal} · Execution ${bound.evidence.verdict.execution}): accepted for this target; apply compares each tier with its rehearsal before COMMIT`);
      for (const note of bound.notes) out.line(out.paint('yellow', `note: ${note}`));
    }
    out.line('');
    const verb = { apply: 'would apply', skip: 'would skip', block: 'would block', stop: 'would not run' } as const;
    const rows = [['id', 'tier', 'kind', 'action', 'why'], ...d.tiers.map((t) => [String(t.id), t.name, t.kind, verb[t.action], t.reason])];
    for (const line of table(rows, { max: [4, 36, 10, 13, 80], right: [0] })) out.line(line);
    if (d.verify) out.line(`verify: ${d.verify}`);
    return stops ? 'failed' : blocked ? 'no-go' : 'ok';
  });
}
