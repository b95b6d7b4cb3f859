import { createHash } from 'node:crypto';
import { appendFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { planSchemaPath, renderPlanSchema } from '../scripts/gen-plan-schema.js';
import { PlanError, type PlanIssue } from '../src/errors.js';
import { loadPlan } from '../src/plan/load-plan.js';

const fixtures = fileURLToPath(new URL('./fixtures/plans/', import.meta.url));
const okDir = join(fixtures, 'ok');
const sha = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');

/** The PlanError `fn` throws (fails the test when it throws nothing, or something else). */
function planError(fn: () => unknown): PlanError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(PlanError);
    return e as PlanError;
  }
  throw new Error('expected a PlanError, nothing was thrown');
}

const temps: string[] = [];
function tempCopy(dir: string): string {
  const to = mkdtempSync(join(tmpdir(), 'tiergate-plan-'));
  temps.push(to);
  cpSync(dir, to, { recursive: true });
  return to;
}
function tempPlan(yaml: string, files: Record<string, string> = {}): string {
  const to = mkdtempSync(join(tmpdir(), 'tiergate-plan-'));
  temps.push(to);
  writeFileSync(join(to, 'tiergate.yaml'), yaml);
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(join(to, f, '..'), { recursive: true });
    writeFileSync(join(to, f), text);
  }
  return to;
}
afterEach(() => {
  for (const t of temps.splice(0)) rmSync(t, { recursive: true, force: true });
});

describe('loadPlan: a valid plan', () => {
  it('loads every field, with defaults applied', () => {
    const plan = loadPlan(okDir);
    expect(plan.name).toBe('ok-plan');
    expect(plan.dir).toBe(okDir.replace(/\/$/, ''));
    expect(plan.database).toBe('directus');
    expect(plan.schemas).toEqual(['public', 'axis']);
    expect(plan.defaults).toEqual({ lock_timeout: '2s', statement_timeout: '1min' });
    expect(plan.gate).toEqual({
      name: 'ospa',
      sql: 'SELECT count(*) FROM os_proposal_approvals',
      lock: 'SELECT 1 FROM os_proposal_approvals FOR SHARE',
      min: 1,
      guard: { sqlstate: 'P0001' },
    });
    expect(plan.metrics).toEqual({ owner_gap: 'SELECT count(*) FROM axis.v_owner_gap' });
    expect(plan.rehearsal).toEqual({ open_gate: 'INSERT INTO os_proposal_approvals DEFAULT VALUES' });
  });

  it('keeps the tiers in plan order, with kinds, gates, requires, post-conditions and reverts', () => {
    const plan = loadPlan(okDir);
    expect(plan.tiers.map((t) => [t.id, t.kind, t.gated])).toEqual([
      [0, 'preflight', false],
      [1, 'structure', false],
      [2, 'data', true], // data tiers are gated by default
      [90, 'verify', false],
      [99, 'rollback', false],
    ]);
    const [t0, t1, t2, t90, t99] = plan.tiers;
    expect(t0!.requires).toEqual([]);
    expect(t1!.requires).toEqual([0]);
    expect(t1!.lock_timeout).toBe('10s');
    expect(t2!.post).toEqual([{ expr: 'owner_gap = 0', metric: 'owner_gap', op: '=', value: 0 }]);
    expect(t2!.expect).toEqual({ rows: { 'axis.ownership': 2 }, metrics: { owner_gap: [2, 0] }, objects: { tables: 0, views: { added: 0 } } });
    expect(t90!.statement_timeout).toBe('30s');
    expect(t99!.reverts).toEqual([2, 1]);
    for (const t of plan.tiers) {
      expect(t.path).toBe(join(okDir, t.file));
      expect(t.sql).toBe(readFileSync(t.path, 'utf8'));
    }
  });

  it('hashes the file bytes with sha256', () => {
    const plan = loadPlan(okDir);
    for (const t of plan.tiers) {
      const expected = sha(readFileSync(join(okDir, t.file)));
      expect(t.sha256).toBe(expected);
      expect(plan.files[t.file]).toBe(expected);
    }
    expect(Object.keys(plan.files).sort()).toEqual(plan.tiers.map((t) => t.file).sort());
    expect(plan.yamlSha256).toBe(sha(readFileSync(join(okDir, 'tiergate.yaml'))));
    expect(plan.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(loadPlan(okDir).sha256).toBe(plan.sha256); // deterministic
  });

  it('loads from the tiergate.yaml path too', () => {
    expect(loadPlan(join(okDir, 'tiergate.yaml')).sha256).toBe(loadPlan(okDir).sha256);
  });

  it("changes the plan's sha256 when any one file changes, and only that file's", () => {
    const dir = tempCopy(okDir);
    const base = loadPlan(dir);
    expect(base.sha256).toBe(loadPlan(okDir).sha256); // the identity does not depend on where the plan is
    const seen = new Set([base.sha256]);
    for (const file of ['tiergate.yaml', ...base.tiers.map((t) => t.file)]) {
      const path = join(dir, file);
      const original = readFileSync(path);
      appendFileSync(path, file.endsWith('.yaml') ? '# edited\n' : '-- edited\n');
      const edited = loadPlan(dir);
      expect(seen.has(edited.sha256), `editing ${file} must change the plan's sha256`).toBe(false);
      seen.add(edited.sha256);
      for (const t of edited.tiers) {
        const before = base.tiers.find((b) => b.id === t.id)!;
        if (t.file === file) expect(t.sha256).not.toBe(before.sha256);
        else expect(t.sha256).toBe(before.sha256);
      }
      writeFileSync(path, original);
      expect(loadPlan(dir).sha256).toBe(base.sha256);
    }
  });
});

describe('loadPlan: an invalid plan', () => {
  it('reports every problem of the bad plan at once, each with its path', () => {
    const err = planError(() => loadPlan(join(fixtures, 'bad')));
    expect(err.exitCode).toBe(2);
    const expected: [string, RegExp][] = [
      // unknown keys at every level
      ['colour', /^unknown key 'colour' \(expected one of: plan, database, schemas, defaults, gate, metrics, figures, evidence, rehearsal, amend, tiers\)$/],
      ['defaults.statment_timeout', /^unknown key 'statment_timeout' \(expected one of: lock_timeout, statement_timeout\)$/],
      ['tiers[2].owner', /^unknown key 'owner' \(expected one of: id, name, kind, file, /],
      ['tiers[3].expect.colour', /^unknown key 'colour' \(expected one of: rows, metrics, objects\)$/],
      // bad values say what was expected and what was found
      ['defaults.lock_timeout', /^expected a duration such as 250ms, 5s, 5min, 1h, got '5 seconds'$/],
      ['tiers[2].statement_timeout', /^expected a duration .*, got 'forever'$/],
      ['tiers[4].kind', /^expected one of preflight, structure, data, verify, rollback, got 'seed'$/],
      // the plan's own rules
      ['tiers[1].gated', /structure tier: structure tiers are never gated/],
      ['tiers[1].requires[0]', /^tier 2 must be listed before tier 1, which requires it$/],
      ['tiers[3].id', /^tier 2 is listed twice \(also tiers\[2\]\)$/],
      ['tiers[3].requires[0]', /^tier 7 does not exist$/],
      ['tiers[3].file', /^file 'tiers\/02_missing\.sql' does not exist in /],
      ['tiers[3].post[1]', /^metric 'critical' is not defined under metrics: \(defined: owner_gap\)$/],
      ['tiers[3].post[2]', /^'owner_gap is zero' is not a post-condition: expected 'metric op number'/],
      ['tiers[5].reverts', /^rollback tier 99 must name the tiers it reverts/],
    ];
    for (const [path, message] of expected) {
      expect(err.issues, `missing issue at ${path}`).toContainEqual({ path, message: expect.stringMatching(message) });
    }
    // nothing else, nothing twice
    expect(err.issues.map((i) => i.path).sort()).toEqual(expected.map(([p]) => p).sort());
    expect(err.message).toContain('tiers[3].requires[0]: tier 7 does not exist');
    expect(err.message).toMatch(/^plan '.*bad' is invalid \(15 problems\):/);
  });

  it('reports issues in path order, tiers[2] before tiers[10]', () => {
    const tiers = Array.from({ length: 11 }, (_, i) => `  - { id: ${i}, name: t${i}, kind: structure, file: missing${i}.sql }`).join('\n');
    const err = planError(() => loadPlan(tempPlan(`plan: p\ntiers:\n${tiers}\n`)));
    expect(err.issues.map((i) => i.path)).toEqual(Array.from({ length: 11 }, (_, i) => `tiers[${i}].file`));
  });

  it('says what was expected for missing and mistyped values', () => {
    const dir = tempPlan(
      ['plan: Bad Name', 'schemas: []', 'gate: { name: ospa }', 'tiers:', "  - { id: one, kind: data, file: a.sql, requires: [1.5], gated: 'yes' }", '  - 3'].join('\n'),
      { 'a.sql': 'SELECT 1;\n' },
    );
    const issues = planError(() => loadPlan(dir)).issues;
    const at = (path: string) => issues.filter((i) => i.path === path).map((i) => i.message);
    expect(at('plan')).toEqual([
      "expected a lower-case identifier (letters, digits, _) or a plan name (a-z, 0-9, - and _), got 'Bad Name'",
    ]);
    expect(at('schemas')).toEqual(['expected at least 1 item, got a list']);
    expect(at('gate.sql')).toEqual(['missing: expected a string']);
    expect(at('tiers[0].id')).toEqual(["expected a number, got 'one'"]);
    expect(at('tiers[0].name')).toEqual(['missing: expected a string']);
    expect(at('tiers[0].requires[0]')).toEqual(['expected an integer, got 1.5']);
    expect(at('tiers[0].gated')).toEqual(["expected true or false, got 'yes'"]);
    expect(at('tiers[1]')).toEqual(['expected a mapping (key: value), got 3']);
  });

  it('keeps checking the tiers that validate when others do not', () => {
    const dir = tempPlan(
      [
        'plan: p',
        'gate: { name: ospa, sql: SELECT 1 }',
        'tiers:',
        '  - { id: 0, name: a, kind: nonsense, file: a.sql }',
        '  - { id: 1, name: b, kind: structure, file: b.sql, requires: [9] }',
      ].join('\n'),
      { 'a.sql': 'SELECT 1;\n' },
    );
    const issues = planError(() => loadPlan(dir)).issues;
    expect(issues.map((i: PlanIssue) => i.path)).toEqual(['tiers[0].kind', 'tiers[1].file', 'tiers[1].requires[0]']);
  });

  it('refuses a gated tier in a plan without a gate, and a metric named like the gate', () => {
    const dir = tempPlan(
      ['plan: p', 'metrics: { m: SELECT 1 }', 'tiers:', '  - { id: 2, name: seed, kind: data, file: a.sql, post: [m = 0] }'].join('\n'),
      { 'a.sql': 'SELECT 1;\n' },
    );
    expect(planError(() => loadPlan(dir)).issues).toEqual([
      { path: 'tiers[0].gated', message: expect.stringMatching(/^tier 2 is gated but the plan has no gate/) },
    ]);
    const dir2 = tempPlan(['plan: p', 'gate: { name: m, sql: SELECT 1 }', 'metrics: { m: SELECT 1 }', 'tiers:', '  - { id: 0, name: a, kind: structure, file: a.sql }'].join('\n'), {
      'a.sql': 'SELECT 1;\n',
    });
    expect(planError(() => loadPlan(dir2)).issues).toEqual([{ path: 'metrics.m', message: "'m' is the gate's name; a metric cannot share it" }]);
  });

  it('does not take Object.prototype names for defined metrics', () => {
    const dir = tempPlan(['plan: p', 'tiers:', '  - { id: 0, name: a, kind: structure, file: a.sql, post: [constructor = 0] }'].join('\n'), { 'a.sql': 'SELECT 1;\n' });
    expect(planError(() => loadPlan(dir)).issues).toEqual([
      { path: 'tiers[0].post[0]', message: "metric 'constructor' is not defined under metrics: (defined: none)" },
    ]);
  });

  it('refuses files outside the plan folder and empty files', () => {
    const dir = tempPlan(
      ['plan: p', 'tiers:', '  - { id: 0, name: a, kind: structure, file: ../a.sql }', '  - { id: 1, name: b, kind: structure, file: b.sql }'].join('\n'),
      { 'b.sql': '\n  \n' },
    );
    expect(planError(() => loadPlan(dir)).issues).toEqual([
      { path: 'tiers[0].file', message: "'../a.sql' must be a path inside the plan folder" },
      { path: 'tiers[1].file', message: "file 'b.sql' is empty" },
    ]);
  });

  it('names the line of invalid YAML', () => {
    const err = planError(() => loadPlan(join(fixtures, 'bad-yaml')));
    expect(err.issues).toEqual([{ path: 'tiergate.yaml:4', message: expect.stringMatching(/^not valid YAML: .*line 4/) }]);
  });

  it('names the line of a duplicate YAML key', () => {
    const err = planError(() => loadPlan(tempPlan('plan: p\ntiers: []\nplan: q\n')));
    expect(err.issues).toEqual([{ path: 'tiergate.yaml:3', message: expect.stringMatching(/^not valid YAML: .*unique/i) }]);
  });

  it('refuses a YAML tag instead of reading it as a string, without a process warning', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      const err = planError(() => loadPlan(tempPlan('plan: p\nschemas: !!js/function x\ntiers: []\n')));
      expect(err.issues).toEqual([{ path: 'tiergate.yaml:2', message: expect.stringMatching(/^not valid YAML: Unresolved tag.*remove the tag\)$/) }]);
      await new Promise((resolve) => setImmediate(resolve)); // process warnings are emitted on a later tick
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).toEqual([]);
  });

  it('says clearly when the folder does not exist, or holds no tiergate.yaml', () => {
    const missing = join(tmpdir(), 'tiergate-no-such-plan-folder');
    const err = planError(() => loadPlan(missing));
    expect(err.exitCode).toBe(2);
    expect(err.issues).toEqual([{ path: '', message: `folder '${missing}' does not exist (pass --plan DIR, a folder holding tiergate.yaml)` }]);

    const empty = mkdtempSync(join(tmpdir(), 'tiergate-plan-'));
    temps.push(empty);
    expect(planError(() => loadPlan(empty)).issues).toEqual([
      { path: '', message: `no tiergate.yaml in '${empty}' (pass --plan DIR, a folder holding tiergate.yaml)` },
    ]);
  });

  it('reports an empty tiergate.yaml as a plan without tiers', () => {
    expect(planError(() => loadPlan(tempPlan('# nothing yet\n'))).issues).toEqual([
      { path: 'plan', message: 'missing: expected a string' },
      { path: 'tiers', message: 'missing: expected a list' },
    ]);
  });
});

describe('the published JSON Schema (schema/plan.schema.json)', () => {
  it('is current: regenerate it with node --import tsx scripts/gen-plan-schema.ts', () => {
    expect(readFileSync(planSchemaPath, 'utf8')).toBe(renderPlanSchema());
  });

  it('describes the file as written: unknown keys refused, defaults optional', () => {
    const schema = JSON.parse(readFileSync(planSchemaPath, 'utf8'));
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.additionalProperties).toBe(false);
    expect(schema.required).toEqual(['plan', 'tiers']);
    const tier = schema.properties.tiers.items;
    expect(tier.additionalProperties).toBe(false);
    expect(tier.required).toEqual(['id', 'name', 'kind', 'file']);
    expect(tier.properties.kind.enum).toEqual(['preflight', 'structure', 'data', 'verify', 'rollback']);
  });
});
