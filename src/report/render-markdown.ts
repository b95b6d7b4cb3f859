import type { SqlFailure } from '../errors.js';
import type { TierResult } from '../evidence/types.js';
import type { Evidence, FingerprintDiff, StageRecord } from '../evidence/types.js';
import {
  formatCounts,
  formatDate,
  formatLocation,
  formatMetricChange,
  formatMs,
  formatValue,
  metricChanges,
  objectChanges,
  rowChanges,
  shortSha,
} from './format.js';
import { mdBlock, mdCode, mdText } from './markdown-escape.js';

/**
 * The evidence as a Markdown report (`evidence.md`), read top to bottom like
 * a rollout rehearsal write-up: verdict first, then source and clone, then
 * each stage's tiers with their deltas, stop-gates and checks, the rollback
 * proof, and the verdict with its failures. Database text is escaped so it
 * can neither break a table nor inject markup.
 *
 * @example
 *   writeFileSync(join(out, 'evidence.md'), renderMarkdown(evidence));
 *   // # Rollout rehearsal: axis-governance (2026-06-03)
 *   //
 *   // **Rehearsal PASS · Execution NO-GO (ospa=0)**
 */
export function renderMarkdown(e: Evidence): string {
  const sections = [
    header(e),
    e.source.preflight ? preflight(e.source.preflight) : '',
    ...e.stages.map(stage),
    rollback(e),
    verdict(e),
  ];
  return sections.filter(Boolean).join('\n\n') + '\n';
}

function verdictLine(e: Evidence): string {
  const { rehearsal, execution, reason } = e.verdict;
  return `Rehearsal ${rehearsal} · Execution ${execution}${reason.trim() ? ` (${mdText(reason.trim())})` : ''}`;
}

function header(e: Evidence): string {
  const gate = e.source.gate;
  const gateText = gate
    ? `Gate ${mdCode(gate.name)} on the source: ${formatValue(gate.value)} (minimum ${formatValue(gate.min)}, ${gate.open ? 'open' : 'closed'}) → ${e.verdict.execution}.`
    : 'The plan has no gate.';
  const fileCount = Object.keys(e.plan.files).length;
  return [
    `# Rollout rehearsal: ${mdText(e.plan.name)} (${mdText(formatDate(e.createdAt))})`,
    `**${verdictLine(e)}**`,
    `Rehearsal only: every tier ran on a clone; nothing was executed against the source. ${gateText}`,
    [
      `- **Source**: ${e.source.kind}, database ${mdCode(e.source.identity.database)} (${mdText(e.source.location)})`,
      `- **Clone**: ${e.clone.kind} (${mdText(e.clone.location)}), copied in ${formatMs(e.clone.copyMs)}, ${e.clone.kept ? 'kept' : 'discarded after the run'}`,
      `- **Plan**: ${mdCode(e.plan.name)} at ${mdCode(e.plan.dir)}, sha256 ${mdCode(shortSha(e.plan.sha256))}, ${fileCount} file${fileCount === 1 ? '' : 's'}`,
      `- **Run**: tiergate ${mdText(e.tool.version)}, ${mdText(e.createdAt)}, ${formatMs(e.durationMs)}`,
    ].join('\n'),
  ].join('\n\n');
}

function preflight(t: TierResult): string {
  return ['## Preflight (source, read-only)', tierTable([t]), tierNotes([t])].filter(Boolean).join('\n\n');
}

function stage(s: StageRecord): string {
  return [
    `## Stage ${s.name} — ${mdText(s.title)}`,
    s.tiers.length > 0 ? tierTable(s.tiers) : '_No tiers ran in this stage._',
    tierNotes(s.tiers),
    stopGates(s.tiers),
    checks(s),
  ]
    .filter(Boolean)
    .join('\n\n');
}

// ---- the tier table: one row per tier, the deltas in figures ----

function tierTable(tiers: TierResult[]): string {
  const head = ['| Tier | Name | Kind | Status | Time | Objects | Rows | Metrics |', '|---:|---|---|---|---:|---|---|---|'];
  const rows = tiers.map((t) => {
    const objects = objectChanges(t.delta)
      .map((c) => `${c.kind} ${formatCounts({ added: c.added.length, removed: c.removed.length, changed: c.changed.length })}`)
      .join(', ');
    const rowsText = rowChanges(t.delta)
      .map(([table, r]) => `${mdCode(table)} ${formatCounts(r)}`)
      .join(', ');
    const metrics = metricChanges(t.delta)
      .map(([name, m]) => `${mdCode(name)} ${formatMetricChange(m)}`)
      .join(', ');
    return `| ${t.id} | ${mdText(t.name)} | ${t.kind} | ${t.status} | ${formatMs(t.durationMs)} | ${objects || '—'} | ${rowsText || '—'} | ${metrics || '—'} |`;
  });
  return [...head, ...rows].join('\n');
}

// ---- per tier: object names, post-conditions, expectations, errors ----

function tierNotes(tiers: TierResult[]): string {
  const notes = tiers.map(tierNote).filter(Boolean);
  return notes.length > 0 ? notes.join('\n') : '';
}

function tierNote(t: TierResult): string {
  const lines: string[] = [];
  for (const c of objectChanges(t.delta)) {
    for (const [verb, names] of [['added', c.added], ['removed', c.removed], ['changed', c.changed]] as const) {
      if (names.length > 0) lines.push(`  - ${c.kind} ${verb}: ${names.map(mdCode).join(', ')}`);
    }
  }
  for (const p of t.post) {
    lines.push(`  - post-condition ${p.ok ? '✓' : '✗'} ${mdCode(p.expr)} (value ${formatValue(p.value)})`);
  }
  const expectations = t.expectations ?? [];
  const missed = expectations.filter((x) => !x.ok);
  if (expectations.length > 0) {
    lines.push(`  - expectations: ${expectations.length - missed.length} of ${expectations.length} met`);
    for (const x of missed) {
      lines.push(`    - ✗ ${mdText(x.what)}: expected ${mdText(x.expected)}, measured ${mdText(x.actual)}`);
    }
  }
  for (const f of t.failedAssertions ?? []) lines.push(...failure('assertion failed', f));
  if (t.error) lines.push(...failure(t.status === 'Blocked' ? 'stopped by' : 'error', t.error));
  if (lines.length === 0 && !t.reason) return '';
  const reason = t.reason ? `: ${mdText(t.reason)}` : '';
  const title = `- **Tier ${t.id} ${mdText(t.name)}** — ${t.status}${reason} (${mdCode(t.file)}, sha256 ${mdCode(shortSha(t.sha256))})`;
  return [title, ...lines].join('\n');
}

function failure(label: string, f: SqlFailure): string[] {
  const where = formatLocation(f);
  const lines = [`  - ${label}${f.sqlstate ? ` ${mdCode(f.sqlstate)}` : ''}: ${mdText(f.message)}${where ? ` at ${mdCode(where)}` : ''}`];
  if (f.detail) lines.push(`    - detail: ${mdText(f.detail)}`);
  if (f.hint) lines.push(`    - hint: ${mdText(f.hint)}`);
  if (f.where) lines.push(`    - where: ${mdText(f.where)}`);
  if (f.excerpt) lines.push('', mdBlock(f.excerpt, 'sql', '    '), '');
  return lines;
}

// ---- stop-gates and checks ----

function stopGates(tiers: TierResult[]): string {
  const blocked = tiers.filter((t) => t.status === 'Blocked');
  if (blocked.length === 0) return '';
  const lines = blocked.map((t) => {
    const guard = t.guardProven ? "✓ the file's own guard aborted it" : "✗ the file's own guard was not proven";
    const fingerprint = t.fingerprintUnchanged ? '✓ clone fingerprint unchanged' : '✗ clone fingerprint changed or not checked';
    return `- Tier ${t.id} ${mdText(t.name)}: ${guard}; ${fingerprint}`;
  });
  return ['**Stop-gates proven**', lines.join('\n')].join('\n\n');
}

function checks(s: StageRecord): string {
  if (s.checks.length === 0) return '';
  const lines = s.checks.map((c) => `- ${c.ok ? '✓' : '✗'} ${mdText(c.name)}${c.detail ? ` — ${mdText(c.detail)}` : ''}`);
  return ['**Checks**', lines.join('\n')].join('\n\n');
}

// ---- rollback and verdict ----

function rollback(e: Evidence): string {
  const r = e.rollback;
  if (!r) return '## Rollback proof\n\nNo rollback was rehearsed.';
  const reverted = r.reverted.length > 0 ? `reverted tiers ${r.reverted.join(', ')}` : 'reverted no tier';
  return [
    '## Rollback proof',
    [
      `- Rollback tier ${r.tier} ${reverted}.`,
      `- ${r.matchesKeptTiers ? '✓' : '✗'} the clone's fingerprint after rollback ${r.matchesKeptTiers ? 'equals' : 'differs from'} a clean apply of the kept tiers`,
      ...diff(r.keptDiff),
      `- ${r.reapplyMatches ? '✓' : '✗'} re-applying the reverted tiers ${r.reapplyMatches ? 'reproduces' : 'does not reproduce'} the full-apply fingerprint`,
      ...diff(r.reapplyDiff),
    ].join('\n'),
  ].join('\n\n');
}

function diff(d: FingerprintDiff | null): string[] {
  if (!d) return [];
  return [
    ...(d.objects.length > 0 ? [`  - objects that differ: ${d.objects.map(mdCode).join(', ')}`] : []),
    ...(d.tables.length > 0 ? [`  - tables whose rows differ: ${d.tables.map(mdCode).join(', ')}`] : []),
  ];
}

function verdict(e: Evidence): string {
  const v = e.verdict;
  const summary =
    v.rehearsal === 'PASS'
      ? 'The rollout was rehearsed end to end: deltas measured, stop-gates proven, rollback proven.'
      : 'The rehearsal failed: do not run this rollout in production until the failures below are fixed.';
  const failures =
    v.failures.length > 0 ? ['Failures:', v.failures.map((f) => `- ${mdText(f)}`).join('\n')].join('\n\n') : 'Failures: none.';
  return ['## Verdict', `**${verdictLine(e)}**`, summary, failures].join('\n\n');
}
