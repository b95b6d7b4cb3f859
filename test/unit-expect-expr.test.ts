/**
 * The plan's expressions (`expect`) and post-conditions (`post`), parsed and
 * evaluated: what a tier is held to. Pure functions, no database.
 */
import { describe, expect, it } from 'vitest';
import { evaluate, expressionsOf, namesIn, parseExpr, type Expr } from '../src/plan/expect-expr.js';
import { checkPostCondition, parsePostCondition, type PostCondition } from '../src/plan/post-condition.js';

/** The expression of `text`, failing the test when it does not parse. */
function expr(text: string): Expr | 'any' {
  const parsed = parseExpr(text);
  if (!parsed.ok) throw new Error(`'${text}' did not parse: ${parsed.error}`);
  return parsed.expr;
}
const value = (text: string, values: Record<string, number | null> = {}) => {
  const e = expr(text);
  if (e === 'any') throw new Error('any has no value');
  return evaluate(e, values);
};
const error = (text: string) => {
  const parsed = parseExpr(text);
  if (parsed.ok) throw new Error(`'${text}' parsed`);
  return parsed.error;
};

describe('parseExpr', () => {
  it("reads 'any', alone and with spaces around it, as the wildcard", () => {
    expect(parseExpr('any')).toEqual({ ok: true, expr: 'any' });
    expect(parseExpr('  any \t')).toEqual({ ok: true, expr: 'any' });
  });

  it('builds the tree of numbers, names, negation and the three operators', () => {
    expect(expr('30')).toEqual({ op: 'num', value: 30 });
    expect(expr('2.5')).toEqual({ op: 'num', value: 2.5 });
    expect(expr('approved_anchors')).toEqual({ op: 'name', name: 'approved_anchors' });
    expect(expr('-x')).toEqual({ op: 'neg', arg: { op: 'name', name: 'x' } });
    expect(expr('a + 1')).toEqual({ op: '+', left: { op: 'name', name: 'a' }, right: { op: 'num', value: 1 } });
    expect(expr('a-1')).toEqual({ op: '-', left: { op: 'name', name: 'a' }, right: { op: 'num', value: 1 } });
    expect(expr('2*b')).toEqual({ op: '*', left: { op: 'num', value: 2 }, right: { op: 'name', name: 'b' } });
  });

  it('gives * precedence over + and -, groups left to right, and honours parentheses', () => {
    expect(value('2 + 3 * 4')).toBe(14);
    expect(value('3 * 4 + 2')).toBe(14);
    expect(value('(2 + 3) * 4')).toBe(20);
    expect(value('10 - 3 - 2')).toBe(5);
    expect(value('10 - (3 - 2)')).toBe(9);
    expect(value('2 * 3 * 4')).toBe(24);
    expect(value('-2 * 3')).toBe(-6);
    expect(value('- -1')).toBe(1);
    expect(value('((7))')).toBe(7);
    expect(value(' containment_gap + 1 ', { containment_gap: 35 })).toBe(36);
  });

  it('refuses characters that are not numbers, names, operators or parentheses, quoting what follows', () => {
    expect(error('a/2')).toBe("'a/2': unexpected '/2' (expressions use numbers, names, + - * and parentheses)");
    // at most 10 characters of what follows, and the text as written in the message
    expect(error(' x + Owner_gap_of_the_plan')).toBe("' x + Owner_gap_of_the_plan': unexpected 'Owner_gap_' (expressions use numbers, names, + - * and parentheses)");
    expect(error('1 + 2;')).toMatch(/unexpected ';'/);
  });

  it('says what is wrong with a malformed expression', () => {
    expect(error('   ')).toBe("'   ': is empty");
    expect(error('1 +')).toBe("'1 +': ends too early");
    expect(error('(1 + 2')).toBe("'(1 + 2': a '(' is not closed");
    expect(error('(1 + 2 3')).toBe("'(1 + 2 3': a '(' is not closed");
    expect(error('1 2')).toBe("'1 2': unexpected '2'");
    expect(error('(1))')).toBe("'(1))': unexpected ')'");
    expect(error('* 2')).toBe("'* 2': unexpected '*'");
    expect(error('+ 2')).toBe("'+ 2': unexpected '+'");
    expect(error(')')).toBe("')': unexpected ')'");
    expect(error('any + 1')).toBe("'any + 1': 'any' stands alone, not inside an expression");
    expect(error('1 - any')).toBe("'1 - any': 'any' stands alone, not inside an expression");
  });

  it('parses again from the start after an error (the tokenizer keeps no state)', () => {
    expect(parseExpr('a /').ok).toBe(false);
    expect(expr('b')).toEqual({ op: 'name', name: 'b' });
  });
});

describe('namesIn', () => {
  it('lists every name an expression reads, in order, and none of any or of numbers', () => {
    expect(namesIn(expr('a + b * -(c - 1)'))).toEqual(['a', 'b', 'c']);
    expect(namesIn(expr('any'))).toEqual([]);
    expect(namesIn(expr('3 * 4'))).toEqual([]);
    expect(namesIn(expr('-x'))).toEqual(['x']);
  });
});

describe('evaluate', () => {
  it('computes with the values given, and is n/a when a name it reads is n/a or unknown', () => {
    expect(value('a * b - c', { a: 3, b: 4, c: 5 })).toBe(7);
    expect(value('a - b', { a: 3, b: 4 })).toBe(-1);
    expect(value('a', { a: 0 })).toBe(0);
    expect(value('a', { a: null })).toBeNull();
    expect(value('a', {})).toBeNull();
    expect(value('-a', { a: null })).toBeNull();
    expect(value('a + 1', { a: null })).toBeNull();
    expect(value('1 + a', { a: null })).toBeNull();
    expect(value('a * b', { a: 2 })).toBeNull();
  });
});

describe('expressionsOf', () => {
  it('finds the expression strings of a count, a metric bound or an object of counts', () => {
    expect(expressionsOf('approved_anchors')).toEqual(['approved_anchors']);
    expect(expressionsOf('unchanged')).toEqual([]);
    expect(expressionsOf(30)).toEqual([]);
    expect(expressionsOf(null)).toEqual([]);
    expect(expressionsOf(undefined)).toEqual([]);
    expect(expressionsOf(['any', 0, null, 'x + 1'])).toEqual(['any', 'x + 1']);
    expect(expressionsOf({ added: 'n', removed: 0, changed: 'm' })).toEqual(['n', 'm']);
  });
});

describe('post-conditions', () => {
  it('parse as metric, operator and number, spelled as the plan may spell them', () => {
    expect(parsePostCondition('owner_gap = 0')).toEqual({ expr: 'owner_gap = 0', metric: 'owner_gap', op: '=', value: 0 });
    expect(parsePostCondition('  owner_gap=0  ')).toEqual({ expr: 'owner_gap=0', metric: 'owner_gap', op: '=', value: 0 });
    expect(parsePostCondition('a == 1')).toMatchObject({ op: '=' });
    expect(parsePostCondition('a <> 1')).toMatchObject({ op: '!=' });
    expect(parsePostCondition('a != 1')).toMatchObject({ op: '!=' });
    expect(parsePostCondition('a < 1')).toMatchObject({ op: '<' });
    expect(parsePostCondition('a <= 1')).toMatchObject({ op: '<=' });
    expect(parsePostCondition('a > 1')).toMatchObject({ op: '>' });
    expect(parsePostCondition('a >= 1')).toMatchObject({ op: '>=' });
    expect(parsePostCondition('_a9 >= -2.5')).toEqual({ expr: '_a9 >= -2.5', metric: '_a9', op: '>=', value: -2.5 });
  });

  it('refuse anything else, naming the form expected', () => {
    const message = "'owner_gap is zero' is not a post-condition: expected 'metric op number', e.g. 'owner_gap = 0' (op: = != < <= > >=)";
    expect(parsePostCondition('owner_gap is zero')).toEqual({ error: message });
    for (const bad of ['Owner_gap = 0', '9a = 0', 'a = b', 'a = 1 extra', 'prefix a = 1', 'a = 1.', 'a => 1', 'a = +1', '= 1', 'a =']) {
      expect(parsePostCondition(bad), bad).toHaveProperty('error');
    }
  });

  it('hold or not by their operator, and never on an n/a value', () => {
    const check = (op: PostCondition['op'], v: number | null) => checkPostCondition({ expr: '', metric: 'm', op, value: 5 }, v);
    expect([4, 5, 6].map((v) => check('=', v))).toEqual([false, true, false]);
    expect([4, 5, 6].map((v) => check('!=', v))).toEqual([true, false, true]);
    expect([4, 5, 6].map((v) => check('<', v))).toEqual([true, false, false]);
    expect([4, 5, 6].map((v) => check('<=', v))).toEqual([true, true, false]);
    expect([4, 5, 6].map((v) => check('>', v))).toEqual([false, false, true]);
    expect([4, 5, 6].map((v) => check('>=', v))).toEqual([false, true, true]);
    for (const op of ['=', '!=', '<', '<=', '>', '>='] as const) expect(check(op, null), op).toBe(false);
  });
});
