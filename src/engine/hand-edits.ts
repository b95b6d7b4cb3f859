import type { Queryable } from '../db/port.js';
import type { Plan } from '../plan/plan.js';
import { CATALOG_VERSION, DELTA_KIND, snapshotCatalog } from '../probe/catalog.js';
import { plural } from '../text.js';
import { objectKeys } from './ledger.js';

/**
 * Objects of the plan's schemas changed outside tiergate: the database
 * against the record its tiers keep in the ledger (each row's `objects`,
 * src/engine/ledger.ts). A file's drift is an edit of the plan; this is an
 * edit of the database — a trigger function rewritten, a view redefined, an
 * index dropped by hand before a run — that no tier's delta shows, since a
 * run's first tier reads its "before" afresh (what another session commits
 * while a run goes on lands in a tier's delta: src/engine/run-tier.ts, Carry).
 * `verify` fails on it, `status --exit-code` exits 1,
 * the dry run and `fleet plan` show it.
 */
export interface HandEdits {
  /** the ledger row whose record the database is compared with: the last tier tiergate ran here */
  since: { tierId: number; tierName: string; at: string };
  edits: HandEdit[];
}

export interface HandEdit {
  /** singular: function, view, index … */
  kind: string;
  name: string;
  change: 'changed' | 'dropped' | 'added';
  /** the last tier whose delta made the object as recorded (a change or a drop: what to put it back from), and the rollback tiers that revert it */
  madeBy: { tierId: number; tierName: string; file: string; revertedBy: number[] } | null;
}

/** What reading the record needs (verify's privilege check): tiergate's ledger, its rows only. */
export const OBJECTS_RECORD = { label: "tiergate's ledger (the record of the plan's objects)", sql: 'select from tiergate.ledger' };

interface Recorded {
  id: number;
  tier_id: number;
  tier_name: string;
  applied_at: Date | string;
  objects: { v?: string; schemas?: string[]; settings?: Record<string, string>; server?: number; o?: Record<string, string> } | null;
  /** the major version of the server now */
  server: number;
}

/**
 * The plan's objects changed outside tiergate since its last tier, or null
 * when there is nothing to compare with (no ledger, no record: a ledger of
 * an earlier tiergate, a last tier whose row records none; a record of
 * another version of the catalog read or of the server, or of other schemas) or nothing
 * changed. Read-only; must run in a transaction: the recorded settings are
 * set for it (a definition prints as it did when recorded).
 */
export async function readHandEdits(tx: Queryable, plan: Plan): Promise<HandEdits | null> {
  const has = await tx.query<{ ok: boolean }>(
    `select exists (select 1 from pg_attribute where attrelid = to_regclass('tiergate.ledger') and attname = 'objects' and not attisdropped) as ok`,
  );
  if (!has.rows[0]?.ok) return null;
  const r = await tx.query<Recorded>(
    `select id::int as id, tier_id, tier_name, applied_at, objects, current_setting('server_version_num')::int / 10000 as server
       from tiergate.ledger where plan = $1 and status = 'applied' order by id desc limit 1`,
    [plan.name],
  );
  const last = r.rows[0];
  const rec = last?.objects;
  // (a record another server version read — a source's on its PGlite clone — prints some definitions otherwise: not compared)
  if (!last || !rec?.o || rec.v !== CATALOG_VERSION || rec.server !== last.server || JSON.stringify(rec.schemas ?? []) !== JSON.stringify(plan.schemas)) return null;
  await tx.query(`select count(set_config(k, v, true)) from jsonb_each_text($1::jsonb) s(k, v)`, [JSON.stringify(rec.settings ?? {})]);
  const now = objectKeys(await snapshotCatalog(tx, plan.schemas));
  const recorded = rec.o;
  const found: { key: string; change: HandEdit['change'] }[] = [
    ...Object.keys(recorded).filter((k) => k in now && now[k] !== recorded[k]).map((key) => ({ key, change: 'changed' as const })),
    ...Object.keys(recorded).filter((k) => !(k in now)).map((key) => ({ key, change: 'dropped' as const })),
    ...Object.keys(now).filter((k) => !(k in recorded)).map((key) => ({ key, change: 'added' as const })),
  ];
  if (!found.length) return null;
  const madeBy = await tiersThatMade(tx, plan.name, found.filter((f) => f.change !== 'added').map((f) => f.key));
  const edits = found
    .map(({ key, change }) => {
      const space = key.indexOf(' ');
      const made = madeBy.get(key);
      const revertedBy = made ? plan.tiers.filter((t) => t.kind === 'rollback' && t.reverts.includes(made.tierId)).map((t) => t.id) : [];
      return { kind: singular(key.slice(0, space)), name: key.slice(space + 1), change, madeBy: made ? { ...made, revertedBy } : null };
    })
    .sort((a, b) => a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name));
  return { since: { tierId: last.tier_id, tierName: last.tier_name, at: new Date(last.applied_at).toISOString() }, edits };
}

/** For each `kind name`, the last applied tier whose delta added or changed it. */
async function tiersThatMade(tx: Queryable, plan: string, keys: string[]): Promise<Map<string, { tierId: number; tierName: string; file: string }>> {
  if (!keys.length) return new Map();
  const r = await tx.query<{ k: string; tier_id: number; tier_name: string; file: string }>(
    `select distinct on (d.kind || ' ' || n.name) d.kind || ' ' || n.name as k, l.tier_id, l.tier_name, l.file
       from tiergate.ledger l
       cross join lateral jsonb_each(case when jsonb_typeof(l.delta -> 'objects') = 'object' then l.delta -> 'objects' else '{}' end) d(kind, c)
       cross join lateral jsonb_array_elements_text(coalesce(d.c -> 'added', '[]') || coalesce(d.c -> 'changed', '[]')) n(name)
      where l.plan = $1 and l.status = 'applied' and d.kind || ' ' || n.name = any($2::text[])
      order by d.kind || ' ' || n.name, l.id desc`,
    [plan, keys],
  );
  return new Map(r.rows.map((row) => [row.k, { tierId: row.tier_id, tierName: row.tier_name, file: row.file }]));
}

/** A delta's kind (`functions`, `indexes`) as the catalog names one object of it (`function`, `index`): DELTA_KIND read backwards. */
function singular(kind: string): string {
  return Object.entries(DELTA_KIND).find(([, plural]) => plural === kind)?.[0] ?? kind;
}

/** One line per object: what changed, and which tier's file makes it. */
function handEditLines(h: HandEdits): string[] {
  return h.edits.map((e) => {
    const m = e.madeBy;
    const made = m
      ? ` (as tier ${m.tierId} '${m.tierName}' last made it: ${m.file}; ${m.revertedBy.length ? `rollback tier ${m.revertedBy.join(' or ')} reverts it` : 'no rollback tier reverts it'})`
      : ' (no tier of the plan made it)';
    const what = e.change === 'added' ? 'created outside tiergate' : e.change === 'dropped' ? 'dropped outside tiergate' : 'changed outside tiergate';
    return `${e.kind} ${e.name}: ${what}${e.change === 'added' ? '' : made}`;
  });
}

/** What to do about them. */
const REMEDY =
  'put each back as the file that last made it makes it (a function or view with CREATE OR REPLACE, an index or table as the file creates it), or drop what was created, ' +
  'or roll back the tier that made it and apply it again where a rollback tier reverts it; a change meant to stay belongs in a tier of the plan';

/** The lines `status` and the dry run print: what, since when, each object, what to do. */
export function handEditSection(h: HandEdits): { head: string; lines: string[] } {
  return {
    head: `objects of the plan's schemas changed outside tiergate since its last tier here (tier ${h.since.tierId} '${h.since.tierName}', ${h.since.at}) — verify fails on them:`,
    lines: [...handEditLines(h), REMEDY],
  };
}

/** What the database is told of, and what to do: one message (verify's failure). */
export function handEditsMessage(h: HandEdits): string {
  return (
    `${plural(h.edits.length, 'object')} of the plan's schemas changed outside tiergate since its last tier here (tier ${h.since.tierId} '${h.since.tierName}', ${h.since.at}): ` +
    handEditLines(h).join('; ') +
    `: ${REMEDY}`
  );
}
