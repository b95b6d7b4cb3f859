/**
 * `npm run test:guarantees`: breaks each guarantee on purpose and checks that
 * a test notices. For every mutation of scripts/guarantees/mutations.ts and
 * every backend where its guarantee exists: a temporary copy of the
 * repository (node_modules linked, not copied) gets the mutation, vitest runs
 * the tests mapped to it (TIERGATE_TEST_BACKENDS=<backend>, stopping at the
 * first failure), and the mutation is killed when a test fails. The copy is
 * restored before the next one.
 *
 * First, the same selections run unmutated: a test that fails without a
 * mutation would "kill" every one, so the run stops there instead. CI skips
 * this (--no-baseline) because \`npm test\` has just run every one of them on
 * the same checkout.
 *
 * Prints (and writes to .tmp/guarantees.md) the table guarantee / mutation /
 * backend / killed by; exits 1 when a mutation survives or no longer applies.
 *
 *   npm run test:guarantees                      # all
 *   npm run test:guarantees -- --only guard-any-error,password-shown
 *   npm run test:guarantees -- --list
 *   npm run test:guarantees -- --jobs 1                   # one mutation at a time (default 2)
 *   npm run test:guarantees -- --no-baseline              # right after \`npm test\` passed on this checkout (CI)
 *
 * A PostgreSQL server: TIERGATE_TEST_DATABASE_URL, or a throwaway cluster
 * started here (as the tests' own setup does) and shared by every run.
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { findBinDir, startCluster, type Cluster } from '../pg-cluster.js';
import { buildPgliteTemplate } from '../../test/setup/postgres.js';
import { MUTATIONS, type Backend, type Mutation } from './mutations.js';

const ROOT = join(import.meta.dirname, '..', '..');
const PG_URL_KEY = 'TIERGATE_TEST_DATABASE_URL';
/** what a copy needs to run the tests (node_modules is linked) */
const COPIED = ['src', 'test', 'plans', 'fixtures', 'schema', 'scripts', 'bin', 'package.json', 'tsconfig.json', 'vitest.config.ts'];
const RUN_TIMEOUT_MS = 10 * 60_000;

interface Row {
  mutation: Mutation;
  backend: Backend;
  outcome: 'killed' | 'survived' | 'does not apply';
  by: string;
  seconds: number;
}

interface VitestRun {
  failed: string[];
  passed: number;
  code: number | null;
  output: string;
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const unknown = args.filter((a, i) => a.startsWith('-') && !['--list', '--only', '--jobs', '--no-baseline'].includes(a) && !['--only', '--jobs'].includes(args[i - 1] ?? ''));
  if (unknown.length) throw new Error(`unknown option ${unknown.join(', ')} (options: --list, --only ID,ID, --jobs N, --no-baseline)`);
  if (args.includes('--list')) {
    for (const m of MUTATIONS) console.log(`${m.id.padEnd(28)} ${m.backends.join('+').padEnd(16)} ${m.guarantee}: ${m.name}`);
    return 0;
  }
  const onlyArg = args[args.indexOf('--only') + 1];
  const only = args.includes('--only') && onlyArg ? new Set(onlyArg.split(',')) : null;
  const mutations = only ? MUTATIONS.filter((m) => only.has(m.id)) : MUTATIONS;
  if (only) for (const id of only) if (!MUTATIONS.some((m) => m.id === id)) throw new Error(`no mutation '${id}' (npm run test:guarantees -- --list)`);

  const jobsArg = args.includes('--jobs') ? Number(args[args.indexOf('--jobs') + 1]) : 2;
  if (!Number.isInteger(jobsArg) || jobsArg < 1) throw new Error('--jobs must be a whole number ≥ 1');
  const started = performance.now();
  // one copy of the repository per worker: each holds one mutation at a time
  const copies = Array.from({ length: jobsArg }, () => makeCopy());
  const copy = copies[0]!;
  let cluster: Cluster | null = null;
  const env: Record<string, string> = {};
  try {
    {
      // always a server: the PostgreSQL mutations need it, and with CI=true every test run needs one
      if (process.env[PG_URL_KEY]) env[PG_URL_KEY] = process.env[PG_URL_KEY]!;
      else {
        if (!findBinDir()) throw new Error('no PostgreSQL server binaries and TIERGATE_TEST_DATABASE_URL unset: the mutations cannot run (apt-get install -y postgresql)');
        cluster = startCluster({ label: 'guarantees-pg', settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off', max_connections: '200' } });
        env[PG_URL_KEY] = cluster.url('postgres');
        env.TIERGATE_TEST_PG_BINDIR = cluster.bin;
      }
    }

    // one PGlite template for every run (each vitest run would otherwise build its own)
    env.TIERGATE_TEST_PGLITE_TEMPLATE = join(copy, '.pglite-template');
    await buildPgliteTemplate(env.TIERGATE_TEST_PGLITE_TEMPLATE);

    // the unmutated selections must pass (a failure would be taken for a kill): one run per backend of them all
    const backends = [...new Set(mutations.flatMap((m) => m.backends))];
    const missing = mutations.flatMap((m) => m.tests.files.filter((f) => !existsSync(join(copy, f))).map((f) => `${m.id}: ${f}`));
    if (missing.length) throw new Error(`test files that do not exist: ${missing.join(', ')}`);
    const baseline = !args.includes('--no-baseline');
    console.log(`guarantees: ${mutations.length} mutations, ${copies.length} at a time${baseline ? `; first, their tests unmutated on ${backends.join(' and ')}` : ' (no unmutated run: --no-baseline)'}`);
    const baselines = await inParallel(baseline ? backends : [], copies, async (backend, dir) => {
      const mine = mutations.filter((m) => m.backends.includes(backend));
      const union = { files: [...new Set(mine.flatMap((m) => m.tests.files))], names: [...new Set(mine.map((m) => `(${m.tests.names})`))].join('|') };
      const t = performance.now();
      const r = await runVitest(dir, union, backend, env, false);
      const ok = !r.failed.length && r.code === 0 && r.passed > 0;
      console.log(ok ? `  ok  ${backend}: ${r.passed} test(s) in ${union.files.length} file(s) pass unmutated (${((performance.now() - t) / 1000).toFixed(0)} s)` : `\nthe unmutated tests fail or select nothing on ${backend}:\n${r.failed.join('\n') || r.output.slice(-3000)}`);
      return ok;
    });
    if (baselines.some((ok) => !ok)) return 1;

    const rows: Row[] = (
      await inParallel(mutations, copies, async (m, dir) => {
        const out: Row[] = [];
        const originals = new Map<string, string>();
        const problem = applyMutation(dir, m, originals);
        try {
          for (const backend of m.backends) {
            const t = performance.now();
            if (problem) {
              out.push({ mutation: m, backend, outcome: 'does not apply', by: problem, seconds: 0 });
              console.log(`  DOES NOT APPLY ${m.id}: ${problem}`);
              continue;
            }
            const r = await runVitest(dir, m.tests, backend, env, true);
            const killed = r.failed.length > 0 || r.code !== 0;
            const by = r.failed[0] ?? (killed ? `vitest exit ${r.code}: ${lastLine(r.output)}` : `${r.passed} test(s) passed`);
            out.push({ mutation: m, backend, outcome: killed ? 'killed' : 'survived', by, seconds: (performance.now() - t) / 1000 });
            console.log(`  ${killed ? 'killed  ' : 'SURVIVED'} ${m.id} on ${backend} (${((performance.now() - t) / 1000).toFixed(0)} s): ${by}`);
          }
        } finally {
          for (const [file, text] of originals) writeFileSync(join(dir, file), text);
        }
        return out;
      })
    ).flat();

    const table = renderTable(rows, (performance.now() - started) / 1000);
    console.log('\n' + table);
    mkdirSync(join(ROOT, '.tmp'), { recursive: true });
    writeFileSync(join(ROOT, '.tmp', 'guarantees.md'), table + '\n');
    const bad = rows.filter((r) => r.outcome !== 'killed');
    if (bad.length) {
      console.error(`\n${bad.length} mutation run(s) not killed:\n${bad.map((r) => `  ${r.mutation.id} on ${r.backend}: ${r.outcome} (${r.by})`).join('\n')}`);
      return 1;
    }
    return 0;
  } finally {
    cluster?.destroy();
    for (const dir of copies) rmSync(dir, { recursive: true, force: true });
  }
}

/** `work` over `items`, one worker per copy, results in the order of `items`. */
async function inParallel<T, R>(items: T[], copies: string[], work: (item: T, copy: string) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    copies.map(async (dir) => {
      for (let i = next++; i < items.length; i = next++) results[i] = await work(items[i]!, dir);
    }),
  );
  return results;
}

/** A copy of what the tests read, with node_modules linked. */
function makeCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tiergate-guarantees-'));
  for (const entry of COPIED) if (existsSync(join(ROOT, entry))) cpSync(join(ROOT, entry), join(dir, entry), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return dir;
}

/** Applies every edit (each text must be found exactly once); returns why it cannot, or null. */
function applyMutation(copy: string, m: Mutation, originals: Map<string, string>): string | null {
  for (const e of m.edits) {
    const path = join(copy, e.file);
    if (!existsSync(path)) return `${e.file} does not exist`;
    const text = readFileSync(path, 'utf8');
    if (!originals.has(e.file)) originals.set(e.file, text);
    const count = text.split(e.find).length - 1;
    if (count !== 1) return `${e.file}: the text to mutate is found ${count} times (expected once): restate the mutation for the current code`;
    writeFileSync(path, text.replace(e.find, () => e.replace));
  }
  return null;
}

/** vitest on a test selection, one backend (with `bail`, stopping at the first failing test). */
function runVitest(copy: string, tests: Mutation['tests'], backend: Backend, env: Record<string, string>, bail: boolean): Promise<VitestRun> {
  const report = join(copy, `.vitest-${process.pid}-${Date.now()}.json`);
  const args = ['vitest', 'run', ...tests.files, '--reporter=json', `--outputFile=${report}`, '-t', tests.names];
  if (bail) args.push('--bail=1');
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(copy, 'node_modules', '.bin', 'vitest'), ...args.slice(1)], {
      cwd: copy,
      env: { ...process.env, ...env, TIERGATE_TEST_BACKENDS: backend, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      let failed: string[] = [];
      let passed = 0;
      try {
        const json = JSON.parse(readFileSync(report, 'utf8')) as { testResults: { name: string; status: string; message?: string; assertionResults: { fullName: string; status: string }[] }[] };
        for (const file of json.testResults) {
          const rel = relative(copy, file.name);
          for (const a of file.assertionResults) {
            if (a.status === 'failed') failed.push(`${rel} › ${a.fullName}`);
            if (a.status === 'passed') passed++;
          }
          if (file.status === 'failed' && !file.assertionResults.some((a) => a.status === 'failed')) failed.push(`${rel}: ${(file.message ?? 'failed to load').split('\n')[0]}`);
        }
        rmSync(report, { force: true });
      } catch {
        failed = code === 0 ? [] : [`vitest exit ${code}: ${lastLine(output)}`];
      }
      resolve({ failed, passed, code, output });
    });
  });
}

function lastLine(text: string): string {
  return text.trim().split('\n').filter(Boolean).at(-1)?.slice(0, 200) ?? '';
}

function renderTable(rows: Row[], seconds: number): string {
  const killed = rows.filter((r) => r.outcome === 'killed').length;
  const lines = [
    `${killed} of ${rows.length} mutation runs killed (${new Set(rows.map((r) => r.mutation.id)).size} mutations, ${Math.round(seconds)} s)`,
    '',
    '| guarantee | mutation | backend | killed by |',
    '|---|---|---|---|',
    ...rows.map((r) => `| ${r.mutation.guarantee} | \`${r.mutation.id}\`: ${r.mutation.name} | ${r.backend} | ${r.outcome === 'killed' ? esc(r.by) : `**${r.outcome.toUpperCase()}**: ${esc(r.by)}`} |`),
  ];
  return lines.join('\n');
}

function esc(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`test:guarantees: ${(e as Error).message}`);
    process.exit(2);
  },
);
