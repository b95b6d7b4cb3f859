/**
 * Static checks of a plan's tier files with the real PostgreSQL parser (the
 * rules: lint-tier.ts). The engine refuses a plan with an error before it
 * touches anything; `tiergate lint` lists errors and warnings.
 */
import { codeStamp, readCache, writeCache } from '../cache.js';
import { lintTier, type LintFinding } from './lint-tier.js';
import { sha256, type Plan } from './plan.js';
import { planQueryFindings } from './plan-queries.js';
import { loadParser } from './sql-facts.js';

export type { LintFinding, LintRule } from './lint-tier.js';
export { planQueryFindings } from './plan-queries.js';
export { splitStatements, touchedRelations, forgetScripts, SqlSyntaxError, type SqlStatement, type TouchedRelations } from './sql-facts.js';

/**
 * Static checks of every tier file of a plan, with PostgreSQL's own parser.
 * Returns the findings in plan order, then by position; an empty array means
 * the plan is clean. Errors break a guarantee (a gated file without its
 * guard, DML in a structure tier, a statement that cannot run in the tier's
 * transaction); warnings are advice.
 *
 * @example
 * for (const f of await lintPlan(loadPlan('plans/axis-governance')))
 *   console.log(`${f.file}:${f.line}:${f.column} ${f.severity} ${f.message} [${f.rule}]`);
 */
export async function lintPlan(plan: Plan): Promise<LintFinding[]> {
  const pg = await loadParser();
  const findings: LintFinding[] = await planQueryFindings(plan);
  for (const tier of plan.tiers) {
    const tierFindings = lintTier(pg, plan, tier);
    tierFindings.sort((a, b) => a.line - b.line || a.column - b.column);
    findings.push(...tierFindings);
  }
  return findings;
}

let lintStamp: string | null | undefined;

/**
 * The errors of a plan's lint (parse errors included), as `apply`,
 * `rollback` and `rehearse` check them before touching anything. Each tier
 * file's findings are kept in tiergate's cache, keyed by its text, what the
 * rules read of the plan and the code of the rules, so that a run of a plan
 * checked before loads no parser.
 *
 * @example if ((await lintErrors(plan)).length) throw …
 */
export async function lintErrors(plan: Plan): Promise<LintFinding[]> {
  if (lintStamp === undefined) lintStamp = codeStamp(import.meta.url, LINT_MODULES, ['libpg-query']);
  // (the plan's own queries: their facts are cached by text, so a plan checked before loads no parser for them either)
  const out: LintFinding[] = await planQueryFindings(plan);
  for (const tier of plan.tiers) {
    const context = JSON.stringify([tier.id, tier.kind, tier.gated, tier.file, plan.gate?.name ?? null, plan.gate?.lock ?? null]);
    const key = lintStamp === null ? null : `${lintStamp}:${sha256(tier.sql)}:${sha256(context)}`;
    let findings = key === null ? undefined : readCache<LintFinding[]>('lint', key);
    if (!Array.isArray(findings)) {
      findings = lintTier(await loadParser(), plan, tier);
      if (key !== null) writeCache('lint', key, findings);
    }
    out.push(...findings.filter((f) => f.severity === 'error'));
  }
  return out;
}

/** The modules whose code decides a tier file's findings. */
const LINT_MODULES = ['lint', 'lint-tier', 'parse-script', 'analyze-statement', 'statement-label', 'source-text'];
