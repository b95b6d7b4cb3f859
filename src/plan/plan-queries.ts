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
import { parseError, whyNotAReadQuery } from './sql-facts.js';

/**
 * The plan's own queries in tiergate.yaml that must each be one query that
 * only reads — every metric and figure, the gate's count, lock, subject and
 * approvals — and are not (`plan-query`, an error): the engine would refuse
 * each when it first reads it, after connecting; lint and every command
 * that runs a plan refuse it before anything connects.
 */
export async function planQueryFindings(plan: Plan): Promise<LintFinding[]> {
  const gate = plan.gate;
  // [path in tiergate.yaml, what it is, its SQL, whether it must only read]
  const queries: [string[], string, string | undefined, boolean][] = [
    ...Object.entries(plan.metrics).map(([name, sql]): [string[], string, string, boolean] => [['metrics', name], `metric '${name}'`, sql, true]),
    ...Object.entries(plan.figures).map(([name, sql]): [string[], string, string, boolean] => [['figures', name], `figure '${name}'`, sql, true]),
  ];
  if (gate) {
    for (const [key, what] of [['sql', `gate '${gate.name}'`], ['lock', `the lock of gate '${gate.name}'`], ['subject', `the subject of gate '${gate.name}'`], ['approvals', `the approvals of gate '${gate.name}'`]] as const) {
      queries.push([['gate', key], what, gate[key], true]);
    }
    queries.push([['gate', 'approve', 'sql'], `gate.approve.sql (tiergate approve)`, gate.approve?.sql, false]);
  }
  // the SQL that writes (the rehearsal's gate, day two's amendments): it must at least parse
  for (const key of ['open_gate', 'close_gate'] as const) queries.push([['rehearsal', key], `rehearsal.${key}`, plan.rehearsal?.[key], false]);
  for (const key of ['scan', 'findings', 'draft', 'check', 'submit', 'author'] as const) queries.push([['amend', key], `amend.${key}`, plan.amend?.[key], false]);
  const out: LintFinding[] = [];
  let yaml: string[] | null = null;
  for (const [path, what, sql, onlyReads] of queries) {
    if (!sql) continue;
    const broken = await parseError(sql);
    const why = broken ? null : onlyReads ? await whyNotAReadQuery(sql) : null;
    if (!broken && !why) continue;
    yaml ??= yamlLines(plan);
    const message = broken
      ? `${what} does not parse: ${broken} (PostgreSQL's parser; the server would refuse it too)`
      : `${what} is not one query that only reads: ${why}`;
    out.push({ severity: 'error', tier: null, file: plan.yamlName, line: lineOf(yaml, path), column: 1, rule: 'plan-query', message });
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

/** The 1-based line of the key at `path` (`['gate', 'approve', 'sql']`), each key found below the one before (1 when it cannot be found). */
function lineOf(lines: string[], path: string[]): number {
  let at = -1;
  let indent = -1;
  for (const key of path) {
    const escaped = key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const pattern = new RegExp(`^(\\s*)(?:${escaped}|"${escaped}"|'${escaped}')\\s*:`);
    let found = -1;
    for (let i = at + 1; i < lines.length; i++) {
      const m = pattern.exec(lines[i]!);
      const lead = /^\s*/.exec(lines[i]!)![0].length;
      // left the block of the key before: not found
      if (at >= 0 && lines[i]!.trim() && !lines[i]!.trimStart().startsWith('#') && lead <= indent) break;
      if (m && m[1]!.length > indent && (at >= 0 || m[1]!.length === 0)) {
        found = i;
        indent = m[1]!.length;
        break;
      }
    }
    if (found < 0) return at >= 0 ? at + 1 : 1;
    at = found;
  }
  return at + 1;
}

/** Refuses (exit 2) a plan with lint errors, each with its file:line:column; `nothing` says what was not done ('run', 'read'). */
export function refuseFindings(plan: Plan, errors: LintFinding[], nothing: 'run' | 'read'): void {
  if (!errors.length) return;
  throw new PlanError(
    plan.name,
    errors.map((f) => ({ path: `${f.file}:${f.line}:${f.column}`, message: `${f.message} [${f.rule}]; nothing was ${nothing} ('tiergate lint' lists every finding)` })),
  );
}
