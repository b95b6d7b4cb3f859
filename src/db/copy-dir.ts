import { spawn } from 'node:child_process';
import { cp } from 'node:fs/promises';

/** Copies a closed PGlite data directory: `cp -a` (reflinks where the file system has them), else node's own copy. */
export async function copyDir(from: string, to: string): Promise<void> {
  const ok = await new Promise<boolean>((resolve) => {
    const child = spawn('cp', ['-a', '--reflink=auto', `${from}/.`, to], { stdio: 'ignore' });
    child.on('error', () => resolve(false));
    child.on('close', (code) => resolve(code === 0));
  });
  if (!ok) await cp(from, to, { recursive: true, force: true });
}
