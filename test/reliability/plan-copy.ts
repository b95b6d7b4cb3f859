/**
 * Writable copies of the plan under test, edited as data: the campaign's
 * bad plans, failing post-conditions and hostile names are all made here.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { bundledPlan } from './harness.js';

export type PlanYaml = Record<string, unknown> & { tiers: Record<string, unknown>[]; gate?: Record<string, unknown>; metrics?: Record<string, string>; defaults?: Record<string, unknown>; rehearsal?: Record<string, unknown> };

export interface PlanCopy {
  dir: string;
  /** the parsed tiergate.yaml */
  yaml(): PlanYaml;
  /** rewrites tiergate.yaml from a value (or raw text) */
  writeYaml(value: PlanYaml | string): void;
  /** the tier entry with this id */
  tier(y: PlanYaml, id: number): Record<string, unknown>;
  writeFile(rel: string, text: string | Buffer): void;
  readFile(rel: string): string;
  remove(): void;
}

/** A copy of the plan under test in a temporary folder. */
export function copyPlan(): PlanCopy {
  const src = bundledPlan().dir;
  const root = mkdtempSync(join(tmpdir(), 'tiergate-relplan-'));
  const dir = join(root, 'plan');
  cpSync(src, dir, { recursive: true });
  return {
    dir,
    yaml: () => parseYaml(readFileSync(join(dir, 'tiergate.yaml'), 'utf8')) as PlanYaml,
    writeYaml(value) {
      writeFileSync(join(dir, 'tiergate.yaml'), typeof value === 'string' ? value : stringifyYaml(value));
    },
    tier(y, id) {
      const t = y.tiers.find((x) => x.id === id);
      if (!t) throw new Error(`no tier ${id} in the plan copy`);
      return t;
    },
    writeFile: (rel, text) => writeFileSync(join(dir, rel), text),
    readFile: (rel) => readFileSync(join(dir, rel), 'utf8'),
    remove: () => rmSync(root, { recursive: true, force: true }),
  };
}
