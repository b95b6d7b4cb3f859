/**
 * Static checks of a plan's tier files with the real PostgreSQL parser (the
 * rules: lint-tier.ts). The engine refuses a plan with an error before it
 * touches anything; `tiergate lint` lists errors and warnings.
 */
import { codeStamp, readCache, writeCache } from '../cache.js';
import { lintTier, type LintFinding } from './lint-tier.js';
import { sha256, type Plan } from './plan.js';
import { loadParser, whyNotAReadQuery } from './sql-facts.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export type { LintFinding, LintRule } from './lint-tier.js';
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

/**
 * The plan's own queries in tiergate.yaml that must each be one query that
 * only reads — every metric and figure, the gate's count, lock, subject and
 * approvals — and are not (`plan-query`, an error): the engine would refuse
 * each when it first reads it, after connecting; lint and every command
 * that runs a plan refuse it before anything connects.
 */
export async function planQueryFindings(plan: Plan): Promise<LintFinding[]> {
  const gate = plan.gate;
  // [section of tiergate.yaml, key, what it is, its SQL]
  const queries: [string, string, string, string | undefined][] = [
    ...Object.entries(plan.metrics).map(([name, sql]): [string, string, string, string] => ['metrics', name, `metric '${name}'`, sql]),
    ...Object.entries(plan.figures).map(([name, sql]): [string, string, string, string] => ['figures', name, `figure '${name}'`, sql]),
  ];
  if (gate) {
    for (const [key, what] of [['sql', `gate '${gate.name}'`], ['lock', `the lock of gate '${gate.name}'`], ['subject', `the subject of gate '${gate.name}'`], ['approvals', `the approvals of gate '${gate.name}'`]] as const) {
      queries.push(['gate', key, what, gate[key]]);
    }
  }
  const out: LintFinding[] = [];
  let yaml: string[] | null = null;
  for (const [section, key, what, sql] of queries) {
    const why = sql ? await whyNotAReadQuery(sql) : null;
    if (!why) continue;
    yaml ??= yamlLines(plan);
    out.push({ severity: 'error', tier: null, file: plan.yamlName, line: lineOf(yaml, section, key), column: 1, rule: 'plan-query', message: `${what} is not one query that only reads: ${why}` });
  }
  return out;
}

/** tiergate.yaml's lines, for a finding's place (none when the plan was not read from a folder). */
function yamlLines(plan: Plan): string[] {
  try {
    return readFileSync(join(plan.dir, plan.yamlName), 'utf8').split('\n');
  } catch {
    return [];
  }
}

/** The 1-based line of `key:` under the top-level `section:` (1 when it cannot be found). */
function lineOf(lines: string[], section: string, key: string): number {
  const from = lines.findIndex((l) => l.startsWith(`${section}:`));
  const escaped = key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const at = lines.findIndex((l, i) => i > from && from >= 0 && new RegExp(`^\\s+${escaped}\\s*:`).test(l));
  return at >= 0 ? at + 1 : 1;
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
