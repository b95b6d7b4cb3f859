import type { Db } from '../db/port.js';
import { BlockedError, DbError, TargetError } from '../errors.js';
import type { Plan } from '../plan/plan.js';
import { needsOf } from './privileges.js';
import { describeBlockers, isWaitTimeout, quotedUser } from './blockers.js';
import { ledgerGrants } from './ledger.js';

/** How much longer than the longest statement_timeout the client waits for an answer before it declares the connection lost. */
const RESPONSE_GRACE_MS = 10_000;

/**
 * Bounded waiting for everything a run does, not only its tiers (guarantee
 * 6): tiergate's own bookkeeping (ledger, gate, metrics outside a tier) runs
 * under the plan's default lock_timeout and statement_timeout, set for the
 * session (a tier's SET LOCAL still overrides them); the server ends a
 * tiergate transaction whose client went silent for a statement_timeout
 * (idle_in_transaction_session_timeout: the locks of a tier whose client
 * vanished are not held forever); and the client waits for any answer at
 * most the plan's longest statement_timeout plus a grace (a silent network
 * partition ends the run instead of hanging it); and the server notices a
 * client that went away within 2 s, even during a statement
 * (client_connection_check_interval).
 *
 * @example await boundSession(db, plan); // before the rollout lock and the ledger
 */
export async function boundSession(db: Db, plan: Plan): Promise<void> {
  const longest = Math.max(...[plan.defaults.statement_timeout, ...plan.tiers.map((t) => t.statement_timeout)].filter((d): d is string => Boolean(d)).map(durationMs));
  // a client that can vanish (a server's, not an embedded one): the server checks every 2 s, even mid-statement, whether it
  // still listens (PostgreSQL 14 and later), so that a killed run's statement — and with it the tier's locks and the
  // rollout lock — ends then, not when its statement_timeout runs out
  const watchClient = !db.capabilities.singleConnection;
  await db.query(
    `select set_config('lock_timeout', $1, false), set_config('statement_timeout', $2, false), set_config('idle_in_transaction_session_timeout', $3, false)${
      watchClient ? `, case when current_setting('client_connection_check_interval', true) is not null then set_config('client_connection_check_interval', '2s', false) end` : ''
    }`,
    [plan.defaults.lock_timeout, plan.defaults.statement_timeout, `${longest}ms`],
  );
  db.setResponseTimeout?.(longest > 0 ? longest + RESPONSE_GRACE_MS : null);
}

/**
 * Runs tiergate's bookkeeping (`what`: "reading the ledger") and turns a lock
 * or statement timeout into a BlockedError naming who holds locks on the
 * relations `sql` uses.
 *
 * @example await namingBlockers(db, 'reading the ledger', 'select from tiergate.ledger', () => readLedger(db, plan.name));
 */
export async function namingBlockers<T>(db: Db, what: string, sql: string, fn: () => Promise<T>, needs?: readonly string[]): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof DbError && e.sqlstate === '42501') throw await notPermitted(db, what, e, needs, sql);
    if (e instanceof DbError && isWaitTimeout(e.sqlstate)) {
      const blockers = await describeBlockers(db, sql);
      // a metric's own error already begins with what was read ("reading gate 'ospa': …"): said once
      const message = e.message.startsWith(`${what}: `) ? e.message.slice(what.length + 2) : e.message;
      // a statement that ran out its time with no session in its way was slow, not blocked: waiting for nobody helps
      if (!blockers && e.sqlstate === '57014') {
        throw new BlockedError(
          `${what} on ${db.displayUrl}: ${message} (no other session held a lock it waited for: the query itself ran that long here); nothing was changed — the plan's defaults.statement_timeout bounds it`,
        );
      }
      throw new BlockedError(
        `${what} on ${db.displayUrl}: ${message}${blockers ? `; blocked by ${blockers}` : ''}; nothing was changed — end that transaction (or wait for it), then run again`,
      );
    }
    throw e;
  }
}

/**
 * The server refused a read for want of a privilege (a reader role, the
 * ledger another user created): what to grant, and to whom, instead of the
 * bare refusal (exit 2: nothing was changed, the target is not usable by
 * this user as it is).
 */
async function notPermitted(db: Db, what: string, e: DbError, needs?: readonly string[], sql?: string): Promise<TargetError> {
  // a write's privileges are asked only of what it writes (its statements', and those of the functions it calls): a table it only reads needs SELECT
  const written = needs?.some((p) => p !== 'SELECT') && sql ? await writtenBy(db, sql).catch(() => null) : null;
  return new TargetError(`${what} on ${db.displayUrl}: ${e.message}: ${await grantsFor(db, e.message, e.where, needs, written)}; nothing was changed`);
}

/** The relations `sql` writes: its own statements' targets and those of the functions it calls (`needsOf`). */
async function writtenBy(db: Db, sql: string): Promise<{ schema: string | null; name: string }[]> {
  return (await needsOf(db, sql, { reads: false, bodies: true })).filter((n) => !n.function && n.privilege !== 'REFERENCES' && n.privilege !== 'TRIGGER');
}

/**
 * After a permission error (SQLSTATE 42501, `message` the server's): who may
 * not read what, and the GRANT that lets them — on tiergate's ledger
 * schema the grants its reads need. `needs`: the privileges the refused
 * statement needs on a table (a write: `['SELECT', 'INSERT']`); of those,
 * the GRANT names the ones the user lacks on the table the server names.
 */
export async function grantsFor(
  db: Db,
  message: string,
  where: string | null = null,
  needs: readonly string[] = ['SELECT'],
  written: { schema: string | null; name: string }[] | null = null,
): Promise<string> {
  // row_security = off for a user a table's policies apply to: no GRANT lets it read; the setting, or BYPASSRLS, does
  const rls = /row-level security policy for table "?([^"\s]+)"?/.exec(message)?.[1];
  if (rls) {
    const who = await quotedUser(db).catch(() => 'this user');
    return `table ${rls} has row-level security and user ${who} has row_security off, which makes the server refuse instead of filtering rows: ALTER ROLE ${who} SET row_security = on (tiergate then reads what the policies let it), or ALTER ROLE ${who} BYPASSRLS`;
  }
  const schema = /permission denied for schema "?([^"\s]+)"?/.exec(message)?.[1];
  const table = /permission denied for (?:table|view|sequence) "?([^"\s]+)"?/.exec(message)?.[1];
  // the names as the GRANT must write them, quoted by the server where they need it; the table found as the statement found it (search_path), or the only one of its name
  const named = await db
    .query<{ role: string; schema: string | null; rel: string | null; lacks: string[] | null; written: boolean }>(
      `select quote_ident(current_user) as role, quote_ident($1) as schema, c.oid::regclass::text as rel,
              array(select p from unnest($3::text[]) p where c.oid is not null and not has_table_privilege(c.oid, p)) as lacks,
              $4::text[] is null or exists (select 1 from unnest($4::text[], $5::text[]) w(s, nm)
                                             where w.nm = c.relname and (w.s is null or c.relnamespace = (select oid from pg_namespace where nspname = w.s))) as written
         from (select coalesce(to_regclass(quote_ident($2)),
                               -- not on the search_path (a function's own): the only relation of that name
                               (select min(r.oid) from pg_class r where r.relname = $2 and r.relkind in ('r', 'p', 'v', 'm', 'f', 'S') having count(*) = 1)) as oid) x
         left join pg_class c on c.oid = x.oid`,
      [schema ?? null, table ?? null, needs, written?.map((w) => w.schema) ?? null, written?.map((w) => w.name) ?? null],
    )
    .then((r) => r.rows[0] ?? null)
    .catch(() => null);
  const who = named?.role ?? 'this user';
  // a table the refused statement only reads: SELECT is what it lacks, whatever the statement writes elsewhere
  if (named?.rel && named.written === false) needs = ['SELECT'];
  const onLedger = schema === 'tiergate' || (!schema && /tiergate\./.test(where ?? '')) || (table !== undefined && ['ledger', 'attempt'].includes(table));
  const writes = needs.some((p) => p !== 'SELECT');
  if (!onLedger && table !== undefined && /permission denied for sequence/.test(message)) {
    // a sequence: USAGE lets a default draw from it (INSERT on it grants nothing)
    return `user ${who} may not draw from sequence ${named?.rel ?? table} — GRANT USAGE ON SEQUENCE ${named?.rel ?? table} TO ${who}`;
  }
  if (!onLedger && table !== undefined && named?.rel) {
    const lacked = (named.lacks ?? []).filter((p) => needs.includes(p));
    const lacks = lacked.length ? lacked : needs;
    return `user ${who} may not ${writes ? 'write' : 'read'} table ${named.rel} — GRANT ${lacks.join(', ')} ON ${named.rel} TO ${who}`;
  }
  const grant = onLedger
    ? `${ledgerGrants(who, writes ? 'write' : 'read')} (as its owner, or a superuser)`
    : named?.schema
      ? writes
        ? // (USAGE only: a write privilege on all its tables would give what the command never writes — the gated tiers' tables, say)
          `GRANT USAGE ON SCHEMA ${named.schema} TO ${who} (then run again: it names what it needs there)`
        : `GRANT USAGE ON SCHEMA ${named.schema} TO ${who}; GRANT SELECT ON ALL TABLES IN SCHEMA ${named.schema} TO ${who}`
      : `grant ${who} what it lacks`;
  return `user ${who} may not ${writes ? 'write' : 'read'} it — ${grant}`;
}

/** A PostgreSQL duration (`5s`, `250ms`, `5min`, `1h`, `0`) in milliseconds; 0 means none. */
export function durationMs(d: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(us|ms|s|min|h|d)?$/.exec(d.trim());
  if (!m) return 0;
  const unit: Record<string, number> = { us: 0.001, ms: 1, s: 1000, min: 60_000, h: 3_600_000, d: 86_400_000 };
  return Math.round(Number(m[1]) * unit[m[2] ?? 'ms']!);
}
