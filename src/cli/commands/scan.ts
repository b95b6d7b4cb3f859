import { singleLine } from '../../text.js';
import { checkedPlanOf, readerWait, targetOf } from '../common.js';
import type { Outcome } from '../exit-code.js';
import { openTarget } from '../open-target.js';
import type { Output } from '../output.js';

/**
 * `tiergate scan --target URL [--plan DIR] [--json]`: the plan's scanner,
 * then every finding (critical first); exit 1 when one is critical, so that
 * cron or CI can watch a database.
 */
export async function scanCommand(opts: { target?: string; plan?: string; wait?: string; json?: boolean }, out: Output): Promise<Outcome> {
  const plan = await checkedPlanOf(opts);
  const { scan } = await import('../../engine/amend.js');
  return openTarget(targetOf(opts), { applicationName: `tiergate scan ${plan.name}`, ...readerWait(opts, out) }, async (db) => {
    const r = await scan(db, plan);
    out.result({ ok: r.critical === 0, ...r });
    const warnings = r.findings.length - r.critical;
    out.line(`scan ${plan.name} on ${db.displayUrl}: ${r.findings.length ? `${r.critical} critical (verify fails on ${r.critical === 1 ? 'it' : 'them'}), ${warnings} warning${warnings === 1 ? '' : 's'}` : 'nothing to govern that is not governed'}`);
    const sorted = [...r.findings].sort((a, b) => Number(b.severity === 'critical') - Number(a.severity === 'critical'));
    for (const f of sorted) out.line(`  ${out.paint(f.severity === 'critical' ? 'red' : 'yellow', f.severity === 'critical' ? 'CRITICAL' : 'warning ')} ${singleLine(f.kind)}: ${singleLine(f.item)}${f.detail ? ` — ${singleLine(f.detail)}` : ''}`);
    const shown = Object.entries(r.metrics).map(([k, v]) => `${k}=${v ?? 'n/a'}`).join(' ');
    // (the plan's own metrics, each by its name: its `critical` counts the findings of severity critical only)
    if (shown) out.line(`  the plan's metrics: ${shown}`);
    // warnings alone need no amendment (an amendment with nothing to change only voids the approvals)
    if (r.critical) out.line(`next: tiergate propose --target <this target> drafts an amendment that closes them`);
    return r.critical === 0 ? 'ok' : 'failed';
  });
}
