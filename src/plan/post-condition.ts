/** A post-condition: `metric op number`, e.g. `owner_gap = 0`. */
export interface PostCondition {
  expr: string;
  metric: string;
  op: '=' | '!=' | '<' | '<=' | '>' | '>=';
  value: number;
}

const POST = /^\s*([a-z_][a-z0-9_]*)\s*(=|==|!=|<>|<=|>=|<|>)\s*(-?\d+(?:\.\d+)?)\s*$/;

/** Parses `owner_gap = 0`; returns `{ error }` with a message naming the expected form. */
export function parsePostCondition(expr: string): PostCondition | { error: string } {
  const m = POST.exec(expr);
  if (!m) return { error: `'${expr}' is not a post-condition: expected 'metric op number', e.g. 'owner_gap = 0' (op: = != < <= > >=)` };
  const rawOp = m[2]!;
  const op = rawOp === '==' ? '=' : rawOp === '<>' ? '!=' : (rawOp as PostCondition['op']);
  return { expr: expr.trim(), metric: m[1]!, op, value: Number(m[3]) };
}

/** A null metric (its objects do not exist) never satisfies a post-condition. */
export function checkPostCondition(p: PostCondition, value: number | null): boolean {
  if (value === null) return false;
  switch (p.op) {
    case '=':
      return value === p.value;
    case '!=':
      return value !== p.value;
    case '<':
      return value < p.value;
    case '<=':
      return value <= p.value;
    case '>':
      return value > p.value;
    case '>=':
      return value >= p.value;
  }
}
