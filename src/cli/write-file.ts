import { randomBytes } from 'node:crypto';
import { closeSync, constants, existsSync, lstatSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { isAlive } from '../db/dir-lock.js';
import { UsageError } from '../errors.js';
import { mkdirEach } from '../mkdir.js';

/**
 * Writes a report the user asked for (`--out FILE`), saying what is wrong in
 * words (a missing folder, a folder in the way), and never through a link: a
 * link at FILE is replaced by the file, not written through.
 */
export async function writeReportFile(file: string, text: string): Promise<void> {
  const folder = dirname(resolve(file));
  if (!existsSync(folder)) throw new UsageError(`cannot write ${file}: the folder ${folder} does not exist (create it, or choose another --out)`);
  if (!statSync(folder).isDirectory()) throw new UsageError(`cannot write ${file}: ${folder} is not a folder`);
  if (existsSync(file) && lstatSync(file).isDirectory()) throw new UsageError(`cannot write ${file}: it is a folder (give a file name)`);
  const odd = notAFile(file);
  if (odd) throw new UsageError(`cannot write ${file}: it is ${odd}, which a new file would replace (give the name of a file${file.startsWith('/dev/') ? '; to print the report, leave out --out' : ''})`);
  await writeFilesSafely(folder, { [basename(file)]: text });
}

/**
 * What stands at `path` that is not a file tiergate may replace: a device, a
 * FIFO, a socket, or a link to one (`/dev/stdout`); null for a regular file,
 * a link to one or to nothing, and nothing at all.
 */
function notAFile(path: string): string | null {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return null;
  }
  const kind = (s: import('node:fs').Stats) =>
    s.isCharacterDevice() || s.isBlockDevice() ? 'a device' : s.isFIFO() ? 'a FIFO' : s.isSocket() ? 'a socket' : s.isDirectory() ? 'a folder' : null;
  if (!st.isSymbolicLink()) return kind(st);
  try {
    const target = kind(statSync(path));
    return target ? `a link to ${target}` : null;
  } catch {
    return null;
  }
}

/**
 * Checks, before any work, that `dir` can take the evidence: it is a folder
 * (created when missing), not a file. `rehearse --out` calls it first, so a
 * wrong --out never costs a whole rehearsal.
 */
export function prepareOutDir(dir: string, names: string[] = ['evidence.json', 'evidence.md', 'evidence.html']): void {
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new UsageError(`--out ${dir} is not a folder: give a folder for evidence.json, evidence.md and evidence.html (nothing was run)`);
    for (const name of names) {
      const odd = notAFile(join(dir, name));
      if (odd) throw new UsageError(`--out ${dir}: ${name} there is ${odd}, which the evidence would replace: give another folder (nothing was run)`);
    }
    return;
  }
  try {
    mkdirEach(dir);
  } catch (e) {
    throw new UsageError(`--out ${dir}: cannot create the folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/**
 * Writes files into `dir` without ever following a link: each is written to
 * a new temporary file in the folder (created exclusively) and renamed over
 * the name, which replaces a link instead of writing through it. A lock file
 * keeps two rehearsals writing to one folder from interleaving their files.
 */
export async function writeFilesSafely(dir: string, files: Record<string, string>): Promise<void> {
  const lock = await takeLock(join(dir, '.tiergate-evidence.lock'));
  const written: string[] = [];
  try {
    for (const [name, text] of Object.entries(files)) {
      const odd = notAFile(join(dir, name));
      if (odd) throw new UsageError(`cannot write ${join(dir, name)}: it is ${odd}, which a new file would replace; nothing was written there`);
      const temp = join(dir, `.${name}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
      const fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0), 0o644);
      try {
        writeWhole(fd, Buffer.from(text, 'utf8'));
      } catch (e) {
        rmSync(temp, { force: true });
        const code = (e as NodeJS.ErrnoException).code;
        const before = written.length ? `; written before it: ${written.join(', ')}` : '';
        throw new UsageError(`cannot write ${join(dir, name)}: ${code === 'ENOSPC' ? 'the disk is full (ENOSPC)' : code === 'EDQUOT' ? 'the disk quota is used up (EDQUOT)' : (code ?? (e as Error).message)}; nothing was written there${before}`);
      } finally {
        closeSync(fd);
      }
      renameSync(temp, join(dir, name));
      written.push(name);
    }
  } finally {
    lock();
  }
}

/**
 * Every byte of `data` to `fd`: a write may take fewer than it is given (a
 * nearly full disk), and an error is thrown, not a short file left. (`write`:
 * writeSync, or a stand-in that takes less, in a test.)
 */
export function writeWhole(fd: number, data: Buffer, write: (fd: number, data: Buffer, offset: number, length: number) => number = writeSync): void {
  for (let done = 0; done < data.length; ) {
    const n = write(fd, data, done, data.length - done);
    if (n <= 0) throw Object.assign(new Error('no byte written'), { code: 'ENOSPC' });
    done += n;
  }
}

async function takeLock(path: string): Promise<() => void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0), 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(path, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        // (its lock file is the first thing written there: a folder that takes no new file — /proc/self/fd, a read-only one — says so here)
        throw new UsageError(`cannot write into ${dirname(path)}: it takes no new file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): choose another --out`);
      }
      const holder = Number(readFileSafe(path));
      if (!holder || !isAlive(holder)) rmSync(path, { force: true });
      else if (Date.now() > deadline) throw new UsageError(`cannot write into ${dirname(path)}: another tiergate (pid ${holder}) is writing there`);
      else await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function readFileSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
