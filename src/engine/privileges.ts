import type { Queryable } from '../db/port.js';
import type { Tier } from '../plan/plan.js';
import { privilegesNeeded } from '../plan/privileges-needed.js';

/** SQL a run will send, and how to name it: a tier file (`tier 7 'Approval rules'`), the gate's lock. */
export interface PrivilegedSql {
  label: string;
  sql: string;
}

/** What this session's user lacks for one piece of SQL: the privileges on one relation that exists now. */
export interface PrivilegeLack {
  of: PrivilegedSql;
  /** as the server prints it (schema-qualified when not on the search_path) */
  relation: string;
  privileges: string[];
}

/**
 * The SQL a run of `tiers` sends that needs privileges: each tier file, and
 * the gate's lock when one of them is gated (it locks the approvals' rows
 * FOR SHARE, which PostgreSQL allows only with UPDATE).
 */
export function runSql(tiers: Tier[], gateLock: string | undefined): PrivilegedSql[] {
  const out: PrivilegedSql[] = tiers.map((t) => ({ label: `tier ${t.id} '${t.name}'`, sql: t.sql }));
  if (gateLock && tiers.some((t) => t.gated)) out.push({ label: "the gate's lock (gate.lock in tiergate.yaml, taken by each gated tier)", sql: gateLock });
  return out;
}

/**
 * The privileges `tiers` surely need (`privilegesNeeded`) that this
 * session's user lacks on relations that exist now — one read. A relation
 * an earlier tier creates does not exist yet, and its creator owns it: not
 * asked. INSERT, UPDATE and REFERENCES count when granted on any column
 * (a grant of some columns may be all a statement needs).
 */
export async function lackedPrivileges(q: Queryable, tiers: PrivilegedSql[]): Promise<PrivilegeLack[]> {
  const needs = (await Promise.all(tiers.map(async (t, i) => (await privilegesNeeded(t.sql)).map((n) => ({ ...n, i }))))).flat();
  if (!needs.length) return [];
  const r = await q.query<{ i: number; rel: string; privileges: string[] }>(
    `select n.i, c.oid::regclass::text as rel, array_agg(n.p order by n.o) as privileges
       from unnest($1::int[], $2::text[], $3::text[]) with ordinality as n(i, r, p, o)
       join pg_class c on c.oid = to_regclass(n.r)
      where not case when n.p in ('INSERT', 'UPDATE', 'REFERENCES') then has_any_column_privilege(c.oid, n.p) else has_table_privilege(c.oid, n.p) end
      group by n.i, c.oid
      order by n.i, min(n.o)`,
    [needs.map((n) => n.i), needs.map((n) => n.relation), needs.map((n) => n.privilege)],
  );
  return r.rows.map((row) => ({ of: tiers[row.i]!, relation: row.rel, privileges: row.privileges }));
}

/** The lacks in words, and the GRANTs that end them (relations that lack the same privileges named together). */
export function describeLacks(lacks: PrivilegeLack[], user: string): { what: string; grants: string } {
  const grouped = (ls: PrivilegeLack[]) => {
    const bySet = new Map<string, string[]>();
    for (const l of ls) bySet.set(l.privileges.join(', '), [...(bySet.get(l.privileges.join(', ')) ?? []), l.relation]);
    return [...bySet.entries()];
  };
  const bySql = new Map<PrivilegedSql, PrivilegeLack[]>();
  for (const l of lacks) bySql.set(l.of, [...(bySql.get(l.of) ?? []), l]);
  const what = [...bySql.entries()]
    .map(([t, ls]) => `${t.label} needs ${grouped(ls).map(([ps, rels]) => `${ps} on ${rels.join(', ')}`).join('; ')}`)
    .join('; ');
  // one privilege set per relation across tiers, then relations with the same set in one GRANT
  const perRelation = new Map<string, Set<string>>();
  for (const l of lacks) for (const p of l.privileges) perRelation.set(l.relation, (perRelation.get(l.relation) ?? new Set()).add(p));
  const merged = [...perRelation.entries()].map(([relation, ps]) => ({ relation, privileges: [...ps] }) as PrivilegeLack);
  const grants = grouped(merged).map(([ps, rels]) => `GRANT ${ps} ON ${rels.join(', ')} TO ${user}`).join('; ');
  return { what, grants };
}
