import type { TierResult } from '../evidence/types.js';
import type { Evidence } from '../evidence/types.js';
import {
  formatCounts,
  formatLocation,
  formatMetricChange,
  formatMs,
  formatObjectCounts,
  metricChanges,
  rowChanges,
  singleLine,
  verdictText,
} from './format.js';

/**
 * The verdict as one plain line, the last thing `tiergate rehearse` prints.
 *
 * @example
 *   renderVerdictLine(evidence) // 'Rehearsal PASS · Execution NO-GO (ospa=0)'
 */
export function renderVerdictLine(e: Evidence): string {
  return verdictText(e.verdict);
}

const NAME_WIDTH = 22;

/**
 * One tier as one plain-text line (no colours: the CLI adds them): stage, id,
 * name, kind, status, duration, then what it changed, or why it stopped.
 * Database text is flattened to one line and stripped of control characters,
 * so a hostile name cannot move the cursor or break the tier list.
 *
 * @example
 *   renderTierLine('B', ownershipSeed)
 *   // 'B  2  Ownership seed          data       Applied   120 ms  axis.ownership +30  owner_gap 210→0'
 */
export function renderTierLine(stage: string, t: TierResult): string {
  const head =
    `${singleLine(stage)}${String(t.id).padStart(3)}  ${fit(singleLine(t.name), NAME_WIDTH).padEnd(NAME_WIDTH + 2)}` +
    `${t.kind.padEnd(11)}${t.status.padEnd(10)}${formatMs(t.durationMs).padStart(6)}`;
  const details = tierDetails(t);
  return details.length > 0 ? `${head}  ${details.join('  ')}` : head;
}

function tierDetails(t: TierResult): string[] {
  const objects = formatObjectCounts(t.delta);
  const rows = rowChanges(t.delta).map(([table, r]) => `${singleLine(table)} ${formatCounts(r)}`);
  const metrics = metricChanges(t.delta)
    .filter(([, m]) => m.before !== m.after)
    .map(([name, m]) => `${singleLine(name)} ${formatMetricChange(m, '→')}`);
  const failedPost = t.post.filter((p) => !p.ok).map((p) => `post failed: ${singleLine(p.expr)}`);
  const proof =
    t.status === 'Blocked' || t.status === 'Failed'
      ? [t.guardProven ? 'guard proven' : '', t.fingerprintUnchanged ? 'fingerprint unchanged' : ''].filter(Boolean)
      : [];
  const reason = t.reason ? [singleLine(t.reason)] : [];
  const error = t.error && t.status !== 'Blocked' ? [errorText(t.error)] : [];
  return [...reason, ...(objects ? [objects] : []), ...rows, ...metrics, ...failedPost, ...proof, ...error];
}

function errorText(f: NonNullable<TierResult['error']>): string {
  const where = formatLocation(f);
  return `${f.sqlstate ? f.sqlstate + ' ' : ''}${singleLine(f.message)}${where ? ` (${singleLine(where)})` : ''}`;
}

/** Shortens to `width` characters with an ellipsis. */
function fit(text: string, width: number): string {
  const chars = Array.from(text);
  return chars.length <= width ? text : chars.slice(0, width - 1).join('') + '…';
}
