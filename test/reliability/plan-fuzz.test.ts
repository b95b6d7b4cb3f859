import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { PlanError } from '../../src/errors.js';
import { loadPlan } from '../../src/plan/load-plan.js';
import { bundledPlan } from './harness.js';
import { Tally } from './results.js';
import { trials } from './size.js';

/**
 * The plan loader under fuzzing (fast-check): random YAML-ish documents,
 * random mutations of the bundled plan, and raw text. loadPlan either
 * returns a Plan or throws a PlanError whose every issue has a path (and a
 * message); never any other exception.
 */
const FILES = ['tiers/a.sql', 'tiers/b.sql', 'tiers/00_preflight.sql'];

function planFolder(): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'tiergate-fuzz-')), 'plan');
  mkdirSync(join(dir, 'tiers'), { recursive: true });
  for (const f of FILES) writeFileSync(join(dir, f), 'select 1;\n');
  return dir;
}

/** What loadPlan did with one document: '' when it behaved, else what was wrong. */
function judge(dir: string, text: string): string {
  writeFileSync(join(dir, 'tiergate.yaml'), text);
  try {
    const plan = loadPlan(dir);
    if (!plan.name || !Array.isArray(plan.tiers) || plan.tiers.length === 0) return 'returned a plan without a name or tiers';
    return '';
  } catch (e) {
    if (!(e instanceof PlanError)) return `threw ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`;
    if (!e.issues.length) return 'PlanError without issues';
    const bad = e.issues.find((i) => typeof i.path !== 'string' || !i.path.trim() || typeof i.message !== 'string' || !i.message.trim());
    if (bad) return `an issue without a path or message: ${JSON.stringify(bad)}`;
    return '';
  }
}

// values a plan field might plausibly (or implausibly) hold
const scalar = fc.oneof(
  fc.constantFrom('', 'axis', 'axis-governance', '5s', '10 min', 'tiers/a.sql', 'tiers/b.sql', 'tiers/missing.sql', '../x.sql', '/etc/passwd', 'select 1', 'owner_gap = 0', 'x ~ 1', 'data', 'structure', 'preflight', 'verify', 'rollback', 'NaN', '0x10'),
  fc.string(),
  fc.integer({ min: -3, max: 120 }),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
);
const key = fc.constantFrom('plan', 'database', 'schemas', 'defaults', 'gate', 'metrics', 'rehearsal', 'tiers', 'id', 'name', 'kind', 'file', 'gated', 'requires', 'post', 'expect', 'reverts', 'lock_timeout', 'statement_timeout', 'sql', 'lock', 'min', 'open_gate', 'rows', 'objects', 'added', 'owner_gap', 'axis.ownership', '__proto__', 'constructor');
const value = fc.letrec((tie) => ({
  v: fc.oneof({ depthSize: 'small' }, scalar, fc.array(tie('v'), { maxLength: 4 }), fc.dictionary(key, tie('v'), { maxKeys: 5 })),
})).v;
const tierLike = fc.record(
  { id: fc.oneof(fc.integer({ min: -1, max: 100 }), scalar), name: scalar, kind: fc.oneof(fc.constantFrom('preflight', 'structure', 'data', 'verify', 'rollback'), scalar), file: fc.oneof(fc.constantFrom(...FILES), scalar), requires: fc.oneof(fc.array(fc.integer({ min: -1, max: 5 }), { maxLength: 3 }), value), post: value, reverts: value, gated: value, expect: value },
  { requiredKeys: [] },
);
const planLike = fc.record(
  { plan: scalar, database: scalar, schemas: value, defaults: value, gate: value, metrics: fc.oneof(fc.dictionary(fc.constantFrom('owner_gap', 'x', 'Bad-Name'), scalar), value), rehearsal: value, tiers: fc.oneof(fc.array(tierLike, { maxLength: 5 }), value), extra: value },
  { requiredKeys: [] },
);

describe('plan loader fuzzing', () => {
  it('loadPlan returns a Plan or throws a PlanError with a path on every issue', () => {
    const dir = planFolder();
    const tally = new Tally('bad input: plan loader fuzz (fast-check)');
    const runs = trials(300, 3000);
    try {
      const check = (text: string) => {
        const wrong = judge(dir, text);
        if (wrong) tally.fail(`${wrong} — for: ${text.slice(0, 200)}`);
        else tally.pass();
        return true;
      };
      // 1. random plan-shaped documents
      fc.assert(fc.property(planLike, (doc) => check(stringifyYaml(doc))), { numRuns: runs });
      // 2. the bundled plan with one field replaced by a random value
      const base = parseYaml(bundledPlanText()) as Record<string, unknown>;
      const paths = fieldPaths(base);
      fc.assert(
        fc.property(fc.constantFrom(...paths), value, fc.boolean(), (path, v, remove) => {
          const doc = structuredClone(base);
          setPath(doc, path, remove ? undefined : v);
          return check(stringifyYaml(doc));
        }),
        { numRuns: runs },
      );
      // 3. raw text: anything a file might hold
      fc.assert(fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.constantFrom('---\n', '- a\n- b', '[', '{', '&a [*a]', 'plan: &x\n  <<: *x', '? complex\n: key', '!!binary aGVsbG8=', 'plan: !!js/function "x"', 'tiers: *undefined')), (text) => check(text)), { numRuns: runs });
    } finally {
      rmSync(join(dir, '..'), { recursive: true, force: true });
    }
    tally.record(`${tally.trials} documents (random plans, mutated bundled plan, raw text): a Plan or a PlanError with paths, nothing else`);
    expect(tally.reasons).toEqual([]);
  });
});

function bundledPlanText(): string {
  return readFileSync(join(bundledPlan().dir, 'tiergate.yaml'), 'utf8');
}

/** Every path to a field of the document (`tiers.3.requires`). */
function fieldPaths(doc: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [];
  if (doc && typeof doc === 'object') {
    for (const [k, v] of Object.entries(doc)) {
      const key = Array.isArray(doc) ? Number(k) : k;
      out.push([...prefix, key]);
      out.push(...fieldPaths(v, [...prefix, key]));
    }
  }
  return out;
}

function setPath(doc: Record<string, unknown>, path: (string | number)[], v: unknown): void {
  let o = doc as Record<string | number, unknown>;
  for (const k of path.slice(0, -1)) o = o[k] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if (v === undefined) {
    if (Array.isArray(o)) o.splice(Number(last), 1);
    else delete o[last];
  } else o[last] = v;
}
