import { readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import { withDb } from '../db/open-db.js';
import type { EngineEvent, RunResult, StatusResult } from '../engine/apply.js';
import { UsageError, type ExitCode } from '../errors.js';
import { openPlan } from '../plan/open-plan.js';
import type { Plan } from '../plan/plan.js';
import { renderTierLine } from '../report/render-terminal.js';
import type { Output } from './output.js';

type Opts = Record<string, unknown>;

/** Runs one command and returns its exit code (main.ts exits). */
export async function dispatch(name: string, args: string[], opts: Opts, out: Output): Promise<ExitCode> {
  switch (name) {
    case 'plan':
      return planCommand(opts, out);
    case 'lint':
      return lintCommand(opts, out);
    case 'apply':
      return applyCommand(opts, out);
    case 'rollback':
      return rollbackCommand(opts, out);
    case 'verify':
      return verifyCommand(opts, out);
    case 'status':
      return statusCommand(opts, out);
    case 'sample':
      return (await import('./sample-command.js')).sampleCommand(opts, out);
    case 'report':
      return reportCommand(args[0] ?? '', opts, out);
    case 'rehearse':
      return (await import('./rehearse-command.js')).rehearseCommand(opts, out);
    default:
      throw new UsageError(`unknown command '${name}'`);
  }
}

export async function plan(opts: Opts): Promise<Plan> {
  // an empty --plan (or TIERGATE_PLAN) is a mistake, not a request for the bundled plan
  if (opts.plan !== undefined && String(opts.plan).trim() === '') throw new UsageError("--plan is empty: pass a plan folder (one holding tiergate.yaml), or leave --plan out for the bundled plan");
  return opts.plan ? openPlan(String(opts.plan)) : openPlan();
}

function target(opts: Opts): string {
  const t = opts.target;
  if (typeof t !== 'string' || !t) throw new UsageError('no target: pass --target URL (postgres://user@host:port/database or pglite:DIR), or set TIERGATE_TARGET');
  return t;
}

async function planCommand(opts: Opts, out: Output): Promise<ExitCode> {
  const p = await plan(opts);
  out.result({
    ok: true,
    plan: { name: p.name, dir: p.dir, sha256: p.sha256, database: p.database ?? null, schemas: p.schemas, gate: p.gate ?? null },
    tiers: p.tiers.map((t) => ({ id: t.id, name: t.name, kind: t.kind, gated: t.gated, requires: t.requires, reverts: t.reverts, file: t.file, sha256: t.sha256 })),
  });
  out.line(`plan ${p.name}  (${p.tiers.length} tiers, sha256 ${p.sha256.slice(0, 16)}…)`);
  if (p.gate) out.line(`gate ${p.gate.name} ≥ ${p.gate.min}`);
  out.line('');
  out.line(`${'id'.padStart(3)}  ${'name'.padEnd(34)}${'kind'.padEnd(11)}${'gate'.padEnd(7)}${'requires'.padEnd(12)}file / sha256`);
  for (const t of p.tiers) {
    const rel = t.kind === 'rollback' ? `reverts ${t.reverts.join(',')}` : t.requires.join(',') || '—';
    out.line(`${String(t.id).padStart(3)}  ${t.name.slice(0, 33).padEnd(34)}${t.kind.padEnd(11)}${(t.gated ? p.gate?.name ?? 'yes' : '—').padEnd(7)}${rel.padEnd(12)}${t.file}`);
    out.line(`${' '.repeat(71)}${t.sha256}`);
  }
  return 0;
}

async function lintCommand(opts: Opts, out: Output): Promise<ExitCode> {
  const p = await plan(opts);
  const { lintPlan } = await import('../plan/lint.js');
  const findings = await lintPlan(p);
  const errors = findings.filter((f) => f.severity === 'error');
  out.result({ ok: errors.length === 0, plan: p.name, findings });
  for (const f of findings) out.line(`${f.file}:${f.line}:${f.column}: ${f.severity} [${f.rule}] tier ${f.tier}: ${f.message}`);
  out.line(findings.length ? `${errors.length} error(s), ${findings.length - errors.length} warning(s)` : `plan ${p.name}: ${p.tiers.length} files parsed, no problems`);
  return errors.length ? 1 : 0;
}

async function confirm(out: Output, opts: Opts, question: string): Promise<void> {
  if (opts.yes) return;
  if (!process.stdin.isTTY || out.json) {
    throw new UsageError(`${question} — refusing without confirmation: pass --yes to run non-interactively`);
  }
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    const answer = await rl.question(`${question} [y/N] `);
    if (!/^y(es)?$/i.test(answer.trim())) throw new UsageError('cancelled: nothing was changed');
  } finally {
    rl.close();
  }
}

function tierPrinter(out: Output): (e: EngineEvent) => void {
  return (e) => {
    if (e.phase === 'start') out.pending(out.paint('dim', `   ${String(e.tier.id).padStart(3)}  ${e.tier.name} …`));
    else out.replace(colourLine(out, renderTierLine('', e.result), e.result.status));
  };
}

function colourLine(out: Output, line: string, status: string): string {
  const c = status === 'Failed' ? 'red' : status === 'Blocked' ? 'yellow' : status === 'Applied' || status === 'Passed' ? 'green' : 'dim';
  return out.paint(c, line);
}

function runExitCode(r: RunResult): ExitCode {
  return r.outcome === 'failed' ? 1 : r.outcome === 'no-go' ? 3 : 0;
}

function printRunSummary(r: RunResult, out: Output): void {
  for (const t of r.tiers) {
    if (t.error && t.status === 'Failed') {
      const f = t.error;
      out.line('');
      out.line(out.paint('red', `tier ${t.id} '${t.name}' failed${f.file ? ` at ${f.file}${f.line ? `:${f.line}${f.column ? `:${f.column}` : ''}` : ''}` : ''}:`));
      out.line(`  ${f.sqlstate ? `ERROR ${f.sqlstate}: ` : ''}${f.message}`);
      if (f.detail) out.line(`  DETAIL: ${f.detail}`);
      if (f.hint) out.line(`  HINT: ${f.hint}`);
      if (f.excerpt && f.line) out.line(`  ${String(f.line).padStart(5)} | ${f.excerpt}`);
      for (const a of t.failedAssertions?.slice(1) ?? []) out.line(`  also: ${a.message}${a.line ? ` (${a.file}:${a.line})` : ''}`);
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
    }
    const missed = (t.expectations ?? []).filter((x) => !x.ok);
    if (missed.length) out.line(out.paint('yellow', `tier ${t.id}: differs from the plan's expectations: ${missed.map((m) => `${m.what} expected ${m.expected}, got ${m.actual}`).join('; ')}`));
  }
  const gate = r.gate ? `${r.gate.name}=${r.gate.value ?? 'n/a'}` : '';
  out.line('');
  if (r.outcome === 'failed') out.line(out.paint('red', `${r.command}: FAILED`));
  else if (r.outcome === 'no-go') out.line(out.paint('yellow', `${r.command}: NO-GO (${gate}) — gated tiers are blocked until the gate opens (needs ≥ ${r.gate?.min ?? 1})`));
  else out.line(out.paint('green', `${r.command}: OK${gate ? ` (${gate})` : ''}`));
}

async function applyCommand(opts: Opts, out: Output): Promise<ExitCode> {
  const p = await plan(opts);
  const url = target(opts);
  const evidence = typeof opts.evidence === 'string' ? await loadBinding(opts.evidence, p) : null;
  const { displayTarget } = await import('../db/open-db.js');
  await confirm(out, opts, `apply plan '${p.name}' to ${displayTarget(url)}?`);
  const { apply } = await import('../engine/apply.js');
  return withDb(
    url,
    async (db) => {
      out.line(`apply ${p.name} → ${db.displayUrl}`);
      const r = await apply(db, p, { structureOnly: Boolean(opts.structureOnly), onEvent: tierPrinter(out) });
      const comparison = evidence ? evidence.compare(r) : null;
      for (const line of comparison?.lines ?? []) out.line(line);
      out.result({ ok: r.outcome === 'ok', ...r, evidence: comparison });
      printRunSummary(r, out);
      return runExitCode(r);
    },
    { applicationName: `tiergate apply ${p.name}` },
  );
}

async function loadBinding(file: string, p: Plan) {
  const { bindEvidence } = await import('../rehearsal/bind-evidence.js');
  return bindEvidence(file, p);
}

async function rollbackCommand(opts: Opts, out: Output): Promise<ExitCode> {
  const p = await plan(opts);
  const url = target(opts);
  const { displayTarget } = await import('../db/open-db.js');
  const rb = p.tiers.find((t) => t.kind === 'rollback');
  await confirm(out, opts, `roll back tiers ${rb?.reverts.join(', ') ?? '?'} of plan '${p.name}' on ${displayTarget(url)}?`);
  const { rollback } = await import('../engine/apply.js');
  return withDb(
    url,
    async (db) => {
      out.line(`rollback ${p.name} → ${db.displayUrl}`);
      const r = await rollback(db, p, { onEvent: tierPrinter(out) });
      for (const t of r.tiers.filter((x) => x.status === 'Reverted')) out.line(renderTierLine('', t));
      out.result({ ok: r.outcome === 'ok', ...r });
      printRunSummary(r, out);
      return runExitCode(r);
    },
    { applicationName: `tiergate rollback ${p.name}` },
  );
}

async function verifyCommand(opts: Opts, out: Output): Promise<ExitCode> {
  const p = await plan(opts);
  const { verify } = await import('../engine/apply.js');
  return withDb(target(opts), async (db): Promise<ExitCode> => {
    const r = await verify(db, p);
    const t = r.tiers[0]!;
    out.result({ ok: t.status === 'Passed', ...r });
    out.line(`verify ${p.name} on ${db.displayUrl}: ${t.status === 'Passed' ? 'PASSED' : 'FAILED'}`);
    for (const post of t.post) out.line(`  ${post.ok ? 'ok  ' : 'FAIL'} ${post.expr} (${post.value ?? 'n/a'})`);
    for (const a of t.failedAssertions ?? []) out.line(`  FAIL ${a.file}:${a.line}: ${a.message}${a.detail ? ` — ${a.detail}` : ''}`);
    if (t.status === 'Failed' && !t.failedAssertions?.length && t.error) out.line(`  FAIL ${t.error.message}`);
    return t.status === 'Passed' ? 0 : 1;
  });
}

async function statusCommand(opts: Opts, out: Output): Promise<ExitCode> {
  const p = await plan(opts);
  const { status } = await import('../engine/apply.js');
  return withDb(target(opts), async (db): Promise<ExitCode> => {
    const s: StatusResult = await status(db, p);
    out.result({ ok: true, ...s });
    out.line(`status of plan ${p.name} on ${db.displayUrl}`);
    out.line(s.gate ? `gate ${s.gate.name} = ${s.gate.value ?? 'n/a'} (needs ≥ ${s.gate.min}): ${s.gate.open ? 'OPEN' : 'CLOSED'}` : 'no gate');
    out.line('');
    for (const t of s.tiers) {
      const when = t.appliedAt ? ` ${t.appliedAt}` : '';
      const drift = t.state === 'drift' ? ` (applied ${t.appliedSha256?.slice(0, 12)}, file now ${t.sha256.slice(0, 12)})` : '';
      out.line(`${String(t.id).padStart(3)}  ${t.name.padEnd(34)}${t.kind.padEnd(11)}${t.state}${when}${drift}`);
    }
    out.line('');
    out.line('metrics: ' + Object.entries(s.metrics).map(([k, v]) => `${k}=${v ?? 'n/a'}`).join('  '));
    return 0;
  });
}

async function reportCommand(file: string, opts: Opts, out: Output): Promise<ExitCode> {
  const { parseEvidence, renderHtml, renderMarkdown, renderJson } = await import('../report/index.js');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new UsageError(`cannot read evidence file '${file}'`);
  }
  const e = parseEvidence(text, file);
  const format = String(opts.format ?? 'md');
  const rendered = format === 'html' ? renderHtml(e) : format === 'json' ? renderJson(e) : renderMarkdown(e);
  if (typeof opts.out === 'string') {
    writeFileSync(opts.out, rendered);
    out.line(`wrote ${opts.out}`);
  } else process.stdout.write(rendered);
  return 0;
}
