/**
 * Installs a real Directus 11 (default `directus@11.17.4`, pinned exactly)
 * into a folder OUTSIDE the repository, for the fixture builder and the
 * approvals check. Idempotent: a marker file written after a successful
 * install makes the next call return at once.
 *
 * Folder: `$TIERGATE_DIRECTUS_HOME`, else `~/.cache/tiergate-directus/<version>`.
 * About 840 MB; npm warns that Directus wants Node ≥ 22: it runs on Node 20.
 *
 * CLI: node --import tsx scripts/directus/install.ts [--version 11.17.4] [--json]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const DIRECTUS_VERSION = '11.17.4';
const MARKER = '.tiergate-directus-installed.json';

export interface DirectusInstall {
  /** the npm project folder holding node_modules/directus */
  home: string;
  /** the installed version (read from node_modules/directus/package.json) */
  version: string;
  /** node_modules/.bin/directus */
  bin: string;
  /** false when the marker was found and nothing was installed */
  installed: boolean;
  /** wall time of this call */
  ms: number;
}

export function directusHome(version = DIRECTUS_VERSION): string {
  return resolve(process.env.TIERGATE_DIRECTUS_HOME ?? join(homedir(), '.cache', 'tiergate-directus', version));
}

function readInstalledVersion(home: string): string | null {
  const pkg = join(home, 'node_modules', 'directus', 'package.json');
  if (!existsSync(pkg)) return null;
  return (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version;
}

function npmInstall(home: string, version: string, log: (s: string) => void): boolean {
  mkdirSync(home, { recursive: true });
  writeFileSync(
    join(home, 'package.json'),
    `${JSON.stringify({ name: 'tiergate-directus-runtime', private: true, description: 'Directus for tiergate fixtures (not part of the repository)' }, null, 2)}\n`,
  );
  log(`npm install --no-audit --no-fund --save-exact directus@${version} in ${home} (≈840 MB, a few minutes)`);
  const r = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--save-exact', `directus@${version}`], {
    cwd: home,
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, npm_config_update_notifier: 'false' },
  });
  return r.status === 0 && readInstalledVersion(home) === version;
}

/** The newest published 11.x versions, newest first (one registry look-up). */
function newest11(): string[] {
  const out = execFileSync('npm', ['view', 'directus@11', 'version', '--json'], { encoding: 'utf8' });
  const parsed = JSON.parse(out) as string | string[];
  const list = (Array.isArray(parsed) ? parsed : [parsed]).filter((v) => /^11\.\d+\.\d+$/.test(v));
  const key = (v: string) => v.split('.').map((n) => Number(n));
  return list.sort((a, b) => {
    const [x, y] = [key(a), key(b)];
    return (y[1]! - x[1]!) || (y[2]! - x[2]!);
  });
}

/**
 * Ensures Directus is installed and returns where. Tries the pinned version;
 * if it does not install, the newest 11.x that does (into its own folder).
 */
export function ensureDirectus(options: { version?: string; log?: (s: string) => void } = {}): DirectusInstall {
  const t0 = Date.now();
  const log = options.log ?? ((s: string) => process.stderr.write(`[directus-install] ${s}\n`));
  const wanted = options.version ?? process.env.TIERGATE_DIRECTUS_VERSION ?? DIRECTUS_VERSION;
  const tryVersion = (version: string): DirectusInstall | null => {
    const home = directusHome(version);
    const marker = join(home, MARKER);
    const bin = join(home, 'node_modules', '.bin', 'directus');
    if (existsSync(marker) && existsSync(bin) && readInstalledVersion(home) === version) {
      return { home, version, bin, installed: false, ms: Date.now() - t0 };
    }
    if (!npmInstall(home, version, log)) return null;
    writeFileSync(marker, `${JSON.stringify({ version, node: process.version, at: new Date().toISOString() })}\n`);
    return { home, version, bin, installed: true, ms: Date.now() - t0 };
  };
  const pinned = tryVersion(wanted);
  if (pinned) return pinned;
  log(`directus@${wanted} did not install; trying the newest 11.x that does`);
  for (const v of newest11().filter((v) => v !== wanted)) {
    const got = tryVersion(v);
    if (got) return got;
    log(`directus@${v} did not install either`);
  }
  throw new Error(`could not install directus@${wanted} nor any other 11.x`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const vi = args.indexOf('--version');
  const version = vi >= 0 ? args[vi + 1] : undefined;
  const result = ensureDirectus({ version });
  if (args.includes('--json')) process.stdout.write(`${JSON.stringify(result)}\n`);
  else process.stdout.write(`directus ${result.version} at ${result.home} (${result.installed ? 'installed' : 'already installed'} in ${(result.ms / 1000).toFixed(1)} s)\n`);
}
