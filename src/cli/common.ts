/** What the command modules share: the plan and target options, confirmation, Ctrl-C, the tier list and run summary. */
import { createInterface } from 'node:readline/promises';
import type { Db } from '../db/port.js';
import type { EngineEvent, RunResult } from '../engine/run-result.js';
import type { GateReading, TierResult } from '../engine/result.js';
import { GATE_UNREAD_FIX } from '../evidence/types.js';
import { DeclinedError, LockHeldError, UsageError } from '../errors.js';
import { openPlan } from '../plan/open-plan.js';
import { parseDuration } from '../parse-duration.js';
import { waitInterrupted } from './open-target.js';
import type { Plan } from '../plan/plan.js';
import { renderTierLine, renderTierStart } from '../report/render-terminal.js';
import type { Output } from './output.js';
import { singleLine } from '../text.js';
import { table } from './table.js';
import { removeLeftFolders, stopLeftChildren } from '../exit-cleanup.js';

/** `--plan DIR` (or TIERGATE_PLAN): the plan, validated; the bundled plan when left out. */
export async function planOf(opts: { plan?: string; planDatabase?: string }): Promise<Plan> {
  // an empty --plan (or TIERGATE_PLAN) is a mistake, not a request for the bundled plan
  if (opts.plan !== undefined && String(opts.plan).trim() === '') throw new UsageError("--plan (or TIERGATE_PLAN) is empty: pass a plan folder (one holding tiergate.yaml), or leave --plan out for the bundled plan");
  const plan = opts.plan ? await openPlan(String(opts.plan)) : await openPlan();
  // --plan-database: this database is the plan's here (a fleet's tenant named otherwise); the files, and so the evidence's plan hashes, are the same
  if (opts.planDatabase !== undefined) {
    const name = String(opts.planDatabase).trim();
    if (!name) throw new UsageError('--plan-database (or TIERGATE_PLAN_DATABASE) is empty: pass the name of the database the plan is for on this target');
    return { ...plan, database: name };
  }
  return plan;
}

/**
 * The plan of a command that reads or writes a target outside a rollout
 * (status, verify, log, approve, scan, propose): refused (exit 2) before
 * anything connects when its own queries in tiergate.yaml do not parse or
 * are not each one query that only reads (lint's `plan-query`); a rollout
 * refuses it with the rest of lint's errors.
 */
export async function checkedPlanOf(opts: { plan?: string; planDatabase?: string }): Promise<Plan> {
  const plan = await planOf(opts);
  const { assertPlanQueries } = await import('../engine/preflight.js');
  await assertPlanQueries(plan);
  return plan;
}

/** `--target URL` (or TIERGATE_TARGET). */
export function targetOf(opts: { target?: string }): string {
  const t = opts.target;
  if (typeof t !== 'string' || !t) throw new UsageError('no target: pass --target URL (postgres://user@host:port/database or pglite:DIR), or set TIERGATE_TARGET');
  return t;
}

/** A duration option (`--wait 2m`, `--max-evidence-age 7d`) in milliseconds. */
export function durationOption(flag: string, value: string | undefined, parse: (v: string) => number | null): number | undefined {
  if (value === undefined) return undefined;
  const ms = parse(value);
  if (ms === null) throw new UsageError(`${flag} ${value}: expected a duration with its unit, such as 30s, 5min, 2h, 7d`);
  return ms;
}

/**
 * Asks before a change: `--yes` skips the question; without a terminal (or
 * with --json) a change is refused without it. Answering anything but yes is
 * a DeclinedError (exit 5): nothing was changed.
 */
export async function confirm(out: Output, yes: boolean | undefined, question: string): Promise<void> {
  if (yes) return;
  if (!process.stdin.isTTY || out.json) {
    throw new UsageError(`${question} — refusing without confirmation: pass --yes to run non-interactively`);
  }
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    const answer = await rl.question(`${question} [y/N] `);
    if (!/^y(es)?$/i.test(answer.trim())) throw new DeclinedError('declined: nothing was changed');
  } finally {
    rl.close();
  }
}

/**
 * Ctrl-C (or SIGTERM, SIGHUP) during a run: the first one asks the run to
 * stop (the running tier rolls back, no further tier starts, clones are
 * dropped) and the command reports what state it left; a second one exits
 * at once (exit 130): the server ends the statement it was running within
 * 2 s (client_connection_check_interval) and rolls its transaction back.
 */
export async function interruptible<T>(out: Output, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onSigint = (received: NodeJS.Signals) => {
    if (controller.signal.aborted) {
      // (exit 130 whatever the cleanup meets: a throw in a signal handler would end the process with exit 1)
      try {
        const stopped = stopLeftChildren();
        const removed = removeLeftFolders();
        const message = `interrupted again — exited at once; the server ends the running statement and rolls back its transaction within seconds (once it sees the connection gone)${
          stopped ? `; ${stopped === 1 ? 'its client tool (pg_dump or pg_restore) stopped' : `${stopped} client tools (pg_dump, pg_restore) stopped`}` : ''
        }${removed ? `; ${removed} temporary folder${removed === 1 ? '' : 's'} removed (clones, dump files)` : ''}`;
        out.error(`tiergate: ${message}`);
        out.result({ ok: false, error: { kind: 'interrupted', message } });
      } finally {
        process.exit(130);
      }
    }
    out.error(
      "\ntiergate: interrupted — stopping after the current statement: on a server a tier's statement is cancelled now, tiergate's own reads end within the plan's timeouts, on PGlite the statement finishes first (a tier under way rolls back; a rehearsal drops its clones); Ctrl-C again to exit at once",
    );
    // what stopped the run, as the records say it (a service manager's SIGTERM is no Ctrl-C)
    controller.abort(received === 'SIGINT' ? 'Ctrl-C' : received);
  };
  // SIGTERM (a service manager, kill) and SIGHUP (the terminal closed) stop a run as Ctrl-C does, not in the middle of it
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const s of signals) process.on(s, onSigint);
  try {
    return await fn(controller.signal);
  } catch (e) {
    // Ctrl-C while waiting for another run's lock (--wait): the run was interrupted, not refused, and touched nothing
    if (controller.signal.aborted && e instanceof LockHeldError) {
      throw waitInterrupted(e);
    }
    throw e;
  } finally {
    for (const s of signals) process.off(s, onSigint);
  }
}

/**
 * `--wait DURATION` of a command that only reads: how long to wait for a PGlite
 * folder another process holds (exit 4 without it), and the notice shown when
 * the wait begins.
 */
export function readerWait(opts: { wait?: string }, out: Output): { waitMs?: number; onWait: (held: LockHeldError, waitMs: number) => void } {
  return { waitMs: durationOption('--wait', opts.wait, parseDuration), onWait: waitNotice(out) };
}

/** `--wait`: tells the operator, once, that the run waits for another one's lock and for how long at most. */
export function waitNotice(out: Output): (held: LockHeldError, waitMs: number) => void {
  return (held, waitMs) => out.error(`tiergate: waiting up to ${Math.round(waitMs / 1000)} s for ${held.subject}, held by another run (${held.holder}); Ctrl-C to stop waiting`);
}

/**
 * `--wait` on a server: when another run holds the plan's rollout lock now,
 * says so before the engine waits for it (the engine waits in silence).
 * Called inside `interruptible`, so a Ctrl-C in answer to it stops the wait.
 */
export async function noticeRolloutWait(db: Db, plan: string, waitMs: number | undefined, out: Output): Promise<void> {
  if (!waitMs) return;
  const { rolloutLockHolder } = await import('../engine/rollout-lock.js');
  const holder = await rolloutLockHolder(db, plan).catch(() => null);
  if (holder) waitNotice(out)(new LockHeldError(`the rollout lock of plan '${plan}' on ${db.displayUrl}`, holder), waitMs);
}

/** The live tier list of apply and rollback. */
export function tierPrinter(out: Output): (e: EngineEvent) => void {
  return (e) => {
    if (e.phase === 'start') out.pending(out.paint('dim', renderTierStart('', e.tier)));
    else out.replace(colourLine(out, renderTierLine('', e.result), e.result));
  };
}

/** A tier line's colour: red failed, yellow blocked (or an expected failure), green applied or passed, dim skipped. */
export function colourLine(out: Output, line: string, t: Pick<TierResult, 'status' | 'expectedOutcome'>): string {
  const c = t.expectedOutcome ? 'yellow' : t.status === 'Failed' ? 'red' : t.status === 'Blocked' ? 'yellow' : t.status === 'Applied' || t.status === 'Passed' ? 'green' : 'dim';
  return out.paint(c, line);
}

/** Every failure with its place, SQL line and what it left behind; then the run's outcome in one line. */
export function printRunSummary(r: RunResult, out: Output, whenClosed?: string): void {
  for (const t of r.tiers) {
    if (t.error && t.status === 'Failed') {
      const f = t.error;
      out.line('');
      out.line(out.paint('red', `tier ${t.id} '${t.name}' failed${f.file ? ` at ${f.file}${f.line ? `:${f.line}${f.column ? `:${f.column}` : ''}` : ''}` : ''}:`));
      out.line(`  ${f.sqlstate ? `ERROR ${f.sqlstate}: ` : ''}${singleLine(f.message)}`);
      if (f.detail) out.line(`  DETAIL: ${singleLine(f.detail)}`);
      if (f.hint) out.line(`  HINT: ${singleLine(f.hint)}`);
      if (f.excerpt && f.line) out.line(`  ${String(f.line).padStart(5)} | ${f.excerpt}`);
      for (const a of t.failedAssertions?.slice(1) ?? []) out.line(`  also: ${singleLine(a.message)}${a.line ? ` (${a.file}:${a.line})` : ''}`);
      if (t.differences?.length) printDifferences(out, t.differences);
      if (t.kind !== 'verify' && t.kind !== 'preflight') {
        // 08007: the connection broke while COMMIT was on its way and nobody could tell what the server did
        out.line(
          f.sqlstate === '08007'
            ? "  whether the tier committed is unknown: 'tiergate status' shows the ledger, which has its row exactly when it did"
            : f.sqlstate === '08003'
              ? '  the tier did not start: nothing of it was committed; run again to continue'
              : '  the tier was rolled back: nothing of it was committed',
        );
      }
    } else if (t.status === 'Applied' && t.differences?.length) {
      out.line(out.paint('yellow', `tier ${t.id}: committed with differences from the rehearsal (--accept-differences), recorded in the ledger:`));
      printDifferences(out, t.differences);
    }
    const missed = (t.expectations ?? []).filter((x) => !x.ok);
    if (missed.length) out.line(out.paint('yellow', `tier ${t.id}: differs from the plan's expectations: ${missed.map((m) => `${m.what} expected ${m.expected}, got ${m.actual}`).join('; ')}`));
  }
  const gate = r.gate ? `${r.gate.name}=${r.gate.value ?? 'n/a'}` : '';
  out.line('');
  if (r.outcome === 'interrupted') out.line(out.paint('yellow', `${r.command}: INTERRUPTED — ${runError(r)!.message}`));
  else if (r.outcome === 'failed') out.line(out.paint('red', `${r.command}: FAILED`));
  else if (r.outcome === 'no-go') {
    out.line(out.paint('yellow', `${r.command}: NO-GO (${gate}) — gated tiers are blocked until the gate opens (needs ≥ ${r.gate?.min ?? 1})`));
    if (r.gate?.unread) out.line(out.paint('yellow', `  ${gateUnreadLine(r.gate.unread)}`));
    for (const line of approvalLines(r.gate)) out.line(line);
    if (whenClosed) out.line(out.paint('yellow', `  ${whenClosed}`));
  } else out.line(out.paint('green', `${r.command}: OK${gate ? ` (${gate})` : ''}`));
}

/**
 * What stopped a run, for its --json result (`error`, as every other failure
 * has it): an interruption with what it left, or the first failed tier;
 * null for a run that ended (ok, or no-go).
 */
export function runError(r: RunResult): { kind: 'interrupted' | 'failed'; message: string } | null {
  if (r.outcome === 'interrupted') {
    // only what happened: a tier that committed before the Ctrl-C took effect is not said to have rolled back
    const applied = r.tiers.filter((t) => t.status === 'Applied').map((t) => t.id);
    const rolledBack = r.tiers.filter((t) => t.status === 'Failed' && t.kind !== 'verify' && t.kind !== 'preflight');
    const running = rolledBack.length ? `tier ${rolledBack.map((t) => t.id).join(', ')}, which was running, rolled back` : 'no tier was running';
    return { kind: 'interrupted', message: `${applied.length ? `tier ${applied.join(', ')} committed before the interruption` : 'no tier was committed'}; ${running}. Run ${r.command} again to continue.` };
  }
  if (r.outcome !== 'failed') return null;
  const t = r.tiers.find((x) => x.status === 'Failed');
  if (!t) return { kind: 'failed', message: `${r.command} failed` };
  const where = t.error?.file ? ` at ${t.error.file}${t.error.line ? `:${t.error.line}` : ''}` : '';
  return { kind: 'failed', message: `tier ${t.id} '${t.name}' failed${where}: ${t.error ? `${t.error.sqlstate ? `${t.error.sqlstate} ` : ''}${singleLine(t.error.message)}` : (t.reason ?? 'failed')}` };
}

/** A gate that reads no value (`GateReading.unread`): why, and what helps — approvals do not. */
export function gateUnreadLine(unread: string): string {
  return `the gate reads no value, so no approval can open it: ${singleLine(unread)} — ${GATE_UNREAD_FIX}`;
}

/**
 * What an approval approves, as a line shows it: a payload's hash cut to 12
 * digits (`payload 0bd6e2f1a9c4…`), any other subject (a proposal's key,
 * where the plan's gate has no `subject`) as it is.
 */
export function subjectLabel(subject: string): string {
  return /^[0-9a-f]{32,}$/i.test(subject) ? `payload ${subject.slice(0, 12)}…` : `'${singleLine(subject).slice(0, 80)}'`;
}

/** Each approval of the gate: who approved which payload and when, and why one does not count. */
export function approvalLines(gate: GateReading | null): string[] {
  if (!gate?.approvals) return [];
  // a gate that reads nothing (its query fails here: a dropped column, no proposal tables) says why on its own line;
  // its approvals are not known to be none
  if (!gate.approvals.length) return gate.value === null ? [] : ['  no approvals yet'];
  return gate.approvals.map((a) => {
    const what = `${a.approver} approved ${a.subject ? subjectLabel(a.subject) : 'it'}${a.at ? ` at ${a.at.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}` : ''}`;
    return a.counts ? `  ✓ ${what}` : `  ✗ ${what}: does not count — ${a.why}`;
  });
}

/** Rehearsal and production side by side. */
export function printDifferences(out: Output, differences: NonNullable<TierResult['differences']>): void {
  const rows = [['', 'rehearsal', 'production'], ...differences.map((d) => [singleLine(d.what), singleLine(d.rehearsal), singleLine(d.production)])];
  for (const line of table(rows, { max: [40, 60, 60] })) out.line(`    ${line}`);
}
