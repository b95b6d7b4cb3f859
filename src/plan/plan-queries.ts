/**
 * The plan's own queries (tiergate.yaml: metrics, figures, the gate's) checked
 * to be one query that only reads each: lint's rule `plan-query`, kept apart
 * from the tier files' rules so that a command that only reads a target
 * checks them without loading those.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PlanError } from '../errors.js';
import type { LintFinding } from './lint-tier.js';
import type { Plan } from './plan.js';
import { whyNotAReadQuery } from './sql-facts.js';

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

/** Refuses (exit 2) a plan with lint errors, each with its file:line:column; `nothing` says what was not done ('run', 'read'). */
export function refuseFindings(plan: Plan, errors: LintFinding[], nothing: 'run' | 'read'): void {
  if (!errors.length) return;
  throw new PlanError(
    plan.name,
    errors.map((f) => ({ path: `${f.file}:${f.line}:${f.column}`, message: `${f.message} [${f.rule}]; nothing was ${nothing} ('tiergate lint' lists every finding)` })),
  );
}
