import { checkedPlanOf, readerWait, targetOf } from '../common.js';
import type { Outcome } from '../exit-code.js';
import { openTarget } from '../open-target.js';
import type { Output } from '../output.js';
import { table } from '../table.js';

/** `tiergate log --target URL [--plan DIR] [--json]`: every ledger row and attempt of the plan on this target, oldest first. */
export async function logCommand(opts: { target?: string; plan?: string; wait?: string; json?: boolean }, out: Output): Promise<Outcome> {
  const plan = await checkedPlanOf(opts);
  const { history } = await import('../../engine/history.js');
  return openTarget(targetOf(opts), { applicationName: `tiergate log ${plan.name}`, ...readerWait(opts, out) }, async (db): Promise<Outcome> => {
    const h = await history(db, plan);
    out.result({ ok: true, ...h });
    out.line(`history of plan ${plan.name} on ${db.displayUrl}: ${h.events.length} event${h.events.length === 1 ? '' : 's'}`);
    if (!h.events.length) {
      out.line('tiergate has not run this plan here (no ledger rows, no attempts)');
      return 'ok';
    }
    out.line('');
    const rows = [
      ['when', 'tier', 'outcome', 'command', 'db user', 'tiergate', 'file sha256', 'error'],
      ...h.events.map((e) => [
        e.at.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
        `${e.tierId} ${e.tierName}`,
        e.outcome,
        e.command ?? '—',
        e.dbUser ?? '—',
        e.tiergateVersion,
        e.sha256.slice(0, 12),
        e.error ? `${e.error.sqlstate ? `${e.error.sqlstate} ` : ''}${e.error.message}${e.error.file && e.error.line ? ` (${e.error.file}:${e.error.line})` : ''}` : '',
      ]),
    ];
    for (const line of table(rows, { max: [20, 30, 9, 14, 16, 9, 12, 120] })) out.line(line);
    return 'ok';
  });
}
