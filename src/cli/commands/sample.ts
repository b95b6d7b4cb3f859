import type { Db } from '../../db/port.js';
import { withDb } from '../../db/open-db.js';
import { ConnectionError, UsageError } from '../../errors.js';
import type { Outcome } from '../exit-code.js';
import type { Output } from '../output.js';

/** The database the bundled plan (axis-governance) is written for: a --pglite sample's, and the name a --url database is compared with. */
const BUNDLED_PLAN_DATABASE = 'directus';

export interface SampleOpts {
  url?: string;
  pglite?: string;
  scale?: string;
  variant?: string;
  json?: boolean;
}

/** `tiergate sample (--url URL | --pglite DIR) [--scale N] [--variant V] [--json]` */
export async function sampleCommand(opts: SampleOpts, out: Output): Promise<Outcome> {
  const scale = Number(opts.scale ?? 1);
  if (!Number.isInteger(scale) || scale < 1 || scale > 10_000) throw new UsageError(`--scale must be a whole number from 1 to 10000 (got '${String(opts.scale)}')`);
  const variant = String(opts.variant ?? 'standard') as import('../../../fixtures/directus-sample/generate.js').SampleVariant;
  if (Boolean(opts.url) === Boolean(opts.pglite)) throw new UsageError('pass exactly one of --url URL (an existing PostgreSQL database) or --pglite DIR');
  let url: string;
  if (typeof opts.pglite === 'string') {
    const { createPgliteDatabase } = await import('../../db/pglite-create.js');
    url = await createPgliteDatabase(opts.pglite, BUNDLED_PLAN_DATABASE);
  } else url = String(opts.url);
  const { writeSample, sampleFigures } = await import('../../../fixtures/directus-sample/generate.js');
  const started = performance.now();
  const database = await withDb(url, async (db) => {
    const existing = await db.query<{ n: number }>(`select count(*)::int as n from pg_class where relname = 'directus_collections'`);
    if ((existing.rows[0]?.n ?? 0) > 0) throw new UsageError(`${db.displayUrl} already has Directus tables: 'tiergate sample' writes into an empty database only`);
    // a database of yours (--url; a --pglite folder is made new here) with any other relation: refused before anything is
    // written (it once failed halfway, on a name the sample also creates)
    if (opts.url) await refuseNotEmpty(db);
    out.line(`writing the sample Directus database (scale ${scale}, ${variant}) into ${db.displayUrl} …`);
    await db.transaction(async (tx) => writeSample(tx, { scale, variant }, (done) => out.status(out.paint('dim', `  ${done}`))));
    return (await db.query<{ d: string }>('select current_database() as d')).rows[0]!.d;
  }).catch((e: unknown) => {
    if (e instanceof ConnectionError && e.sqlstate === '3D000') {
      throw new ConnectionError(`${e.message}: 'tiergate sample' writes into an existing, empty database — create it first (createdb NAME, or CREATE DATABASE NAME), then run it again`, e.sqlstate);
    }
    throw e;
  });
  const figures = sampleFigures({ scale, variant });
  const ms = Math.round(performance.now() - started);
  out.result({ ok: true, url, scale, variant, figures, durationMs: ms });
  out.line(`done in ${(ms / 1000).toFixed(1)} s: ${Object.entries(figures).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  out.line(`target: ${url}`);
  if (database !== BUNDLED_PLAN_DATABASE) {
    out.line(
      `the bundled plan is for a database named '${BUNDLED_PLAN_DATABASE}': with this one, pass --plan-database ${database} to status, rehearse, apply and the rest (or set TIERGATE_PLAN_DATABASE=${database})`,
    );
  }
  return 'ok';
}

/** A database that holds relations of its own: the first three named. */
async function refuseNotEmpty(db: Db): Promise<void> {
  const other = await db.query<{ name: string; n: number }>(
    `select n.nspname || '.' || c.relname as name, count(*) over ()::int as n from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.relkind in ('r', 'p', 'v', 'm', 'S', 'f') and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^pg_'
      order by 1 limit 3`,
  );
  const first = other.rows[0];
  if (!first) return;
  const names = other.rows.map((r) => r.name).join(', ') + (first.n > other.rows.length ? ` and ${first.n - other.rows.length} more` : '');
  throw new UsageError(`${db.displayUrl} is not empty (${names}): 'tiergate sample' writes into an empty database only (createdb a new one)`);
}
