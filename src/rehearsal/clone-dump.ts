import { closeSync, createReadStream, existsSync, openSync, readSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { toDbError } from '../db/db-error.js';
import { PgliteDb } from '../db/pglite-adapter.js';
import type { Db } from '../db/port.js';
import { DbError, UsageError } from '../errors.js';
import { DumpScanner } from './clone-dump-scan.js';
import type { DatabaseIdentity } from '../evidence/types.js';

/** Statements per script sent at once: one script is one transaction, and its locks must fit the lock table. */
const STATEMENTS_PER_SCRIPT = 200;
const BYTES_PER_SCRIPT = 1 << 20;
/** psql meta-commands recent pg_dump versions write around a dump (CVE-2025-8714): nothing to do for us. */
const HARMLESS_META = new Set(['restrict', 'unrestrict']);

/**
 * What a plain SQL dump says of the database it was taken from: the name it
 * is given (`--database`, default directus) and, from pg_dump's header, the
 * server's version. Its cluster cannot be known.
 */
export function dumpIdentity(file: string, database: string): DatabaseIdentity {
  checkDumpFile(file);
  const head = Buffer.alloc(4096);
  const fd = openSync(file, 'r');
  let n = 0;
  try {
    n = readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  const version = /Dumped from database version (\d+)(?:\.(\d+))?/.exec(head.subarray(0, n).toString('utf8'));
  const serverVersion = version ? Number(version[1]) * 10000 + Number(version[2] ?? 0) : null;
  return { engine: version ? 'postgres' : null, database, systemIdentifier: null, instance: null, serverVersion };
}

/** Refuses, before anything is created, a dump file that is missing or not a plain SQL dump. */
export function checkDumpFile(file: string): void {
  if (!existsSync(file)) throw new UsageError(`dump file '${file}' does not exist: give the path of a plain SQL dump (pg_dump --format=plain DBNAME > FILE.sql)`);
  if (!statSync(file).isFile()) throw new UsageError(`'${file}' is not a file: give the path of a plain SQL dump (pg_dump --format=plain)`);
  const head = Buffer.alloc(5);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, head, 0, 5, 0);
  } finally {
    closeSync(fd);
  }
  if (head.toString('latin1') === 'PGDMP') {
    throw new UsageError(
      `'${file}' is a pg_dump archive (custom format), not a plain SQL dump: convert it with 'pg_restore --file=FILE.sql ${file}', or rehearse on a server with --source and --scratch`,
    );
  }
  if (head[0] === 0x1f && head[1] === 0x8b) throw new UsageError(`'${file}' is gzip-compressed: decompress it first (gunzip)`);
}

/**
 * Loads a plain SQL dump into a PGlite database, the way `psql -f` would:
 * statements in scripts of up to 200, COPY … FROM stdin data through
 * PGlite's `/dev/blob`, the harmless `\restrict` / `\unrestrict` skipped; any
 * other psql meta-command (`\connect` from `pg_dump --create`) is refused. Roles
 * the dump names (OWNER TO, GRANT) are created when missing.
 */
export async function loadDump(db: Db, file: string, progress: (message: string) => void): Promise<void> {
  if (!(db instanceof PgliteDb)) throw new UsageError(`a plain SQL dump is loaded into PGlite only, not into ${db.displayUrl}`);
  const size = statSync(file).size;
  const stream = createReadStream(file, { encoding: 'utf8' });
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  const scanner = new DumpScanner();
  const batch: { sql: string; line: number }[] = [];
  let batchBytes = 0;
  let copyHeader: { sql: string; line: number } | null = null;
  let lastReport = performance.now();
  let built = 0;
  const where = (line: number) => `dump '${file}', line ${line}`;

  const flush = async () => {
    if (!batch.length) return;
    await runScript(db, batch, where);
    batch.length = 0;
    batchBytes = 0;
  };

  try {
    for await (const line of lines) {
      for (const piece of scanner.push(line)) {
        if (piece.kind === 'statement') {
          // owners and privileges are the source's, not the clone's: left out, as pg_restore --no-owner --no-privileges does for a server
          if (OWNERS_AND_PRIVILEGES.test(piece.sql)) continue;
          batch.push({ sql: piece.sql, line: piece.line });
          batchBytes += piece.sql.length;
          if (BUILDS_FROM_DATA.test(piece.sql)) {
            // an index or a key built over the rows loaded (minutes at gigabytes, after the last row is read): one at a time, told
            await flush();
            built++;
            if (performance.now() - lastReport > 2000) {
              lastReport = performance.now();
              progress(`loading the dump: its data is in; building its indexes and keys (${built} so far, line ${piece.line})`);
            }
          } else if (batch.length >= STATEMENTS_PER_SCRIPT || batchBytes >= BYTES_PER_SCRIPT) await flush();
        } else if (piece.kind === 'meta') {
          if (HARMLESS_META.has(piece.command)) continue;
          throw new UsageError(
            `${where(piece.line)}: the psql meta-command '\\${piece.command}' cannot be run here; ` +
              (piece.command === 'connect' || piece.command === 'c'
                ? 'make the dump without --create (pg_dump --format=plain DBNAME), one database per file'
                : 'remove it from the file, or load the dump with psql into a server and rehearse with --source and --scratch'),
          );
        } else if (piece.kind === 'copy') {
          await flush(); // the table must exist first
          copyHeader = { sql: piece.header.replace(/\bFROM\s+stdin\b[^;]*;$/i, `FROM '/dev/blob'`), line: piece.line };
        } else if (piece.kind === 'copy-data' && copyHeader) {
          await copyRows(db, copyHeader, piece.rows, where);
        } else if (piece.kind === 'copy-end') copyHeader = null;
      }
      if (performance.now() - lastReport > 2000) {
        lastReport = performance.now();
        progress(`loading the dump: ${Math.min(99, Math.round((stream.bytesRead / Math.max(size, 1)) * 100))}%`);
      }
    }
    let tail;
    try {
      tail = scanner.end();
    } catch (e) {
      throw new UsageError(`dump '${file}': ${(e as Error).message}`);
    }
    for (const piece of tail) if (piece.kind === 'statement') batch.push({ sql: piece.sql, line: piece.line });
    await flush();
  } finally {
    lines.close();
    stream.destroy();
  }
}

/**
 * A dump's owners and privileges (`ALTER … OWNER TO`, `GRANT`, `REVOKE`,
 * `ALTER DEFAULT PRIVILEGES`): a clone is run by its own user, as a restore
 * with --no-owner --no-privileges is. Kept, they left the plan's views owned
 * by a role of the source, which then could not read the tables a tier
 * re-created (a rolled-out database's dump failed stage C).
 */
const OWNERS_AND_PRIVILEGES = /^\s*(?:alter\s+(?!default\s)[\s\S]*\sowner\s+to\s|grant\s|revoke\s|alter\s+default\s+privileges\s)/i;

/** What builds from a table's rows: pg_dump writes them after all the data. */
const BUILDS_FROM_DATA = /^\s*(?:create\s+(?:unique\s+)?index\b|alter\s+table\s+(?:only\s+)?\S+\s+add\s+constraint\b)/i;

/** One script (one transaction); a role the dump names but PGlite lacks is created and the script retried. */
async function runScript(db: Db, batch: { sql: string; line: number }[], where: (line: number) => string): Promise<void> {
  const script = batch.map((s) => s.sql).join('\n');
  for (let attempt = 0; ; attempt++) {
    try {
      await db.exec(script);
      return;
    } catch (e) {
      const err = e instanceof DbError ? e : toDbError(e);
      const role = err.sqlstate === '42704' ? /^role "(.+)" does not exist$/.exec(err.message)?.[1] : undefined;
      if (role && attempt < 100) {
        await db.exec(`create role "${role.replace(/"/g, '""')}"`);
        continue;
      }
      throw new UsageError(`${where(lineOf(batch, err.position))}: ${err.message}${err.sqlstate ? ` (SQLSTATE ${err.sqlstate})` : ''}${hint(err)}`);
    }
  }
}

async function copyRows(db: PgliteDb, header: { sql: string; line: number }, rows: string[], where: (line: number) => string): Promise<void> {
  try {
    await db.pg.query(header.sql, [], { blob: new Blob([rows.join('\n') + '\n']) });
  } catch (e) {
    const err = toDbError(e);
    throw new UsageError(`${where(header.line)}: loading the COPY data failed: ${err.message}${err.sqlstate ? ` (SQLSTATE ${err.sqlstate})` : ''}`);
  }
}

/** The dump line of a position (1-based, in characters) in the script made of `batch`. */
function lineOf(batch: { sql: string; line: number }[], position: number | null): number {
  if (position === null) return batch[0]?.line ?? 0;
  let offset = 0;
  for (const s of batch) {
    const end = offset + s.sql.length + 1;
    if (position <= end) return s.line + (s.sql.slice(0, position - offset - 1).match(/\n/g)?.length ?? 0);
    offset = end;
  }
  return batch[batch.length - 1]?.line ?? 0;
}

function hint(err: DbError): string {
  if (err.sqlstate === '0A000' || /extension .* is not available/.test(err.message)) {
    return '; the embedded PGlite lacks this feature or extension: rehearse on a real server with --source and --scratch';
  }
  return '';
}
