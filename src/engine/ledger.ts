import type { Db, Queryable } from '../db/port.js';
import { TargetError, type SqlFailure } from '../errors.js';
import type { Tier } from '../plan/plan.js';
import { tiergateVersion } from '../version.js';
import { CATALOG_VERSION, type CatalogSnapshot } from '../probe/catalog.js';
import { NAME_TEXT_SETTINGS, VALUE_TEXT_SETTINGS } from '../probe/settings.js';
import type { Delta, Difference, GateReading } from './result.js';

/**
 * tiergate's own bookkeeping in the target: `tiergate.ledger` (one row per
 * applied or reverted tier, append-only: a tier's state is its latest row)
 * and `tiergate.attempt` (every other outcome: failures, blocked tiers,
 * checks that passed or failed, each written in its own transaction).
 * Created on first use, after the rollout lock is held; columns added by
 * later versions are added to an older ledger the same way.
 */
const LEDGER_DDL = `
create schema if not exists tiergate;
create table if not exists tiergate.ledger (
  id bigserial primary key,
  plan text not null,
  tier_id integer not null,
  tier_name text not null,
  kind text not null,
  file text not null,
  sha256 char(64) not null,
  status text not null check (status in ('applied', 'reverted')),
  applied_at timestamptz not null default clock_timestamp(),
  duration_ms integer not null,
  delta jsonb,
  tiergate_version text not null,
  applied_by text not null default current_user
);
create index if not exists ledger_plan_tier on tiergate.ledger (plan, tier_id, id);
alter table tiergate.ledger add column if not exists subject text;
alter table tiergate.ledger add column if not exists gate jsonb;
alter table tiergate.ledger add column if not exists evidence jsonb;
create table if not exists tiergate.attempt (
  id bigserial primary key,
  plan text not null,
  tier_id integer not null,
  tier_name text not null,
  sha256 char(64) not null,
  at timestamptz not null default clock_timestamp(),
  sqlstate text,
  message text not null,
  detail text,
  hint text,
  file text,
  line integer,
  tiergate_version text not null
);
alter table tiergate.attempt add column if not exists outcome text not null default 'failed';
alter table tiergate.attempt add column if not exists command text;
alter table tiergate.attempt add column if not exists db_user text default current_user;
alter table tiergate.ledger add column if not exists command text;
alter table tiergate.ledger add column if not exists objects jsonb;
`;

/** The column the newest DDL adds last: when it is there, the ledger is up to date. */
const NEWEST = { table: 'tiergate.ledger', column: 'objects' };

/** The column that tells a ledger whose rows say their command and subject (readers of older ones read null there). */
const COMMANDS = { table: 'tiergate.ledger', column: 'command' };

export interface LedgerEntry {
  tierId: number;
  name: string;
  kind: string;
  file: string;
  sha256: string;
  status: 'applied' | 'reverted';
  appliedAt: string;
  durationMs: number;
  /** the gate subject the tier was applied for (gated tiers), or null */
  subject: string | null;
  appliedBy: string;
  tiergateVersion: string;
}

/**
 * Whether what a tier wrote is in the database: its last row applies it, or
 * reverts only an amendment (a rollback of scope subject records the
 * subject it reverted; what earlier subjects wrote stays). A full
 * rollback's row records no subject.
 */
export function inEffect(e: Pick<LedgerEntry, 'status' | 'subject'> | undefined): boolean {
  return e?.status === 'applied' || amendmentReverted(e);
}

/** Whether a tier's last row reverts only an amendment (a rollback of scope subject records the subject it reverted). */
export function amendmentReverted(e: Pick<LedgerEntry, 'status' | 'subject'> | undefined): boolean {
  return e?.status === 'reverted' && e.subject !== null;
}

/** Creates the ledger (or brings an older one up to date); one query when it is already current. */
export async function ensureLedger(db: Queryable): Promise<void> {
  const r = await db.query<{ ok: boolean }>(
    `select to_regclass('tiergate.ledger') is not null and to_regclass('tiergate.attempt') is not null
        and exists (select 1 from pg_attribute where attrelid = to_regclass($1) and attname = $2 and not attisdropped) as ok`,
    [NEWEST.table, NEWEST.column],
  );
  if (!r.rows[0]?.ok) await db.exec(LEDGER_DDL);
}

async function ledgerExists(db: Queryable): Promise<{ ledger: boolean; current: boolean }> {
  const r = await db.query<{ ledger: boolean; attempt: boolean; current: boolean }>(
    `select to_regclass('tiergate.ledger') is not null as ledger, to_regclass('tiergate.attempt') is not null as attempt,
            exists (select 1 from pg_attribute where attrelid = to_regclass($1) and attname = $2 and not attisdropped) as current`,
    [COMMANDS.table, COMMANDS.column],
  );
  const found = r.rows[0] ?? { ledger: false, attempt: false, current: false };
  // one of tiergate's two tables gone (renamed or dropped by hand; a ledger as current as this has always had both):
  // what is left is not the history, and is not read as it
  if (found.ledger !== found.attempt && (found.attempt || found.current)) {
    const [missing, there] = found.ledger ? ['tiergate.attempt', 'tiergate.ledger'] : ['tiergate.ledger', 'tiergate.attempt'];
    throw new TargetError(
      `tiergate's table ${missing} is missing on this database, while ${there} is there (renamed or dropped by hand?): the history cannot be read whole; rename it back${missing === 'tiergate.attempt' ? ', or let the next apply create it anew (empty)' : ''}`,
    );
  }
  return found;
}

interface LedgerRow {
  tier_id: number;
  tier_name: string;
  kind: string;
  file: string;
  sha256: string;
  status: 'applied' | 'reverted';
  applied_at: Date | string;
  duration_ms: number;
  subject: string | null;
  applied_by: string;
  tiergate_version: string;
}

function entry(row: LedgerRow): LedgerEntry {
  return {
    tierId: row.tier_id,
    name: row.tier_name,
    kind: row.kind,
    file: row.file,
    sha256: row.sha256,
    status: row.status,
    appliedAt: new Date(row.applied_at).toISOString(),
    durationMs: row.duration_ms,
    subject: row.subject ?? null,
    appliedBy: row.applied_by,
    tiergateVersion: row.tiergate_version,
  };
}

/** The latest ledger row of every tier of the plan (read-only; empty when tiergate never ran here). */
export async function readLedger(db: Queryable, plan: string): Promise<Map<number, LedgerEntry>> {
  const out = new Map<number, LedgerEntry>();
  const { ledger, current } = await ledgerExists(db);
  if (!ledger) return out;
  const r = await db.query<LedgerRow>(
    `select distinct on (tier_id) tier_id, tier_name, kind, file, sha256, status, applied_at, duration_ms,
            ${current ? 'subject' : 'null::text as subject'}, applied_by, tiergate_version
       from tiergate.ledger where plan = $1 order by tier_id, id desc`,
    [plan],
  );
  for (const row of r.rows) out.set(row.tier_id, entry(row));
  return out;
}

/** One event of a target's history: a ledger row or an attempt. */
export interface HistoryEvent {
  at: string;
  source: 'ledger' | 'attempt';
  tierId: number;
  tierName: string;
  /** applied, reverted (ledger); failed, blocked, passed (attempts) */
  outcome: string;
  command: string | null;
  sha256: string;
  dbUser: string | null;
  tiergateVersion: string;
  durationMs: number | null;
  subject: string | null;
  error: { sqlstate: string | null; message: string; detail: string | null; hint: string | null; file: string | null; line: number | null } | null;
}

/**
 * Every ledger row and attempt of a plan on this target, oldest first
 * (read-only; empty when tiergate never ran here). `tiergate log` and
 * `status` read it.
 */
export async function readHistory(db: Queryable, plan: string): Promise<HistoryEvent[]> {
  const { ledger, current } = await ledgerExists(db);
  if (!ledger) return [];
  const r = await db.query<{
    at: Date | string;
    source: 'ledger' | 'attempt';
    tier_id: number;
    tier_name: string;
    outcome: string;
    command: string | null;
    sha256: string;
    db_user: string | null;
    tiergate_version: string;
    duration_ms: number | null;
    subject: string | null;
    sqlstate: string | null;
    message: string | null;
    detail: string | null;
    hint: string | null;
    file: string | null;
    line: number | null;
    id: number;
  }>(
    `select applied_at as at, 'ledger' as source, tier_id, tier_name, status as outcome, ${current ? 'command' : 'null::text'} as command, sha256, applied_by as db_user,
            tiergate_version, duration_ms, ${current ? 'subject' : 'null::text'} as subject,
            null::text as sqlstate, null::text as message, null::text as detail, null::text as hint, null::text as file, null::int as line, id
       from tiergate.ledger where plan = $1
     union all
     select at, 'attempt', tier_id, tier_name, ${current ? 'outcome' : "'failed'"}, ${current ? 'command' : 'null::text'}, sha256,
            ${current ? 'db_user' : 'null::text'}, tiergate_version, null::int, null::text, sqlstate, message, detail, hint, file, line, id
       from tiergate.attempt where plan = $1
     order by at, source desc, id`,
    [plan],
  );
  return r.rows.map((row) => ({
    at: new Date(row.at).toISOString(),
    source: row.source,
    tierId: row.tier_id,
    tierName: row.tier_name,
    outcome: row.outcome,
    command: row.command,
    sha256: row.sha256,
    dbUser: row.db_user,
    tiergateVersion: row.tiergate_version,
    durationMs: row.duration_ms,
    subject: row.subject,
    error:
      row.source === 'attempt' && row.outcome !== 'passed'
        ? { sqlstate: row.sqlstate, message: row.message ?? '', detail: row.detail, hint: row.hint, file: row.file, line: row.line }
        : null,
  }));
}

/** What a ledger row records beyond the tier and its delta. */
export interface LedgerExtras {
  /** the gate as the tier's transaction read it (gated tiers) */
  gate?: GateReading | null;
  /** apply --evidence: the evidence it was bound to, and the differences accepted */
  evidence?: { file: string; sha256: string; createdAt: string; differencesAccepted: Difference[] } | null;
  /** the command that applied or reverted it (apply, rollback) */
  command?: string | null;
  /** a tier reverted by a rollback of scope subject: the subject whose amendment it reverted */
  subject?: string | null;
  /** the rollout lock the run holds (src/engine/rollout-lock.ts): the row is written only while this session still holds it */
  lock?: { classid: number; objid: number } | null;
  /** the plan's objects as the tier left them (its catalog after the file, and what it changed): see objectsAfter */
  objects?: { schemas: string[]; after: CatalogSnapshot; changes: Delta['objects'] } | null;
}

/**
 * A setting as recorded (SQL over `s`, its name): the search_path as the schemas it resolves to now — `"$user", public`
 * resolves otherwise for each role, and a definition prints a name unqualified when its schema is on the path.
 */
const RECORDED_SETTING = `case when s = 'search_path' then (select coalesce(string_agg(quote_ident(x), ', '), '') from unnest(current_schemas(false)) x) else current_setting(s) end`;

/**
 * The plan's objects as tiergate's tiers have left them, recorded with each
 * tier's ledger row (`objects`): the last row's record, changed by this
 * tier's own delta — what it added or changed, as its catalog after the file
 * reads it; what it removed, gone. Whatever the tier did not change keeps
 * the record before it, so a change made outside tiergate (a view edited by
 * hand before this run) stays a difference between the record and the
 * database however many runs follow (src/engine/hand-edits.ts), until a tier
 * changes that object or it is put back. The whole catalog is recorded when
 * there is no record to follow (the first tier, an older ledger), or it was
 * read otherwise (another version of the catalog read, other schemas, other
 * settings that print a definition: `HAND_EDIT_SETTINGS`, or another major
 * version of the server: a definition prints otherwise on PostgreSQL 15 and
 * on PGlite's 17, as on a clone of the source loaded into PGlite).
 */
const OBJECTS_AFTER = `(select case when $17::jsonb is null then null else jsonb_build_object('v', $18::text, 'schemas', $19::jsonb, 'settings', now.settings, 'server', now.server, 'o',
     case when prev.o ->> 'v' = $18::text and prev.o -> 'schemas' = $19::jsonb and prev.o -> 'settings' = now.settings and prev.o -> 'server' = now.server
          then ((prev.o -> 'o') - $20::text[] - $21::text[])
               || coalesce((select jsonb_object_agg(k, $17::jsonb -> k) from unnest($20::text[]) k where $17::jsonb ? k), '{}'::jsonb)
          else $17::jsonb end) end
   from (select jsonb_object_agg(s, ${RECORDED_SETTING}) as settings, to_jsonb(current_setting('server_version_num')::int / 10000) as server from unnest($22::text[]) s) now
   left join (select l.objects as o from tiergate.ledger l where l.plan = $1 and l.status = 'applied' order by l.id desc limit 1) prev on true)`;

/**
 * The settings under which a definition prints (names qualified or not, values of defaults): a record is compared under its own.
 * (Not lc_monetary: it prints only money literals, and a locale one machine has may be unknown to another's server.)
 */
export const HAND_EDIT_SETTINGS = [...NAME_TEXT_SETTINGS, ...VALUE_TEXT_SETTINGS].filter((s) => s !== 'lc_monetary');

/** `kind name` → definition hash: one key per object of a snapshot, as the ledger's `objects` records them. */
export function objectKeys(snapshot: CatalogSnapshot): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [kind, objects] of Object.entries(snapshot)) for (const [name, def] of objects) out[`${kind} ${name}`] = def;
  return out;
}

export async function recordLedger(
  tx: Queryable,
  plan: string,
  tier: Tier,
  status: 'applied' | 'reverted',
  durationMs: number,
  delta: Delta | null,
  extras: LedgerExtras = {},
): Promise<number> {
  // (the lock's check in the insert itself: no round trip of its own; released by the tier's SQL — pg_advisory_unlock_all()
  // in a function lint cannot see —, another run may have taken it: the tier must not commit)
  const lock = extras.lock ?? null;
  const r = await tx.query<{ id: number }>(
    `insert into tiergate.ledger (plan, tier_id, tier_name, kind, file, sha256, status, duration_ms, delta, tiergate_version, subject, gate, evidence, command, objects)
     select $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, ${OBJECTS_AFTER}
      where $15::bigint is null or exists (select 1 from pg_catalog.pg_locks l where l.locktype = 'advisory' and l.pid = pg_backend_pid() and l.granted
                                             and l.classid = $15::bigint::oid and l.objid = $16::bigint::oid and l.objsubid = 2)
     returning id`,
    [
      plan,
      tier.id,
      tier.name,
      tier.kind,
      tier.file,
      tier.sha256,
      status,
      Math.round(durationMs),
      delta ? JSON.stringify(delta) : null,
      tiergateVersion(),
      extras.subject !== undefined ? extras.subject : tier.gated ? (extras.gate?.subject ?? null) : null,
      extras.gate ? JSON.stringify(extras.gate) : null,
      extras.evidence ? JSON.stringify(extras.evidence) : null,
      extras.command ?? null,
      lock?.classid ?? null,
      lock?.objid ?? null,
      ...objectsParams(extras.objects ?? null),
    ],
  );
  if (!r.rows[0]) throw new RolloutLockLost(tier);
  return Number(r.rows[0].id);
}

/** $17–$22 of the ledger row's insert (OBJECTS_AFTER): the catalog after the tier, the read's version, the schemas, what the tier changed and removed, the settings. */
function objectsParams(objects: LedgerExtras['objects']): unknown[] {
  const keys = (which: 'added' | 'changed' | 'removed') =>
    objects ? Object.entries(objects.changes).flatMap(([kind, c]) => (c?.[which] ?? []).map((name) => `${kind} ${name}`)) : [];
  return [
    objects ? JSON.stringify(objectKeys(objects.after)) : null,
    CATALOG_VERSION,
    JSON.stringify(objects?.schemas ?? []),
    [...keys('added'), ...keys('changed')],
    keys('removed'),
    HAND_EDIT_SETTINGS,
  ];
}

/**
 * After a COMMIT whose answer was lost: did it commit? The ledger row it
 * inserted exists exactly when it did. Asked on a new connection; null when
 * that is not possible either (the outcome stays unknown).
 */
export async function ledgerRowCommitted(db: Db, id: number): Promise<boolean | null> {
  let sibling: Db | null = null;
  try {
    sibling = await db.sibling();
    const r = await sibling.query<{ ok: boolean }>('select exists (select 1 from tiergate.ledger where id = $1) as ok', [id]);
    return Boolean(r.rows[0]?.ok);
  } catch {
    return null;
  } finally {
    await sibling?.close();
  }
}

export type AttemptOutcome = 'failed' | 'blocked' | 'passed';

/**
 * Records a tier's outcome that is not a ledger change (a failure, a check
 * that passed or failed) in its own transaction, on a sibling connection
 * (the tier's own connection may be the one that died) — except a check
 * that passed, whose connection just ended its transaction well: recorded
 * on it (a new connection for each of an apply's preflight and verify was
 * a server backend started and warmed twice). Best effort: a failure to
 * record must not hide the tier's own outcome.
 */
export async function recordAttempt(
  db: Db,
  plan: string,
  tier: Tier,
  failure: SqlFailure | null,
  outcome: AttemptOutcome = 'failed',
  command: string | null = null,
): Promise<boolean> {
  let sibling: Db | null = null;
  try {
    // a new connection even when the tier's own died (network cut, server restart)
    const on = outcome === 'passed' && db.alive() ? db : (sibling = await db.sibling());
    await ensureLedger(on);
    await on.query(
      `insert into tiergate.attempt (plan, tier_id, tier_name, sha256, sqlstate, message, detail, hint, file, line, tiergate_version, outcome, command)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
      [
        plan,
        tier.id,
        tier.name,
        tier.sha256,
        failure?.sqlstate ?? null,
        failure?.message ?? outcome,
        failure?.detail ?? null,
        failure?.hint ?? null,
        failure?.file ?? null,
        failure?.line ?? null,
        tiergateVersion(),
        outcome,
        command,
      ],
    );
    return true;
  } catch {
    return false;
  } finally {
    await sibling?.close();
  }
}

/** The run's rollout lock was released before a tier's COMMIT: the tier rolls back, and the run stops. */
export class RolloutLockLost extends Error {
  constructor(tier: Pick<Tier, 'id'>) {
    super(
      `the rollout lock was released during tier ${tier.id} (its SQL, or a function it calls, released this session's advisory locks: pg_advisory_unlock_all()): another run may have started meanwhile; nothing of tier ${tier.id} was committed. Remove the unlock from the tier and run again`,
    );
    this.name = 'RolloutLockLost';
  }
}

/**
 * What the owner of tiergate's ledger (or a superuser) runs so that `role`
 * (as quote_ident writes it) may read it (status, log, verify, scan, a
 * rehearsal's source) or also write it (apply, rollback, approve).
 */
export function ledgerGrants(role: string, access: 'read' | 'write'): string {
  return access === 'read'
    ? `GRANT USAGE ON SCHEMA tiergate TO ${role}; GRANT SELECT ON ALL TABLES IN SCHEMA tiergate TO ${role}`
    : `GRANT USAGE ON SCHEMA tiergate TO ${role}; GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA tiergate TO ${role}; GRANT USAGE ON ALL SEQUENCES IN SCHEMA tiergate TO ${role}`;
}
