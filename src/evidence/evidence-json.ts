import type { z } from 'zod';
import type { Evidence } from './types.js';
import { EVIDENCE_SCHEMA_VERSION } from './version.js';
import { EvidenceError, type EvidenceIssue } from './evidence-error.js';
import { EvidenceSchema } from './schema.js';

/**
 * `evidence.json`'s text: 2-space indented, trailing newline, keys in the
 * schema's order whatever order the value was built in, so the same evidence
 * always gives the same bytes. It refuses (throws {@link EvidenceError})
 * evidence that {@link parseEvidence} would reject (a NaN duration, a
 * misspelled status), so what tiergate writes, tiergate can read back.
 *
 * @example
 *   writeFileSync(join(out, 'evidence.json'), renderJson(evidence));
 */
export function renderJson(e: Evidence): string {
  const checked = EvidenceSchema.safeParse(e);
  if (!checked.success) {
    throw new EvidenceError('evidence', issuesOf(checked.error), 'refusing to write evidence that does not match its schema:');
  }
  return JSON.stringify(checked.data, null, 2) + '\n';
}

/**
 * Reads `evidence.json` text back into an {@link Evidence}, or throws an
 * {@link EvidenceError} naming what is wrong: not JSON, not tiergate
 * evidence, an unsupported `schemaVersion`, or each field of the wrong shape
 * with its path.
 *
 * @example
 *   const evidence = parseEvidence(readFileSync(file, 'utf8'), file);
 *   if (evidence.verdict.rehearsal !== 'PASS') throw …;
 */
export function parseEvidence(text: string, origin = 'evidence'): Evidence {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new EvidenceError(origin, [], `not valid JSON (${(err as Error).message}); expected tiergate's evidence.json`);
  }
  if (!isRecord(value) || !isRecord(value.tool) || value.tool.name !== 'tiergate') {
    throw new EvidenceError(
      origin,
      [],
      `not tiergate evidence: expected a JSON object with "tool": { "name": "tiergate" } (found ${describeTool(value)})`,
    );
  }
  if (value.schemaVersion !== EVIDENCE_SCHEMA_VERSION) {
    throw new EvidenceError(
      origin,
      [],
      `unsupported evidence schemaVersion ${JSON.stringify(value.schemaVersion ?? null)} ` +
        `(written by tiergate ${String(value.tool.version ?? '?')}); this tiergate reads schemaVersion ${EVIDENCE_SCHEMA_VERSION}. ` +
        `Re-run the rehearsal with this version, or read it with the version that wrote it.`,
    );
  }
  const parsed = EvidenceSchema.safeParse(value);
  if (!parsed.success) {
    const issues = issuesOf(parsed.error);
    throw new EvidenceError(origin, issues, `not valid tiergate evidence (${issues.length} problem${issues.length === 1 ? '' : 's'}):`);
  }
  return parsed.data;
}

function issuesOf(error: z.ZodError): EvidenceIssue[] {
  return error.issues.map((i) => ({ path: formatPath(i.path), message: i.message }));
}

/** `['stages', 1, 'tiers', 0, 'status']` → `stages[1].tiers[0].status` */
function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`))
    .join('');
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describeTool(v: unknown): string {
  if (!isRecord(v)) return Array.isArray(v) ? 'an array' : v === null ? 'null' : `a ${typeof v}`;
  if (!('tool' in v)) return 'no "tool" field';
  return `"tool": ${JSON.stringify(v.tool)?.slice(0, 80)}`;
}
