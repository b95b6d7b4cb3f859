import { join, relative, resolve } from 'node:path';
import { InterruptedError, UsageError } from '../../errors.js';
import type { FleetSpec } from '../../fleet/targets.js';
import type { FleetEvent, RolloutRow, TargetRow } from '../../fleet/rollout.js';
import { stateWord, targetSeconds, waveSummaries, type FleetSnapshot, type StepRow } from '../../fleet/report.js';
import type { Control } from '../../fleet/control.js';
import { confirm, planOf } from '../common.js';
import type { Outcome } from '../exit-code.js';
import type { Output } from '../output.js';
import { plural, table } from '../table.js';

export interface FleetOpts {
  targets?: string;
  plan?: string;
  scratch?: string;
  control?: string;
  workers?: string;
  out?: string;
  rollout?: string;
  yes?: boolean;
  json?: boolean;
}

async function loadFleet(opts: FleetOpts): Promise<FleetSpec> {
  if (!opts.targets) throw new UsageError('no targets: pass --targets FILE (a YAML file listing the databases and the waves; README: Fleet)');
  const { readFleetFile, resolveFleet } = await import('../../fleet/targets.js');
  return resolveFleet(await readFleetFile(opts.targets));
}

function whole(flag: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${flag} must be a whole number from ${min} to ${max} (got '${value}')`);
  return n;
}

/** `tiergate fleet plan --targets FILE [--plan DIR] [--json]`: the waves, their targets, and what apply would do on each (a dry run per target, nothing written). */
export async function fleetPlanCommand(opts: FleetOpts, out: Output): Promise<Outcome> {
  const plan = await planOf(opts);
  const spec = await loadFleet(opts);
  const { dryRun } = await import('../../engine/dry-run.js');
  const { LOCK_WAIT_MS } = await import('../../fleet/run-target.js');
  const { fleetPasswordMessage } = await import('../../fleet/targets.js');
  const { withDb } = await import('../../db/open-db.js');
  const dry = new Map<string, string>();
  const results: Record<string, unknown> = {};
  // which database each target is, as the server tells it: one database under two URLs the targets file cannot tell
  // apart (a socket and a TCP address, a host alias) is found here (the cluster's id and start, the database's oid)
  const databaseKey = new Map<string, string>();
  // a few targets at a time: a dry run only reads
  const queue = [...spec.targets];
  await Promise.all(
    Array.from({ length: Math.min(spec.concurrency.total, queue.length) }, async () => {
      for (let t = queue.shift(); t; t = queue.shift()) {
        try {
          const d = await withDb(
            t.url,
            async (db) => {
              const which = await db
                .query<{ k: string }>(`select concat_ws('/', pg_postmaster_start_time()::text, (select oid from pg_database where datname = current_database())::text) as k`)
                .then((r) => r.rows[0]!.k, () => null);
              const result = await dryRun(db, spec.planDatabase === 'from_targets' ? { ...plan, database: undefined } : plan);
              if (which !== null) databaseKey.set(t.name, `${result.identity.systemIdentifier ?? ''}/${result.identity.instance ?? ''}/${which}`);
              return result;
            },
            { applicationName: `tiergate fleet plan ${t.name} (dry run)` },
          );
          const would = d.tiers.filter((x) => x.action === 'apply').map((x) => x.id);
          const blocked = d.tiers.filter((x) => x.action === 'block');
          const stop = d.tiers.find((x) => x.action === 'stop');
          // a closed gate makes the target's rehearsal NO-GO, and fleet apply then writes nothing to it, its structure tiers included
          const noGo = blocked.length > 0 && d.gate !== null && !d.gate.open;
          // what else the apply step would meet: another run's rollout lock (it waits for it, then fails the target), a verify that fails on objects edited by hand
          const besides = [
            ...(d.lockHeldBy ? [`the rollout lock is held by ${d.lockHeldBy}: its apply step would wait up to ${LOCK_WAIT_MS / 60_000} min for it, then fail`] : []),
            ...(d.handEdits ? [`verify would fail unless a tier changes them: ${plural(d.handEdits.edits.length, 'object')} changed outside tiergate (${d.handEdits.edits.slice(0, 3).map((e) => `${e.kind} ${e.name}`).join(', ')}${d.handEdits.edits.length > 3 ? ', …' : ''})`] : []),
          ];
          dry.set(
            t.name,
            (stop
              ? `would not run: ${'reason' in stop ? stop.reason : ''}`
              : noGo
                ? `NO-GO (gate ${d.gate!.name} = ${d.gate!.value ?? 'n/a'}, needs ≥ ${d.gate!.min}): nothing would be applied; with the gate open, ${[...would, ...blocked.map((x) => x.id)].join(', ')}`
                : `${would.length ? `would apply ${would.join(', ')}` : 'nothing to apply'}${blocked.length ? `; would block ${blocked.map((x) => x.id).join(', ')}` : ''}`) +
              besides.map((b) => `; ${b}`).join(''),
          );
          results[t.name] = { ok: true, tiers: d.tiers, gate: d.gate, drift: d.drift, lockHeldBy: d.lockHeldBy, handEdits: d.handEdits, preflight: d.preflight?.status === 'Failed' ? (d.preflight.error?.message ?? d.preflight.reason) : null };
        } catch (e) {
          const message = fleetPasswordMessage((e as Error).message, t, 'fleet plan', true);
          dry.set(t.name, `cannot be read: ${message.split('\n')[0]}`);
          results[t.name] = { ok: false, error: message };
        }
      }
    }),
  );
  // the first of the file's targets keeps its line; each later one of the same database would not run
  const firstOf = new Map<string, string>();
  for (const t of spec.targets) {
    const key = databaseKey.get(t.name);
    if (key === undefined) continue;
    const first = firstOf.get(key);
    if (first === undefined) {
      firstOf.set(key, t.name);
      continue;
    }
    dry.set(t.name, `would not run: the same database as target '${first}' (the server says so, under another URL): a database is one target — list it once`);
    results[t.name] = { ok: false, error: `the same database as target '${first}'` };
  }
  out.line(`fleet plan: ${plural(spec.targets.length, 'target')} in ${plural(spec.waves.length, 'wave')}; at most ${spec.concurrency.total} at once, ${spec.concurrency.perServer} per server`);
  out.line(
    spec.planDatabase === 'from_targets'
      ? `databases: the ones listed here, whatever their names (plan_database: from_targets)`
      : `databases: each target must be the plan's database${plan.database ? ` '${plan.database}'` : ''} (or a clone of it); tenants named otherwise: set plan_database: from_targets`,
  );
  for (const w of spec.waves) {
    out.line('');
    const budget = w.failureBudget === 0 ? 'no failure allowed' : `up to ${w.failureBudget} may fail`;
    const onError = w.onError === 'stop' ? 'once over it, no further target of the wave starts' : "once over it, the wave's other targets still run";
    out.line(out.paint('bold', `wave ${w.index + 1} '${w.name}': ${plural(w.targets.length, 'target')}; ${budget} (${onError}, and later waves do not start; NO-GO ${w.noGo === 'fail' ? 'counts as a failure' : 'is reported'})`));
    const rows = w.targets.map((t) => ['  ' + t.name, t.shown, Object.entries(t.labels).map(([k, v]) => `${k}=${v}`).join(' '), dry.get(t.name) ?? '']);
    for (const l of table([['  target', 'url', 'labels', 'what apply would do'], ...rows], { max: [24, 48, 30, undefined] })) out.line(l);
  }
  const unreadable = [...dry.values()].filter((v) => v.startsWith('cannot be read')).length;
  const stopped = [...dry.values()].filter((v) => v.startsWith('would not run')).length;
  out.result({ ok: unreadable === 0 && stopped === 0, waves: spec.waves.map((w) => ({ name: w.name, failureBudget: w.failureBudget, onError: w.onError, noGo: w.noGo, targets: w.targets.map((t) => ({ name: t.name, url: t.shown, server: t.server, labels: t.labels, dryRun: results[t.name] })) })), concurrency: spec.concurrency });
  // apply would fail these targets: the plan says so, and exits 1 as apply --dry-run does for a target where apply would stop
  if (unreadable || stopped) {
    const what = [unreadable ? `${plural(unreadable, 'target')} cannot be read` : '', stopped ? `${plural(stopped, 'target')} would not run (drift, a failing preflight, a plan apply refuses)` : '']
      .filter(Boolean)
      .join(', ');
    out.line(out.paint('red', `\n${what}: apply would fail ${unreadable + stopped === 1 ? 'it' : 'them'}; fix what each names before applying`));
  }
  return unreadable || stopped ? 'failed' : 'ok';
}

/** `tiergate fleet apply --targets FILE [--scratch URL] [--control URL] [--workers N] [--out DIR] [--yes] [--json]` */
export async function fleetApplyCommand(opts: FleetOpts, out: Output): Promise<Outcome> {
  const plan = await planOf(opts);
  await (await import('../../engine/rollout.js')).assertPlanRunnable(plan);
  const spec = await loadFleet(opts);
  const scratch = opts.scratch ?? spec.scratch;
  const needsScratch = spec.targets.filter((t) => !t.server.startsWith('pglite:'));
  if (needsScratch.length && !scratch) throw new UsageError(`${plural(needsScratch.length, 'target')} on PostgreSQL (${needsScratch[0]!.name}, …) must be rehearsed on a clone: pass --scratch URL (or scratch: in the targets file), a server where tiergate may create and drop databases`);
  const workers = whole('--workers', opts.workers, 0, 256) ?? spec.concurrency.total;
  const outDir = resolve(opts.out ?? './tiergate-fleet-evidence');
  await confirm(out, opts.yes, `roll out plan '${plan.name}' to ${plural(spec.targets.length, 'target')} in ${plural(spec.waves.length, 'wave')}?`);
  const { openControl } = await import('../../fleet/control.js');
  const fleet = await import('../../fleet/rollout.js');
  const control = await openControl(opts.control, { create: true });
  let stopWork: (() => Promise<void>) | null = null;
  const controller = new AbortController();
  const onSigint = (received: NodeJS.Signals) => {
    out.error('\ntiergate: interrupted — no further step starts, and the running ones stop after their current statement (a tier rolls back, a rehearsal drops its clones). Run the same command again to continue where it stopped.');
    controller.abort(received === 'SIGINT' ? 'Ctrl-C' : received);
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  try {
    const { rollout, resumed, superseded } = await fleet.createOrResume(control, spec, plan, scratch);
    for (const old of superseded ?? []) {
      out.line(out.paint('yellow', `fleet ${old}: unfinished, of other plan or targets files than these: closed as superseded by this rollout (what its targets applied is in their ledgers; this one skips it)`));
    }
    if (resumed) {
      const orphans = await fleet.releaseOrphanedSteps(control, rollout.id);
      out.line(`fleet ${rollout.id}: resuming (started ${rollout.created_at.toISOString?.() ?? rollout.created_at})${orphans ? `; ${plural(orphans, 'step')} of a process that died handed back to the queue` : ''}`);
    } else out.line(`fleet ${rollout.id}: ${plural(spec.targets.length, 'target')}, ${plural(spec.waves.length, 'wave')}, control ${control.shown}`);
    const passwords = new Map(spec.targets.map((t) => [t.name, t.url]));
    if (workers > 0) stopWork = await fleet.work(control, rollout, { plan, out: outDir, concurrency: workers, passwords, scratch, signal: controller.signal });
    else out.line('no worker in this process (--workers 0): the steps wait for `tiergate fleet worker --control …`');
    const printer = livePrinter(out, spec);
    const final = await fleet.coordinate(control, rollout.id, { onEvent: printer.event, signal: controller.signal }).catch((e) => {
      if (controller.signal.aborted) throw new InterruptedError(`interrupted: rollout ${rollout.id} is left running in ${control.shown}; run the same command again to continue`);
      throw e;
    });
    await stopWork?.();
    stopWork = null;
    return await finish(control, final, outDir, out);
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
    // interrupted too: the running steps heard it and stop at their next statement; waiting for them leaves each recorded
    if (stopWork) await stopWork().catch(() => undefined);
    await control.close();
  }
}

/** Writes the fleet report and prints the summary; the outcome: failed when a target failed or a wave stopped, no-go when some target is NO-GO, else ok. */
async function finish(control: Control, final: RolloutRow, outDir: string, out: Output): Promise<Outcome> {
  const fleet = await import('../../fleet/rollout.js');
  const snapshot = (await fleet.readRollout(control, final.id))!;
  const file = await writeFleetReport(control, snapshot, join(outDir, final.id));
  printStatus(out, snapshot);
  const { rolloutLine } = await import('../../fleet/report.js');
  out.line(`report: ${file}`);
  const failed = snapshot.targets.some((t) => t.state === 'failed') || final.state === 'stopped';
  const noGo = snapshot.targets.some((t) => t.state === 'no-go');
  out.line(out.paint(failed ? 'red' : noGo ? 'yellow' : 'green', rolloutLine(snapshot)));
  out.result({ ok: !failed && !noGo, report: file, ...statusJson(snapshot) });
  return failed ? 'failed' : noGo ? 'no-go' : 'ok';
}

async function writeFleetReport(control: Control, s: FleetSnapshot, dir: string): Promise<string> {
  const { renderFleetHtml } = await import('../../fleet/report.js');
  const { prepareOutDir, writeFilesSafely } = await import('../write-file.js');
  const steps = await control.sql<StepRow>(`select target, step, server, worker, started_at, finished_at, outcome from tiergate_fleet.step where rollout = $1 order by id`, [s.rollout.id]);
  // every target's evidence next to the report (a worker on another machine wrote its own copy there)
  const rows = await control.sql<{ name: string; evidence: string | null }>(`select name, evidence from tiergate_fleet.target where rollout = $1 and evidence is not null`, [s.rollout.id]);
  prepareOutDir(dir);
  const { parseEvidence } = await import('../../evidence/evidence-json.js');
  const { renderHtml } = await import('../../report/index.js');
  const links = new Map<string, string>();
  for (const r of rows) {
    const targetDir = join(dir, r.name);
    prepareOutDir(targetDir);
    const files: Record<string, string> = { 'evidence.json': r.evidence! };
    try {
      files['evidence.html'] = renderHtml(parseEvidence(r.evidence!, 'evidence.json'));
      links.set(r.name, `${encodeURIComponent(r.name)}/evidence.html`);
    } catch {
      links.set(r.name, `${encodeURIComponent(r.name)}/evidence.json`);
    }
    await writeFilesSafely(targetDir, files);
  }
  await writeFilesSafely(dir, { 'fleet-report.html': renderFleetHtml(s, steps, (t) => links.get(t) ?? null) });
  return relative(process.cwd(), join(dir, 'fleet-report.html')) || join(dir, 'fleet-report.html');
}

/** On a terminal, the live table (wave, target, state, duration) redrawn in place; elsewhere a line per change of state. */
function livePrinter(out: Output, spec: FleetSpec): { event: (e: FleetEvent) => void } {
  const waveName = new Map(spec.waves.map((w) => [w.index, w.name]));
  const rows = new Map<string, TargetRow>();
  const colourOf = (t: TargetRow) => (t.state === 'applied' ? 'green' : t.state === 'failed' ? 'red' : t.state === 'no-go' || t.state === 'skipped' ? 'yellow' : 'dim');
  return {
    event(e) {
      if (e.type === 'wave' && e.wave) out.line(out.paint('bold', `wave '${e.wave.name}': ${e.wave.state}`));
      if (e.type !== 'target' || !e.target) return;
      const t = e.target;
      rows.set(t.name, t);
      if (out.live) {
        const body = [...rows.values()].map((r) => [waveName.get(r.wave) ?? String(r.wave), r.name, stateWord(r.state), targetSeconds(r), r.error && FINAL.has(r.state) ? r.error : '']);
        const lines = table([['wave', 'target', 'state', 'duration', 'note'], ...body], { max: [16, 24, 16, 10, 80], right: [3] });
        out.block(lines.map((l, i) => (i === 0 ? out.paint('bold', l) : out.paint(colourOf([...rows.values()][i - 1]!), l))));
        return;
      }
      if (t.state === 'planned') return;
      out.line(out.paint(colourOf(t), `  [${waveName.get(t.wave) ?? t.wave}] ${t.name}: ${stateWord(t.state)}${t.finished_at && t.started_at ? ` (${targetSeconds(t)})` : ''}${t.error && FINAL.has(t.state) ? ` — ${t.error}` : ''}`));
    },
  };
}

const FINAL = new Set(['failed', 'no-go', 'skipped']);

function printStatus(out: Output, s: FleetSnapshot): void {
  const waves = new Map(s.waves.map((w) => [w.idx, w.name]));
  out.line('');
  const rows = s.targets.map((t) => [waves.get(t.wave) ?? String(t.wave), t.name, stateWord(t.state), targetSeconds(t), String(t.attempts), (t.applied ?? []).join(','), t.error ?? '']);
  for (const l of table([['wave', 'target', 'state', 'duration', 'step runs', 'applied', 'note'], ...rows], { max: [16, 24, 16, 10, 5, 24, 100], right: [3] })) out.line(l);
  out.line('');
  const sums = waveSummaries(s).map((w) => [w.wave, w.state, String(w.targets), String(w.applied), String(w.noGo), String(w.failed), String(w.skipped)]);
  for (const l of table([['wave', 'state', 'targets', 'applied', 'NO-GO', 'failed', 'not run'], ...sums])) out.line(l);
}

function statusJson(s: FleetSnapshot) {
  return {
    rollout: { id: s.rollout.id, state: s.rollout.state, reason: s.rollout.reason, plan: s.rollout.plan_name, createdAt: s.rollout.created_at, finishedAt: s.rollout.finished_at },
    waves: waveSummaries(s).map(({ wave, state, targets, applied, noGo, failed, skipped }) => ({ name: wave, state, targets, applied, noGo, failed, skipped })),
    targets: s.targets.map((t) => ({ wave: s.waves[t.wave]?.name ?? t.wave, name: t.name, url: t.url, server: t.server, state: t.state, attempts: t.attempts, startedAt: t.started_at, finishedAt: t.finished_at, applied: t.applied ?? [], evidenceSha256: t.evidence_sha256, error: t.error })),
  };
}

/** `tiergate fleet status [--control URL] [--rollout ID] [--json]`: the per-target table and the per-wave summary of the latest (or named) rollout. */
export async function fleetStatusCommand(opts: FleetOpts, out: Output): Promise<Outcome> {
  const { openControl } = await import('../../fleet/control.js');
  const { readRollout } = await import('../../fleet/rollout.js');
  const { rolloutLine } = await import('../../fleet/report.js');
  const control = await openControl(opts.control);
  try {
    const s = await readRollout(control, opts.rollout);
    if (!s) throw new UsageError(opts.rollout ? `no fleet rollout '${opts.rollout}' in ${control.shown}` : `no fleet rollout in ${control.shown} yet: start one with 'tiergate fleet apply --targets FILE'`);
    out.line(`plan ${s.rollout.plan_name}, targets ${s.rollout.targets_file}, control ${control.shown}`);
    printStatus(out, s);
    const failed = s.targets.some((t) => t.state === 'failed') || s.rollout.state === 'stopped';
    out.line(out.paint(failed ? 'red' : s.rollout.state === 'running' ? 'dim' : 'green', rolloutLine(s)));
    const steps = await control.sql<StepRow>(`select target, step, server, worker, started_at, finished_at, outcome from tiergate_fleet.step where rollout = $1 order by id`, [s.rollout.id]);
    out.result({ ok: !failed, ...statusJson(s), steps });
    return failed ? 'failed' : 'ok';
  } finally {
    await control.close();
  }
}

/** `tiergate fleet report [--control URL] [--rollout ID] [--out DIR]`: the HTML fleet report (and each target's evidence) written again. */
export async function fleetReportCommand(opts: FleetOpts, out: Output): Promise<Outcome> {
  const { openControl } = await import('../../fleet/control.js');
  const { readRollout } = await import('../../fleet/rollout.js');
  const control = await openControl(opts.control);
  try {
    const s = await readRollout(control, opts.rollout);
    if (!s) throw new UsageError(`no fleet rollout in ${control.shown}${opts.rollout ? ` named '${opts.rollout}'` : ''}`);
    const file = await writeFleetReport(control, s, join(resolve(opts.out ?? './tiergate-fleet-evidence'), s.rollout.id));
    out.line(`report: ${file}`);
    out.result({ ok: true, report: file });
    return 'ok';
  } finally {
    await control.close();
  }
}

/** `tiergate fleet worker --control URL [--plan DIR] [--workers N] [--out DIR]`: runs steps of every running rollout on that control database until Ctrl-C. */
export async function fleetWorkerCommand(opts: FleetOpts, out: Output): Promise<Outcome> {
  if (!opts.control || !/^postgres(ql)?:\/\//i.test(opts.control)) throw new UsageError('a worker on another machine (or process) shares a control database: pass --control postgres://… (the embedded PGlite control serves one process only)');
  const plan = await planOf(opts);
  const concurrency = whole('--workers', opts.workers, 1, 256) ?? 2;
  const outDir = resolve(opts.out ?? './tiergate-fleet-evidence');
  const { openControl } = await import('../../fleet/control.js');
  const fleet = await import('../../fleet/rollout.js');
  const control = await openControl(opts.control);
  const working = new Map<string, () => Promise<void>>();
  // a rollout this worker cannot work on yet (another plan, a queue being made): said once, tried again each second
  const said = new Map<string, string>();
  let stop = false;
  // every rollout it worked on: its one result object (--json) names them
  const workedOn = new Set<string>();
  const stopped = (atOnce: boolean) =>
    out.result({ ok: false, outcome: 'interrupted', worker: process.pid, control: control.shown, rollouts: [...workedOn], runningStepsFinished: !atOnce });
  const onSigint = () => {
    out.error('\ntiergate: stopping the worker: running steps finish first (Ctrl-C again to exit at once; pg-boss gives a step whose worker died to another one)');
    if (stop) {
      stopped(true);
      process.exit(130);
    }
    stop = true;
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  out.line(`worker ${process.pid}: control ${control.shown}, plan ${plan.name} (${plan.sha256.slice(0, 12)}), ${plural(concurrency, 'step')} at once`);
  try {
    while (!stop) {
      const running = await control.sql<RolloutRow>(`select * from tiergate_fleet.rollout where state = 'running' order by created_at`);
      for (const r of running) {
        if (working.has(r.id)) continue;
        try {
          working.set(r.id, await fleet.work(control, r, { plan, out: outDir, concurrency }));
          workedOn.add(r.id);
          out.line(`working on rollout ${r.id} (${r.plan_name})`);
        } catch (e) {
          const message = (e as Error).message;
          if (said.get(r.id) !== message) out.error(`tiergate: rollout ${r.id}: ${message}${e instanceof UsageError ? '' : ' (trying again)'}`);
          said.set(r.id, message);
        }
      }
      for (const [id, off] of working) {
        if (!running.some((r) => r.id === id)) {
          await off();
          working.delete(id);
          out.line(`rollout ${id} ended`);
        }
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    for (const off of working.values()) await off();
    stopped(false);
    return 'interrupted';
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
    await control.close();
  }
}
