/**
 * The expressions of a plan's `expect`: whole numbers, names (a metric's value
 * before the tier, or a figure read before it), `+ - *` and parentheses.
 * `any` matches everything. Nothing else: an expectation states a figure of
 * this environment, it does not compute one.
 *
 * @example
 *   const e = parseExpr('containment_gap + 1');   // { ok: true, expr }
 *   evaluate(e.expr, { containment_gap: 35 })      // 36
 */

export type Expr =
  | { op: 'num'; value: number }
  | { op: 'name'; name: string }
  | { op: 'neg'; arg: Expr }
  | { op: '+' | '-' | '*'; left: Expr; right: Expr };

export type ParsedExpr = { ok: true; expr: Expr | 'any' } | { ok: false; error: string };

const TOKEN = /\s*(?:(\d+(?:\.\d+)?)|([a-z_][a-z0-9_]*)|([-+*()]))/y;

/** Parses an expectation's expression; `any` is the wildcard. */
export function parseExpr(text: string): ParsedExpr {
  const source = text.trim();
  if (source === 'any') return { ok: true, expr: 'any' };
  const tokens: string[] = [];
  TOKEN.lastIndex = 0;
  let at = 0;
  while (at < source.length) {
    TOKEN.lastIndex = at;
    const m = TOKEN.exec(source);
    if (!m || m[0].length === 0) return { ok: false, error: `'${text}': unexpected '${source.slice(at).trimStart().slice(0, 10)}' (expressions use numbers, names, + - * and parentheses)` };
    tokens.push((m[1] ?? m[2] ?? m[3])!);
    at = TOKEN.lastIndex;
  }
  let i = 0;
  const peek = () => tokens[i];
  const fail = (what: string): never => {
    throw new Error(`'${text}': ${what}`);
  };
  const primary = (): Expr => {
    const t = tokens[i++];
    if (t === undefined) return fail('ends too early');
    if (t === '(') {
      const e = sum();
      if (tokens[i++] !== ')') fail("a '(' is not closed");
      return e;
    }
    if (t === '-') return { op: 'neg', arg: primary() };
    if (/^\d/.test(t)) return { op: 'num', value: Number(t) };
    if (/^[a-z_]/.test(t)) {
      if (t === 'any') fail("'any' stands alone, not inside an expression");
      return { op: 'name', name: t };
    }
    return fail(`unexpected '${t}'`);
  };
  const product = (): Expr => {
    let e = primary();
    while (peek() === '*') {
      i++;
      e = { op: '*', left: e, right: primary() };
    }
    return e;
  };
  const sum = (): Expr => {
    let e = product();
    for (let t = peek(); t === '+' || t === '-'; t = peek()) {
      i++;
      e = { op: t, left: e, right: product() };
    }
    return e;
  };
  try {
    if (tokens.length === 0) fail('is empty');
    const expr = sum();
    if (i < tokens.length) fail(`unexpected '${tokens[i]}'`);
    return { ok: true, expr };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

/** The names an expression reads. */
export function namesIn(expr: Expr | 'any'): string[] {
  if (expr === 'any') return [];
  switch (expr.op) {
    case 'num':
      return [];
    case 'name':
      return [expr.name];
    case 'neg':
      return namesIn(expr.arg);
    default:
      return [...namesIn(expr.left), ...namesIn(expr.right)];
  }
}

/** The value of an expression; null when a name it reads is n/a (or unknown). */
export function evaluate(expr: Expr, values: Record<string, number | null>): number | null {
  switch (expr.op) {
    case 'num':
      return expr.value;
    case 'name':
      return values[expr.name] ?? null;
    case 'neg': {
      const v = evaluate(expr.arg, values);
      return v === null ? null : -v;
    }
    default: {
      const l = evaluate(expr.left, values);
      const r = evaluate(expr.right, values);
      if (l === null || r === null) return null;
      return expr.op === '+' ? l + r : expr.op === '-' ? l - r : l * r;
    }
  }
}

/** The expressions of one `expect` value (a count, a metric bound, or the counts of an object): strings only. */
export function expressionsOf(value: unknown): string[] {
  if (typeof value === 'string') return value === 'unchanged' ? [] : [value];
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  if (value && typeof value === 'object') return Object.values(value).filter((v): v is string => typeof v === 'string');
  return [];
}
