import { z } from 'zod';
import { EvidenceSchema } from './schema.js';

/** Where the published JSON Schema of `evidence.json` lives, relative to the package root. */
export const EVIDENCE_JSON_SCHEMA_PATH = 'schema/evidence.schema.json';

/**
 * The JSON Schema (draft 2020-12) of `evidence.json`, as the text committed in
 * `schema/evidence.schema.json`: generated from {@link EvidenceSchema}, so the
 * published contract cannot drift from what `parseEvidence` accepts.
 *
 * It describes what tiergate *reads* (`io: 'input'`): unknown keys are allowed,
 * so an older reader accepts evidence to which a newer tiergate added fields.
 *
 * @example
 *   writeFileSync(EVIDENCE_JSON_SCHEMA_PATH, evidenceJsonSchemaText());
 */
export function evidenceJsonSchemaText(): string {
  const schema = z.toJSONSchema(EvidenceSchema, { target: 'draft-2020-12', io: 'input', unrepresentable: 'throw' });
  return JSON.stringify(schema, null, 2) + '\n';
}
