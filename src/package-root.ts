import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/** The folder holding tiergate's package.json and plans/ (works from src/ under tsx and from dist/). */
export function packageRoot(): string {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'plans'))) return (cached = dir);
    const up = dirname(dir);
    if (up === dir) throw new Error('tiergate: cannot find the package root (package.json beside plans/)');
    dir = up;
  }
}
