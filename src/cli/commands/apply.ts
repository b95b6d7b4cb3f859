import { UsageError } from '../../errors.js';
import { parseDuration } from '../../parse-duration.js';
import { openTarget } from '../open-target.js';
import { confirm, durationOption, interruptible, noticeRolloutWait, planOf, printRunSummary, runError, targetOf, tierPrinter, waitNotice } from '../common.js';
import type { Outcome } from '../exit-code.js';
import type { Output } from '../output.js';

export interface ApplyOpts {
  target?: string;
  plan?: string;
  structureOnly?: boolean;
  evidence?: string;
  acceptDifferences?: boolean;
  maxEvidenceAge?: string;
  dryRun?: boolean;
  wait?: string;
  yes?: boolean;
  json?: boolean;
}

/** `tiergate apply --target URL [--plan DIR] [--structure-only] [--evidence FILE [--accept-differences] [--max-evidence-age 7d]] [--dry-run] [--wait 5min] [--yes] [--json]` */
export async function applyCommand(opts: ApplyOpts, out: Output): Promise<Outcome> {
  const plan = await planOf(opts);
  const url = targetOf(opts);
  const waitMs = durationOption('--wait', opts.wait, parseDuration);
  if (opts.acceptDifferences && !opts.evidence) throw new UsageError('--accept-differences needs --evidence FILE: it accepts differences from that rehearsal');
  if (opts.maxEvidenceAge !== undefined && !opts.evidence) throw new UsageError('--max-evidence-age needs --evidence FILE: it limits the age of that rehearsal');
  const maxAgeMs = durationOption('--max-evidence-age', opts.maxEvidenceAge, parseDuration);
  // the evidence code (and the schema library it validates with) is loaded only for a run bound to evidence;
  // a dry run checks the evidence as apply would (refused: exit 2, as apply exits)
  const bound = opts.evidence
    ? await import('../../rehearsal/bind-evidence.js').then(({ bindEvidence, DEFAULT_MAX_EVIDENCE_AGE_MS }) =>
        bindEvidence(opts.evidence!, plan, { maxAgeMs: maxAgeMs ?? DEFAULT_MAX_EVIDENCE_AGE_MS, acceptDifferences: Boolean(opts.acceptDifferences) }),
      )
    : null;
  if (opts.dryRun) return (await import('./dry-run.js')).dryRunCommand(plan, url, { ...opts, bound: bound && { file: opts.evidence!, ...bound } }, out);
  // a tier file that does not parse (or breaks a lint error rule) refuses the plan before any question or connection (README: nothing connects while the plan is invalid)
  await (await import('../../engine/rollout.js')).assertPlanRunnable(plan);
  const { displayTarget } = await import('../../db/open-db.js');
  await confirm(out, opts.yes, `apply plan '${plan.name}' to ${displayTarget(url)}?`);
  const { apply } = await import('../../engine/apply.js');
  return openTarget(url, { applicationName: `tiergate apply ${plan.name}`, waitMs, onWait: waitNotice(out) }, async (db) => {
    out.line(`apply ${plan.name} → ${db.displayUrl}${bound ? ` (bound to ${opts.evidence}, rehearsed ${bound.evidence.createdAt})` : ''}`);
    for (const note of bound?.notes ?? []) out.line(out.paint('yellow', `note: ${note}`));
    const r = await interruptible(out, async (signal) => {
      await noticeRolloutWait(db, plan.name, waitMs, out);
      return apply(db, plan, { structureOnly: Boolean(opts.structureOnly), onEvent: tierPrinter(out), waitMs, signal, binding: bound?.binding });
    });
    const compared = r.tiers.filter((t) => t.status === 'Applied' && t.kind !== 'verify' && t.kind !== 'preflight');
    if (bound && r.outcome !== 'failed' && compared.length) {
      const differing = compared.filter((t) => t.differences?.length);
      out.line(differing.length ? out.paint('yellow', `production differs from the rehearsal in tier ${differing.map((t) => t.id).join(', ')} (accepted, recorded in the ledger)`) : out.paint('green', `production matches the rehearsal (${compared.length} tier${compared.length === 1 ? '' : 's'} compared before COMMIT)`));
    }
    out.result({ ok: r.outcome === 'ok', ...r, error: runError(r), evidence: bound ? { file: opts.evidence, createdAt: bound.evidence.createdAt, notes: bound.notes } : null });
    printRunSummary(r, out, plan.gate?.when_closed);
    return r.outcome;
  });
}
