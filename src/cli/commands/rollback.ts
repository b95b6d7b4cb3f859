import { renderTierLine } from '../../report/render-terminal.js';
import { confirm, durationOption, interruptible, noticeRolloutWait, planOf, printRunSummary, runError, targetOf, tierPrinter, waitNotice } from '../common.js';
import type { Outcome } from '../exit-code.js';
import { openTarget } from '../open-target.js';
import type { Output } from '../output.js';
import { parseDuration } from '../../parse-duration.js';

export interface RollbackOpts {
  target?: string;
  plan?: string;
  wait?: string;
  yes?: boolean;
  json?: boolean;
  amendment?: boolean;
}

/**
 * `tiergate rollback --target URL [--plan DIR] [--amendment] [--wait 5min] [--yes] [--json]`:
 * checks first what it would revert (refusing before the question when a
 * tier is not applied), then asks, then runs the rollback tier.
 */
export async function rollbackCommand(opts: RollbackOpts, out: Output): Promise<Outcome> {
  const plan = await planOf(opts);
  const url = targetOf(opts);
  const waitMs = durationOption('--wait', opts.wait, parseDuration);
  const { previewRollback, rollback } = await import('../../engine/rollback.js');
  // a tier file that does not parse refuses the plan before any question or connection
  await (await import('../../engine/rollout.js')).assertPlanRunnable(plan);
  return openTarget(url, { applicationName: `tiergate rollback ${plan.name}`, waitMs, onWait: waitNotice(out) }, async (db) => {
    const scope = opts.amendment ? 'subject' : 'all';
    const { tier, reverts, subject } = await previewRollback(db, plan, scope);
    const what = `${reverts.map((t) => `${t.id} '${t.name}'`).join(', ')}${subject ? ` for subject ${subject.slice(0, 12)} only` : ''}`;
    await confirm(out, opts.yes, `roll back plan '${plan.name}' on ${db.displayUrl}: tier ${tier.id} reverts tiers ${what}?`);
    out.line(`rollback ${plan.name} → ${db.displayUrl}: tier ${tier.id} reverts ${what}`);
    const r = await interruptible(out, async (signal) => {
      await noticeRolloutWait(db, plan.name, waitMs, out);
      return rollback(db, plan, { onEvent: tierPrinter(out), waitMs, signal, scope });
    });
    for (const t of r.tiers.filter((x) => x.status === 'Reverted')) out.line(renderTierLine('', t));
    out.result({ ok: r.outcome === 'ok', ...r, error: runError(r) });
    printRunSummary(r, out);
    return r.outcome;
  });
}
