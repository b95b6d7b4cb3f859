/**
 * The peer: Sqitch (Debian's `sqitch` package) deploying the plan's tier
 * files as Sqitch changes. The project is generated in a temporary folder:
 * sqitch.conf (engine pg, psql from the benchmark's server), sqitch.plan
 * (one change per tier file, in plan order), deploy/<change>.sql = the tier
 * file wrapped in BEGIN … COMMIT (Sqitch does not wrap deploy scripts in a
 * transaction; this makes one transaction per tier, like tiergate and
 * `psql -1`), verify/<change>.sql = a trivial check, revert/ empty.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Plan } from '../src/plan/load-plan.js';
import type { Cluster } from './cluster.js';
import { run } from './databases.js';

export interface SqitchStatus {
  available: boolean;
  version: string | null;
  /** what the benchmark did to get it, or why it could not */
  note: string;
}

function version(): string | null {
  const r = spawnSync('sqitch', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

function hasDbdPg(): boolean {
  return spawnSync('perl', ['-MDBD::Pg', '-e', '1'], { stdio: 'ignore' }).status === 0;
}

/** Finds sqitch (with DBD::Pg); when missing and root with apt-get, installs `sqitch libdbd-pg-perl`. */
export function ensureSqitch(log: (m: string) => void): SqitchStatus {
  const found = version();
  if (found && hasDbdPg()) return { available: true, version: found, note: 'found on PATH' };
  const why = found ? 'sqitch is installed but DBD::Pg (libdbd-pg-perl) is not' : 'sqitch is not installed';
  if (process.getuid?.() !== 0 || spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status !== 0) {
    return { available: false, version: found, note: `${why}, and the benchmark cannot install it (needs root and apt-get): apt-get install -y sqitch libdbd-pg-perl` };
  }
  log(`  ${why}: installing it (apt-get install -y sqitch libdbd-pg-perl) …`);
  const install = () => spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'sqitch', 'libdbd-pg-perl'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }).status === 0;
  let ok = install();
  if (!ok) {
    log('  apt-get install failed; running apt-get update and trying again …');
    spawnSync('apt-get', ['update'], { stdio: 'ignore' });
    ok = install();
  }
  const v = version();
  if (ok && v && hasDbdPg()) return { available: true, version: v, note: 'installed by the benchmark (apt-get install -y sqitch libdbd-pg-perl)' };
  return { available: false, version: v, note: `${why}, and apt-get install -y sqitch libdbd-pg-perl failed` };
}

/** Sqitch change names: letters, digits, underscores; must not end in punctuation followed by digits. */
function changeName(file: string): string {
  const base = file.replace(/^.*\//, '').replace(/\.sql$/, '');
  return `t${base}`.replace(/[^A-Za-z0-9_]/g, '_');
}

/** Writes the Sqitch project for the plan's applied tiers (everything but the rollback tier) into `dir`. */
export function writeSqitchProject(dir: string, plan: Plan, cluster: Cluster, sql: (tierFile: string) => string): string[] {
  for (const d of ['deploy', 'verify', 'revert']) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(
    join(dir, 'sqitch.conf'),
    `[core]\n\tengine = pg\n\ttop_dir = .\n[engine "pg"]\n\tclient = ${join(cluster.bin, 'psql')}\n\tregistry = sqitch\n`,
  );
  const tiers = plan.tiers.filter((t) => t.kind !== 'rollback');
  const lines = ['%syntax-version=1.0.0', '%project=axis_governance_bench', ''];
  const changes: string[] = [];
  for (const t of tiers) {
    const name = changeName(t.file);
    changes.push(name);
    lines.push(`${name} 2026-01-01T00:00:00Z tiergate bench <bench@example.invalid> # tier ${t.id}: ${t.name}`);
    writeFileSync(join(dir, 'deploy', `${name}.sql`), `BEGIN;\n${sql(t.file)}\nCOMMIT;\n`);
    writeFileSync(join(dir, 'verify', `${name}.sql`), 'SELECT 1;\n');
  }
  writeFileSync(join(dir, 'sqitch.plan'), lines.join('\n') + '\n');
  return changes;
}

/** `sqitch deploy --verify` of the project in `dir` to database `db` of the cluster; throws on failure. */
export function sqitchDeploy(dir: string, cluster: Cluster, db: string): Promise<void> {
  const env = { ...cluster.env(db), SQITCH_USER_NAME: 'tiergate bench', SQITCH_USER_EMAIL: 'bench@example.invalid', HOME: dir };
  return run('sqitch', ['deploy', '--verify', `db:pg:${db}`], env, dir);
}
