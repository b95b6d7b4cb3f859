import { InterruptedError } from '../../errors.js';
import { singleLine } from '../../text.js';
import { interruptedBy } from '../../engine/run-script.js';
import { checkedPlanOf, interruptible, readerWait, runError, targetOf } from '../common.js';
import type { Outcome } from '../exit-code.js';
import { openTarget } from '../open-target.js';
import type { Output } from '../output.js';

/** `tiergate verify --target URL [--plan DIR] [--json]`: exit 1 listing every failing assertion. */
export async function verifyCommand(opts: { target?: string; plan?: string; wait?: string; json?: boolean }, out: Output): Promise<Outcome> {
  const plan = await checkedPlanOf(opts);
  const { verify } = await import('../../engine/verify.js');
  return openTarget(targetOf(opts), { applicationName: `tiergate verify ${plan.name}`, ...readerWait(opts, out) }, async (db) => {
    // Ctrl-C: the assertion running is cancelled (a server), and the command says it stopped (it reads only)
    const r = await interruptible(out, async (signal) => {
      const result = await verify(db, plan, { signal });
      if (signal.aborted) throw new InterruptedError(`interrupted (${interruptedBy(signal)}): verify of ${plan.name} on ${db.displayUrl} stopped before it finished; it only reads, nothing was changed`);
      return result;
    });
    const t = r.tiers[0]!;
    out.result({ ok: t.status === 'Passed', ...r, error: runError(r) });
    out.line(`verify ${plan.name} on ${db.displayUrl}: ${t.status === 'Passed' ? 'PASSED' : 'FAILED'}`);
    for (const post of t.post) out.line(`  ${post.ok ? 'ok  ' : 'FAIL'} ${post.expr} (${post.value ?? 'n/a'})`);
    // (an assertion of the file says where; the engine's own check — the plan's objects as its tiers left them — has no line)
    for (const a of t.failedAssertions ?? []) out.line(`  FAIL ${a.file ? `${a.file}${a.line ? `:${a.line}` : ''}: ` : ''}${singleLine(a.message)}${a.detail ? ` — ${singleLine(a.detail)}` : ''}`);
    if (t.status === 'Failed' && !t.failedAssertions?.length && t.error) out.line(`  FAIL ${singleLine(t.error.message)}`);
    return t.status === 'Passed' ? 'ok' : 'failed';
  });
}
