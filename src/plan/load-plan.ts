import { parseDocument } from 'yaml';
import { z } from 'zod';
import { writeCache } from '../cache.js';
import { PlanError, type PlanIssue } from '../errors.js';
import { assemblePlan, bundledPlanDir, readPlanSource, type Loose, type Plan, type PlanSource } from './plan.js';
import { PlanFile } from './schema.js';
import { planCacheKey } from './open-plan.js';

export * from './plan.js';

/**
 * Loads and validates a plan folder. Synchronous: file reads, and a valid
 * tiergate.yaml is written to tiergate's cache for `openPlan`;
 * every problem is reported at once in a `PlanError`, each with its path
 * (`tiers[3].requires[0]: tier 7 does not exist`): schema errors do not hide
 * the plan's other problems (missing files, unknown tiers, …).
 *
 * @example const plan = loadPlan('plans/axis-governance');
 */
export function loadPlan(dirOrFile: string = bundledPlanDir()): Plan {
  return loadPlanSource(readPlanSource(dirOrFile));
}

/** `loadPlan` of a tiergate.yaml already found and read. */
export function loadPlanSource(source: PlanSource): Plan {
  const { yamlName, where } = source;
  const raw = parsePlanYaml(source.yamlBytes.toString('utf8'), yamlName, where);
  const parsed = PlanFile.safeParse(raw ?? {}, { reportInput: true });
  if (parsed.success) {
    const plan = assemblePlan(source, parsed.data);
    // the next run of this tiergate.yaml skips the YAML parser and the schema (open-plan.ts)
    const key = planCacheKey(source.yamlBytes);
    if (key !== null) writeCache('plan', key, parsed.data);
    return plan;
  }
  // With schema errors, keep checking what did validate, so that every problem is reported at once.
  const spec = (LoosePlanFile.safeParse(raw).data ?? {}) as Loose<PlanFile>;
  return assemblePlan(source, undefined, spec, zodIssues(parsed.error, yamlName));
}

/**
 * The plan schema made forgiving, derived from the strict one: a field that
 * does not validate reads as missing, unknown keys are dropped, a bad tier
 * does not hide the others. Only used to keep checking an invalid plan.
 */
function loosen(schema: z.ZodType): z.ZodType {
  if (schema instanceof z.ZodObject) {
    const shape = Object.fromEntries(Object.entries(schema.shape).map(([k, s]) => [k, loosen(s as z.ZodType)]));
    return z.object(shape).optional().catch(undefined);
  }
  if (schema instanceof z.ZodDefault && schema.unwrap() instanceof z.ZodObject) return loosen(schema.unwrap() as z.ZodType);
  if (schema instanceof z.ZodArray && schema.element instanceof z.ZodObject) {
    return z.array(loosen(schema.element as z.ZodType)).optional().catch(undefined);
  }
  return schema.optional().catch(undefined);
}
const LoosePlanFile = loosen(PlanFile);

function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, seg) => {
    if (typeof seg === 'number') return `${acc}[${seg}]`;
    // a key that would vanish or blur in a dotted path is shown quoted
    const key = String(seg);
    if (key === '' || (/[\s.[\]"]/.test(key) && !/^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$/.test(key))) return `${acc}[${JSON.stringify(key)}]`;
    return acc ? `${acc}.${key}` : key;
  }, '');
}

/**
 * The YAML of a plan as plain data. The first error — or warning: an unknown
 * tag (`!!js/function`, `!custom`) would silently become a string, and a plan
 * is plain YAML — is a PlanError naming its line.
 */
function parsePlanYaml(text: string, yamlName: string, where: string): unknown {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem) {
    const line = problem.linePos?.[0]?.line;
    const message = (problem.message.split('\n')[0] ?? '').replace(/:$/, '').replace(/Maximum call stack size exceeded/, 'nested too deeply');
    const advice = doc.errors.length ? '' : ' (a plan is plain YAML: remove the tag)';
    throw new PlanError(where, [{ path: line ? `${yamlName}:${line}` : yamlName, message: `not valid YAML: ${message}${advice}` }]);
  }
  try {
    return doc.toJS();
  } catch (e) {
    // e.g. too many aliases (a "billion laughs" document)
    const message = e instanceof RangeError ? 'nested too deeply' : e instanceof Error ? e.message : String(e);
    throw new PlanError(where, [{ path: yamlName, message: `not valid YAML: ${message}` }]);
  }
}

/** zod's issues as plan issues whose messages say what was expected and what was found. */
function zodIssues(error: z.ZodError, fileName: string): PlanIssue[] {
  const out: PlanIssue[] = [];
  for (const i of error.issues) {
    // a problem of the whole document (a list or a scalar instead of a mapping) is the file's
    const path = formatPath(i.path) || fileName;
    if (i.code === 'unrecognized_keys') {
      const allowed = allowedKeys(i.path);
      for (const k of i.keys) {
        out.push({
          path: formatPath([...i.path, k]),
          message: `unknown key '${k}'${allowed.length ? ` (expected one of: ${allowed.join(', ')})` : ''}`,
        });
      }
      continue;
    }
    if (i.code === 'invalid_key') {
      const inner = i.issues[0];
      out.push({ path, message: `key '${String(i.input)}': ${inner ? expectation(inner) : 'not a valid key'}` });
      continue;
    }
    const input = (i as { input?: unknown }).input;
    const message = expectation(i);
    out.push({ path, message: input === undefined ? `missing: ${message}` : `${message}, got ${describe(input)}` });
  }
  return out;
}

/** "expected …", from one zod issue. */
function expectation(i: z.core.$ZodIssue): string {
  switch (i.code) {
    case 'invalid_type':
      return `expected ${TYPE_NAMES[i.expected] ?? i.expected}`;
    case 'invalid_value':
      return `expected ${i.values.length === 1 ? String(i.values[0]) : `one of ${i.values.map(String).join(', ')}`}`;
    case 'invalid_format':
      return i.message.startsWith('expected') ? i.message : `expected ${i.format}`;
    case 'too_small':
      if (i.origin === 'array' || i.origin === 'set') return `expected at least ${String(i.minimum)} item${i.minimum === 1 ? '' : 's'}`;
      if (i.origin === 'string') return Number(i.minimum) === 1 ? 'expected a non-empty string' : `expected at least ${String(i.minimum)} characters`;
      return `expected a number ${i.inclusive ? '≥' : '>'} ${String(i.minimum)}`;
    case 'too_big':
      if (i.origin === 'array' || i.origin === 'set') return `expected at most ${String(i.maximum)} item${i.maximum === 1 ? '' : 's'}`;
      if (i.origin === 'string') return `expected at most ${String(i.maximum)} characters`;
      return `expected a number ${i.inclusive ? '≤' : '<'} ${String(i.maximum)}`;
    case 'invalid_union': {
      const branches = i.errors.map((branch) => branch.filter((b) => b.path.length === 0).map((b) => expectation(b).replace(/^expected /, '')));
      const alternatives = [...new Set(branches.map((b) => b.join(' and ')).filter(Boolean))];
      return alternatives.length ? `expected ${alternatives.join(' or ')}` : 'expected a valid value';
    }
    default:
      return i.message;
  }
}

const TYPE_NAMES: Record<string, string> = {
  number: 'a number',
  int: 'an integer',
  string: 'a string',
  boolean: 'true or false',
  object: 'a mapping (key: value)',
  record: 'a mapping (key: value)',
  array: 'a list',
  tuple: 'a list',
  null: 'null',
};

/** How a YAML value reads in a message: `'5 seconds'`, `3`, `a list`. */
function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null (an empty value)';
  if (typeof v === 'string') return `'${v.length > 60 ? `${v.slice(0, 57)}…` : v}'`;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return 'a list';
  return 'a mapping';
}

/** The keys the schema allows at a path (for "unknown key" messages). */
function allowedKeys(path: readonly PropertyKey[]): string[] {
  let s: z.ZodType | undefined = PlanFile;
  const unwrap = (x: z.ZodType): z.ZodType => {
    for (;;) {
      if (x instanceof z.ZodDefault || x instanceof z.ZodOptional || x instanceof z.ZodNullable) x = x.unwrap() as z.ZodType;
      else return x;
    }
  };
  for (const seg of path) {
    if (!s) return [];
    s = unwrap(s);
    if (s instanceof z.ZodObject) s = (s.shape as Record<string, z.ZodType>)[String(seg)];
    else if (s instanceof z.ZodArray) s = s.element as z.ZodType;
    else if (s instanceof z.ZodRecord) s = s.valueType as z.ZodType;
    else return [];
  }
  if (!s) return [];
  s = unwrap(s);
  if (s instanceof z.ZodObject) return Object.keys(s.shape);
  if (s instanceof z.ZodRecord && s.keyType instanceof z.ZodEnum) return s.keyType.options.map(String);
  return [];
}

