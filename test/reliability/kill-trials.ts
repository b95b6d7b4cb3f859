/**
 * One kill trial: a fresh copy of a template, a `tiergate apply` (or
 * `rollback`) that is stopped at a chosen moment by a chosen fault, then the
 * judgement: the process ended the way it should, no tier is partly applied
 * (the ledger names a reachable state and the fingerprint is exactly that
 * state's), and the next `apply` completes.
 */
import { consistency, runCli, sleep, startCli, STACK_LINE, stateKey, trialDb, waitBackendsGone, type CliHandle, type CliRun, type TrialDb } from './harness.js';

export const HOOK_STEPS = ['tier-begin', 'tier-script-done', 'tier-before-commit', 'tier-committed'] as const;
export type HookStep = (typeof HOOK_STEPS)[number];

/** When the fault strikes: at a test-hook step of a tier, or a delay after the run connected. */
export type Moment = { hook: HookStep; tier: number } | { afterMs: number };

export interface Fault {
  name: string;
  /**
   * strikes the running CLI (and, for server faults, the server); 'missed'
   * when there was nothing left to strike (the run had already closed its
   * session on its way out): the trial then counts as a run the fault came too
   * late for, judged like one
   */
  strike(cli: CliHandle, db: TrialDb): Promise<void | 'missed'>;
  /** what the CLI's end must look like after this fault; [] when fine */
  judgeExit(run: CliRun, struck: boolean): string[];
}

export interface TrialOptions {
  template: string;
  command: 'apply' | 'rollback';
  moment: Moment;
  fault: Fault;
  /** the state key the ledger must name afterwards, when the moment makes it certain */
  expectKey?: string;
  /** the state after a complete recovery `apply` */
  finalKey: string;
  /** makes trial databases (default: the campaign's cluster) */
  newDb?: (template: string) => Promise<TrialDb>;
  /** how long a killed client's backend may linger */
  backendGoneMs?: number;
  /** how long the CLI waits at the hook (the fault strikes meanwhile); default 30 s, for SIGKILL */
  hookWaitMs?: number;
  /** more environment for the faulted run (e.g. TIERGATE_PLAN) */
  env?: Record<string, string>;
  /** the faulted run's hard timeout (default 90 s): past it, it counts as hung */
  hardTimeoutMs?: number;
  /** runs once the struck run's sessions are gone, before the database is judged (a proxy heals here) */
  beforeCheck?: () => void;
  /** judges the run's output against the database after the fault ([] when fine) */
  judgeAfter?: (run: CliRun, key: string) => string[];
}

export interface TrialOutcome {
  problems: string[];
  /** ms until the struck run's sessions were gone */
  lingerMs: number;
  /** did the fault strike before the run ended on its own */
  struck: boolean;
  key: string;
}

/** "already applied" / "Applied" lines of the CLI's tier list: the tiers it reported as committed. */
export function reportedApplied(stdout: string): number[] {
  return [...stdout.matchAll(/^\s*(\d+)\s{2}.*\s(Applied|Reverted)\s/gm)].filter((m) => m[2] === 'Applied').map((m) => Number(m[1]));
}

export async function killTrial(o: TrialOptions): Promise<TrialOutcome> {
  const db = await (o.newDb ?? ((t) => trialDb(t, 'kill')))(o.template);
  const problems: string[] = [];
  let lingerMs = 0;
  let struck = false;
  let key = '';
  try {
    const hookEnv: Record<string, string> =
      'hook' in o.moment ? { TIERGATE_TEST_HOOK: `${o.moment.hook}:${o.moment.tier}`, TIERGATE_TEST_HOOK_WAIT_MS: String(o.hookWaitMs ?? 30_000) } : {};
    const cli = startCli([o.command, '--yes', '--target', db.url], { env: { ...hookEnv, ...o.env }, timeoutMs: o.hardTimeoutMs ?? 90_000 });
    try {
      if ('hook' in o.moment) await cli.waitFor(new RegExp(`tiergate-test-hook ${o.moment.hook}:${o.moment.tier}\\b`), 60_000);
      else {
        await cli.waitFor(new RegExp(`^${o.command} \\S+ → `, 'm'), 60_000);
        await sleep(o.moment.afterMs);
      }
      if (cli.child.exitCode === null && cli.child.signalCode === null) {
        struck = (await o.fault.strike(cli, db)) !== 'missed';
      }
    } catch (e) {
      problems.push(`could not reach the moment: ${(e as Error).message}`);
      cli.kill();
    }
    const run = await cli.done;
    problems.push(...o.fault.judgeExit(run, struck));
    if (run.signal === null && STACK_LINE.test(run.stdout + run.stderr)) problems.push('a stack trace was printed');

    lingerMs = await waitBackendsGone(db.name, o.backendGoneMs ?? 15_000, db.adminUrl ?? db.url.replace(`/${db.name}?`, '/postgres?')).catch((e: Error) => {
      problems.push(e.message);
      return -1;
    });
    o.beforeCheck?.();
    const after = await consistency(db.url);
    key = after.key;
    problems.push(...after.problems);
    if (o.expectKey !== undefined && struck && after.key !== o.expectKey) {
      problems.push(`after the fault the ledger says [${after.key}] is applied, expected [${o.expectKey}]`);
    }
    problems.push(...(o.judgeAfter?.(run, after.key) ?? []));
    // exit 0 says the run did it all: after a fault that is only true if the fault came too late to matter
    if (run.code === 0 && o.command === 'apply' && after.key !== o.finalKey) problems.push(`exit 0, but the ledger says only [${after.key}] is applied`);
    const committed = reportedApplied(run.stdout);
    const lost = committed.filter((id) => !after.key.split(',').includes(String(id)) && o.command === 'apply');
    if (lost.length) problems.push(`tier ${lost.join(', ')} was reported Applied but is not in the ledger`);

    // the next apply completes
    const next = await runCli(['apply', '--yes', '--target', db.url], { timeoutMs: 90_000 });
    if (next.code !== 0) problems.push(`the next apply exited ${next.code}: ${(next.stderr || next.stdout).trim().split('\n').slice(-3).join(' / ')}`);
    const final = await consistency(db.url);
    problems.push(...final.problems.map((p) => `after the next apply: ${p}`));
    if (final.key !== o.finalKey) problems.push(`after the next apply the ledger says [${final.key}], expected [${o.finalKey}]`);
  } finally {
    await db.drop().catch(() => undefined);
  }
  return { problems, lingerMs, struck, key };
}

/** SIGKILL of the CLI process: it must die by the signal, nothing else to judge. */
export const sigkill: Fault = {
  name: 'SIGKILL',
  async strike(cli) {
    cli.kill('SIGKILL');
  },
  judgeExit(run, struck) {
    // exit 0: the run had finished when the signal came (killTrial checks that the ledger then holds every tier)
    if (run.code === 0 && run.signal === null) return [];
    if (!struck) return [`ended on its own with exit ${run.code}`];
    return run.signal === 'SIGKILL' ? [] : [`expected death by SIGKILL, got exit ${run.code} signal ${run.signal}`];
  },
};

/** The state keys of an apply in plan order: before tier k, and after it. */
export function prefixKeys(order: number[], tier: number): { before: string; after: string } {
  const i = order.indexOf(tier);
  return { before: stateKey(order.slice(0, i)), after: stateKey(order.slice(0, i + 1)) };
}

/** A faulted run must end with exit 1 and a message about the connection (or 0 if it finished first). */
export function judgeConnectionLoss(run: CliRun, struck: boolean): string[] {
  const text = run.stdout + '\n' + run.stderr;
  if (run.signal) return [`died by signal ${run.signal}${/hard timeout/.test(run.stderr) ? ' (hung: killed after its hard timeout)' : ''}`];
  if (run.code === 0) return [];
  if (!struck) return [`ended on its own with exit ${run.code}`];
  const problems: string[] = [];
  if (run.code !== 1) problems.push(`expected exit 1 after losing the connection, got ${run.code}: ${run.stderr.trim().split('\n').slice(-2).join(' / ')}`);
  if (!/connection|terminat|server closed|shut ?down|ECONNRESET|EPIPE|socket/i.test(text)) problems.push(`no message about the connection: ${text.trim().split('\n').slice(-3).join(' / ')}`);
  return problems;
}
