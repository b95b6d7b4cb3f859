/**
 * Reading the files a user hands tiergate (a plan's tiergate.yaml and tier
 * files, evidence) without trusting them: only a regular file is read (a FIFO
 * would block forever, /dev/zero would grow without end), never more than a
 * limit that the message names with the variable that raises it, and a
 * special file is named for what it is.
 */
import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';

/** The limits, in bytes, and the environment variables that raise them. */
export const LIMITS = {
  plan: { bytes: 1 << 20, env: 'TIERGATE_MAX_PLAN_BYTES', what: 'a tiergate.yaml' },
  sql: { bytes: 16 << 20, env: 'TIERGATE_MAX_SQL_BYTES', what: 'a tier file' },
  evidence: { bytes: 64 << 20, env: 'TIERGATE_MAX_EVIDENCE_BYTES', what: 'an evidence file' },
  payload: { bytes: 64 << 20, env: 'TIERGATE_MAX_PAYLOAD_BYTES', what: 'a payload file' },
  fleet: { bytes: 4 << 20, env: 'TIERGATE_MAX_FLEET_BYTES', what: 'a fleet targets file' },
} as const;
export type LimitKind = keyof typeof LIMITS;

/** Why a file cannot be read as tiergate reads files: null when it can. */
export type Unreadable = { reason: string };

/** The limit in force for `kind` (its environment variable, when set to a whole number, wins). */
export function limitOf(kind: LimitKind): number {
  const raw = process.env[LIMITS[kind].env];
  return raw && /^\d+$/.test(raw) ? Number(raw) : LIMITS[kind].bytes;
}

/** What a file system entry is, in words: 'a FIFO', 'a folder', 'a character device' … */
export function describeEntry(st: Stats): string {
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  if (st.isSymbolicLink()) return 'a symbolic link';
  return 'not a regular file';
}

/**
 * The bytes of the regular file at `path`, or why not: it does not exist, it
 * is not a regular file, it is larger than the limit of `kind`. Opened
 * without blocking (a FIFO is refused, not waited on) and checked again
 * through the open descriptor, so what is read is what was checked.
 *
 * @example const r = readRegularFile('plans/x/tiergate.yaml', 'plan'); if ('reason' in r) throw …
 */
export function readRegularFile(path: string, kind: LimitKind): Buffer | Unreadable {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { reason: code === 'ENOENT' ? 'does not exist' : code === 'ELOOP' ? 'is a link that loops' : `cannot be read (${code ?? (e as Error).message})` };
  }
  if (!st.isFile()) return { reason: `is ${describeEntry(st)}, not a regular file` };
  const max = limitOf(kind);
  if (st.size > max) return tooLarge(kind, st.size, max);
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (e) {
    return { reason: `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` };
  }
  try {
    const fst = fstatSync(fd);
    if (!fst.isFile()) return { reason: `is ${describeEntry(fst)}, not a regular file` };
    if (fst.size > max) return tooLarge(kind, fst.size, max);
    // read at most one byte past the size: a file growing under us is cut there and then refused
    const buf = Buffer.alloc(Math.min(fst.size + 1, max + 1));
    let n = 0;
    for (;;) {
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
      if (n === buf.length) break;
    }
    if (n > max) return tooLarge(kind, n, max);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

function tooLarge(kind: LimitKind, size: number, max: number): Unreadable {
  const l = LIMITS[kind];
  return { reason: `is ${megabytes(size)}, larger than the ${megabytes(max)} tiergate reads of ${l.what} (raise it with ${l.env}=BYTES)` };
}

function megabytes(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MB` : `${n} bytes`;
}

/** Whether `bytes` begin with a UTF-8 byte-order mark (EF BB BF). */
export function hasUtf8Bom(bytes: Uint8Array): boolean {
  return bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf;
}

/** `bytes` as UTF-8 text (a leading byte-order mark dropped), or null when they are not valid UTF-8: never U+FFFD for a bad byte. */
export function strictUtf8(bytes: Uint8Array): string | null {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}
