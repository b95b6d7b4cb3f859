/**
 * The plan's own rules and messages (src/plan/plan.ts, load-plan.ts,
 * schema.ts): every problem of a tiergate.yaml is reported with its path and
 * with what was expected, and a valid plan's identity is the hash of exactly
 * its files. Plans are written to temporary folders; no database.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PlanError, type PlanIssue } from '../src/errors.js';
import { applyOrder, loadPlan, planFileHashes, tierById, type Plan } from '../src/plan/load-plan.js';

const sha = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');

const temps: string[] = [];
afterEach(() => {
  for (const t of temps.splice(0)) rmSync(t, { recursive: true, force: true });
});

/** A plan folder with this tiergate.yaml and these files (a.sql … by default). */
function folder(yaml: string, files: Record<string, string | Buffer> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'tiergate-unit-plan-'));
  temps.push(dir);
  writeFileSync(join(dir, 'tiergate.yaml'), yaml);
  for (const [f, text] of Object.entries({ 'a.sql': 'SELECT 1;\n', 'b.sql': 'SELECT 2;\n', 'c.sql': 'SELECT 3;\n', 'd.sql': 'SELECT 4;\n', ...files })) {
    mkdirSync(join(dir, f, '..'), { recursive: true });
    writeFileSync(join(dir, f), text);
  }
  return dir;
}

function load(yaml: string, files?: Record<string, string | Buffer>): Plan {
  return loadPlan(folder(yaml, files));
}

/** The issues loading the plan reports (fails when it loads). */
function issues(yaml: string, files?: Record<string, string | Buffer>): PlanIssue[] {
  try {
    loadPlan(folder(yaml, files));
  } catch (e) {
    expect(e).toBeInstanceOf(PlanError);
    return (e as PlanError).issues;
  }
  throw new Error('the plan loaded');
}

/** A plan whose lines follow `plan: p`; `tiers` are YAML flow mappings. */
const yaml = (head: string[], tiers: string[]) => ['plan: p', ...head, 'tiers:', ...tiers.map((t) => `  - ${t}`)].join('\n') + '\n';

describe('tiers: kinds, gates, requires and reverts', () => {
  it('gates data tiers unless gated: false, and nothing else', () => {
    const plan = load(yaml(['gate: { name: g, sql: SELECT 1 }'], ['{ id: 1, name: a, kind: data, file: a.sql }', '{ id: 2, name: b, kind: data, file: b.sql, gated: false }', '{ id: 3, name: c, kind: structure, file: c.sql, gated: false }']));
    expect(plan.tiers.map((t) => [t.id, t.gated])).toEqual([[1, true], [2, false], [3, false]]);
    // an ungated data tier needs no gate
    expect(load(yaml([], ['{ id: 1, name: a, kind: data, file: a.sql, gated: false }'])).tiers[0]!.gated).toBe(false);
  });

  it('refuses a gate on any tier but a data tier', () => {
    expect(issues(yaml(['gate: { name: g, sql: SELECT 1 }'], ['{ id: 0, name: a, kind: preflight, file: a.sql, gated: true }', '{ id: 90, name: b, kind: verify, file: b.sql, gated: true }']))).toEqual([
      { path: 'tiers[0].gated', message: 'only data tiers can be gated (tier 0 is preflight)' },
      { path: 'tiers[1].gated', message: 'only data tiers can be gated (tier 90 is verify)' },
    ]);
    expect(issues(yaml([], ['{ name: a, kind: structure, file: a.sql, gated: true }']))).toContainEqual({
      path: 'tiers[0].gated',
      message: 'tier at tiers[0] is a structure tier: structure tiers are never gated (make it a data tier)',
    });
  });

  it('does not add "no gate" to a gate that is there but invalid', () => {
    expect(issues(yaml(['gate: 5'], ['{ id: 1, name: a, kind: data, file: a.sql }']))).toEqual([{ path: 'gate', message: 'expected a mapping (key: value), got 5' }]);
  });

  it('refuses a tier that requires itself', () => {
    expect(issues(yaml([], ['{ id: 1, name: a, kind: structure, file: a.sql, requires: [1] }']))).toEqual([{ path: 'tiers[0].requires[0]', message: 'tier 1 requires itself' }]);
  });

  it('accepts requires of tiers listed before', () => {
    expect(load(yaml([], ['{ id: 1, name: a, kind: structure, file: a.sql }', '{ id: 2, name: b, kind: structure, file: b.sql, requires: [1] }'])).tiers[1]!.requires).toEqual([1]);
  });

  it('checks what a rollback tier reverts, and that only a rollback tier reverts', () => {
    const tiers = [
      '{ id: 0, name: p, kind: preflight, file: a.sql }',
      '{ id: 1, name: s, kind: structure, file: b.sql, reverts: [0] }',
      '{ id: 90, name: v, kind: verify, file: c.sql }',
      '{ id: 99, name: r, kind: rollback, file: d.sql, reverts: [1, 7, 0, 90, 99] }',
    ];
    expect(issues(yaml([], tiers))).toEqual([
      { path: 'tiers[1].reverts', message: 'only a rollback tier reverts tiers (tier 1 is structure)' },
      { path: 'tiers[1].reverts[0]', message: 'tier 0 is a preflight tier: it leaves nothing to revert' },
      { path: 'tiers[3].reverts[1]', message: 'tier 7 does not exist' },
      { path: 'tiers[3].reverts[2]', message: 'tier 0 is a preflight tier: it leaves nothing to revert' },
      { path: 'tiers[3].reverts[3]', message: 'tier 90 is a verify tier: it leaves nothing to revert' },
      { path: 'tiers[3].reverts[4]', message: 'tier 99 is a rollback tier: it leaves nothing to revert' },
    ]);
    expect(issues(yaml([], ['{ id: 1, name: s, kind: structure, file: a.sql }', '{ id: 99, name: r, kind: rollback, file: b.sql, reverts: [] }']))).toEqual([
      { path: 'tiers[1].reverts', message: 'rollback tier 99 must name the tiers it reverts (reverts: [6, 4, 3])' },
    ]);
    const plan = load(yaml([], ['{ id: 1, name: s, kind: structure, file: a.sql }', '{ id: 2, name: d, kind: data, file: b.sql, gated: false }', '{ id: 99, name: r, kind: rollback, file: c.sql, reverts: [2, 1] }']));
    expect(plan.tiers[2]!.reverts).toEqual([2, 1]);
    expect(plan.tiers[0]!.reverts).toEqual([]);
  });

  it('takes the revisions a structure or data tier replaces, as sha256s, and refuses them elsewhere', () => {
    const sha = 'ad0874930abcd15039a070b7e6cbb722032d567fa15604aa6351bedb084a9011';
    const plan = load(yaml([], [`{ id: 1, name: s, kind: structure, file: a.sql, replaces: [${sha}] }`, '{ id: 2, name: d, kind: data, file: b.sql, gated: false }']));
    expect(plan.tiers[0]!.replaces).toEqual([sha]);
    expect(plan.tiers[1]!.replaces).toEqual([]);
    expect(issues(yaml([], ['{ id: 0, name: p, kind: preflight, file: a.sql, replaces: [' + sha + '] }', '{ id: 1, name: s, kind: structure, file: b.sql, replaces: [ad08] }']))).toEqual([
      { path: 'tiers[0].replaces', message: 'only structure and data tiers are checked for drift: tier 0 is preflight, whose file runs again each time' },
      { path: 'tiers[1].replaces[0]', message: "expected a sha256: 64 lowercase hex digits, got 'ad08'" },
    ]);
  });

  it('allows one rollback tier and one verify tier', () => {
    const tiers = [
      '{ id: 90, name: v, kind: verify, file: a.sql }',
      '{ id: 91, name: w, kind: verify, file: b.sql }',
      '{ id: 98, name: r, kind: rollback, file: c.sql, reverts: [90] }',
      '{ id: 99, name: s, kind: rollback, file: d.sql, reverts: [91] }',
    ];
    const found = issues(yaml([], tiers)).filter((i) => i.path === 'tiers');
    expect(found).toEqual([
      { path: 'tiers', message: 'a plan has at most one rollback tier (found 98, 99)' },
      { path: 'tiers', message: 'a plan has at most one verify tier (found 90, 91)' },
    ]);
  });
});

describe('tiers: post-conditions and expectations', () => {
  const head = ['metrics: { m: SELECT 1, n: SELECT 2 }', 'figures: { f: SELECT 3, a_fig: SELECT 4 }'];

  it('names the metrics defined when a post-condition or an expectation names another', () => {
    expect(issues(yaml(head, ['{ id: 1, name: a, kind: structure, file: a.sql, post: [x = 0, m = 0], expect: { metrics: { y: unchanged, n: unchanged } } }']))).toEqual([
      { path: 'tiers[0].expect.metrics.y', message: "metric 'y' is not defined under metrics: (defined: m, n)" },
      { path: 'tiers[0].post[0]', message: "metric 'x' is not defined under metrics: (defined: m, n)" },
    ]);
    expect(issues(yaml([], ['{ id: 1, name: a, kind: structure, file: a.sql, expect: { metrics: { y: unchanged } } }']))).toEqual([
      { path: 'tiers[0].expect.metrics.y', message: "metric 'y' is not defined under metrics: (defined: none)" },
    ]);
  });

  it('keeps the parsed post-conditions of a valid tier', () => {
    expect(load(yaml(head, ['{ id: 1, name: a, kind: structure, file: a.sql, post: [m = 0, n >= 2] }'])).tiers[0]!.post).toEqual([
      { expr: 'm = 0', metric: 'm', op: '=', value: 0 },
      { expr: 'n >= 2', metric: 'n', op: '>=', value: 2 },
    ]);
  });

  it('checks every expression of expect, at its path, and the names it reads', () => {
    const expectSpec = "{ rows: { a.t: 'f +', a.u: { added: 'zz + 1' }, a.v: 1 }, objects: { tables: 'm * (n', views: { removed: 'any' } }, metrics: { m: ['m', 'q'] } }";
    expect(issues(yaml(head, [`{ id: 1, name: a, kind: structure, file: a.sql, expect: ${expectSpec} }`]))).toEqual([
      { path: 'tiers[0].expect.metrics.m', message: "'q' in 'q' is neither a metric nor a figure (metrics: m, n; figures: f, a_fig)" },
      { path: 'tiers[0].expect.objects.tables', message: "'m * (n': a '(' is not closed" },
      { path: 'tiers[0].expect.rows["a.t"]', message: "'f +': ends too early" },
      { path: 'tiers[0].expect.rows["a.u"]', message: "'zz' in 'zz + 1' is neither a metric nor a figure (metrics: m, n; figures: f, a_fig)" },
    ]);
    expect(issues(yaml([], ["{ id: 1, name: a, kind: structure, file: a.sql, expect: { rows: { a.t: 'x' } } }"]))).toEqual([
      { path: 'tiers[0].expect.rows["a.t"]', message: "'x' in 'x' is neither a metric nor a figure (metrics: none; figures: none)" },
    ]);
  });

  it("records the figures a tier's expect reads, once each, sorted", () => {
    const plan = load(yaml(head, ["{ id: 1, name: a, kind: structure, file: a.sql, expect: { rows: { a.t: 'f + a_fig', a.u: { added: f } }, metrics: { m: [any, 'm + 1'] } } }", '{ id: 2, name: b, kind: structure, file: b.sql }']));
    expect(plan.tiers.map((t) => t.figures)).toEqual([['a_fig', 'f'], []]);
  });

  it('refuses a figure named like a metric or like the gate', () => {
    expect(issues(yaml(['gate: { name: g, sql: S }', 'metrics: { m: S }', 'figures: { m: S, g: S, ok: S }'], ['{ id: 1, name: a, kind: structure, file: a.sql }']))).toEqual([
      { path: 'figures.g', message: "'g' is the gate's name; a figure cannot share it" },
      { path: 'figures.m', message: "'m' is also a metric: a figure needs a name of its own" },
    ]);
  });
});

describe('tiers: files', () => {
  it('refuses paths that leave the plan folder, whatever the separator', () => {
    const tiers = ['{ id: 1, name: a, kind: structure, file: /etc/hostname }', "{ id: 2, name: b, kind: structure, file: 'x/../../b.sql' }", "{ id: 3, name: c, kind: structure, file: 'x\\..\\c.sql' }", "{ id: 4, name: d, kind: structure, file: 'x..y/d.sql' }"];
    expect(issues(yaml([], tiers), { 'x..y/d.sql': 'SELECT 1;\n' })).toEqual([
      { path: 'tiers[0].file', message: "'/etc/hostname' must be a path inside the plan folder" },
      { path: 'tiers[1].file', message: "'x/../../b.sql' must be a path inside the plan folder" },
      { path: 'tiers[2].file', message: "'x\\..\\c.sql' must be a path inside the plan folder" },
    ]);
  });

  it('refuses a tier file that is not UTF-8, naming the line, or that holds a NUL byte', () => {
    const latin1 = Buffer.concat([Buffer.from('SELECT 1;\n-- ok\nSELECT '), Buffer.from([0xe9]), Buffer.from(';\n')]);
    const nul = Buffer.concat([Buffer.from('SELECT 1;\nSELECT 2'), Buffer.from([0]), Buffer.from(';\n')]);
    expect(issues(yaml([], ['{ id: 1, name: a, kind: structure, file: a.sql }', '{ id: 2, name: b, kind: structure, file: b.sql }']), { 'a.sql': latin1, 'b.sql': nul })).toEqual([
      { path: 'tiers[0].file', message: "file 'a.sql' is not valid UTF-8 (line 3): save it as UTF-8" },
      {
        path: 'tiers[1].file',
        message: "file 'b.sql' holds a NUL byte (line 2): PostgreSQL text cannot hold one, and the server would silently end the statement there",
      },
    ]);
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('CREATE TABLE t (x int);\n')]);
    expect(issues(yaml([], ['{ id: 1, name: a, kind: structure, file: a.sql }']), { 'a.sql': bom })).toEqual([
      { path: 'tiers[0].file', message: "file 'a.sql' begins with a UTF-8 byte-order mark (bytes EF BB BF), which PostgreSQL reads as part of its first statement: save it as UTF-8 without BOM" },
    ]);
    const lastLine = Buffer.concat([Buffer.from('SELECT 1;\n'), Buffer.from([0xff])]);
    expect(issues(yaml([], ['{ id: 1, name: a, kind: structure, file: a.sql }']), { 'a.sql': lastLine })).toEqual([
      { path: 'tiers[0].file', message: "file 'a.sql' is not valid UTF-8 (line 2): save it as UTF-8" },
    ]);
    const firstLine = Buffer.concat([Buffer.from([0xc3]), Buffer.from('\nSELECT 1;\n')]);
    expect(issues(yaml([], ['{ id: 1, name: a, kind: structure, file: a.sql }']), { 'a.sql': firstLine })[0]!.message).toContain('(line 1)');
  });

  it('refuses a tiergate.yaml that is not UTF-8, naming the line', () => {
    const dir = folder('');
    writeFileSync(join(dir, 'tiergate.yaml'), Buffer.concat([Buffer.from('plan: p\n# caf'), Buffer.from([0xe9]), Buffer.from('\ntiers: []\n')]));
    let err: unknown;
    try {
      loadPlan(dir);
    } catch (e) {
      err = e;
    }
    expect((err as PlanError).issues).toEqual([{ path: 'tiergate.yaml:2', message: 'not valid UTF-8: save the file as UTF-8' }]);
  });
});

describe('schema messages', () => {
  it('say what was expected and what was found, a long value cut', () => {
    const tier = `{ id: -1, name: '', kind: structure, file: a.sql, requires: [null], gated: null, lock_timeout: '${'x'.repeat(80)}', post: [{ a: 1 }], reverts: { a: 1 } }`;
    expect(issues(yaml([], [tier]))).toEqual([
      { path: 'tiers[0].gated', message: 'expected true or false, got null (an empty value)' },
      { path: 'tiers[0].id', message: 'expected a number ≥ 0, got -1' },
      { path: 'tiers[0].lock_timeout', message: `expected a duration such as 250ms, 5s, 5min, 1h, got '${'x'.repeat(57)}…'` },
      { path: 'tiers[0].name', message: "expected a non-empty string, got ''" },
      { path: 'tiers[0].post[0]', message: 'expected a string, got a mapping' },
      { path: 'tiers[0].requires[0]', message: 'expected a number, got null (an empty value)' },
      { path: 'tiers[0].reverts', message: 'expected a list, got a mapping' },
    ]);
    const sixty = 'y'.repeat(60);
    expect(issues(yaml([], [`{ id: 1, name: a, kind: structure, file: a.sql, lock_timeout: '${sixty}' }`]))[0]!.message).toBe(`expected a duration such as 250ms, 5s, 5min, 1h, got '${sixty}'`);
    expect(issues(yaml([], ['{ id: 1, name: a, kind: structure, file: a.sql, gated: 1 }']))[0]!.message).toBe('expected true or false, got 1');
    expect(issues(yaml([], ['{ id: 1, name: a, kind: [x], file: a.sql }']))[0]!.message).toBe('expected one of preflight, structure, data, verify, rollback, got a list');
    expect(issues(yaml([], ['{ id: true, name: a, kind: structure, file: a.sql }']))[0]!.message).toBe('expected a number, got true');
  });

  it('accepts the durations PostgreSQL accepts, and no other', () => {
    for (const ok of ['0', '250ms', '5s', '1.5s', '5min', '1h', '2d', '10us', '5 s']) {
      expect(load(yaml([], [`{ id: 1, name: a, kind: structure, file: a.sql, lock_timeout: '${ok}' }`])).tiers[0]!.lock_timeout, ok).toBe(ok);
    }
    for (const bad of ['5', '00', 's', '5sec', '-5s', '5s ', ' 5s', '1.s', '5m']) {
      expect(issues(yaml([], [`{ id: 1, name: a, kind: structure, file: a.sql, lock_timeout: '${bad}' }`])), bad).toEqual([
        { path: 'tiers[0].lock_timeout', message: `expected a duration such as 250ms, 5s, 5min, 1h, got '${bad}'` },
      ]);
    }
  });

  it('shows the path of a key as it can be read back', () => {
    expect(issues(yaml(["metrics: { Upper: S, 'a b': S, 'a.b': S, '': S, 'x\"y': S }"], ['{ id: 1, name: a, kind: structure, file: a.sql }'])).map((i) => i.path)).toEqual([
      'metrics.a.b',
      'metrics.Upper',
      'metrics[""]',
      'metrics["a b"]',
      'metrics["x\\"y"]',
    ].sort((a, b) => a.localeCompare(b, 'en', { numeric: true })));
    expect(issues(yaml(["metrics: { 'a b': S }"], ['{ id: 1, name: a, kind: structure, file: a.sql }']))).toEqual([
      { path: 'metrics["a b"]', message: "key 'a b': expected a lower-case identifier (letters, digits, _)" },
    ]);
  });

  it('says what expect accepts', () => {
    const spec = "{ rows: { Axis.T: 1, 'a.b': 1.5, 'c.d': { added: -1, moved: 1 }, 'e.f': '' }, objects: { widgets: 1 }, metrics: { m: [1] } }";
    expect(issues(yaml(['metrics: { m: S }'], [`{ id: 1, name: a, kind: structure, file: a.sql, expect: ${spec} }`]))).toEqual([
      { path: 'tiers[0].expect.metrics.m', message: 'expected at least 2 items or unchanged, got a list' },
      {
        path: 'tiers[0].expect.objects.widgets',
        message: "unknown key 'widgets' (expected one of: schemas, tables, views, functions, sequences, indexes, constraints, triggers, policies, rules, types, extensions)",
      },
      { path: 'tiers[0].expect.rows.a.b', message: 'expected an integer or a string or a mapping (key: value), got 1.5' },
      { path: 'tiers[0].expect.rows.c.d.added', message: 'expected a number ≥ 0, got -1' },
      // (allowedKeys does not look inside the union of a count and its parts: no list of keys here)
      { path: 'tiers[0].expect.rows.c.d.moved', message: expect.stringMatching(/^unknown key 'moved'/) },
      { path: 'tiers[0].expect.rows.e.f', message: "expected a non-empty string, got ''" },
      { path: 'tiers[0].expect.rows["Axis.T"]', message: "key 'Axis.T': expected schema.table" },
    ]);
  });

  it('says what the gate accepts', () => {
    expect(issues(yaml(['gate: { name: g, sql: S, min: 1.5, guard: { sqlstate: abc }, approve: { sql: x } }'], ['{ id: 1, name: a, kind: structure, file: a.sql }']))).toEqual([
      { path: 'gate.approve.proposal', message: 'missing: expected a string' },
      { path: 'gate.guard.sqlstate', message: "expected a 5-character SQLSTATE such as TG001, got 'abc'" },
      { path: 'gate.min', message: 'expected an integer, got 1.5' },
    ]);
  });

  it('applies the defaults of an optional gate, its guard and the plan', () => {
    const plan = load(yaml(['gate: { name: g, sql: S }'], ['{ id: 1, name: a, kind: structure, file: a.sql }']));
    expect(plan.gate).toEqual({ name: 'g', sql: 'S', min: 1, guard: { sqlstate: 'P0001' } });
    expect(plan.schemas).toEqual(['public']);
    expect(plan.defaults).toEqual({ lock_timeout: '5s', statement_timeout: '5min' });
    expect(plan.metrics).toEqual({});
    expect(plan.figures).toEqual({});
    expect(plan.database).toBeUndefined();
    expect(plan.rehearsal).toBeUndefined();
    expect(load(yaml(['defaults: { lock_timeout: 1s }'], ['{ id: 1, name: a, kind: structure, file: a.sql }'])).defaults).toEqual({ lock_timeout: '1s', statement_timeout: '5min' });
  });

  it('takes a plan name with dashes, and no other name', () => {
    expect(load('plan: axis-governance_2\ntiers:\n  - { id: 1, name: a, kind: structure, file: a.sql }\n').name).toBe('axis-governance_2');
    for (const bad of ['-lead', 'Upper', 'a b', 'a.b']) {
      expect(issues(`plan: '${bad}'\ntiers:\n  - { id: 1, name: a, kind: structure, file: a.sql }\n`).map((i) => i.path), bad).toEqual(['plan']);
    }
  });

  it('refuses a document that is not a mapping, and YAML that expands without end', () => {
    expect(issues('- a\n- b\n')).toEqual([{ path: 'tiergate.yaml', message: 'expected a mapping (key: value), got a list' }]);
    expect(issues('hello\n')).toEqual([{ path: 'tiergate.yaml', message: "expected a mapping (key: value), got 'hello'" }]);
    const laughs = ['a: &a [1,1,1,1,1,1,1,1,1,1]', 'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]', 'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]', 'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]', 'e: [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]'];
    expect(issues(laughs.join('\n') + '\n')).toEqual([{ path: 'tiergate.yaml', message: expect.stringMatching(/^not valid YAML: .*alias/i) }]);
    // nested deeper than the YAML reader's stack: said in words, with its line
    const deep = `a: ${'['.repeat(5000)}${']'.repeat(5000)}\n`;
    expect(issues(deep)).toEqual([{ path: expect.stringMatching(/^tiergate\.yaml(:\d+)?$/), message: expect.stringMatching(/^not valid YAML: nested too deeply/) }]);
  });
});

describe("a valid plan's identity and helpers", () => {
  it("hashes tiergate.yaml and each file's hash, files sorted by name", () => {
    const text = yaml([], ['{ id: 1, name: a, kind: structure, file: z.sql }', '{ id: 2, name: b, kind: structure, file: b.sql }', '{ id: 99, name: r, kind: rollback, file: m.sql, reverts: [1] }']);
    const files = { 'z.sql': 'SELECT 26;\n', 'b.sql': 'SELECT 2;\n', 'm.sql': 'SELECT 13;\n' };
    const plan = load(text, files);
    const yamlSha = sha(text);
    expect(plan.yamlSha256).toBe(yamlSha);
    expect(plan.files).toEqual({ 'z.sql': sha(files['z.sql']), 'b.sql': sha(files['b.sql']), 'm.sql': sha(files['m.sql']) });
    expect(plan.sha256).toBe(sha([`tiergate.yaml ${yamlSha}`, `b.sql ${sha(files['b.sql'])}`, `m.sql ${sha(files['m.sql'])}`, `z.sql ${sha(files['z.sql'])}`].join('\n')));
    expect(planFileHashes(plan)).toEqual({ 'tiergate.yaml': yamlSha, ...plan.files });
    expect(applyOrder(plan).map((t) => t.id)).toEqual([1, 2]);
    expect(tierById(plan, 2)?.file).toBe('b.sql');
    expect(tierById(plan, 3)).toBeUndefined();
    expect(plan.tiers[0]!.sql).toBe('SELECT 26;\n');
    expect(plan.tiers[0]!.path).toBe(join(plan.dir, 'z.sql'));
  });
});

describe('relationsRead: the relations a plan query names', () => {
  it('every relation named, once; a CTE is no relation; a name across databases cannot be told', async () => {
    const { relationsRead } = await import('../src/plan/sql-facts.js');
    expect(await relationsRead('select count(*) from axis.v_governed_collection where role = $$anchor$$')).toEqual([{ schema: 'axis', name: 'v_governed_collection' }]);
    expect(
      await relationsRead(`with n as (select 1 from os_proposals) select (select count(*) from n), (select count(*) from "My Schema"."T" t join lateral (select * from b) q on true), (table c) from n, a, a`),
    ).toEqual(
      expect.arrayContaining([
        { schema: null, name: 'os_proposals' },
        { schema: 'My Schema', name: 'T' },
        { schema: null, name: 'b' },
        { schema: null, name: 'c' },
        { schema: null, name: 'a' },
      ]),
    );
    expect(await relationsRead('select 1 from a, a, b')).toHaveLength(2);
    // a CTE's name shadows an unqualified relation of that name anywhere in the query; a qualified one is the relation
    expect(await relationsRead('with t as (select 1) select (select count(*) from t), (select count(*) from public.t)')).toEqual([{ schema: 'public', name: 't' }]);
    expect(await relationsRead('select 1')).toEqual([]);
    expect(await relationsRead('select count(*) from otherdb.public.t')).toBeNull();
    await expect(relationsRead('select from where')).rejects.toThrow();
  });
});
