/**
 * A tier's measured delta against the plan's `expect` (compareExpectations),
 * and the differences between deltas: of catalog snapshots (diffCatalog)
 * and of a production tier with its rehearsal (diffDeltas). Pure functions.
 */
import { describe, expect, it } from 'vitest';
import { compareExpectations } from '../src/engine/expectations.js';
import type { Delta } from '../src/evidence/types.js';
import type { Tier } from '../src/plan/plan.js';
import { diffCatalog, emptySnapshot, type CatalogSnapshot } from '../src/probe/catalog.js';
import { diffDeltas } from '../src/rehearsal/bind-evidence.js';

const tierExpecting = (expectSpec: Tier['expect']): Tier => ({ expect: expectSpec }) as Tier;
const delta = (d: Partial<Delta> = {}): Delta => ({ objects: {}, rows: {}, metrics: {}, ...d });

describe('compareExpectations: rows', () => {
  it('checks nothing for a tier without expect', () => {
    expect(compareExpectations({} as Tier, delta())).toEqual([]);
  });

  it('reads a count alone as added − removed, shown signed', () => {
    const d = delta({ rows: { 'axis.ownership': { added: 30, removed: 2, changed: 9 } } });
    expect(compareExpectations(tierExpecting({ rows: { 'axis.ownership': 28 } }), d)).toEqual([
      { what: 'rows axis.ownership', expected: '+28', actual: '+28', ok: true },
    ]);
    expect(compareExpectations(tierExpecting({ rows: { 'axis.ownership': 30 } }), d)).toEqual([
      { what: 'rows axis.ownership', expected: '+30', actual: '+28', ok: false },
    ]);
    const removed = delta({ rows: { 'a.t': { added: 0, removed: 3, changed: 0 } } });
    expect(compareExpectations(tierExpecting({ rows: { 'a.t': -3 } }), removed)).toEqual([{ what: 'rows a.t', expected: '-3', actual: '-3', ok: true }]);
  });

  it('reads a table the delta does not list as unchanged', () => {
    expect(compareExpectations(tierExpecting({ rows: { 'a.t': 0 } }), delta())).toEqual([{ what: 'rows a.t', expected: '+0', actual: '+0', ok: true }]);
    expect(compareExpectations(tierExpecting({ rows: { 'a.t': 1 } }), delta())).toEqual([{ what: 'rows a.t', expected: '+1', actual: '+0', ok: false }]);
  });

  it('evaluates an expression over the figures and the metrics before the tier, and shows how', () => {
    const d = delta({ rows: { 'a.t': { added: 36, removed: 0, changed: 0 } }, metrics: { gap: { before: 35, after: 0 } } });
    expect(compareExpectations(tierExpecting({ rows: { 'a.t': 'gap + 1' } }), d)).toEqual([{ what: 'rows a.t', expected: 'gap + 1 = +36', actual: '+36', ok: true }]);
    expect(compareExpectations(tierExpecting({ rows: { 'a.t': 'anchors' } }), d, { anchors: 36 })).toEqual([
      { what: 'rows a.t', expected: 'anchors = +36', actual: '+36', ok: true },
    ]);
    // a figure read before the tier wins over a metric of the same name
    expect(compareExpectations(tierExpecting({ rows: { 'a.t': 'gap' } }), d, { gap: 36 })[0]).toMatchObject({ expected: 'gap = +36', ok: true });
    // a negative result is shown with its own sign
    expect(compareExpectations(tierExpecting({ rows: { 'a.t': '0 - gap' } }), d)[0]).toMatchObject({ expected: '0 - gap = -35', ok: false });
    // a number written as a string is shown as the number
    expect(compareExpectations(tierExpecting({ rows: { 'a.t': ' 36 ' } }), d)[0]).toMatchObject({ expected: '+36', ok: true });
  });

  it('holds no expression whose inputs are n/a, and no expression that does not parse', () => {
    const d = delta({ rows: { 'a.t': { added: 0, removed: 0, changed: 0 } }, metrics: { gap: { before: null, after: 0 } } });
    expect(compareExpectations(tierExpecting({ rows: { 'a.t': 'gap' } }), d)).toEqual([{ what: 'rows a.t', expected: 'gap = n/a', actual: '+0', ok: false }]);
    expect(compareExpectations(tierExpecting({ rows: { 'a.t': 'gap / 2' } }), d)).toEqual([{ what: 'rows a.t', expected: 'gap / 2', actual: '+0', ok: false }]);
  });

  it("skips 'any', for the whole count and for one part", () => {
    const d = delta({ rows: { 'a.t': { added: 5, removed: 1, changed: 2 } } });
    expect(compareExpectations(tierExpecting({ rows: { 'a.t': 'any' } }), d)).toEqual([]);
    expect(compareExpectations(tierExpecting({ rows: { 'a.t': { added: 'any', changed: 2 } } }), d)).toEqual([{ what: 'rows a.t changed', expected: '2', actual: '2', ok: true }]);
  });

  it('checks each named count on its own, unsigned, in the order added, removed, changed', () => {
    const d = delta({ rows: { 'a.t': { added: 5, removed: 1, changed: 2 } } });
    expect(compareExpectations(tierExpecting({ rows: { 'a.t': { changed: 2, removed: 0, added: 'n' } } }), d, { n: 5 })).toEqual([
      { what: 'rows a.t added', expected: 'n = 5', actual: '5', ok: true },
      { what: 'rows a.t removed', expected: '0', actual: '1', ok: false },
      { what: 'rows a.t changed', expected: '2', actual: '2', ok: true },
    ]);
  });
});

describe('compareExpectations: objects', () => {
  it('counts the names of each kind, a kind the delta does not list as none', () => {
    const d = delta({ objects: { tables: { added: ['a.x', 'a.y'], removed: ['a.z'], changed: ['a.w'] } } });
    expect(compareExpectations(tierExpecting({ objects: { tables: 1, views: 0 } }), d)).toEqual([
      { what: 'tables', expected: '+1', actual: '+1', ok: true },
      { what: 'views', expected: '+0', actual: '+0', ok: true },
    ]);
    expect(compareExpectations(tierExpecting({ objects: { tables: { added: 2, removed: 1, changed: 1 }, views: { added: 1 } } }), d)).toEqual([
      { what: 'tables added', expected: '2', actual: '2', ok: true },
      { what: 'tables removed', expected: '1', actual: '1', ok: true },
      { what: 'tables changed', expected: '1', actual: '1', ok: true },
      { what: 'views added', expected: '1', actual: '0', ok: false },
    ]);
    expect(compareExpectations(tierExpecting({ objects: { views: { removed: 0, changed: 0 } } }), d)).toEqual([
      { what: 'views removed', expected: '0', actual: '0', ok: true },
      { what: 'views changed', expected: '0', actual: '0', ok: true },
    ]);
  });
});

describe('compareExpectations: metrics', () => {
  const d = delta({ metrics: { owner_gap: { before: 210, after: 0 }, axis_tables: { before: 6, after: 6 }, critical: { before: null, after: 30 } } });

  it('checks [before, after] as numbers, n/a, any or expressions', () => {
    expect(compareExpectations(tierExpecting({ metrics: { owner_gap: [210, 0] } }), d)).toEqual([
      { what: 'metric owner_gap', expected: '210 → 0', actual: '210 → 0', ok: true },
    ]);
    expect(compareExpectations(tierExpecting({ metrics: { owner_gap: [210, 1] } }), d)[0]).toMatchObject({ ok: false });
    expect(compareExpectations(tierExpecting({ metrics: { owner_gap: [209, 0] } }), d)[0]).toMatchObject({ ok: false });
    expect(compareExpectations(tierExpecting({ metrics: { critical: [null, 'any'] } }), d)).toEqual([
      { what: 'metric critical', expected: 'n/a → any', actual: 'n/a → 30', ok: true },
    ]);
    expect(compareExpectations(tierExpecting({ metrics: { critical: [null, null] } }), d)[0]).toMatchObject({ expected: 'n/a → n/a', ok: false });
    expect(compareExpectations(tierExpecting({ metrics: { owner_gap: [null, 0] } }), d)[0]).toMatchObject({ ok: false });
    // an expression is evaluated with the values before the tier, unsigned
    expect(compareExpectations(tierExpecting({ metrics: { axis_tables: ['any', 'axis_tables + 0'] } }), d)).toEqual([
      { what: 'metric axis_tables', expected: 'any → axis_tables + 0 = 6', actual: '6 → 6', ok: true },
    ]);
    expect(compareExpectations(tierExpecting({ metrics: { owner_gap: ['any', '0 - 1'] } }), d)[0]).toMatchObject({ expected: 'any → 0 - 1 = -1', ok: false });
    expect(compareExpectations(tierExpecting({ metrics: { owner_gap: ['any', '-1'] } }), d)[0]).toMatchObject({ expected: 'any → -1', ok: false });
  });

  it("checks 'unchanged', and fails a metric that was not measured", () => {
    expect(compareExpectations(tierExpecting({ metrics: { axis_tables: 'unchanged' } }), d)).toEqual([
      { what: 'metric axis_tables', expected: 'unchanged', actual: '6 → 6', ok: true },
    ]);
    expect(compareExpectations(tierExpecting({ metrics: { owner_gap: 'unchanged' } }), d)[0]).toMatchObject({ ok: false });
    expect(compareExpectations(tierExpecting({ metrics: { missing: 'unchanged' } }), d)).toEqual([
      { what: 'metric missing', expected: 'unchanged', actual: 'n/a → n/a', ok: false },
    ]);
    expect(compareExpectations(tierExpecting({ metrics: { missing: ['any', 'any'] } }), d)).toEqual([
      { what: 'metric missing', expected: 'any → any', actual: 'n/a → n/a', ok: false },
    ]);
  });

  it('reports rows, then objects, then metrics', () => {
    const results = compareExpectations(tierExpecting({ metrics: { axis_tables: 'unchanged' }, objects: { tables: 0 }, rows: { 'a.t': 0 } }), d);
    expect(results.map((r) => r.what)).toEqual(['rows a.t', 'tables', 'metric axis_tables']);
  });
});

describe('diffCatalog', () => {
  const snapshot = (entries: Partial<Record<keyof CatalogSnapshot, [string, string][]>>): CatalogSnapshot => {
    const s = emptySnapshot();
    for (const [kind, list] of Object.entries(entries)) for (const [name, def] of list!) s[kind as keyof CatalogSnapshot].set(name, def);
    return s;
  };

  it('names the objects added, removed and changed per kind, sorted, and leaves out kinds without change', () => {
    const before = snapshot({ tables: [['a.keep', '1'], ['a.gone', '1'], ['a.edit', '1'], ['a.edit2', '1']], views: [['a.v', '1']] });
    const after = snapshot({ tables: [['a.new2', '1'], ['a.keep', '1'], ['a.edit2', '2'], ['a.edit', '2'], ['a.new1', '1']], views: [['a.v', '1']], types: [['a.t', 'x']] });
    expect(diffCatalog(before, after)).toEqual({
      tables: { added: ['a.new1', 'a.new2'], removed: ['a.gone'], changed: ['a.edit', 'a.edit2'] },
      types: { added: ['a.t'], removed: [], changed: [] },
    });
  });

  it('is empty between equal snapshots, and lists a kind with removals only', () => {
    expect(diffCatalog(snapshot({ tables: [['a.x', '1']] }), snapshot({ tables: [['a.x', '1']] }))).toEqual({});
    expect(diffCatalog(snapshot({ policies: [['a.x.p', '1'], ['a.x.o', '1']] }), emptySnapshot())).toEqual({ policies: { added: [], removed: ['a.x.o', 'a.x.p'], changed: [] } });
    expect(diffCatalog(snapshot({ rules: [['a.x.r', '1']] }), snapshot({ rules: [['a.x.r', '2']] }))).toEqual({ rules: { added: [], removed: [], changed: ['a.x.r'] } });
  });
});

describe('diffDeltas', () => {
  it('is empty when production did what the rehearsal did, whatever the order of the names', () => {
    const d = delta({
      objects: { tables: { added: ['a.y', 'a.x'], removed: [], changed: [] } },
      rows: { 'a.t': { added: 1, removed: 0, changed: 0 } },
      metrics: { m: { before: 5, after: 0 } },
    });
    const same = delta({
      objects: { tables: { added: ['a.x', 'a.y'], removed: [], changed: [] } },
      rows: { 'a.t': { added: 1, removed: 0, changed: 0 } },
      metrics: { m: { before: 7, after: 0 } },
    });
    expect(diffDeltas(d, same)).toEqual([]);
    // a table without changes reads as one the delta does not list
    expect(diffDeltas(delta({ rows: { 'a.t': { added: 0, removed: 0, changed: 0 } } }), delta())).toEqual([{ what: 'rows a.t', rehearsal: '+0 −0 ~0', production: '±0' }]);
  });

  it('names the objects that differ per kind and change, at most six of them', () => {
    const many = ['a.1', 'a.2', 'a.3', 'a.4', 'a.5', 'a.6', 'a.7', 'a.8'];
    const rehearsal = delta({ objects: { tables: { added: ['a.x'], removed: [], changed: ['a.c'] }, views: { added: [], removed: [], changed: many } } });
    const production = delta({ objects: { tables: { added: ['a.x', 'a.y'], removed: ['a.z'], changed: ['a.c'] }, indexes: { added: ['a.i'], removed: [], changed: [] } } });
    expect(diffDeltas(rehearsal, production)).toEqual([
      { what: 'tables added', rehearsal: 'a.x', production: 'a.x, a.y' },
      { what: 'tables removed', rehearsal: 'none', production: 'a.z' },
      { what: 'views changed', rehearsal: 'a.1, a.2, a.3, a.4, a.5, a.6 (+2)', production: 'none' },
      { what: 'indexes added', rehearsal: 'none', production: 'a.i' },
    ]);
    const six = many.slice(0, 6);
    expect(diffDeltas(delta({ objects: { views: { added: six, removed: [], changed: [] } } }), delta())[0]!.rehearsal).toBe('a.1, a.2, a.3, a.4, a.5, a.6');
  });

  it("compares each table's added, removed and changed rows, and each metric's value after the tier", () => {
    const rehearsal = delta({
      rows: { 'a.t': { added: 30, removed: 0, changed: 1 }, 'a.u': { added: 1, removed: 0, changed: 0 } },
      metrics: { gap: { before: 210, after: 0 }, crit: { before: null, after: null }, same: { before: 1, after: 2 } },
    });
    const production = delta({
      rows: { 'a.t': { added: 30, removed: 2, changed: 1 }, 'a.v': { added: 0, removed: 0, changed: 3 } },
      metrics: { gap: { before: 210, after: 4 }, crit: { before: null, after: 0 }, same: { before: 0, after: 2 }, extra: { before: 0, after: 0 } },
    });
    expect(diffDeltas(rehearsal, production)).toEqual([
      { what: 'rows a.t', rehearsal: '+30 −0 ~1', production: '+30 −2 ~1' },
      { what: 'rows a.u', rehearsal: '+1 −0 ~0', production: '±0' },
      { what: 'rows a.v', rehearsal: '±0', production: '+0 −0 ~3' },
      { what: 'metric gap after', rehearsal: '0', production: '4' },
      { what: 'metric crit after', rehearsal: 'n/a', production: '0' },
      { what: 'metric extra after', rehearsal: 'n/a', production: '0' },
    ]);
  });
});
