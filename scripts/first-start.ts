/**
 * How long the first `npm start` takes on a fresh clone of the repository,
 * and the one after it (warm: tiergate's cache filled by the first).
 *
 *   node --import tsx scripts/first-start.ts [--reps 3] [--ref COMMIT]… [--install link|ci] [--cold] [--repo DIR] [--keep]
 *
 * Each repetition clones the repository afresh (`git clone`, then the ref),
 * installs it (not timed), then times `npm start` twice. With several --ref
 * the refs are interleaved (ref 1, ref 2, ref 1, …) so that load from other
 * work on the machine falls on each alike: compare them by their ratio.
 * `--install ci` runs `npm ci` (offline first); `link` (the default, much
 * quicker here) hard-links the repository's node_modules without its
 * `.cache` (so tiergate's cache starts empty, as after `npm ci`) and runs
 * `npm run prepare`, the build `npm ci` runs. `--cold` empties tiergate's
 * cache after the install (what `npm ci --ignore-scripts` then a build would
 * leave): the first start then computes everything itself.
 *
 * The breakdown comes from the CLI's own output, each line timestamped from
 * the spawn of `npm start` (plain lines: stdout is not a terminal), and from
 * the evidence it writes (each tier's time).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

interface Args {
  repo: string;
  refs: string[];
  reps: number;
  install: 'link' | 'ci';
  cold: boolean;
  keep: boolean;
}

interface Run {
  ref: string;
  kind: 'first' | 'warm';
  ms: number;
  load: number;
  segments: Record<string, number>;
  ok: boolean;
}

/** Where the time of one run went, from its timestamped lines: [name, the line that ends it]. A segment runs from the previous boundary found. */
const BOUNDARIES: [string, RegExp][] = [
  ['npm + node start-up, plan loaded', /^rehearse \S+ \(/],
  ['clone 1: the sample built', /clone 1 of \d+ (ready|copied)/],
  ['clone 2: copied', /clone 2 of \d+ (ready|copied)/],
  ['source read, clone opened', /^stage A /],
  ['stage A', /^stage B /],
  ['stage B', /^stage C /],
  ['stage C (second clone opened, kept tiers, re-apply)', /^C +90 /],
  ['last fingerprint, clones dropped, evidence written', /^evidence: /],
  ['verdict printed, process exit', /$^/], // to the exit
];

function parseArgs(argv: string[]): Args {
  const here = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const args: Args = { repo: here, refs: [], reps: 3, install: 'link', cold: false, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--repo') args.repo = resolve(value());
    else if (a === '--ref') args.refs.push(value());
    else if (a === '--reps') args.reps = Number(value());
    else if (a === '--install') args.install = value() === 'ci' ? 'ci' : 'link';
    else if (a === '--cold') args.cold = true;
    else if (a === '--keep') args.keep = true;
    else throw new Error(`unknown argument ${a} (--repo DIR, --ref COMMIT, --reps N, --install link|ci, --cold, --keep)`);
  }
  if (!Number.isInteger(args.reps) || args.reps < 1) throw new Error('--reps must be a whole number from 1');
  if (!args.refs.length) args.refs.push('HEAD');
  return args;
}

function sh(cmd: string, argv: string[], cwd: string): void {
  const r = spawnSync(cmd, argv, { cwd, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} (in ${cwd}) failed: ${r.stderr || r.stdout}`);
}

function commitOf(repo: string, ref: string): string {
  const r = spawnSync('git', ['rev-parse', '--short', ref], { cwd: repo, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`no commit '${ref}' in ${repo}`);
  return r.stdout.trim();
}

/** A fresh clone of `commit`, installed as `npm ci` would; returns its folder and how long the install took. */
function freshClone(args: Args, commit: string): { dir: string; installMs: number } {
  const root = mkdtempSync(join(tmpdir(), 'tiergate-first-start-'));
  const dir = join(root, 'repo');
  sh('git', ['clone', '--quiet', '--no-checkout', args.repo, dir], root);
  sh('git', ['checkout', '--quiet', '--detach', commit], dir);
  const t = performance.now();
  if (args.install === 'ci') {
    sh('npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund'], dir);
  } else {
    sh('cp', ['-al', join(args.repo, 'node_modules'), join(dir, 'node_modules')], dir);
    rmSync(join(dir, 'node_modules', '.cache'), { recursive: true, force: true });
    sh('npm', ['run', '--silent', 'prepare'], dir);
  }
  const installMs = performance.now() - t;
  if (args.cold) rmSync(join(dir, 'node_modules', '.cache', 'tiergate'), { recursive: true, force: true });
  return { dir, installMs };
}

/** `npm start` in `dir`, every line timestamped (ms from the spawn). */
function npmStart(dir: string): Promise<{ ms: number; lines: [number, string][]; code: number | null; stderr: string }> {
  const env = { ...process.env };
  // the clone's own cache, empty after a fresh install: nothing inherited from this shell
  for (const k of Object.keys(env)) if (k.startsWith('TIERGATE_')) delete env[k];
  return new Promise((done, fail) => {
    const started = performance.now();
    const child = spawn('npm', ['start'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: [number, string][] = [];
    let pending = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      const now = performance.now() - started;
      const parts = (pending + chunk).split('\n');
      pending = parts.pop() ?? '';
      for (const p of parts) lines.push([now, p]);
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', fail);
    child.on('close', (code) => done({ ms: performance.now() - started, lines, code, stderr }));
  });
}

function segmentsOf(lines: [number, string][], totalMs: number): Record<string, number> {
  const out: Record<string, number> = {};
  let from = 0;
  let at = 0;
  for (const [name, re] of BOUNDARIES) {
    const i = lines.findIndex(([, text], j) => j >= at && re.test(text.trim()));
    const end = i >= 0 ? lines[i]![0] : name.startsWith('verdict') ? totalMs : null;
    if (end === null) continue;
    out[name] = end - from;
    from = end;
    if (i >= 0) at = i;
  }
  return out;
}

/** From the evidence: the tiers' own time (SQL, metrics, snapshots) and the rest of the rehearsal (fingerprints, checks, opening the clones). */
function evidenceFigures(dir: string): Record<string, number> {
  const file = join(dir, 'tiergate-evidence', 'evidence.json');
  if (!existsSync(file)) return {};
  const e = JSON.parse(readFileSync(file, 'utf8')) as { durationMs: number; clone: { copyMs: number }; stages: { tiers: { durationMs?: number }[] }[] };
  const tiers = e.stages.flatMap((s) => s.tiers).reduce((n, t) => n + (t.durationMs ?? 0), 0);
  return { 'evidence: rehearse() in all': e.durationMs, 'evidence: the tiers (SQL, metrics, snapshots)': tiers, 'evidence: clone 1 (copyMs)': e.clone.copyMs };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const loadNow = () => loadavg()[0]!;

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const refs = args.refs.map((r) => ({ ref: r, commit: commitOf(args.repo, r) }));
  console.log(`first start of ${args.repo} at ${refs.map((r) => `${r.ref} (${r.commit})`).join(', ')}: ${args.reps} repetition(s), ${cpus().length} cores, node ${process.version}`);
  console.log(
    args.install === 'ci'
      ? 'install: npm ci --prefer-offline (not timed)'
      : `install: node_modules hard-linked from ${join(args.repo, 'node_modules')} without .cache (tiergate's cache starts empty, as after npm ci), then npm run prepare, as npm ci runs it (not timed)`,
  );
  if (args.cold) console.log("--cold: tiergate's cache emptied after the install, as `npm ci --ignore-scripts` would leave it");
  const runs: Run[] = [];
  for (let rep = 1; rep <= args.reps; rep++) {
    for (const { ref, commit } of refs) {
      const { dir, installMs } = freshClone(args, commit);
      try {
        for (const kind of ['first', 'warm'] as const) {
          const load = loadNow();
          const r = await npmStart(dir);
          const last = r.lines.map(([, l]) => l.trim()).filter(Boolean).pop() ?? '';
          const ok = r.code === 0 && /^Rehearsal PASS · Execution NO-GO/.test(last);
          const segments = { ...segmentsOf(r.lines, r.ms), ...evidenceFigures(dir) };
          runs.push({ ref: commit, kind, ms: r.ms, load, segments, ok });
          console.log(`rep ${rep} ${commit} ${kind.padEnd(5)} ${sec(r.ms).padStart(8)}  load ${load.toFixed(2)}  install ${sec(installMs)}${ok ? '' : `  FAILED (exit ${r.code}): ${last} ${r.stderr.slice(0, 500)}`}`);
        }
      } finally {
        if (args.keep) console.log(`kept ${dir}`);
        else rmSync(dirname(dir), { recursive: true, force: true });
      }
    }
  }

  console.log(`\nmedians (load average during the runs ${Math.min(...runs.map((r) => r.load)).toFixed(2)}–${Math.max(...runs.map((r) => r.load)).toFixed(2)}, now ${loadavg().map((x) => x.toFixed(2)).join(' ')})`);
  for (const { commit } of refs) {
    for (const kind of ['first', 'warm'] as const) {
      const mine = runs.filter((r) => r.ref === commit && r.kind === kind && r.ok);
      if (!mine.length) {
        console.log(`${commit} ${kind}: no successful run`);
        continue;
      }
      console.log(`${commit} ${kind} run: ${sec(median(mine.map((r) => r.ms)))} (${mine.map((r) => sec(r.ms)).join(', ')}; load ${median(mine.map((r) => r.load)).toFixed(2)})`);
      const names = [...new Set(mine.flatMap((r) => Object.keys(r.segments)))];
      for (const n of names) console.log(`    ${n.padEnd(54)} ${sec(median(mine.map((r) => r.segments[n] ?? 0))).padStart(8)}`);
    }
  }
  if (refs.length > 1) {
    const [base, ...others] = refs;
    for (const o of others) {
      for (const kind of ['first', 'warm'] as const) {
        const m = (c: string) => median(runs.filter((r) => r.ref === c && r.kind === kind && r.ok).map((r) => r.ms));
        console.log(`${o.commit} / ${base!.commit}, ${kind} run: ${(m(o.commit) / m(base!.commit)).toFixed(2)}×`);
      }
    }
  }
  if (runs.some((r) => !r.ok)) process.exitCode = 1;
}

await main();
