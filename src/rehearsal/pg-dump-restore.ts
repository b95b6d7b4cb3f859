/**
 * pg_dump of a PostgreSQL source and pg_restore of it into a clone or a
 * snapshot on the scratch server: the archive format, how the restore is
 * cut into transactions that fit the scratch server's lock table, and the
 * progress both print. Used by src/rehearsal/clone-postgres.ts.
 */
import { spawnSync } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { TargetError } from '../errors.js';
import { sayingWhileSilent } from '../while-silent.js';
import { redactUrl } from '../secrets.js';
import { runTool, toolConnection, toolProblems, type ToolRun } from './clone-tools.js';

/** pg_dump of the source into `file`; returns the number of tables whose data it dumped. */
export async function dump(pgDump: string, sourceUrl: string, file: string, progress: (m: string) => void, signal?: AbortSignal): Promise<number> {
  const { dbname, env } = toolConnection(sourceUrl);
  // belt and braces: pg_dump only reads, and this session could not write even if it tried
  env.PGOPTIONS = `${process.env.PGOPTIONS ?? ''} -c default_transaction_read_only=on`.trim();
  env.PGAPPNAME = 'tiergate rehearse (pg_dump of the source)';
  progress(`pg_dump of ${redactUrl(sourceUrl)}`);
  let tables = 0;
  const report = throttle(2000, () => progress(`pg_dump: ${tables} tables, ${megabytes(file)} MB`));
  // uncompressed: the file is local and read once; compressing it cost half of
  // pg_dump's time on the sample at scale 100 (14.6 s with --compress=1, 7.8 s without)
  const run = await runTool(
    pgDump,
    ['--format=custom', '--compress=0', '--no-sync', '--lock-wait-timeout=30s', '--verbose', `--file=${file}`, `--dbname=${dbname}`],
    env,
    (line) => {
      if (/dumping contents of table/.test(line)) tables++;
      report();
    },
    signal,
  );
  if (run.code !== 0) throw dumpFailed(sourceUrl, file, run);
  progress(`pg_dump: ${tables} tables, ${megabytes(file)} MB`);
  return tables;
}

/** What a failed pg_dump says, with what helps: too small a lock table, a user that may not read, a full disk. */
export function dumpFailed(sourceUrl: string, file: string, run: ToolRun): TargetError {
  const locks = run.errors.some((l) => /out of shared memory|max_locks_per_transaction/.test(l))
    ? `\npg_dump locks every table of the source in one transaction, and the source's lock table ` +
      `(max_locks_per_transaction × max_connections) is too small for its tables: raise max_locks_per_transaction on the source (a restart), then run again`
    : '';
  const denied = run.errors.some((l) => /permission denied for/.test(l))
    ? `\npg_dump reads every schema, table and sequence of the source: its user must be allowed to (GRANT pg_read_all_data TO that user, ` +
      `PostgreSQL 14 and later; or USAGE on each schema and SELECT on its tables and sequences), or rehearse with the database owner's URL`
    : '';
  const full = run.errors.some((l) => /No space left on device|could not write to output file/.test(l))
    ? `\nthe dump file is written to ${dirname(file)} (TMPDIR, else /tmp), uncompressed: about 1.4 times the source's database, ${megabytes(file)} MB written when the room ran out; point TMPDIR at a folder with room for it, then run again`
    : '';
  return new TargetError(`pg_dump of ${redactUrl(sourceUrl)} failed (exit ${run.code}):\n  ${toolProblems(run)}${locks}${denied}${full}`);
}

/**
 * How pg_restore runs. A dump of many small objects (Directus: thousands of
 * collections of a few rows) restores fastest in ONE transaction: no commit —
 * a WAL flush on a durable server — per object. One transaction holds a lock
 * on every relation it creates or fills, so it is used only when they fit in
 * half the scratch server's lock table (the other half is left to the
 * server's other sessions); a larger dump is restored in consecutive slices
 * of its table of contents (`--use-list`), each in one transaction that fits
 * there — pg_restore 17's --transaction-size, for any pg_restore. Measured by
 * the benchmark's first-clone rows (2 cores, the sample at scale 100, 6,520
 * tables, 25,892 relation locks in one transaction): one transaction 25 s,
 * 16 slices 27 s, --jobs=2 40 s; a directory dump by two jobs restored by two
 * jobs was slower than the custom archive at every scale. Large tables
 * (1 MB a table on average and more) are restored with two jobs (COPY and
 * index builds in parallel).
 */
export function restoreMode(pgRestore: string, file: string, tables: number, lockSlots: number): { args: string[]; why: string; slices?: string[][] } {
  const bytesPerTable = statSync(file).size / Math.max(tables, 1);
  if (bytesPerTable >= 1e6) return { args: ['--jobs=2'], why: `two jobs: ${(bytesPerTable / 1e6).toFixed(1)} MB per table` };
  const list = spawnSync(pgRestore, ['--list', file], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (list.status !== 0) return { args: ['--jobs=2'], why: "two jobs: the archive's table of contents could not be read" };
  const entries = list.stdout.split('\n').filter((l) => /^\d+;/.test(l));
  const budget = Math.max(1, Math.floor(lockSlots / 2) - Math.min(LOCK_RESERVE, Math.floor(lockSlots / 4)));
  const slices = sliceByLocks(entries, budget);
  if (slices.length <= 1) return { args: ['--single-transaction'], why: `one transaction: ${entries.length} small objects, lock table ${lockSlots}` };
  return {
    args: ['--single-transaction'],
    why: `${slices.length} transactions: ${entries.length} small objects, each transaction within half the lock table (${lockSlots})`,
    slices,
  };
}

/** Locks a restore transaction takes besides the archive's objects (the catalogs its DDL writes, their indexes); a quarter of a smaller lock table. */
const LOCK_RESERVE = 1000;

/**
 * Consecutive slices of a table of contents (`pg_restore --list` lines, in
 * restore order), each taking at most `budget` relation locks when restored
 * in one transaction — an estimate from above: a table counts with its TOAST
 * table and index, each object on a table counts the table unless the slice
 * already locks it, and what the list does not name (an index's table, the
 * table a foreign key refers to, what a view reads) counts as new. On the
 * sample at scale 100 it estimates 40,000 where one transaction took 25,892
 * relation locks; the other half of the lock table is the margin.
 */
export function sliceByLocks(entries: string[], budget: number): string[][] {
  const slices: string[][] = [];
  let slice: string[] = [];
  let locked = new Set<string>();
  let used = 0;
  for (const line of entries) {
    const cost = lockCost(line, locked, true);
    if (used + cost > budget && slice.length) {
      slices.push(slice);
      slice = [];
      locked = new Set();
      used = 0;
    }
    used += lockCost(line, locked, false);
    slice.push(line);
  }
  if (slice.length) slices.push(slice);
  return slices;
}

/** Object types of a table of contents whose name is `TABLE OBJECT` (the table first). */
const ON_TABLE = /^(CONSTRAINT|FK CONSTRAINT|DEFAULT|TRIGGER|POLICY|ROW SECURITY|RULE)$/;
const TYPES = /^(TABLE DATA|TABLE|FOREIGN TABLE|MATERIALIZED VIEW DATA|MATERIALIZED VIEW|VIEW|SEQUENCE SET|SEQUENCE OWNED BY|SEQUENCE|INDEX|FK CONSTRAINT|CONSTRAINT|DEFAULT|TRIGGER|POLICY|ROW SECURITY|RULE) (\S+) (\S+)/;

/** The relation locks restoring `line` adds to a transaction that already holds `locked` (recorded there unless `peek`). */
function lockCost(line: string, locked: Set<string>, peek: boolean): number {
  // `<dump id>; <catalog oid> <object oid> <type> <schema> <name> <owner>`
  const m = TYPES.exec(line.replace(/^\d+; \d+ \d+ /, ''));
  if (!m) return 1;
  const [, type, schema, name] = m as unknown as [string, string, string, string];
  const take = (key: string, n: number) => {
    if (locked.has(key)) return 0;
    if (!peek) locked.add(key);
    return n;
  };
  const table = (t: string) => take(`${schema}.${t}`, 3);
  switch (type) {
    case 'TABLE':
    case 'FOREIGN TABLE':
    case 'TABLE DATA':
    case 'MATERIALIZED VIEW':
    case 'MATERIALIZED VIEW DATA':
      return table(name) + (type.startsWith('MATERIALIZED') ? 2 : 0);
    case 'VIEW':
      return take(`${schema}.${name}`, 1) + 2;
    case 'SEQUENCE':
    case 'SEQUENCE SET':
      return take(`${schema}.${name}`, 1);
    case 'SEQUENCE OWNED BY':
      return take(`${schema}.${name}`, 1) + 1;
    case 'INDEX':
      return 2;
    default:
      // on a table: the table, and what it creates or reads besides (a key's index, a foreign key's referenced table)
      return ON_TABLE.test(type) ? table(name) + (type === 'FK CONSTRAINT' || type === 'CONSTRAINT' ? 1 : 0) : 1;
  }
}

/** pg_restore of `file` into the clone, without owners and privileges (the scratch server has other roles). */
export async function restore(
  pgRestore: string,
  cloneUrl: string,
  file: string,
  tables: number,
  mode: { args: string[]; why: string; slices?: string[][] },
  progress: (m: string) => void,
  signal?: AbortSignal,
): Promise<void> {
  const { dbname, env } = toolConnection(cloneUrl);
  env.PGAPPNAME = 'tiergate rehearse (pg_restore into the clone)';
  let created = 0;
  let restored = 0;
  const report = throttle(2000, () => progress(`pg_restore: ${created} objects created, ${restored} of ${tables} tables filled`));
  progress(`pg_restore (${mode.why})`);
  // a slice is a list file beside the archive (its folder is removed with it)
  const lists = (mode.slices ?? [null]).map((slice, i) => {
    if (!slice) return null;
    const listFile = `${file}.${i + 1}.list`;
    writeFileSync(listFile, slice.join('\n') + '\n');
    return listFile;
  });
  const still = (s: number) => progress(`pg_restore: ${created} objects created, ${restored} of ${tables} tables filled, still working (${s} s)`);
  await sayingWhileSilent(10_000, still, async (told) => {
    for (const listFile of lists) {
      const run = await runTool(pgRestore, [...mode.args, ...(listFile ? [`--use-list=${listFile}`] : []), '--no-owner', '--no-privileges', '--verbose', `--dbname=${dbname}`, file], env, (line) => {
        if (/^pg_restore: creating /.test(line)) created++;
        // one line per table in either mode (with --jobs a worker prints it, and "finished item N TABLE DATA" follows: not counted again)
        else if (/processing data for table/.test(line)) restored++;
        told();
        report();
      }, signal);
      // a clone that misses part of the source would prove nothing: any restore error fails
      if (run.code !== 0) throw new TargetError(`pg_restore into ${redactUrl(cloneUrl)} failed (exit ${run.code}):\n  ${toolProblems(run)}`);
    }
  });
  progress(`pg_restore: ${created} objects created, ${tables} of ${tables} tables filled`);
}

function throttle(ms: number, fn: () => void): () => void {
  let last = performance.now();
  return () => {
    if (performance.now() - last < ms) return;
    last = performance.now();
    fn();
  };
}

function megabytes(file: string): string {
  try {
    return (statSync(file).size / 1e6).toFixed(1);
  } catch {
    return '0.0';
  }
}
