/**
 * A plan as the engine runs it, and the checks of a plan that need no YAML
 * parser and no schema library: where its files are, whether they can be
 * read, and how its tiers, files and metrics fit together. `load-plan.ts`
 * reads and validates tiergate.yaml (with `yaml` and `zod`, ~0.1 s to load);
 * `open-plan.ts` skips that for a tiergate.yaml validated before.
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { hasUtf8Bom, readRegularFile, strictUtf8 } from '../safe-read.js';
import { PlanError, type PlanIssue } from '../errors.js';
import { packageRoot } from '../package-root.js';
import type { PlanFile, TierSpec } from './schema.js';
import { expressionsOf, namesIn, parseExpr } from './expect-expr.js';
import { parsePostCondition, type PostCondition } from './post-condition.js';

/** A tier as the engine runs it: the spec, its SQL and its sha256. */
export interface Tier extends Omit<TierSpec, 'gated' | 'requires' | 'post' | 'reverts' | 'scope' | 'replaces'> {
  gated: boolean;
  requires: number[];
  post: PostCondition[];
  reverts: number[];
  /** rollback tiers: `subject` reverts only what the tiers wrote for the gate's current subject */
  scope: 'all' | 'subject';
  /** sha256 of earlier revisions of the file that do the same: applied from one of them is not drift */
  replaces: string[];
  /** the plan's figures this tier's `expect` reads (read in its transaction before it runs) */
  figures: string[];
  /** absolute path of the SQL file */
  path: string;
  sql: string;
  sha256: string;
}

/**
 * What a ledger's sha256 of an applied tier is to the tier's file now: the
 * same file, a revision the plan says this file replaces (`replaces`), or
 * drift. The one rule apply (refusing drift) and status (reporting it) share.
 */
export function appliedRevision(tier: Tier, appliedSha256: string): 'current' | 'replaced' | 'drift' {
  if (appliedSha256 === tier.sha256) return 'current';
  return tier.replaces.includes(appliedSha256) ? 'replaced' : 'drift';
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
  figures: Record<string, string>;
  /** what production demands of its evidence */
  evidence: { required: boolean; signed: boolean };
  rehearsal: PlanFile['rehearsal'];
  amend: PlanFile['amend'];
  tiers: Tier[];
  /** sha256 of tiergate.yaml */
  yamlSha256: string;
  /** the name of the plan's YAML file in `dir` (tiergate.yaml, or the file given) */
  yamlName: string;
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

/** A plan's tiergate.yaml, found and read (UTF-8 checked): what is left is to parse and validate it. */
export interface PlanSource {
  dir: string;
  /** the folder as messages name it (relative to the working directory) */
  where: string;
  yamlName: string;
  yamlBytes: Buffer;
}

/** Finds and reads a plan's tiergate.yaml (`dirOrFile` is the folder or the file). */
export function readPlanSource(dirOrFile: string = bundledPlanDir()): PlanSource {
  const given = resolve(dirOrFile);
  const isFile = existsSync(given) && !statSync(given).isDirectory();
  if (isFile && !statSync(given).isFile()) {
    throw new PlanError(dirOrFile, [{ path: '', message: `'${dirOrFile}' is not a plan: pass --plan DIR, a folder holding tiergate.yaml (or the tiergate.yaml file itself)` }]);
  }
  const dir = isFile ? dirname(given) : given;
  const yamlPath = isFile ? given : join(dir, 'tiergate.yaml');
  // as the user can name it from here: relative under the working directory, else the absolute path (never ../../..)
  const rel = relative(process.cwd(), dir);
  const where = rel === '' ? '.' : rel.startsWith('..') || isAbsolute(rel) ? dir : rel;
  if (!existsSync(dir)) {
    throw new PlanError(where, [{ path: '', message: `folder '${dir}' does not exist (pass --plan DIR, a folder holding tiergate.yaml)` }]);
  }
  const yamlName = basename(yamlPath);
  // (a link that loops, or leads nowhere, exists all the same: reading it says which)
  if (!existsSync(yamlPath) && !isFile && !isLink(yamlPath)) {
    throw new PlanError(where, [{ path: '', message: `no tiergate.yaml in '${dir}' (pass --plan DIR, a folder holding tiergate.yaml)` }]);
  }
  const outside = outsideOf(dir, yamlPath);
  if (outside) throw new PlanError(where, [{ path: yamlName, message: outside }]);
  const read = readRegularFile(yamlPath, 'plan');
  if ('reason' in read) throw new PlanError(where, [{ path: yamlName, message: `${yamlName} ${read.reason}` }]);
  const yamlBytes = read;
  const badYamlLine = invalidUtf8Line(yamlBytes);
  if (badYamlLine !== null) {
    throw new PlanError(where, [{ path: `${yamlName}:${badYamlLine}`, message: 'not valid UTF-8: save the file as UTF-8' }]);
  }
  return { dir, where, yamlName, yamlBytes };
}

/**
 * Why `path` is not inside the plan folder `dir` once links are resolved
 * (`tiers/` a link to `/`, a tier file a link to a file elsewhere), or null
 * when it is (or does not exist: reading it says so).
 */
function outsideOf(dir: string, path: string): string | null {
  let realDir: string;
  let real: string;
  try {
    realDir = realpathSync(dir);
    real = realpathSync(path);
  } catch {
    return null;
  }
  if (real === realDir || real.startsWith(realDir.endsWith(sep) ? realDir : realDir + sep)) return null;
  return `'${relative(dir, path) || path}' leads outside the plan folder (to ${real}) through a link: a plan's files must be inside its folder`;
}

/** A plan value where every field may be missing: what a plan with schema errors still tells us. */
export type Loose<T> = T extends undefined
  ? undefined
  : [T] extends [(infer E)[]]
  ? [E] extends [object]
    ? (Loose<E> | undefined)[]
    : T
  : T extends object
    ? { [K in keyof T]?: Loose<T[K]> }
    : T;

/**
 * A plan from its validated tiergate.yaml: every tier file read, hashed and
 * checked, and every cross-reference (requires, reverts, post, expect, the
 * gate) resolved. Given the schema's issues of an invalid tiergate.yaml
 * (and what of it still reads), it adds its own, so that every problem is
 * reported at once in one `PlanError`.
 */
export function assemblePlan(source: PlanSource, valid: PlanFile | undefined, spec: Loose<PlanFile> = valid ?? {}, issues: PlanIssue[] = []): Plan {
  const { dir, where } = source;
  const specTiers = spec.tiers ?? [];
  const metrics = spec.metrics ?? {};
  const figures = spec.figures ?? {};
  const hasMetric = (m: string) => Object.hasOwn(metrics, m);
  const hasFigure = (f: string) => Object.hasOwn(figures, f);
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
    if (t.scope && t.kind && t.kind !== 'rollback') issues.push({ path: `${at}.scope`, message: `only a rollback tier has a scope (tier ${id} is ${t.kind})` });
    if (t.replaces?.length && t.kind && t.kind !== 'structure' && t.kind !== 'data') {
      issues.push({ path: `${at}.replaces`, message: `only structure and data tiers are checked for drift: tier ${id} is ${t.kind}, whose file runs again each time` });
    }
    if (t.scope === 'subject' && !spec.gate?.subject) {
      issues.push({ path: `${at}.scope`, message: `rollback tier ${id} reverts one gate subject, but the plan's gate has no subject query (gate.subject)` });
    }
    (t.reverts ?? []).forEach((r, j) => {
      const target = specTiers.find((o) => o?.id === r);
      if (!target) issues.push({ path: `${at}.reverts[${j}]`, message: `tier ${r} does not exist` });
      else if (target.kind === 'rollback' || target.kind === 'preflight' || target.kind === 'verify')
        issues.push({ path: `${at}.reverts[${j}]`, message: `tier ${r} is a ${target.kind} tier: it leaves nothing to revert` });
      else if (t.scope === 'subject' && !(target.kind === 'data' && target.gated !== false))
        issues.push({ path: `${at}.reverts[${j}]`, message: `tier ${r} is not gated: a rollback of scope subject reverts what gated tiers wrote for one subject` });
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
    const figureRefs = new Set<string>();
    for (const [path, text] of expectExpressions(t.expect)) {
      const parsedExpr = parseExpr(text);
      if (!parsedExpr.ok) {
        issues.push({ path: `${at}.expect.${path}`, message: parsedExpr.error });
        continue;
      }
      for (const name of namesIn(parsedExpr.expr)) {
        if (hasFigure(name)) figureRefs.add(name);
        else if (!hasMetric(name)) {
          issues.push({
            path: `${at}.expect.${path}`,
            message: `'${name}' in '${text}' is neither a metric nor a figure (metrics: ${Object.keys(metrics).join(', ') || 'none'}; figures: ${Object.keys(figures).join(', ') || 'none'})`,
          });
        }
      }
    }

    if (t.file === undefined) return;
    if (isAbsolute(t.file) || t.file.split(/[\\/]/).includes('..')) {
      issues.push({ path: `${at}.file`, message: `'${t.file}' must be a path inside the plan folder` });
      return;
    }
    const path = join(dir, t.file);
    const outside = outsideOf(dir, path);
    if (outside) {
      issues.push({ path: `${at}.file`, message: outside });
      return;
    }
    const read = readRegularFile(path, 'sql');
    if ('reason' in read) {
      issues.push({ path: `${at}.file`, message: `file '${t.file}' ${read.reason === 'does not exist' ? `does not exist in ${where}` : read.reason}` });
      return;
    }
    const bytes = read;
    const sql = bytes.toString('utf8');
    if (sql.trim() === '') issues.push({ path: `${at}.file`, message: `file '${t.file}' is empty` });
    // the SQL sent must be the file hashed: no bytes replaced in decoding, none cut off by the server
    const badLine = invalidUtf8Line(bytes);
    if (badLine !== null) issues.push({ path: `${at}.file`, message: `file '${t.file}' is not valid UTF-8 (line ${badLine}): save it as UTF-8` });
    // (psql sends it too: the server reads it as part of the first statement, a syntax error whose text shows nothing)
    if (hasUtf8Bom(bytes)) {
      issues.push({ path: `${at}.file`, message: `file '${t.file}' begins with a UTF-8 byte-order mark (bytes EF BB BF), which PostgreSQL reads as part of its first statement: save it as UTF-8 without BOM` });
    }
    const nul = bytes.indexOf(0);
    if (nul >= 0) {
      issues.push({
        path: `${at}.file`,
        message: `file '${t.file}' holds a NUL byte (line ${bytes.subarray(0, nul).toString('utf8').split('\n').length}): PostgreSQL text cannot hold one, and the server would silently end the statement there`,
      });
    }
    const hash = sha256(bytes);
    files[t.file] = hash;
    const strict = valid?.tiers[i];
    if (strict) {
      tiers.push({ ...strict, gated, requires: strict.requires ?? [], post, reverts: strict.reverts ?? [], scope: strict.scope ?? 'all', replaces: strict.replaces ?? [], figures: [...figureRefs].sort(), path, sql, sha256: hash });
    }
  });

  for (const scope of ['all', 'subject'] as const) {
    const rollbacks = specTiers.filter((t) => t?.kind === 'rollback' && (t.scope ?? 'all') === scope);
    if (rollbacks.length > 1) {
      issues.push({ path: 'tiers', message: `a plan has at most one rollback tier${scope === 'subject' ? ' of scope subject' : ''} (found ${rollbacks.map((t) => t?.id).join(', ')})` });
    }
  }
  const verifies = specTiers.filter((t) => t?.kind === 'verify');
  if (verifies.length > 1) issues.push({ path: 'tiers', message: `a plan has at most one verify tier (found ${verifies.map((t) => t?.id).join(', ')})` });
  if (spec.gate?.name && hasMetric(spec.gate.name)) {
    issues.push({ path: `metrics.${spec.gate.name}`, message: `'${spec.gate.name}' is the gate's name; a metric cannot share it` });
  }
  for (const f of Object.keys(figures)) {
    if (hasMetric(f)) issues.push({ path: `figures.${f}`, message: `'${f}' is also a metric: a figure needs a name of its own` });
    if (f === spec.gate?.name) issues.push({ path: `figures.${f}`, message: `'${f}' is the gate's name; a figure cannot share it` });
  }

  if (issues.length || !valid) throw new PlanError(where, sortIssues(issues));
  const plan = valid;

  const yamlSha256 = sha256(source.yamlBytes);
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
    figures: plan.figures,
    evidence: { required: plan.evidence?.required ?? false, signed: plan.evidence?.signed ?? false },
    rehearsal: plan.rehearsal,
    amend: plan.amend,
    tiers,
    yamlSha256,
    yamlName: source.yamlName,
    files,
    sha256: planSha,
  };
}

/** Every expression string of an `expect`, with its path below `expect` (`rows["axis.ownership"].added`). */
function expectExpressions(expect: Loose<TierSpec['expect']> | undefined): [string, string][] {
  if (!expect) return [];
  const out: [string, string][] = [];
  const key = (k: string) => (/^[a-z_][a-z0-9_]*$/.test(k) ? `.${k}` : `[${JSON.stringify(k)}]`);
  for (const [group, entries] of Object.entries(expect) as [string, Record<string, unknown> | undefined][]) {
    for (const [name, value] of Object.entries(entries ?? {})) {
      for (const text of expressionsOf(value)) out.push([`${group}${key(name)}`, text]);
    }
  }
  return out;
}

/** Sorts issues by path (`tiers[2]` before `tiers[10]`), keeping the order of issues on one path. */
function sortIssues(issues: PlanIssue[]): PlanIssue[] {
  return [...issues].sort((a, b) => a.path.localeCompare(b.path, 'en', { numeric: true }));
}

/** The 1-based line of the first byte sequence that is not UTF-8, or null when the bytes are UTF-8. */
function invalidUtf8Line(bytes: Buffer): number | null {
  if (strictUtf8(bytes) !== null) return null;
  let line = 1;
  let start = 0;
  for (let i = 0; i <= bytes.length; i++) {
    if (i === bytes.length || bytes[i] === 0x0a) {
      if (strictUtf8(bytes.subarray(start, i)) === null) return line;
      line++;
      start = i + 1;
    }
  }
  return line;
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

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}
