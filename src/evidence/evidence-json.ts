import { z } from 'zod';
import type { Evidence } from './types.js';
import { EVIDENCE_SCHEMA_VERSION } from './version.js';
import { EvidenceError, type EvidenceIssue } from './evidence-error.js';
import { EvidenceSchema } from './schema.js';
import { hasUtf8Bom, strictUtf8 } from '../safe-read.js';

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
export function parseEvidence(text: string, origin = 'evidence', options: { strict?: boolean } = {}): Evidence {
  // (counted before anything walks it: a file nested 100,000 levels deep overflowed the stack of the reads below)
  const depth = nestingDepth(text, MAX_NESTING);
  if (depth > MAX_NESTING) throw new EvidenceError(origin, [], `nested more than ${MAX_NESTING} levels deep: tiergate's evidence.json is never nested that deep`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new EvidenceError(origin, [], `not valid JSON (${(err as Error).message}); expected tiergate's evidence.json`);
  }
  const odd = oddKeys(value);
  if (odd.length) {
    throw new EvidenceError(origin, odd.slice(0, 5).map((path) => ({ path, message: 'a key no JSON that tiergate writes holds (__proto__, constructor, prototype)' })), 'refused:');
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
  // the schema's limits (tier records per stage …) first; then, strict, no field this tiergate does not know
  let parsed = EvidenceSchema.safeParse(value);
  if (parsed.success && options.strict) parsed = StrictEvidenceSchema.safeParse(value);
  if (!parsed.success) {
    const issues = issuesOf(parsed.error);
    throw new EvidenceError(origin, issues, `not valid tiergate evidence (${issues.length} problem${issues.length === 1 ? '' : 's'}):`);
  }
  return parsed.data;
}

/**
 * The text of an evidence file's bytes, read as strictly as the evidence:
 * UTF-8 without a byte-order mark, as tiergate writes it (an invalid byte
 * would otherwise read as U+FFFD, and be rendered or bound as if written).
 */
export function evidenceText(bytes: Uint8Array, origin: string): string {
  if (hasUtf8Bom(bytes)) {
    throw new EvidenceError(origin, [], 'begins with a UTF-8 byte-order mark, which tiergate never writes: an edited file (save it without BOM) or not tiergate\'s evidence.json');
  }
  const text = strictUtf8(bytes);
  if (text === null) throw new EvidenceError(origin, [], "is not valid UTF-8, which tiergate always writes: a damaged or edited file; pass the evidence.json a rehearsal wrote");
  return text;
}

/** Deeper than any evidence.json tiergate writes (its deepest path is about 10 levels). */
const MAX_NESTING = 64;

/**
 * How deep the JSON `text` nests its arrays and objects, counted without
 * parsing (brackets in strings skipped), stopping once past `limit`.
 *
 * @example nestingDepth('{"a": [1, {"b": "]"}]}', 64) // 3
 */
export function nestingDepth(text: string, limit: number): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // a backslash escapes the next character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max && (max = depth) > limit) return max;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

/** Keys that are never tiergate's and that JavaScript treats specially, with their paths. */
function oddKeys(value: unknown, path = '', out: string[] = []): string[] {
  if (out.length >= 5 || value === null || typeof value !== 'object') return out;
  if (Array.isArray(value)) {
    value.forEach((v, i) => oddKeys(v, `${path}[${i}]`, out));
    return out;
  }
  for (const key of Object.keys(value)) {
    const at = path ? `${path}.${key}` : key;
    if (key === '__proto__' || key === 'constructor' || key === 'prototype') out.push(at);
    else oddKeys((value as Record<string, unknown>)[key], at, out);
  }
  return out;
}

/**
 * The evidence schema with every object strict: what `apply --evidence` binds
 * to must hold no field this tiergate does not know (an edit, or a newer
 * tiergate's evidence: rehearse again with this version).
 */
function strictify(schema: z.ZodType): z.ZodType {
  if (schema instanceof z.ZodObject) {
    return z.strictObject(Object.fromEntries(Object.entries(schema.shape as Record<string, z.ZodType>).map(([k, v]) => [k, strictify(v)])));
  }
  if (schema instanceof z.ZodArray) return z.array(strictify(schema.element as z.ZodType));
  if (schema instanceof z.ZodOptional) return strictify(schema.unwrap() as z.ZodType).optional();
  if (schema instanceof z.ZodNullable) return strictify(schema.unwrap() as z.ZodType).nullable();
  if (schema instanceof z.ZodRecord) {
    const value = strictify(schema.valueType as z.ZodType);
    // a record keyed by an enum (object kinds) is partial: every key optional, as in the loose schema
    return schema.keyType instanceof z.ZodEnum ? z.partialRecord(schema.keyType, value) : z.record(schema.keyType as z.ZodString, value);
  }
  return schema;
}
const StrictEvidenceSchema = strictify(EvidenceSchema) as unknown as typeof EvidenceSchema;

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
