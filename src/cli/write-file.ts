import { randomBytes } from 'node:crypto';
import { closeSync, constants, existsSync, lstatSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
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
  await writeFilesSafely(folder, { [basename(file)]: text });
}

/**
 * Checks, before any work, that `dir` can take the evidence: it is a folder
 * (created when missing), not a file. `rehearse --out` calls it first, so a
 * wrong --out never costs a whole rehearsal.
 */
export function prepareOutDir(dir: string): void {
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new UsageError(`--out ${dir} is not a folder: give a folder for evidence.json, evidence.md and evidence.html (nothing was run)`);
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
  try {
    for (const [name, text] of Object.entries(files)) {
      const temp = join(dir, `.${name}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
      const fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0), 0o644);
      try {
        writeSync(fd, text);
      } finally {
        closeSync(fd);
      }
      renameSync(temp, join(dir, name));
    }
  } finally {
    lock();
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
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new UsageError(`cannot write evidence into ${dirname(path)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      const holder = Number(readFileSafe(path));
      if (!holder || !alive(holder)) rmSync(path, { force: true });
      else if (Date.now() > deadline) throw new UsageError(`cannot write evidence into ${dirname(path)}: another tiergate (pid ${holder}) is writing there`);
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

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
