/** The relations a query names, from its parse tree: what a plan query needs to exist before it can run. */
import { isObject } from './parse-script.js';

/** A relation as a query names it: `schema` null when unqualified (found through search_path). */
export interface NamedRelation {
  schema: string | null;
  name: string;
}

/** One key per relation as named (`schema` and name), for sets and maps of them. */
export function relationKey(r: NamedRelation): string {
  return `${r.schema ?? ''}\0${r.name}`;
}

/**
 * Every relation the statements name (FROM, JOIN, subqueries, CTE bodies,
 * `TABLE t`), each once. An unqualified name that is also the name of a
 * CTE anywhere in the statements is left out: it may be the CTE. Null when
 * a name crosses databases (`db.schema.table`): what that would do is not
 * "a relation that does not exist".
 *
 * Each name listed must exist for the statements to run: PostgreSQL
 * resolves every relation a statement names when it analyses it, before
 * running any part of it.
 */
export function relationsNamed(asts: readonly unknown[]): NamedRelation[] | null {
  const ctes = new Set<string>();
  const found = new Map<string, NamedRelation>();
  let crossDatabase = false;
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const x of node) walk(x);
      return;
    }
    if (!isObject(node)) return;
    for (const [key, value] of Object.entries(node)) {
      if (key === 'CommonTableExpr' && isObject(value) && typeof value.ctename === 'string') ctes.add(value.ctename);
      if (key === 'RangeVar' && isObject(value) && typeof value.relname === 'string') {
        if (typeof value.catalogname === 'string' && value.catalogname !== '') crossDatabase = true;
        const schema = typeof value.schemaname === 'string' && value.schemaname !== '' ? value.schemaname : null;
        const relation = { schema, name: value.relname };
        found.set(relationKey(relation), relation);
      }
      walk(value);
    }
  };
  walk(asts);
  if (crossDatabase) return null;
  return [...found.values()].filter((r) => r.schema !== null || !ctes.has(r.name));
}
