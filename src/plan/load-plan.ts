import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { PlanError, type PlanIssue } from '../errors.js';
import { packageRoot } from '../package-root.js';
import { PlanFile, type TierSpec } from './schema.js';
import { parsePostCondition, type PostCondition } from './post-condition.js';

/** A tier as the engine runs it: the spec, its SQL and its sha256. */
export interface Tier extends Omit<TierSpec, 'gated' | 'requires' | 'post' | 'reverts'> {
  gated: boolean;
  requires: number[];
  post: PostCondition[];
  reverts: number[];
  /** absolute path of the SQL file */
  path: string;
  sql: string;
  sha256: string;
}

/** A validated plan: pure data, the same value for rehearsal and production. */
export interface Plan {
  name: string;
  /** absolute folder */
  dir: string;
  database: string | undefined;
  schemas: string[];
  defaults: { lock_timeout: string; statement_timeout: string };
  gate: PlanFile['gate'];
  metrics: Record<string, string>;
  rehearsal: PlanFile['rehearsal'];
  tiers: Tier[];
  /** sha256 of tiergate.yaml */
  yamlSha256: string;
  /** plan-relative file → sha256 */
  files: Record<string, string>;
  /** sha256 over tiergate.yaml and every file's sha256: the plan's identity */
  sha256: string;
}

/** The bundled plan: `plans/axis-governance/` beside the code. */
export function bundledPlanDir(): string {
  return join(packageRoot(), 'plans', 'axis-governance');
}

export function sha256(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * Loads and validates a plan folder. Pure and synchronous (file reads only);
 * every problem is reported at once in a `PlanError`, each with its path
 * (`tiers[3].requires[0]: tier 7 does not exist`): schema errors do not hide
 * the plan's other problems (missing files, unknown tiers, …).
 *
 * @example const plan = loadPlan('plans/axis-governance');
 */
export function loadPlan(dirOrFile: string = bundledPlanDir()): Plan {
  const given = resolve(dirOrFile);
  const isFile = existsSync(given) && statSync(given).isFile();
  const dir = isFile ? dirname(given) : given;
  const yamlPath = isFile ? given : join(dir, 'tiergate.yaml');
  const where = relative(process.cwd(), dir) || '.';
  if (!existsSync(dir)) {
    throw new PlanError(where, [{ path: '', message: `folder '${dir}' does not exist (pass --plan DIR, a folder holding tiergate.yaml)` }]);
  }
  if (!existsSync(yamlPath)) {
    throw new PlanError(where, [{ path: '', message: `no tiergate.yaml in '${dir}' (pass --plan DIR, a folder holding tiergate.yaml)` }]);
  }
  const yamlBytes = readFileSync(yamlPath);
  const yamlName = basename(yamlPath);
  const badYamlLine = invalidUtf8Line(yamlBytes);
  if (badYamlLine !== null) {
    throw new PlanError(where, [{ path: `${yamlName}:${badYamlLine}`, message: 'not valid UTF-8: save the file as UTF-8' }]);
  }
  const raw = parsePlanYaml(yamlBytes.toString('utf8'), yamlName, where);
  const parsed = PlanFile.safeParse(raw ?? {}, { reportInput: true });
  const issues: PlanIssue[] = parsed.success ? [] : zodIssues(parsed.error, yamlName);
  // With schema errors, keep checking what did validate, so that every problem is reported at once.
  const spec: Loose<PlanFile> = parsed.success ? parsed.data : ((LoosePlanFile.safeParse(raw).data ?? {}) as Loose<PlanFile>);
  const specTiers = spec.tiers ?? [];
  const metrics = spec.metrics ?? {};
  const hasMetric = (m: string) => Object.hasOwn(metrics, m);
  const tiers: Tier[] = [];
  const files: Record<string, string> = {};
  const seen = new Map<number, number>();

  specTiers.forEach((t, i) => {
    if (!t) return;
    const at = `tiers[${i}]`;
    const listedBefore = new Set(seen.keys());
    if (t.id !== undefined) {
      if (seen.has(t.id)) issues.push({ path: `${at}.id`, message: `tier ${t.id} is listed twice (also tiers[${seen.get(t.id)}])` });
      else seen.set(t.id, i);
    }
    const id = t.id ?? `at tiers[${i}]`;

    const gated = t.gated ?? t.kind === 'data';
    if (t.kind === 'structure' && t.gated === true) {
      issues.push({ path: `${at}.gated`, message: `tier ${id} is a structure tier: structure tiers are never gated (make it a data tier)` });
    } else if (gated && t.kind && t.kind !== 'data') {
      issues.push({ path: `${at}.gated`, message: `only data tiers can be gated (tier ${id} is ${t.kind})` });
    }
    if (gated && t.kind === 'data' && !spec.gate && !issues.some((x) => x.path === 'gate' || x.path.startsWith('gate.'))) {
      issues.push({ path: `${at}.gated`, message: `tier ${id} is gated but the plan has no gate: add gate: (name, sql, min), or set gated: false` });
    }

    (t.requires ?? []).forEach((r, j) => {
      if (r === t.id) issues.push({ path: `${at}.requires[${j}]`, message: `tier ${id} requires itself` });
      else if (!listedBefore.has(r)) {
        const later = specTiers.some((o) => o?.id === r);
        issues.push({
          path: `${at}.requires[${j}]`,
          message: later ? `tier ${r} must be listed before tier ${id}, which requires it` : `tier ${r} does not exist`,
        });
      }
    });
    if (t.kind === 'rollback') {
      if (!t.reverts?.length) issues.push({ path: `${at}.reverts`, message: `rollback tier ${id} must name the tiers it reverts (reverts: [6, 4, 3])` });
    } else if (t.reverts && t.kind) {
      issues.push({ path: `${at}.reverts`, message: `only a rollback tier reverts tiers (tier ${id} is ${t.kind})` });
    }
    (t.reverts ?? []).forEach((r, j) => {
      const target = specTiers.find((o) => o?.id === r);
      if (!target) issues.push({ path: `${at}.reverts[${j}]`, message: `tier ${r} does not exist` });
      else if (target.kind === 'rollback' || target.kind === 'preflight' || target.kind === 'verify')
        issues.push({ path: `${at}.reverts[${j}]`, message: `tier ${r} is a ${target.kind} tier: it leaves nothing to revert` });
    });

    const post: PostCondition[] = [];
    (t.post ?? []).forEach((p, j) => {
      const parsedPost = parsePostCondition(p);
      if ('error' in parsedPost) issues.push({ path: `${at}.post[${j}]`, message: parsedPost.error });
      else if (!hasMetric(parsedPost.metric))
        issues.push({ path: `${at}.post[${j}]`, message: `metric '${parsedPost.metric}' is not defined under metrics: (defined: ${Object.keys(metrics).join(', ') || 'none'})` });
      else post.push(parsedPost);
    });
    for (const m of Object.keys(t.expect?.metrics ?? {})) {
      if (!hasMetric(m)) issues.push({ path: `${at}.expect.metrics.${m}`, message: `metric '${m}' is not defined under metrics: (defined: ${Object.keys(metrics).join(', ') || 'none'})` });
    }

    if (t.file === undefined) return;
    if (isAbsolute(t.file) || t.file.split(/[\\/]/).includes('..')) {
      issues.push({ path: `${at}.file`, message: `'${t.file}' must be a path inside the plan folder` });
      return;
    }
    const path = join(dir, t.file);
    if (!existsSync(path) || !statSync(path).isFile()) {
      issues.push({ path: `${at}.file`, message: `file '${t.file}' does not exist in ${where}` });
      return;
    }
    const bytes = readFileSync(path);
    const sql = bytes.toString('utf8');
    if (sql.trim() === '') issues.push({ path: `${at}.file`, message: `file '${t.file}' is empty` });
    // the SQL sent must be the file hashed: no bytes replaced in decoding, none cut off by the server
    const badLine = invalidUtf8Line(bytes);
    if (badLine !== null) issues.push({ path: `${at}.file`, message: `file '${t.file}' is not valid UTF-8 (line ${badLine}): save it as UTF-8` });
    const nul = bytes.indexOf(0);
    if (nul >= 0) {
      issues.push({
        path: `${at}.file`,
        message: `file '${t.file}' holds a NUL byte (line ${bytes.subarray(0, nul).toString('utf8').split('\n').length}): PostgreSQL text cannot hold one, and the server would silently end the statement there`,
      });
    }
    const hash = sha256(bytes);
    files[t.file] = hash;
    const strict = parsed.success ? parsed.data.tiers[i] : undefined;
    if (strict) {
      tiers.push({ ...strict, gated, requires: strict.requires ?? [], post, reverts: strict.reverts ?? [], path, sql, sha256: hash });
    }
  });

  const rollbacks = specTiers.filter((t) => t?.kind === 'rollback');
  if (rollbacks.length > 1) issues.push({ path: 'tiers', message: `a plan has at most one rollback tier (found ${rollbacks.map((t) => t?.id).join(', ')})` });
  const verifies = specTiers.filter((t) => t?.kind === 'verify');
  if (verifies.length > 1) issues.push({ path: 'tiers', message: `a plan has at most one verify tier (found ${verifies.map((t) => t?.id).join(', ')})` });
  if (spec.gate?.name && hasMetric(spec.gate.name)) {
    issues.push({ path: `metrics.${spec.gate.name}`, message: `'${spec.gate.name}' is the gate's name; a metric cannot share it` });
  }

  if (issues.length || !parsed.success) throw new PlanError(where, sortIssues(issues));
  const plan = parsed.data;

  const yamlSha256 = sha256(yamlBytes);
  const planSha = sha256(
    [`tiergate.yaml ${yamlSha256}`, ...Object.entries(files).sort(([a], [b]) => (a < b ? -1 : 1)).map(([f, h]) => `${f} ${h}`)].join('\n'),
  );
  return {
    name: plan.plan,
    dir,
    database: plan.database,
    schemas: plan.schemas,
    defaults: plan.defaults,
    gate: plan.gate,
    metrics: plan.metrics,
    rehearsal: plan.rehearsal,
    tiers,
    yamlSha256,
    files,
    sha256: planSha,
  };
}

/** A plan value where every field may be missing: what a plan with schema errors still tells us. */
type Loose<T> = T extends undefined
  ? undefined
  : [T] extends [(infer E)[]]
  ? [E] extends [object]
    ? (Loose<E> | undefined)[]
    : T
  : T extends object
    ? { [K in keyof T]?: Loose<T[K]> }
    : T;

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

/** Sorts issues by path (`tiers[2]` before `tiers[10]`), keeping the order of issues on one path. */
function sortIssues(issues: PlanIssue[]): PlanIssue[] {
  return [...issues].sort((a, b) => a.path.localeCompare(b.path, 'en', { numeric: true }));
}

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
    const message = (problem.message.split('\n')[0] ?? '').replace(/:$/, '');
    const advice = doc.errors.length ? '' : ' (a plan is plain YAML: remove the tag)';
    throw new PlanError(where, [{ path: line ? `${yamlName}:${line}` : yamlName, message: `not valid YAML: ${message}${advice}` }]);
  }
  try {
    return doc.toJS();
  } catch (e) {
    // e.g. too many aliases (a "billion laughs" document)
    throw new PlanError(where, [{ path: yamlName, message: `not valid YAML: ${e instanceof Error ? e.message : String(e)}` }]);
  }
}

/** The 1-based line of the first byte sequence that is not UTF-8, or null when the bytes are UTF-8. */
function invalidUtf8Line(bytes: Buffer): number | null {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return null;
  } catch {
    let line = 1;
    let start = 0;
    for (let i = 0; i <= bytes.length; i++) {
      if (i === bytes.length || bytes[i] === 0x0a) {
        try {
          new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(start, i));
        } catch {
          return line;
        }
        line++;
        start = i + 1;
      }
    }
    return line;
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

/** Every file of the plan with its sha256, tiergate.yaml included: what evidence binds to. */
export function planFileHashes(plan: Plan): Record<string, string> {
  return { 'tiergate.yaml': plan.yamlSha256, ...plan.files };
}

/** The tiers `apply` runs, in plan order (everything but rollback). */
export function applyOrder(plan: Plan): Tier[] {
  return plan.tiers.filter((t) => t.kind !== 'rollback');
}

export function tierById(plan: Plan, id: number): Tier | undefined {
  return plan.tiers.find((t) => t.id === id);
}
