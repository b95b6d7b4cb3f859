import { planOf } from '../common.js';
import type { Outcome } from '../exit-code.js';
import type { Output } from '../output.js';

/** `tiergate lint [--plan DIR] [--json]`: exit 1 when a finding is an error. */
export async function lintCommand(opts: { plan?: string; json?: boolean }, out: Output): Promise<Outcome> {
  const p = await planOf(opts);
  const { lintPlan } = await import('../../plan/lint.js');
  const findings = await lintPlan(p);
  const errors = findings.filter((f) => f.severity === 'error');
  out.result({ ok: errors.length === 0, plan: p.name, findings });
  for (const f of findings) out.line(`${f.file}:${f.line}:${f.column}: ${f.severity} [${f.rule}]${f.tier === null ? '' : ` tier ${f.tier}`}: ${f.message}`);
  out.line(findings.length ? `${errors.length} error(s), ${findings.length - errors.length} warning(s)` : `plan ${p.name}: ${p.tiers.length} files parsed, no problems`);
  return errors.length ? 'failed' : 'ok';
}
