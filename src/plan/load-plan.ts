import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { PlanError, type PlanIssue } from '../errors.js';
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

/** The folder holding tiergate's package.json (works from src/ under tsx and from dist/). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'plans'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('tiergate: cannot find the package root (package.json beside plans/)');
    dir = up;
  }
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
 * every problem is reported at once in a `PlanError`.
 *
 * @example const plan = loadPlan('plans/axis-governance');
 */
export function loadPlan(dirOrFile: string = bundledPlanDir()): Plan {
  const given = resolve(dirOrFile);
  const isFile = existsSync(given) && statSync(given).isFile();
  const dir = isFile ? dirname(given) : given;
  const yamlPath = isFile ? given : join(dir, 'tiergate.yaml');
  const where = relative(process.cwd(), dir) || '.';
  if (!existsSync(yamlPath)) {
    throw new PlanError(where, [{ path: '', message: `no tiergate.yaml in '${dir}' (pass --plan DIR, a folder holding tiergate.yaml)` }]);
  }
  const yamlText = readFileSync(yamlPath, 'utf8');
  let raw: unknown;
  try {
    raw = parseYaml(yamlText, { prettyErrors: true, uniqueKeys: true });
  } catch (e) {
    const msg = e instanceof YAMLParseError ? e.message.split('\n')[0] : String(e);
    const line = e instanceof YAMLParseError && e.linePos ? `:${e.linePos[0].line}` : '';
    throw new PlanError(where, [{ path: `tiergate.yaml${line}`, message: `not valid YAML: ${msg}` }]);
  }
  const parsed = PlanFile.safeParse(raw ?? {});
  if (!parsed.success) throw new PlanError(where, zodIssues(parsed.error));
  const spec = parsed.data;
  const issues: PlanIssue[] = [];
  const tiers: Tier[] = [];
  const files: Record<string, string> = {};
  const seen = new Map<number, number>();

  spec.tiers.forEach((t, i) => {
    const at = `tiers[${i}]`;
    if (seen.has(t.id)) issues.push({ path: `${at}.id`, message: `tier ${t.id} is listed twice (also tiers[${seen.get(t.id)}])` });
    const listedBefore = new Set(seen.keys());
    seen.set(t.id, i);

    if (t.kind === 'structure' && t.gated === true) {
      issues.push({ path: `${at}.gated`, message: `tier ${t.id} is a structure tier: structure tiers are never gated (make it a data tier)` });
    }
    const gated = t.gated ?? t.kind === 'data';
    if (gated && !spec.gate) issues.push({ path: `${at}.gated`, message: `tier ${t.id} is gated but the plan has no gate` });
    if (gated && t.kind !== 'data') issues.push({ path: `${at}.gated`, message: `only data tiers can be gated (tier ${t.id} is ${t.kind})` });

    (t.requires ?? []).forEach((r, j) => {
      if (r === t.id) issues.push({ path: `${at}.requires[${j}]`, message: `tier ${t.id} requires itself` });
      else if (!listedBefore.has(r)) {
        const later = spec.tiers.some((o) => o.id === r);
        issues.push({
          path: `${at}.requires[${j}]`,
          message: later ? `tier ${r} must be listed before tier ${t.id}, which requires it` : `tier ${r} does not exist`,
        });
      }
    });
    if (t.kind === 'rollback') {
      if (!t.reverts?.length) issues.push({ path: `${at}.reverts`, message: `rollback tier ${t.id} must name the tiers it reverts` });
    } else if (t.reverts) {
      issues.push({ path: `${at}.reverts`, message: `only a rollback tier reverts tiers (tier ${t.id} is ${t.kind})` });
    }
    (t.reverts ?? []).forEach((r, j) => {
      const target = spec.tiers.find((o) => o.id === r);
      if (!target) issues.push({ path: `${at}.reverts[${j}]`, message: `tier ${r} does not exist` });
      else if (target.kind === 'rollback' || target.kind === 'preflight' || target.kind === 'verify')
        issues.push({ path: `${at}.reverts[${j}]`, message: `tier ${r} is a ${target.kind} tier: it leaves nothing to revert` });
    });

    const post: PostCondition[] = [];
    (t.post ?? []).forEach((p, j) => {
      const parsedPost = parsePostCondition(p);
      if ('error' in parsedPost) issues.push({ path: `${at}.post[${j}]`, message: parsedPost.error });
      else if (!(parsedPost.metric in spec.metrics))
        issues.push({ path: `${at}.post[${j}]`, message: `metric '${parsedPost.metric}' is not defined under metrics:` });
      else post.push(parsedPost);
    });
    for (const m of Object.keys(t.expect?.metrics ?? {})) {
      if (!(m in spec.metrics)) issues.push({ path: `${at}.expect.metrics.${m}`, message: `metric '${m}' is not defined under metrics:` });
    }

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
    const hash = sha256(bytes);
    files[t.file] = hash;
    tiers.push({
      ...t,
      gated,
      requires: t.requires ?? [],
      post,
      reverts: t.reverts ?? [],
      path,
      sql,
      sha256: hash,
    });
  });

  const rollbacks = spec.tiers.filter((t) => t.kind === 'rollback');
  if (rollbacks.length > 1) issues.push({ path: 'tiers', message: `a plan has at most one rollback tier (found ${rollbacks.map((t) => t.id).join(', ')})` });
  const verifies = spec.tiers.filter((t) => t.kind === 'verify');
  if (verifies.length > 1) issues.push({ path: 'tiers', message: `a plan has at most one verify tier (found ${verifies.map((t) => t.id).join(', ')})` });
  if (spec.gate && spec.gate.name in spec.metrics) {
    issues.push({ path: `metrics.${spec.gate.name}`, message: `'${spec.gate.name}' is the gate's name; a metric cannot share it` });
  }

  if (issues.length) throw new PlanError(where, issues);

  const yamlSha256 = sha256(yamlText);
  const planSha = sha256(
    [`tiergate.yaml ${yamlSha256}`, ...Object.entries(files).sort(([a], [b]) => (a < b ? -1 : 1)).map(([f, h]) => `${f} ${h}`)].join('\n'),
  );
  return {
    name: spec.plan,
    dir,
    database: spec.database,
    schemas: spec.schemas,
    defaults: spec.defaults,
    gate: spec.gate,
    metrics: spec.metrics,
    rehearsal: spec.rehearsal,
    tiers,
    yamlSha256,
    files,
    sha256: planSha,
  };
}

function zodIssues(error: z.ZodError): PlanIssue[] {
  return error.issues.map((i) => {
    const path = i.path.reduce<string>((acc, seg) => (typeof seg === 'number' ? `${acc}[${seg}]` : acc ? `${acc}.${String(seg)}` : String(seg)), '');
    let message = i.message;
    if (i.code === 'unrecognized_keys') message = `unknown key${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `'${k}'`).join(', ')}`;
    return { path, message };
  });
}

/** The tiers `apply` runs, in plan order (everything but rollback). */
export function applyOrder(plan: Plan): Tier[] {
  return plan.tiers.filter((t) => t.kind !== 'rollback');
}

export function tierById(plan: Plan, id: number): Tier | undefined {
  return plan.tiers.find((t) => t.id === id);
}
