/**
 * A fleet rollout on pg-boss. The coordinator (`fleet apply`) decides what
 * may start: the waves in order, each only after the previous one met its
 * rule, at most `total` targets in flight; it sends each step as a pg-boss
 * job grouped by the server the step writes to (the scratch server for a
 * rehearsal, the target's server for an apply), so pg-boss's group
 * concurrency keeps at most `per_server` steps on any server, across every
 * worker. Workers (in the coordinator's process, and `fleet worker` on other
 * machines) run the steps; pg-boss retries a step whose worker died (its
 * heartbeat stops). Every state lives in the control database: killing any
 * process and running the same command again continues where it stopped,
 * and a target's ledger decides what remains of a step that died mid-tier.
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { Job } from 'pg-boss';
import { ConnectionError, DriftError, EvidenceRefusedError, PlanError, TargetError, UsageError } from '../errors.js';
import type { Plan } from '../plan/plan.js';
import { scrub, withPassword } from '../secrets.js';
import { heartbeatSeconds, type Control } from './control.js';
import { fleetPasswordMessage, serverOf, withoutPassword, type FleetSpec } from './targets.js';

export type TargetState =
  | 'planned'
  | 'rehearse-queued'
  | 'rehearsing'
  | 'rehearsed'
  | 'apply-queued'
  | 'applying'
  | 'applied'
  | 'no-go'
  | 'failed'
  | 'skipped';

export const FINAL_STATES: ReadonlySet<TargetState> = new Set(['applied', 'no-go', 'failed', 'skipped']);
const IN_FLIGHT: ReadonlySet<TargetState> = new Set(['rehearse-queued', 'rehearsing', 'rehearsed', 'apply-queued', 'applying']);

export interface TargetRow {
  rollout: string;
  name: string;
  ord: number;
  wave: number;
  url: string;
  password_env: string | null;
  server: string;
  labels: Record<string, string>;
  state: TargetState;
  attempts: number;
  worker: string | null;
  started_at: Date | null;
  finished_at: Date | null;
  rehearsal: string | null;
  execution: string | null;
  applied: number[] | null;
  evidence_sha256: string | null;
  error: string | null;
}

export interface WaveRow {
  rollout: string;
  idx: number;
  name: string;
  failure_budget: number;
  on_error: 'stop' | 'continue';
  no_go: 'report' | 'fail';
  state: 'waiting' | 'running' | 'stopping' | 'succeeded' | 'failed' | 'not started';
  started_at: Date | null;
  finished_at: Date | null;
}

export interface RolloutRow {
  id: string;
  key: string;
  plan_name: string;
  plan_sha256: string;
  targets_file: string;
  targets_sha256: string;
  scratch: string | null;
  total: number;
  per_server: number;
  plan_database: 'plan' | 'from_targets';
  state: 'running' | 'completed' | 'stopped';
  reason: string | null;
  created_at: Date;
  finished_at: Date | null;
}

interface StepData {
  rollout: string;
  target: string;
  step: 'rehearse' | 'apply';
}

/** The pg-boss queue of one rollout. */
export function queueOf(rollout: string): string {
  return `tiergate-fleet-${rollout}`;
}

/** A step's job id: the same step of the same target is the same job, so a coordinator that sends it twice (it died between sending and recording) sends it once. */
export function jobId(rollout: string, target: string, step: string): string {
  const h = createHash('sha256').update(`${rollout}\0${target}\0${step}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * The unfinished rollout of this plan and targets file (same files, same
 * control database), or a new one. Returns its id, whether it resumed, and
 * the unfinished rollouts of other versions of the same files it closed.
 */
export async function createOrResume(control: Control, spec: FleetSpec, plan: Plan, scratch: string | null): Promise<{ rollout: RolloutRow; resumed: boolean; superseded?: string[] }> {
  const key = createHash('sha256').update(`${plan.name}\0${plan.sha256}\0${spec.sha256}`).digest('hex');
  const [open] = await control.sql<RolloutRow>(`select * from tiergate_fleet.rollout where key = $1 and state = 'running' order by created_at desc limit 1`, [key]);
  if (open) return { rollout: open, resumed: true };
  const id = `${new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15)}-${key.slice(0, 6)}`;
  const waves = spec.waves.map((w) => ({ idx: w.index, name: w.name, failure_budget: w.failureBudget, on_error: w.onError, no_go: w.noGo }));
  const targets = spec.waves.flatMap((w) => w.targets.map((t) => ({ wave: w.index, name: t.name, url: t.shown, password_env: t.passwordEnv, server: t.server, labels: t.labels }))).map((t, ord) => ({ ...t, ord }));
  // one statement: the rollout, its waves and its targets are recorded together or not at all (a pooled control connection has no session transaction)
  const created = await control.sql(
    `with r as (
       insert into tiergate_fleet.rollout (id, key, plan_name, plan_sha256, targets_file, targets_sha256, scratch, total, per_server, plan_database)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $12) on conflict do nothing returning id),
     w as (
       insert into tiergate_fleet.wave (rollout, idx, name, failure_budget, on_error, no_go)
       select r.id, x.idx, x.name, x.failure_budget, x.on_error, x.no_go from r, jsonb_to_recordset($10::jsonb) as x(idx int, name text, failure_budget int, on_error text, no_go text) returning 1)
     insert into tiergate_fleet.target (rollout, name, ord, wave, url, password_env, server, labels)
     select r.id, x.name, x.ord, x.wave, x.url, x.password_env, x.server, x.labels
       from r, jsonb_to_recordset($11::jsonb) as x(wave int, name text, url text, password_env text, server text, labels jsonb, ord int)
     returning rollout`,
    [id, key, plan.name, plan.sha256, spec.file, spec.sha256, scratch ? withoutPassword(scratch) : null, spec.concurrency.total, spec.concurrency.perServer, JSON.stringify(waves), JSON.stringify(targets), spec.planDatabase],
  );
  // another coordinator of the same files started at the same moment: resume its rollout
  if (created.length === 0) return createOrResume(control, spec, plan, scratch);
  const [rollout] = await control.sql<RolloutRow>(`select * from tiergate_fleet.rollout where id = $1`, [id]);
  // an unfinished rollout of the same plan and targets file whose files have changed since (an edited plan, a new tiergate's
  // plan): this one takes its place, and it is closed saying so, not left running for ever
  const superseded = await control.sql<{ id: string }>(
    `update tiergate_fleet.rollout set state = 'stopped', finished_at = now(),
            reason = 'superseded by rollout ' || $4 || ': the plan''s files or the targets file changed since it started (what its targets applied is in their ledgers)'
      where plan_name = $1 and targets_file = $2 and state = 'running' and key <> $3 returning id`,
    [plan.name, spec.file, key, id],
  );
  return { rollout: rollout!, resumed: false, superseded: superseded.map((r) => r.id) };
}

export async function readRollout(control: Control, id?: string): Promise<{ rollout: RolloutRow; waves: WaveRow[]; targets: TargetRow[] } | null> {
  const [rollout] = id
    ? await control.sql<RolloutRow>(`select * from tiergate_fleet.rollout where id = $1`, [id])
    : await control.sql<RolloutRow>(`select * from tiergate_fleet.rollout order by created_at desc limit 1`);
  if (!rollout) return null;
  const waves = await control.sql<WaveRow>(`select * from tiergate_fleet.wave where rollout = $1 order by idx`, [rollout.id]);
  const targets = await control.sql<TargetRow>(
    `select rollout, name, ord, wave, url, password_env, server, labels, state, attempts, worker, started_at, finished_at, rehearsal, execution, applied, evidence_sha256, error
       from tiergate_fleet.target where rollout = $1 order by ord`,
    [rollout.id],
  );
  return { rollout, waves, targets };
}

export interface WorkerOptions {
  plan: Plan;
  /** where a worker writes each target's evidence: DIR/<rollout>/<target>/ */
  out: string;
  /** steps this process runs at once */
  concurrency: number;
  /** connection URLs with the passwords the targets file gave (the coordinator's own workers); other workers use password_env, PGPASSWORD or ~/.pgpass */
  passwords?: Map<string, string>;
  /** the scratch server's URL with its password, when this process knows it */
  scratch?: string | null;
  label?: string;
  /** Ctrl-C of the process running the steps: a running step stops (its tier rolls back, its clones dropped), pg-boss gives it to a worker later */
  signal?: AbortSignal;
}

/**
 * Registers this process as a worker of `rollout`: pg-boss fetches its steps
 * (at most `per_server` at once per server, across all workers) and this
 * process runs them. Returns a function that stops working (running steps
 * finish first).
 */
export async function work(control: Control, rollout: RolloutRow, options: WorkerOptions): Promise<() => Promise<void>> {
  if (options.plan.sha256 !== rollout.plan_sha256 || options.plan.name !== rollout.plan_name) {
    throw new UsageError(
      `this worker's plan '${options.plan.name}' (sha256 ${options.plan.sha256.slice(0, 12)}) is not rollout ${rollout.id}'s ('${rollout.plan_name}', ${rollout.plan_sha256.slice(0, 12)}): run the worker with --plan DIR holding the same files`,
    );
  }
  const queue = queueOf(rollout.id);
  await ensureQueue(control, queue);
  const worker = `${options.label ?? hostname()}:${process.pid}`;
  await control.boss.work<StepData>(
    queue,
    { localConcurrency: options.concurrency, groupConcurrency: rollout.per_server, pollingIntervalSeconds: 0.5, heartbeatRefreshSeconds: Math.max(1, Math.floor(heartbeatSeconds() / 3)) },
    async ([job]) => runStep(control, rollout, job!, worker, options),
  );
  return () => control.boss.offWork(queue, { wait: true });
}

/** The rollout's queue, made when missing; a coordinator and workers starting together may both make it: whoever loses finds it made. */
export async function ensureQueue(control: Control, queue: string): Promise<void> {
  if (await control.boss.getQueue(queue)) return;
  try {
    await control.boss.createQueue(queue, { retryLimit: 5, retryDelay: 1, heartbeatSeconds: heartbeatSeconds(), expireInSeconds: 6 * 3600 });
  } catch (e) {
    if (!(await control.boss.getQueue(queue))) throw e;
  }
}

async function runStep(control: Control, rollout: RolloutRow, job: Job<StepData>, worker: string, options: WorkerOptions): Promise<{ state: string }> {
  const { target: name, step } = job.data;
  // fetched as the process was interrupted: not begun (pg-boss hands it out again)
  if (options.signal?.aborted) throw new Error(`the worker was interrupted before step ${step} of ${name} began`);
  const [row] = await control.sql<TargetRow & { evidence: string | null }>(`select * from tiergate_fleet.target where rollout = $1 and name = $2`, [rollout.id, name]);
  if (!row) return { state: 'unknown target' };
  const [current] = await control.sql<RolloutRow>(`select * from tiergate_fleet.rollout where id = $1`, [rollout.id]);
  const [wave] = await control.sql<WaveRow>(`select * from tiergate_fleet.wave where rollout = $1 and idx = $2`, [rollout.id, row.wave]);
  if (FINAL_STATES.has(row.state)) return { state: row.state };
  // a stopped wave starts nothing new; a step that had begun (its worker died) is run to its end, so that no target is left half-done and called "not run"
  const begun = row.state === 'rehearsing' || row.state === 'applying';
  if (!begun && (current?.state !== 'running' || wave?.state === 'stopping' || wave?.state === 'failed')) {
    const why = current?.state !== 'running' ? `rollout ${current?.state ?? 'gone'}` : `wave '${wave!.name}' stopped: its failure budget was exceeded`;
    await control.sql(`update tiergate_fleet.target set state = 'skipped', error = $3, finished_at = now() where rollout = $1 and name = $2 and state <> all($4)`, [rollout.id, name, `not ${row.state === 'rehearsed' || row.state === 'apply-queued' ? 'applied' : 'started'}: ${why}`, [...FINAL_STATES]]);
    return { state: 'skipped' };
  }
  if (step === 'rehearse' && !['planned', 'rehearse-queued', 'rehearsing'].includes(row.state)) return { state: row.state };
  const dir = join(resolve(options.out), rollout.id, name);
  const running = step === 'rehearse' ? 'rehearsing' : 'applying';
  await control.sql(`update tiergate_fleet.target set state = $3, attempts = attempts + 1, worker = $4, started_at = coalesce(started_at, now()), error = null where rollout = $1 and name = $2`, [rollout.id, name, running, worker]);
  const url = connectionUrl(row, options);
  const stepServer = step === 'rehearse' && rollout.scratch && !row.server.startsWith('pglite:') ? serverOf(rollout.scratch) : row.server;
  // an earlier attempt of this step whose worker died (pg-boss retried it when its heartbeat stopped) never finished: it ends here, said so
  await control.sql(
    `update tiergate_fleet.step set finished_at = clock_timestamp(), outcome = 'abandoned: its worker stopped (no heartbeat); the step ran again'
      where rollout = $1 and target = $2 and step = $3 and finished_at is null`,
    [rollout.id, name, step],
  );
  const [s] = await control.sql<{ id: string }>(`insert into tiergate_fleet.step (rollout, target, step, server, worker) values ($1, $2, $3, $4, $5) returning id`, [rollout.id, name, step, stepServer, worker]);
  const target = { name, url, shown: row.url };
  const scratch = options.scratch ?? rollout.scratch;
  // plan_database: from_targets — the targets file names the databases the plan is for: the plan's own database: is not asked of them
  const plan = rollout.plan_database === 'from_targets' ? { ...options.plan, database: undefined } : options.plan;
  try {
    if (step === 'rehearse') {
      const { dropLeftClones, rehearseStep } = await import('./run-target.js');
      // what an earlier attempt's killed worker left on the scratch server
      const left = await control.sql<{ url: string }>(`select unnest(clones) as url from tiergate_fleet.step where rollout = $1 and target = $2 and step = 'rehearse' and id <> $3`, [rollout.id, name, s!.id]);
      if (left.length) await dropLeftClones(left.map((x) => x.url), scratch);
      const r = await rehearseStep(plan, target, scratch, dir, {
        signal: options.signal,
        onClone: async (cloneUrl) => void (await control.sql(`update tiergate_fleet.step set clones = array_append(clones, $2) where id = $1`, [s!.id, withoutPassword(cloneUrl)])),
      });
      if (r.error && /but plan '.*' is for database/.test(r.error)) r.error += `; to roll the plan out to databases named otherwise, set plan_database: from_targets in the targets file`;
      await control.sql(
        `update tiergate_fleet.target set state = $3, rehearsal = $4, execution = $5, evidence = $6, evidence_sha256 = $7, error = $8, finished_at = case when $3 = 'rehearsed' then null else now() end where rollout = $1 and name = $2`,
        [rollout.id, name, r.outcome, r.rehearsal, r.execution, r.evidenceJson || null, r.evidenceSha256 || null, r.error],
      );
      await finishStep(control, s!.id, r.outcome);
      // the apply goes straight to the queue (the target is admitted already): no wait for the coordinator's next look
      if (r.outcome === 'rehearsed') await sendStep(control, rollout.id, name, 'apply', row.server, 'rehearsed');
      return { state: r.outcome };
    }
    if (!row.evidence) throw new Error(`target ${name} has no evidence to apply: its rehearsal did not record one`);
    const r = await (await import('./run-target.js')).applyStep(plan, target, row.evidence, dir, options.signal);
    await control.sql(`update tiergate_fleet.target set state = $3, applied = $4, error = $5, finished_at = now() where rollout = $1 and name = $2`, [rollout.id, name, r.outcome, r.applied, r.error]);
    await finishStep(control, s!.id, r.outcome);
    return { state: r.outcome };
  } catch (e) {
    const message = scrub(
      fleetPasswordMessage((e as Error).message ?? String(e), { name, passwordEnv: row.password_env }, `worker ${worker}`, Boolean(options.passwords?.has(name))),
    );
    // a refusal that every try would meet again (a drifted tier, a database that is not the plan's or does not exist, a
    // refused password): the target fails now, not after pg-boss's five retries
    if (refusesEveryTry(e)) {
      await control.sql(`update tiergate_fleet.target set state = 'failed', error = $3, finished_at = now() where rollout = $1 and name = $2`, [rollout.id, name, message]);
      await finishStep(control, s!.id, 'failed');
      return { state: 'failed' };
    }
    // an error of the worker itself, or a target it could not reach: the step is retried by pg-boss, then the coordinator fails the target with this message
    await finishStep(control, s!.id, `error: ${message}`);
    await control.sql(`update tiergate_fleet.target set error = $3 where rollout = $1 and name = $2`, [rollout.id, name, message]);
    throw new Error(e instanceof ConnectionError && e.sqlstate === null ? `${UNREACHABLE}${message}` : message);
  }
}

/** tiergate's own refusals of a target, and a server's refusal of a database that does not exist or of the credentials: the same on every try. */
function refusesEveryTry(e: unknown): boolean {
  if (e instanceof DriftError || e instanceof PlanError || e instanceof UsageError || e instanceof TargetError || e instanceof EvidenceRefusedError) return true;
  return e instanceof ConnectionError && ['3D000', '28P01', '28000'].includes(e.sqlstate ?? '');
}

async function finishStep(control: Control, id: string, outcome: string): Promise<void> {
  await control.sql(`update tiergate_fleet.step set finished_at = clock_timestamp(), outcome = $2 where id = $1`, [id, outcome]);
}

/** The URL a worker connects to the target with: the targets file's (password included) when this process read it, else the stored one with the password from password_env (PGPASSWORD and ~/.pgpass apply as usual). */
function connectionUrl(row: TargetRow, options: WorkerOptions): string {
  const known = options.passwords?.get(row.name);
  if (known) return known;
  if (row.password_env) {
    // unset here: the connection goes ahead as the coordinator's own did (PGPASSWORD, ~/.pgpass or a server that asks for
    // none); a server that asks for a password refuses it, saying where one goes
    const password = process.env[row.password_env];
    return password ? withPassword(row.url, password) : row.url;
  }
  return row.url;
}

export interface FleetEvent {
  type: 'wave' | 'target';
  wave?: WaveRow;
  target?: TargetRow;
}

/**
 * The coordinator: runs `rollout` to its end (completed, or stopped by a
 * wave's rule), sending steps as the waves and the limits allow. Safe to run
 * again after any crash: what it sends is recorded, and a step sent twice is
 * one job.
 */
export async function coordinate(control: Control, rolloutId: string, options: { onEvent?: (e: FleetEvent) => void; pollMs?: number; signal?: AbortSignal } = {}): Promise<RolloutRow> {
  const pollMs = options.pollMs ?? 250;
  const queue = queueOf(rolloutId);
  await ensureQueue(control, queue);
  const seen = new Map<string, string>();
  const emit = options.onEvent ?? (() => undefined);
  for (;;) {
    if (options.signal?.aborted) throw new Error('interrupted');
    const snapshot = (await readRollout(control, rolloutId))!;
    const { rollout, waves, targets } = snapshot;
    for (const t of targets) {
      if (seen.get(t.name) !== t.state) emit({ type: 'target', target: t });
      seen.set(t.name, t.state);
    }
    if (rollout.state !== 'running') return rollout;
    await failExhaustedSteps(control, rollout, targets);
    const wave = waves.find((w) => w.state !== 'succeeded' && w.state !== 'failed' && w.state !== 'not started');
    if (!wave) {
      await control.sql(`update tiergate_fleet.rollout set state = 'completed', finished_at = now() where id = $1 and state = 'running'`, [rollout.id]);
      continue;
    }
    if (wave.state === 'waiting') {
      await control.sql(`update tiergate_fleet.wave set state = 'running', started_at = now() where rollout = $1 and idx = $2`, [rollout.id, wave.idx]);
      emit({ type: 'wave', wave: { ...wave, state: 'running' } });
      continue;
    }
    const mine = targets.filter((t) => t.wave === wave.idx);
    const failures = mine.filter((t) => t.state === 'failed' || (wave.no_go === 'fail' && t.state === 'no-go')).length;
    const over = failures > wave.failure_budget;
    // what counted against the budget, in words: NO-GOs said as such where no_go: fail counts them
    const noGos = wave.no_go === 'fail' ? mine.filter((t) => t.state === 'no-go').length : 0;
    const counted = [failures - noGos ? `${failures - noGos} failed` : '', noGos ? `${noGos} NO-GO (no_go: fail counts it as a failure)` : ''].filter(Boolean).join(', ');
    if (over && wave.on_error === 'stop' && wave.state === 'running') {
      await control.sql(`update tiergate_fleet.wave set state = 'stopping' where rollout = $1 and idx = $2`, [rollout.id, wave.idx]);
      await control.sql(
        `update tiergate_fleet.target set state = 'skipped', finished_at = now(), error = case when state = 'rehearsed' then 'not applied' else 'not started' end || $3 where rollout = $1 and wave = $2 and state in ('planned', 'rehearsed')`,
        [rollout.id, wave.idx, `: wave '${wave.name}' stopped at its failure budget (${counted}; ${wave.failure_budget} allowed)`],
      );
      emit({ type: 'wave', wave: { ...wave, state: 'stopping' } });
      continue;
    }
    if (mine.every((t) => FINAL_STATES.has(t.state))) {
      const ok = !over;
      await control.sql(`update tiergate_fleet.wave set state = $3, finished_at = now() where rollout = $1 and idx = $2`, [rollout.id, wave.idx, ok ? 'succeeded' : 'failed']);
      emit({ type: 'wave', wave: { ...wave, state: ok ? 'succeeded' : 'failed' } });
      if (!ok) {
        const reason = `wave '${wave.name}' failed: ${counted}, its budget allows ${wave.failure_budget}`;
        await control.sql(`update tiergate_fleet.wave set state = 'not started' where rollout = $1 and idx > $2`, [rollout.id, wave.idx]);
        await control.sql(`update tiergate_fleet.target set state = 'skipped', finished_at = now(), error = $3 where rollout = $1 and wave > $2 and state = 'planned'`, [rollout.id, wave.idx, `not started: ${reason}`]);
        await control.sql(`update tiergate_fleet.rollout set state = 'stopped', reason = $2, finished_at = now() where id = $1`, [rollout.id, reason]);
      }
      continue;
    }
    if (wave.state === 'running') await admit(control, rollout, targets, mine);
    await sleep(pollMs, options.signal);
  }
}

/** Sends the next steps of the current wave: the apply of a rehearsed target (admitted already), then rehearsals while fewer than `total` targets are in flight. */
async function admit(control: Control, rollout: RolloutRow, all: TargetRow[], wave: TargetRow[]): Promise<void> {
  for (const t of wave.filter((x) => x.state === 'rehearsed')) await sendStep(control, rollout.id, t.name, 'apply', t.server, 'rehearsed');
  let free = rollout.total - all.filter((t) => IN_FLIGHT.has(t.state)).length;
  const scratchServer = rollout.scratch ? serverOf(rollout.scratch) : null;
  for (const t of wave.filter((x) => x.state === 'planned')) {
    if (free <= 0) return;
    await sendStep(control, rollout.id, t.name, 'rehearse', scratchServer && !t.server.startsWith('pglite:') ? scratchServer : t.server, 'planned');
    free--;
  }
}

/**
 * Sends a target's step as a pg-boss job grouped by `group` (the server it
 * writes to) and records it as queued, if the target is still in state
 * `from`. The job id is the step's own: sent twice, it is one job.
 */
async function sendStep(control: Control, rollout: string, target: string, step: StepData['step'], group: string, from: TargetState): Promise<void> {
  await control.boss.send(queueOf(rollout), { rollout, target, step } satisfies StepData, { id: jobId(rollout, target, step), group: { id: group } });
  await control.sql(`update tiergate_fleet.target set state = $3 where rollout = $1 and name = $2 and state = $4`, [rollout, target, `${step}-queued`, from]);
}

/** How a step's error says the target's server did not answer (a refused or timed-out connection): retried, then said so. */
const UNREACHABLE = 'unreachable: ';

/** A step pg-boss gave up on (its worker died or erred on every retry): the target failed, with the last error. */
async function failExhaustedSteps(control: Control, rollout: RolloutRow, targets: TargetRow[]): Promise<void> {
  const queue = queueOf(rollout.id);
  for (const t of targets.filter((x) => IN_FLIGHT.has(x.state))) {
    // ('rehearsed' waits for its apply: the rehearse step is done)
    const step = t.state === 'rehearse-queued' || t.state === 'rehearsing' ? 'rehearse' : 'apply';
    const job = await control.boss.getJobById(queue, jobId(rollout.id, t.name, step));
    if (job?.state !== 'failed' && job?.state !== 'cancelled') continue;
    const output = job.output as { message?: string } | null;
    const last = scrub(output?.message ?? t.error ?? 'no message');
    const times = `${job.retryCount + 1} time${job.retryCount ? 's' : ''}`;
    const error = last.startsWith(UNREACHABLE)
      ? `its ${step} step failed ${times}, the last time because the server did not answer: ${last.slice(UNREACHABLE.length)}`
      : `its ${step} step failed ${times} (worker error, or the worker died): ${last}`;
    await control.sql(`update tiergate_fleet.target set state = 'failed', error = $3, finished_at = now() where rollout = $1 and name = $2 and state = $4`, [rollout.id, t.name, error, t.state]);
  }
}

/**
 * With an embedded control folder nothing else can be running this rollout
 * (the folder is locked): a step left active is one whose process died. It is
 * handed back to pg-boss as failed, which retries it now instead of after
 * its heartbeat expires.
 */
export async function releaseOrphanedSteps(control: Control, rolloutId: string): Promise<number> {
  if (control.kind !== 'pglite') return 0;
  const queue = queueOf(rolloutId);
  const active = await control.boss.findJobs(queue, { queued: false, limit: 10_000 });
  const orphans = active.filter((j) => j.state === 'active');
  if (orphans.length) await control.boss.fail(queue, orphans.map((j) => j.id), { message: 'its process died (the coordinator was restarted)' });
  return orphans.length;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
