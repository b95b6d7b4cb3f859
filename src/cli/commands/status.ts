import { singleLine } from '../../text.js';
import { approvalLines, checkedPlanOf, gateUnreadLine, readerWait, targetOf } from '../common.js';
import type { Outcome } from '../exit-code.js';
import { openTarget } from '../open-target.js';
import type { Output } from '../output.js';
import { table } from '../table.js';

export interface StatusOpts {
  target?: string;
  plan?: string;
  exitCode?: boolean;
  wait?: string;
  json?: boolean;
}

/**
 * `tiergate status --target URL [--plan DIR] [--exit-code] [--json]`: every
 * tier's last result, the gate, every metric. With `--exit-code`, exit 1
 * while a structure or data tier is pending, reverted, failed or drifted, or
 * the verify tier fails now on the metrics it reads.
 */
export async function statusCommand(opts: StatusOpts, out: Output): Promise<Outcome> {
  const plan = await checkedPlanOf(opts);
  const { status, unfinished } = await import('../../engine/status.js');
  const { handEditSection } = await import('../../engine/hand-edits.js');
  return openTarget(targetOf(opts), { applicationName: `tiergate status ${plan.name}`, ...readerWait(opts, out) }, async (db) => {
    const s = await status(db, plan);
    const open = unfinished(s);
    out.result({ ok: !opts.exitCode || (open.length === 0 && !s.handEdits), ...s, unfinished: open.map((t) => t.id) });
    out.line(`status of plan ${plan.name} on ${db.displayUrl}`);
    out.line(s.gate ? `gate ${s.gate.name} = ${s.gate.value ?? 'n/a'} (needs ≥ ${s.gate.min}): ${s.gate.open ? 'OPEN' : 'CLOSED'}${s.gate.subject ? `, subject ${s.gate.subject.slice(0, 16)}…` : ''}` : 'no gate');
    if (s.gateUnread) out.line(`  ${gateUnreadLine(s.gateUnread)}`);
    for (const line of approvalLines(s.gate)) out.line(line);
    if (s.gate && !s.gate.open && plan.gate?.when_closed) out.line(`  ${plan.gate.when_closed}`);
    if (s.unknownTiers.length) {
      out.line(out.paint('yellow', `the ledger also has rows of plan ${plan.name} for tier ${s.unknownTiers.join(', ')}, which this plan does not have (another revision of the plan, or rows written by hand): 'tiergate log' lists them`));
    }
    out.line('');
    const rows = [
      ['id', 'tier', 'kind', 'state', 'when', 'by', 'tiergate', 'note'],
      ...s.tiers.map((t) => [
        String(t.id),
        t.name,
        t.kind,
        t.state,
        t.at ? t.at.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '—',
        t.by ?? '—',
        t.version ?? '—',
        t.error ? `${t.error.sqlstate ? `${t.error.sqlstate} ` : ''}${t.error.message}${t.error.file && t.error.line ? ` (${t.error.file}:${t.error.line})` : ''}${t.note ? `; ${t.note}` : ''}` : (t.note ?? ''),
      ]),
    ];
    for (const line of table(rows, { max: [4, 34, 10, 10, 20, 16, 10, 100], right: [0] })) out.line(line);
    out.line('');
    out.line('metrics: ' + Object.entries(s.metrics).map(([k, v]) => `${k}=${v ?? 'n/a'}`).join('  '));
    if (s.handEdits) {
      const { head, lines } = handEditSection(s.handEdits);
      out.line('');
      out.line(out.paint('red', head));
      for (const line of lines) out.line(`  ${singleLine(line)}`);
    }
    if (opts.exitCode && (open.length || s.handEdits)) {
      out.line(`not done: ${[...(open.length ? [`tier ${open.map((t) => `${t.id} (${t.state})`).join(', ')}`] : []), ...(s.handEdits ? ['objects changed outside tiergate'] : [])].join('; ')}`);
      return 'failed';
    }
    return 'ok';
  });
}
