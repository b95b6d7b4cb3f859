/**
 * A plan's `expect`, compared with what a tier measured: numbers, `any`,
 * `unchanged`, n/a, and expressions over this environment's figures (the
 * metrics before the tier and the figures read in its transaction before it
 * ran). Pure: no database.
 */
import { describe, expect, it } from 'vitest';
import { compareExpectations } from '../src/engine/expectations.js';
import type { Delta } from '../src/engine/result.js';
import type { Tier } from '../src/plan/plan.js';
import { evaluate, parseExpr } from '../src/plan/expect-expr.js';

const tier = (e: NonNullable<Tier['expect']>) => ({ id: 2, expect: e }) as unknown as Tier;

function delta(rows: Record<string, [number, number, number]>, metrics: Record<string, [number | null, number | null]>, tables?: { added: string[]; removed: string[] }): Delta {
  return {
    objects: tables ? { tables: { ...tables, changed: [] } } : {},
    rows: Object.fromEntries(Object.entries(rows).map(([k, [added, removed, changed]]) => [k, { added, removed, changed }])),
    metrics: Object.fromEntries(Object.entries(metrics).map(([k, [before, after]]) => [k, { before, after }])),
  } as Delta;
}

const oks = (r: { what: string; ok: boolean }[]) => Object.fromEntries(r.map((x) => [x.what, x.ok]));

describe('compareExpectations', () => {
  it('an expression over a figure read before the tier holds only at that figure', () => {
    const t = tier({ rows: { 'axis.ownership': { added: 'approved_anchors' } } });
    const at = (added: number) => compareExpectations(t, delta({ 'axis.ownership': [added, 0, 0] }, {}), { approved_anchors: 30 });
    expect(at(30)).toEqual([{ what: 'rows axis.ownership added', expected: 'approved_anchors = 30', actual: '30', ok: true }]);
    expect(at(29)[0]).toMatchObject({ expected: 'approved_anchors = 30', actual: '29', ok: false });
    // the same plan in another environment: its own figure
    expect(compareExpectations(t, delta({ 'axis.ownership': [7, 0, 0] }, {}), { approved_anchors: 7 })[0]?.ok).toBe(true);
  });

  it('metrics before the tier are names too; an expression whose input is n/a does not hold', () => {
    const t = tier({ metrics: { owner_gap: ['any', 0] }, rows: { 'axis.ownership': 'owner_gap + 1' } });
    expect(oks(compareExpectations(t, delta({ 'axis.ownership': [36, 0, 0] }, { owner_gap: [35, 0] })))).toEqual({ 'rows axis.ownership': true, 'metric owner_gap': true });
    expect(oks(compareExpectations(t, delta({ 'axis.ownership': [35, 0, 0] }, { owner_gap: [35, 1] })))).toEqual({ 'rows axis.ownership': false, 'metric owner_gap': false });
    const na = compareExpectations(tier({ rows: { 'axis.ownership': 'missing_figure' } }), delta({ 'axis.ownership': [0, 0, 0] }, {}), { missing_figure: null });
    expect(na[0]).toMatchObject({ expected: 'missing_figure = n/a', ok: false });
  });

  it('a count alone is added − removed; any checks nothing; unchanged and n/a are exact', () => {
    const t = tier({ objects: { tables: 2 }, rows: { 'app.t': 'any' }, metrics: { m: 'unchanged', gone: [5, null] } });
    const r = compareExpectations(t, delta({ 'app.t': [1000, 3, 2] }, { m: [4, 4], gone: [5, null] }, { added: ['a', 'b', 'c'], removed: ['d'] }));
    expect(oks(r)).toEqual({ tables: true, 'metric m': true, 'metric gone': true });
    const changed = compareExpectations(t, delta({}, { m: [4, 5], gone: [5, 0] }, { added: ['a'], removed: [] }));
    expect(oks(changed)).toEqual({ tables: false, 'metric m': false, 'metric gone': false });
  });
});

describe('expressions', () => {
  it('+ - * and parentheses with the usual precedence; anything else is refused with its place', () => {
    const v = (s: string) => {
      const p = parseExpr(s);
      if (!p.ok || p.expr === 'any') throw new Error(String(p.ok ? p.expr : p.error));
      return evaluate(p.expr, { a: 3, b: 4 });
    };
    expect(v('a + b * 2')).toBe(11);
    expect(v('(a + b) * 2')).toBe(14);
    expect(v('-a + 10 - b')).toBe(3);
    expect(parseExpr('a / b')).toMatchObject({ ok: false, error: expect.stringMatching(/unexpected '\/ b'/) });
    expect(parseExpr('(a + b')).toMatchObject({ ok: false, error: expect.stringMatching(/not closed/) });
    expect(parseExpr('a + any')).toMatchObject({ ok: false, error: expect.stringMatching(/'any' stands alone/) });
  });
});
