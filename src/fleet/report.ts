/**
 * What a fleet rollout shows: the per-wave summary, the per-target table
 * (terminal and --json) and the self-contained HTML fleet report — waves as
 * a timeline of each target's steps, every target's outcome, failures with
 * their error, links to each target's evidence.
 */
import { html, trustedHtml, type SafeHtml } from '../report/html.js';
import { REPORT_CSS } from '../report/html-style.js';
import type { RolloutRow, TargetRow, WaveRow } from './rollout.js';

export interface StepRow {
  target: string;
  step: string;
  server: string;
  worker: string;
  started_at: Date;
  finished_at: Date | null;
  outcome: string | null;
}

export interface FleetSnapshot {
  rollout: RolloutRow;
  waves: WaveRow[];
  targets: TargetRow[];
}

export interface WaveSummary {
  wave: string;
  state: string;
  targets: number;
  applied: number;
  noGo: number;
  failed: number;
  skipped: number;
  pending: number;
}

/** A target's state in words: one never started, or not applied once its wave stopped, is "not run" (its state in --json: skipped). */
export function stateWord(state: string): string {
  return state === 'skipped' ? 'not run' : state;
}

export function waveSummaries(s: FleetSnapshot): WaveSummary[] {
  return s.waves.map((w) => {
    const mine = s.targets.filter((t) => t.wave === w.idx);
    const count = (state: string) => mine.filter((t) => t.state === state).length;
    const done = count('applied') + count('no-go') + count('failed') + count('skipped');
    return { wave: w.name, state: w.state, targets: mine.length, applied: count('applied'), noGo: count('no-go'), failed: count('failed'), skipped: count('skipped'), pending: mine.length - done };
  });
}

/** Seconds a target has taken so far (or took), one decimal. */
export function targetSeconds(t: Pick<TargetRow, 'started_at' | 'finished_at'>, now = new Date()): string {
  if (!t.started_at) return '';
  const end = t.finished_at ?? now;
  return `${((new Date(end).getTime() - new Date(t.started_at).getTime()) / 1000).toFixed(1)} s`;
}

/** The rollout's outcome in one line: what to say last. */
export function rolloutLine(s: FleetSnapshot): string {
  const sum = waveSummaries(s).reduce((a, w) => ({ applied: a.applied + w.applied, noGo: a.noGo + w.noGo, failed: a.failed + w.failed, skipped: a.skipped + w.skipped, pending: a.pending + w.pending }), { applied: 0, noGo: 0, failed: 0, skipped: 0, pending: 0 });
  const parts = [`${sum.applied} applied`, sum.noGo && `${sum.noGo} NO-GO`, sum.failed && `${sum.failed} failed`, sum.skipped && `${sum.skipped} not run`, sum.pending && `${sum.pending} pending`].filter(Boolean).join(', ');
  const state = s.rollout.state === 'running' ? 'RUNNING' : s.rollout.state === 'completed' ? (sum.failed ? 'COMPLETED WITH FAILURES' : sum.noGo ? 'COMPLETED, NO-GO ON SOME TARGETS' : 'COMPLETED') : 'STOPPED';
  return `fleet ${s.rollout.id}: ${state} — ${s.targets.length} target${s.targets.length === 1 ? '' : 's'}: ${parts}${s.rollout.reason ? ` (${s.rollout.reason})` : ''}`;
}

/** The fleet report: one HTML file, no script, nothing loaded from elsewhere. */
export function renderFleetHtml(s: FleetSnapshot, steps: StepRow[], evidenceLink: (target: string) => string | null): string {
  const waves = waveSummaries(s);
  const failed = s.targets.filter((t) => t.state === 'failed');
  const body = html`
<h1>Fleet rollout ${s.rollout.id}</h1>
<section class="summary" id="summary">
  <p class="verdict">${rolloutLine(s)}</p>
  <table><tbody>
    <tr><th>plan</th><td>${s.rollout.plan_name} (sha256 ${s.rollout.plan_sha256.slice(0, 12)})</td></tr>
    <tr><th>targets file</th><td>${s.rollout.targets_file}</td></tr>
    <tr><th>limits</th><td>at most ${s.rollout.total} targets at once, ${s.rollout.per_server} per server</td></tr>
    <tr><th>started</th><td>${iso(s.rollout.created_at)}</td></tr>
    <tr><th>finished</th><td>${s.rollout.finished_at ? iso(s.rollout.finished_at) : 'not yet'}</td></tr>
  </tbody></table>
</section>
<nav><a href="#waves">Waves</a> · <a href="#timeline">Timeline</a> · <a href="#targets">Targets</a>${failed.length ? html` · <a href="#failures">Failures (${failed.length})</a>` : ''}</nav>
<h2 id="waves">Waves</h2>
<table class="waves"><thead><tr><th>wave</th><th>state</th><th>targets</th><th>applied</th><th>NO-GO</th><th>failed</th><th>not run</th><th>pending</th><th>rule</th></tr></thead><tbody>
${waves.map((w, i) => html`<tr><td>${w.wave}</td><td class="state-${w.state.replace(/\s/g, '-')}">${w.state}</td><td>${w.targets}</td><td>${w.applied}</td><td>${w.noGo}</td><td>${w.failed}</td><td>${w.skipped}</td><td>${w.pending}</td><td>${rule(s.waves[i]!)}</td></tr>`)}
</tbody></table>
<h2 id="timeline">Timeline</h2>
${timelineSvg(s, steps)}
<h2 id="targets">Targets</h2>
<table class="targets"><thead><tr><th>wave</th><th>target</th><th>server</th><th>state</th><th>duration</th><th>attempts</th><th>tiers applied</th><th>evidence</th><th>note</th></tr></thead><tbody>
${s.targets.map((t) => {
  const link = evidenceLink(t.name);
  return html`<tr id="t-${t.name}"><td>${s.waves[t.wave]?.name ?? t.wave}</td><td>${t.name}</td><td>${t.server}</td><td class="state-${t.state}">${stateWord(t.state)}</td><td>${targetSeconds(t)}</td><td>${t.attempts}</td><td>${(t.applied ?? []).join(', ')}</td><td>${link ? html`<a href="${link}">evidence</a>` : ''}${t.evidence_sha256 ? html` <code>${t.evidence_sha256.slice(0, 12)}</code>` : ''}</td><td>${t.error ?? ''}</td></tr>`;
})}
</tbody></table>
${failed.length ? html`<section id="failures"><h2>Failures</h2>${failed.map((t) => html`<div class="card failed"><h3>${t.name}</h3><p class="muted"><code>${t.url}</code></p><pre>${t.error ?? 'no message'}</pre></div>`)}</section>` : ''}
`;
  const csp = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${html`${rolloutLine(s)}`}</title>
<style>${trustedHtml(REPORT_CSS)}${trustedHtml(FLEET_CSS)}</style></head>
<body>${body}</body></html>
`;
}

function rule(w: WaveRow): string {
  return `${w.failure_budget === 0 ? 'no failure allowed' : `up to ${w.failure_budget} failed`}; on error ${w.on_error}; NO-GO ${w.no_go === 'fail' ? 'fails' : 'is reported'}`;
}

function iso(d: Date | string): string {
  return new Date(d).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

const COLOURS: Record<string, string> = { rehearse: '#7aa6d8', apply: '#4caf50', failed: '#d9534f', 'no-go': '#e0a030' };

/** One row per target, one bar per step (rehearse, apply), on the rollout's clock; wave boundaries as bands. */
function timelineSvg(s: FleetSnapshot, steps: StepRow[]): SafeHtml {
  if (!steps.length) return html`<p>No step has run yet.</p>`;
  const t0 = Math.min(...steps.map((x) => new Date(x.started_at).getTime()));
  const t1 = Math.max(...steps.map((x) => new Date(x.finished_at ?? x.started_at).getTime()), t0 + 1000);
  const width = 900;
  const label = 160;
  const rowH = 14;
  const x = (t: Date | string) => label + ((new Date(t).getTime() - t0) / (t1 - t0)) * (width - label - 10);
  const rows = new Map(s.targets.map((t, i) => [t.name, i]));
  const height = s.targets.length * rowH + 24;
  const bars = steps.map((st) => {
    const y = (rows.get(st.target) ?? 0) * rowH + 4;
    const colour = st.outcome === 'failed' || st.outcome?.startsWith('error') ? COLOURS.failed : st.outcome === 'no-go' ? COLOURS['no-go'] : COLOURS[st.step] ?? '#999';
    const w = Math.max(2, x(st.finished_at ?? new Date(t1)) - x(st.started_at));
    return html`<rect x="${x(st.started_at).toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${rowH - 3}" fill="${colour}"><title>${st.target} ${st.step} on ${st.server} by ${st.worker}: ${st.outcome ?? 'running'}</title></rect>`;
  });
  const names = s.targets.map((t, i) => html`<text x="4" y="${i * rowH + 14}" font-size="11">${s.waves[t.wave]?.name ?? ''} · ${t.name}</text>`);
  const seconds = ((t1 - t0) / 1000).toFixed(1);
  return html`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" role="img" aria-label="timeline of every target's steps">${names}${bars}<text x="${label}" y="${height - 4}" font-size="11">0 s</text><text x="${width - 60}" y="${height - 4}" font-size="11">${seconds} s</text></svg>
<p class="legend"><span style="color:${COLOURS.rehearse}">■</span> rehearse <span style="color:${COLOURS.apply}">■</span> apply <span style="color:${COLOURS['no-go']}">■</span> NO-GO <span style="color:${COLOURS.failed}">■</span> failed</p>`;
}

const FLEET_CSS = `
#failures h3 { text-transform: none; letter-spacing: normal; }
.state-applied, .state-succeeded { color: #2e7d32; font-weight: 600; }
.state-failed { color: #c62828; font-weight: 600; }
.state-no-go, .state-stopping { color: #b26a00; font-weight: 600; }
.state-skipped, .state-not-started { color: #777; }
table.targets td:last-child { max-width: 40em; }
.card.failed pre { white-space: pre-wrap; }
`;
