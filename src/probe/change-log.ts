import { createHash } from 'node:crypto';
import type { Queryable } from '../db/port.js';
import { currentSettings, VALUE_TEXT_SETTINGS } from './settings.js';

/**
 * tiergate's change log on a clone: the proof that lets a fingerprint reuse
 * a table's content hash (src/probe/fingerprint.ts, `FingerprintCache`).
 *
 * Every user table of a clone carries a statement-level trigger,
 * `tiergate_touched`, AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE, set
 * ENABLE ALWAYS (it fires under session_replication_role = replica too),
 * which appends the table's oid to `tiergate.touched`. Every statement that
 * can change a table's rows fires it, whatever issued it: a tier, a function,
 * a trigger, a rule, a cascading foreign key, COPY, MERGE, a write through a
 * view; a statement that rolls back takes its log row with it. The log is
 * append-only (a trigger refuses UPDATE, DELETE and TRUNCATE, also ENABLE
 * ALWAYS) and each row carries a random nonce, so a database's log names its
 * history: a copy of a clone (CREATE DATABASE … TEMPLATE, a copied PGlite
 * directory) shares the log up to the copy and no other database does. The
 * first row (rel 0) is written when the log is installed.
 *
 * What the trigger cannot see changes something the fingerprint cache pins
 * instead (the table's relfilenode, its pg_class row, the trigger's own row,
 * the functions', the log's): see `PROOF_SQL` below.
 */
export const CHANGE_TRIGGER = 'tiergate_touched';

/** AFTER, FOR EACH STATEMENT, INSERT | DELETE | UPDATE | TRUNCATE (pg_trigger.tgtype bits 4, 8, 16, 32). */
export const CHANGE_TRIGGER_TYPE = 60;

/** Tables per installing call: each holds a lock on its tables until it commits. */
const TABLES_PER_CALL = 250;

const LOG_SQL = `
create schema if not exists tiergate;
create table if not exists tiergate.touched (
  seq bigserial primary key,
  rel oid not null,
  nonce text not null default md5(random()::text || clock_timestamp()::text || pg_backend_pid()::text)
);
create or replace function tiergate.note_touched() returns trigger
  language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
begin
  insert into tiergate.touched (rel) values (tg_relid);
  return null;
end
$fn$;
create or replace function tiergate.refuse_log_edit() returns trigger
  language plpgsql set search_path = pg_catalog, pg_temp as $fn$
begin
  raise exception 'tiergate.touched is append-only: it is the proof of which tables this clone''s rehearsal changed';
end
$fn$;
drop trigger if exists tiergate_append_only on tiergate.touched;
create trigger tiergate_append_only before update or delete or truncate on tiergate.touched
  for each statement execute function tiergate.refuse_log_edit();
alter table tiergate.touched enable always trigger tiergate_append_only;
insert into tiergate.touched (rel) values (0);
create or replace function tiergate.install_touched(after oid, lim int) returns oid
  language plpgsql set search_path = pg_catalog, pg_temp as $fn$
declare
  r record;
  last oid := null;
begin
  for r in
    select c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where c.relkind in ('r', 'p') and c.oid > after
       and n.nspname not in ('pg_catalog', 'information_schema', 'tiergate') and n.nspname !~ '^pg_(toast|temp)'
     order by c.oid limit lim
  loop
    last := r.oid;
    -- a table this role cannot alter stays without the trigger: its content is hashed every time
    continue when not pg_has_role((select relowner from pg_class where oid = r.oid), 'USAGE')
               or exists (select 1 from pg_trigger t where t.tgrelid = r.oid and t.tgname = '${CHANGE_TRIGGER}');
    execute format('create trigger ${CHANGE_TRIGGER} after insert or update or delete or truncate on %s for each statement execute function tiergate.note_touched()', r.oid::regclass);
    execute format('alter table %s enable always trigger ${CHANGE_TRIGGER}', r.oid::regclass);
  end loop;
  return last;
end
$fn$;`;

/**
 * Installs the change log and its trigger on every user table (250 tables a
 * transaction, so that a clone of thousands of tables stays within the lock
 * table). Called when a clone is marked: nothing but the rehearsal writes to
 * it afterwards.
 */
export async function installChangeLog(db: Queryable): Promise<void> {
  await db.exec(LOG_SQL);
  let after = '0';
  for (;;) {
    const r = await db.query<{ last: string | null }>('select tiergate.install_touched($1::oid, $2) as last', [after, TABLES_PER_CALL]);
    const last = r.rows[0]?.last;
    if (last === null || last === undefined) return;
    after = String(last);
  }
}

/**
 * Whether relation `c`'s hash depends on more than its own rows: row-level
 * security decides which rows the hashing role sees; a column whose type is
 * a table's row type prints as that table's columns are now (the types
 * digest leaves those types out). Such a table is hashed every time.
 */
const UNVOUCHABLE = (c: string) => `(${c}.relrowsecurity or ${c}.relforcerowsecurity or exists (
         select 1 from pg_attribute a join pg_type t on t.oid = a.atttypid
          left join pg_type e on e.oid = t.typelem
          left join pg_type b on b.oid = t.typbasetype
          where a.attrelid = ${c}.oid and a.attnum > 0 and not a.attisdropped
            and exists (select 1 from pg_class r where r.oid in (t.typrelid, e.typrelid, b.typrelid) and r.relkind <> 'c')))`;

/** Relation `c`'s change trigger exactly as installed and always enabled: its oid and row version, else null. */
const TRIGGER_OF = (c: string) => `(select t.oid::text || ':' || t.xmin::text from pg_trigger t
         where t.tgrelid = ${c}.oid and t.tgname = '${CHANGE_TRIGGER}' and t.tgenabled = 'A' and t.tgtype = ${CHANGE_TRIGGER_TYPE}
           and t.tgqual is null and t.tgattr::text = '' and t.tgfoid = to_regprocedure('tiergate.note_touched()'))`;

/**
 * What may change a table's hashed content without its trigger firing, read
 * per relation: its identity and storage (oid, relfilenode: a rewrite, a
 * TRUNCATE, VACUUM FULL), its pg_class row (any ALTER TABLE), row-level
 * security (which rows the hashing role sees), and its change trigger (its
 * oid and row: dropped, recreated, disabled, re-enabled; and whether it is
 * exactly ours, always enabled).
 */
const RELATION_PROOF_SQL = `
select c.oid::int8 as oid, c.relfilenode::text || ':' || c.xmin::text as storage,
       ${UNVOUCHABLE('c')} as rls,
       ${TRIGGER_OF('c')} as trigger
  from pg_class c
 where c.oid = any($1::int8[]::oid[])`;

/**
 * The user tables (outside the schemas `$1`) whose content the log cannot
 * vouch for: no change trigger as installed (a table created after the log
 * was, or owned by another role), or a hash that depends on more than its
 * rows (`UNVOUCHABLE`). Read from catalog rows alone, set by set (the row
 * types of tables, the types over them, the columns of those types, the
 * valid triggers) rather than relation by relation: at 6,500 tables 135 ms
 * → 53 ms, once before stage A's first blocked tier. The rule is
 * `UNVOUCHABLE` and `TRIGGER_OF`, which the proofs read relation by relation
 * (fast for the few relations of an incremental read, where the sets here
 * would read every type); test/fingerprint-cache.test.ts checks they agree.
 */
const UNVOUCHED_SQL = `
with rel as (
  select c.oid, n.nspname, c.relname, c.relrowsecurity or c.relforcerowsecurity as rls
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
   where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^pg_(toast|temp)'
     and n.nspname <> all($1::text[])),
rowtypes as (select t.oid from pg_type t join pg_class r on r.oid = t.typrelid where r.relkind <> 'c'),
-- a table's row type, an array of one, a domain over one (UNVOUCHABLE: typrelid, typelem's, typbasetype's)
over_rows as (select t.oid from pg_type t
               where t.oid in (select oid from rowtypes) or t.typelem in (select oid from rowtypes) or t.typbasetype in (select oid from rowtypes)),
typed as (select a.attrelid from pg_attribute a where a.atttypid in (select oid from over_rows) and a.attnum > 0 and not a.attisdropped),
valid as (select t.tgrelid from pg_trigger t
           where t.tgname = '${CHANGE_TRIGGER}' and t.tgenabled = 'A' and t.tgtype = ${CHANGE_TRIGGER_TYPE}
             and t.tgqual is null and t.tgattr::text = '' and t.tgfoid = to_regprocedure('tiergate.note_touched()'))
select rel.oid::int8 as oid, rel.nspname || '.' || rel.relname as name, quote_ident(rel.nspname) || '.' || quote_ident(rel.relname) as qualified
  from rel
 where rel.rls or rel.oid in (select attrelid from typed) or rel.oid not in (select tgrelid from valid)
 order by 2`;

/** The tables of the user schemas (but `excluded`) whose content the log cannot vouch for, by name. */
export async function unvouchedTables(q: Queryable, excluded: string[]): Promise<{ name: string; qualified: string }[]> {
  return (await q.query<{ name: string; qualified: string }>(UNVOUCHED_SQL, [excluded])).rows.map((r) => ({ name: r.name, qualified: r.qualified }));
}

/** The tables (`schema.table`) the log names after `position`, sorted; null when this database's log does not pass through it. */
export async function tablesWrittenSince(q: Queryable, position: LogPosition): Promise<string[] | null> {
  const since = await changedSince(q, [position]);
  if (!since) return null;
  const r = await q.query<{ name: string }>(
    `select n.nspname || '.' || c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.oid = any($1::int8[]::oid[]) order by 1`,
    [[...since.touched]],
  );
  return r.rows.map((x) => x.name);
}

/**
 * The session's settings that shape a value's text, and its role: part of
 * the proof's digest. Read on the fingerprint's own session (`$1`, `$2`
 * when the proof is read on a second connection, which has its own).
 */
export const PROOF_SETTINGS = `current_user, ${currentSettings(VALUE_TEXT_SETTINGS)}`;

/**
 * What may change every table's content or its text without a write: the
 * log's own integrity (its table, its guard, both functions), the user
 * types and their output functions (an enum value renamed), the settings
 * that shape a value's text (in this session and stored per database or
 * role), and the role hashing. Then the log's last row and length.
 */
const GLOBAL_PROOF_SQL = `
select concat_ws('|',
  (select c.relfilenode::text || ':' || c.xmin::text from pg_class c where c.oid = 'tiergate.touched'::regclass),
  (select t.oid::text || ':' || t.xmin::text || ':' || t.tgenabled::text from pg_trigger t
    where t.tgrelid = 'tiergate.touched'::regclass and t.tgname = 'tiergate_append_only'),
  (select string_agg(p.oid::text || ':' || p.xmin::text, ',' order by p.oid) from pg_proc p
    where p.oid in (to_regprocedure('tiergate.note_touched()'), to_regprocedure('tiergate.refuse_log_edit()'))),
  (select md5(coalesce(string_agg(t.oid::text || ':' || t.xmin::text || ':' || coalesce(o.xmin::text, ''), ',' order by t.oid), ''))
     from pg_type t join pg_namespace n on n.oid = t.typnamespace left join pg_proc o on o.oid = t.typoutput
    where n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^pg_(toast|temp)'
      -- a table's own row type (and its array) changes with every table created or dropped: a column of such a type makes its table unprovable instead
      and not exists (select 1 from pg_class r where r.oid = t.typrelid and r.relkind <> 'c')
      and not exists (select 1 from pg_type e join pg_class r on r.oid = e.typrelid where e.oid = t.typelem and r.relkind <> 'c')),
  (select md5(coalesce(string_agg(e.oid::text || ':' || e.xmin::text, ',' order by e.oid), '')) from pg_enum e),
  (select md5(coalesce(string_agg(case when s.setdatabase = 0 then 'all' else 'this' end || ':' || coalesce(s.setrole::text, '') || ':' || array_to_string(s.setconfig, ','), ';'
                                   order by s.setdatabase = 0, s.setrole), ''))
     -- (this database's and this role's only: another role's or database's settings, changed elsewhere on the server, shape nothing read here;
     -- this database's named as such, not by its oid: a copy given the same settings, as tiergate gives each clone the source's search_path, reads alike)
     from pg_db_role_setting s
    where s.setdatabase in (0, (select d.oid from pg_database d where d.datname = current_database()))
      and s.setrole in (0, (select r.oid from pg_roles r where r.rolname = coalesce($2::name, current_user)))),
  coalesce($1::text, concat_ws('|', ${PROOF_SETTINGS}))) as digest,
  l.seq::text as seq, l.nonce, (select count(*) from tiergate.touched)::text as n
  from (select seq, nonce from tiergate.touched order by seq desc limit 1) l`;

/** The position of a log: its last row (seq and nonce) and its length. */
export interface LogPosition {
  seq: string;
  nonce: string;
  n: string;
}

export interface GlobalProof extends LogPosition {
  /** what every table's key includes */
  digest: string;
}

export interface RelationProof {
  /** relfilenode and pg_class xmin */
  storage: string;
  /** hashed every time: row-level security, or a column typed as a table's row */
  rls: boolean;
  /** the change trigger's oid and xmin, null when the table has no valid one */
  trigger: string | null;
}

/** The log's proof, or null when the database has no change log (a clone made before it existed). */
export async function readGlobalProof(q: Queryable, session?: { proof: string; user: string }): Promise<GlobalProof | null> {
  const present = await q.query<{ ok: boolean }>(
    `select to_regclass('tiergate.touched') is not null and to_regprocedure('tiergate.note_touched()') is not null as ok`,
  );
  if (!present.rows[0]?.ok) return null;
  const r = (await q.query<GlobalProof>(GLOBAL_PROOF_SQL, [session?.proof ?? null, session?.user ?? null])).rows[0];
  return r ? { ...r, digest: sha1(r.digest) } : null;
}

export async function readRelationProofs(q: Queryable, oids: number[]): Promise<Map<number, RelationProof>> {
  const out = new Map<number, RelationProof>();
  const r = await q.query<{ oid: string; storage: string; rls: boolean; trigger: string | null }>(RELATION_PROOF_SQL, [oids]);
  for (const row of r.rows) out.set(Number(row.oid), { storage: row.storage, rls: row.rls, trigger: row.trigger });
  return out;
}

/**
 * Of `positions` (each the log's position when a fingerprint was taken on
 * this database or one it was copied from or to), the latest this
 * database's log passes through — the row at that seq carries that nonce
 * and exactly that many rows are at or before it — with the tables its log
 * names after it: what changed since. Null when none does (another
 * database, or a log that was tampered with).
 */
export async function changedSince(q: Queryable, positions: LogPosition[]): Promise<{ index: number; touched: Set<number> } | null> {
  if (!positions.length) return null;
  const r = await q.query<{ i: string }>(
    `select s.i::text from unnest($1::int8[], $2::text[], $3::int8[]) with ordinality s(seq, nonce, n, i)
      where exists (select 1 from tiergate.touched t where t.seq = s.seq and t.nonce = s.nonce)
        and (select count(*) from tiergate.touched t where t.seq <= s.seq) = s.n
      order by s.seq desc, s.i desc limit 1`,
    [positions.map((p) => p.seq), positions.map((p) => p.nonce), positions.map((p) => p.n)],
  );
  const found = r.rows[0];
  if (!found) return null;
  const index = Number(found.i) - 1;
  const t = await q.query<{ rel: string }>('select distinct rel::int8 as rel from tiergate.touched where seq > $1', [positions[index]!.seq]);
  return { index, touched: new Set(t.rows.map((x) => Number(x.rel))) };
}

/** Inheritance and partition edges (child, parent) among the given relations' families. */
export async function readInheritance(q: Queryable): Promise<[number, number][]> {
  const r = await q.query<{ c: string; p: string }>('select inhrelid::int8 as c, inhparent::int8 as p from pg_inherits');
  return r.rows.map((x) => [Number(x.c), Number(x.p)]);
}

export function sha1(text: string): string {
  return createHash('sha1').update(text).digest('hex');
}
