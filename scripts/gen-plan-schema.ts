/**
 * Writes `schema/plan.schema.json`, the published JSON Schema of
 * `tiergate.yaml`, from the one zod schema (`src/plan/schema.ts`): editors
 * validate and complete plans with it (`# yaml-language-server: $schema=…`).
 * It describes the file as written (zod's input side: defaults are optional).
 *
 *   node --import tsx scripts/gen-plan-schema.ts          # write it
 *   node --import tsx scripts/gen-plan-schema.ts --check  # exit 1 if the committed file is stale
 *
 * `test/plan.test.ts` fails when the committed file is stale.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { z } from 'zod';
import { PlanFile } from '../src/plan/schema.js';

/** The committed file's path. */
export const planSchemaPath = join(dirname(fileURLToPath(import.meta.url)), '..', 'schema', 'plan.schema.json');

/** The JSON Schema of `tiergate.yaml`, as the exact text committed in `schema/plan.schema.json`. */
export function renderPlanSchema(): string {
  const schema = z.toJSONSchema(PlanFile, { io: 'input', target: 'draft-2020-12' });
  const published = {
    $schema: schema.$schema,
    title: 'tiergate plan (tiergate.yaml)',
    description:
      'A tiered, approval-gated PostgreSQL rollout: ordered tiers (one SQL file each, one transaction each), a gate, metrics and post-conditions. Generated from src/plan/schema.ts by scripts/gen-plan-schema.ts: do not edit.',
    ...Object.fromEntries(Object.entries(schema).filter(([k]) => k !== '$schema')),
  };
  return `${JSON.stringify(published, null, 2)}\n`;
}

function main(argv: string[]): number {
  const text = renderPlanSchema();
  if (argv.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(planSchemaPath, 'utf8');
    } catch {
      // missing: stale
    }
    if (current === text) return 0;
    process.stderr.write(`${planSchemaPath} is stale: run node --import tsx scripts/gen-plan-schema.ts\n`);
    return 1;
  }
  mkdirSync(dirname(planSchemaPath), { recursive: true });
  writeFileSync(planSchemaPath, text);
  process.stdout.write(`wrote ${planSchemaPath}\n`);
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = main(process.argv.slice(2));
