import { UsageError } from '../../errors.js';
import { checkedPlanOf, confirm, gateUnreadLine, subjectLabel, targetOf } from '../common.js';
import type { Outcome } from '../exit-code.js';
import { openTarget } from '../open-target.js';
import type { Output } from '../output.js';

export interface ApproveOpts {
  target?: string;
  plan?: string;
  as?: string;
  proposal?: string;
  yes?: boolean;
  json?: boolean;
}

/**
 * `tiergate approve --target URL --as EMAIL [--proposal KEY] [--plan DIR] [--yes] [--json]`:
 * an approval by that Directus user, refused (exit 2, nothing recorded) when it would not count.
 */
export async function approveCommand(opts: ApproveOpts, out: Output): Promise<Outcome> {
  const plan = await checkedPlanOf(opts);
  const url = targetOf(opts);
  if (!opts.as) throw new UsageError('--as EMAIL is required: the Directus user who approves (an active administrator, or a holder of the approver policy, who is not the author)');
  const { displayTarget } = await import('../../db/open-db.js');
  const what = opts.proposal ?? plan.gate?.approve?.proposal ?? '?';
  await confirm(out, opts.yes, `record an approval of '${what}' by ${opts.as} on ${displayTarget(url)}?`);
  const { approve } = await import('../../engine/approve.js');
  return openTarget(url, { applicationName: `tiergate approve ${plan.name}` }, async (db): Promise<Outcome> => {
    const r = await approve(db, plan, { as: opts.as!, proposal: opts.proposal });
    out.result({ ok: true, ...r });
    const subject = r.approval.subject && r.approval.subject !== r.proposal ? ` (${subjectLabel(r.approval.subject)})` : '';
    out.line(`approved: ${r.approval.approver} approves ${r.proposal}${subject} on ${db.displayUrl}`);
    if (r.gate) out.line(out.paint(r.gate.open ? 'green' : 'yellow', `gate ${r.gate.name} = ${r.gate.value ?? 'n/a'} (needs ≥ ${r.gate.min}): ${r.gate.open ? 'OPEN' : 'CLOSED'}`));
    if (r.gate?.unread) out.line(out.paint('yellow', gateUnreadLine(r.gate.unread)));
    return 'ok';
  });
}
