/**
 * Result rows of the campaign: each check appends one row (JSON lines) to a
 * file in the run's results folder; the global setup's teardown prints them
 * as the `check | trials | failures` table.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const RESULTS_DIR_KEY = 'TIERGATE_RELIABILITY_RESULTS';

export interface ResultRow {
  check: string;
  trials: number;
  failures: number;
  /** figures and what a failure was, one line */
  notes: string;
}

function resultsFile(): string {
  const dir = process.env[RESULTS_DIR_KEY];
  if (!dir) throw new Error(`${RESULTS_DIR_KEY} is not set: run the campaign with npm run test:reliability`);
  return join(dir, 'results.jsonl');
}

export function recordResult(row: ResultRow): void {
  appendFileSync(resultsFile(), JSON.stringify(row) + '\n');
}

export function readResults(dir: string): ResultRow[] {
  const file = join(dir, 'results.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as ResultRow);
}

/** The table as Markdown (the README's format). */
export function renderTable(rows: ResultRow[]): string {
  const lines = ['| check | trials | failures | notes |', '|---|---:|---:|---|'];
  for (const r of rows) lines.push(`| ${r.check} | ${r.trials} | ${r.failures} | ${r.notes.replace(/\|/g, '\\|')} |`);
  return lines.join('\n');
}

/**
 * Collects failures of one check: `fail(trial, why)` keeps the first few
 * reasons for the notes and the assertion message.
 */
export class Tally {
  trials = 0;
  failures = 0;
  readonly reasons: string[] = [];

  constructor(readonly check: string) {}

  pass(): void {
    this.trials++;
  }

  fail(why: string): void {
    this.trials++;
    this.failures++;
    if (this.reasons.length < 8) this.reasons.push(why);
  }

  /** one trial: passes when `problems` is empty */
  add(label: string, problems: string[]): void {
    if (problems.length) this.fail(`${label}: ${problems.join('; ')}`);
    else this.pass();
  }

  record(notes: string): ResultRow {
    const row = { check: this.check, trials: this.trials, failures: this.failures, notes: this.failures ? `${notes}; FAILED: ${this.reasons[0]}` : notes };
    recordResult(row);
    return row;
  }
}
