/**
 * Writes the published JSON Schemas generated from the zod schemas:
 * `schema/evidence.schema.json`. With `--check`, writes nothing and exits 1
 * when a committed file is stale (for CI).
 *
 *   node --import tsx scripts/gen-schemas.ts [--check]
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EVIDENCE_JSON_SCHEMA_PATH, evidenceJsonSchemaText } from '../src/evidence/json-schema.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');

const generated: Record<string, string> = {
  [EVIDENCE_JSON_SCHEMA_PATH]: evidenceJsonSchemaText(),
};

let stale = 0;
for (const [path, text] of Object.entries(generated)) {
  const file = join(root, path);
  let current: string | null = null;
  try {
    current = readFileSync(file, 'utf8');
  } catch {
    current = null;
  }
  if (current === text) {
    console.log(`${path}: up to date`);
  } else if (check) {
    stale++;
    console.error(`${path}: stale; run 'node --import tsx scripts/gen-schemas.ts' and commit it`);
  } else {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
    console.log(`${path}: written`);
  }
}
if (stale > 0) process.exitCode = 1;
