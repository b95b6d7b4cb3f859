import type { Evidence, TierResult } from '../evidence/types.js';
import { changedMetrics, fitText, formatCounts, formatLocation, formatMetricChange, formatMs, formatObjectCounts, rowChanges, statusLabel, verdictText } from './format.js';
import { singleLine } from '../text.js';
import { shownReason, tierFailures } from './tier-view.js';

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
/** `Blocked (expected)` */
const STATUS_WIDTH = 18;
/** A tier line is cut to this many characters: one screen line on a wide terminal, readable in a CI log. */
const LINE_WIDTH = 250;
const GAP = '  ';

/**
 * One tier as one plain-text line (no colours: the CLI adds them): stage, id,
 * name, kind, status ("(expected)" after it when the rehearsal expects a
 * Blocked / Failed tier), duration, then what it changed or why it stopped.
 * Columns are at least two spaces apart; a long name is cut with an
 * ellipsis, and the details are cut to fit the line, ending with how many
 * were left out (`… +4 more`). Database text is flattened to one line and
 * stripped of control and bidirectional-override characters, so a hostile
 * name cannot move the cursor, reverse the line or break the tier list.
 *
 * @example
 *   renderTierLine('B', ownershipSeed)
 *   // 'B   2  Ownership seed          data       Applied               120 ms  axis.ownership +30  owner_gap 210→0'
 */
export function renderTierLine(stage: string, t: TierResult): string {
  const head = [
    lead(stage, t.id),
    fitText(singleLine(t.name), NAME_WIDTH).padEnd(NAME_WIDTH),
    singleLine(t.kind).padEnd(9),
    statusLabel(t).padEnd(STATUS_WIDTH),
    formatMs(t.durationMs).padStart(6),
  ].join(GAP);
  const details = fitItems(tierDetails(t), LINE_WIDTH - length(head) - GAP.length);
  return details ? `${head}${GAP}${details}` : head;
}

/**
 * The line shown while a tier runs, in the columns of its {@link renderTierLine}
 * (which replaces it when the tier ends).
 *
 * @example renderTierStart('B', { id: 2, name: 'Ownership seed' }) // 'B   2  Ownership seed …'
 */
export function renderTierStart(stage: string, t: { id: number; name: string }): string {
  return `${lead(stage, t.id)}${GAP}${fitText(singleLine(t.name), NAME_WIDTH)} …`;
}

/** `B   2` (the stage, then the id right-aligned), or the id alone outside a rehearsal. */
function lead(stage: string, id: number): string {
  const s = singleLine(stage).trim();
  return s ? `${s}${GAP}${String(id).padStart(2)}` : String(id).padStart(3);
}

function tierDetails(t: TierResult): string[] {
  const reason = shownReason(t);
  const objects = formatObjectCounts(t.delta);
  const rows = rowChanges(t.delta).map(([table, r]) => `${singleLine(table)} ${formatCounts(r)}`);
  const metrics = changedMetrics(t.delta).map(([name, m]) => `${singleLine(name)} ${formatMetricChange(m, '→')}`);
  const failures = tierFailures(t);
  // a failing verify's post-conditions repeat its failed assertions
  const failedPost = (t.failedAssertions ?? []).length ? [] : t.post.filter((p) => !p.ok).map((p) => `post failed: ${singleLine(p.expr)}`);
  const proof =
    t.status === 'Blocked' || t.status === 'Failed'
      ? [t.guardProven ? 'guard proven' : '', t.fingerprintUnchanged ? 'fingerprint unchanged' : ''].filter(Boolean)
      : [];
  const errors = failures.filter((f) => !(f.kind === 'error' && t.status === 'Blocked')).map((f) => failureText(f.failure));
  return [...(reason ? [singleLine(reason)] : []), ...(objects ? [objects] : []), ...rows, ...metrics, ...failedPost, ...proof, ...errors];
}

function failureText(f: NonNullable<TierResult['error']>): string {
  const where = formatLocation(f);
  return `${f.sqlstate ? singleLine(f.sqlstate) + ' ' : ''}${singleLine(f.message)}${where ? ` (${singleLine(where)})` : ''}`;
}

/**
 * The items joined two spaces apart, within `width` characters: the item
 * that does not fit is cut with an ellipsis, and `+N more` counts the items
 * left out after it.
 *
 * @example fitItems(['a'.repeat(300), 'b', 'c'], 40) // 31 × 'a', then '… +2 more': 40 characters
 */
function fitItems(items: string[], width: number): string {
  const all = items.join(GAP);
  if (length(all) <= width) return all;
  let line = '';
  for (let i = 0; i < items.length; i++) {
    const left = items.length - i - 1;
    const prefix = line ? line + GAP : '';
    const whole = prefix + items[i]!;
    // the whole item fits, with room for the count of what may follow it
    if (length(whole) + (left > 0 ? length(`${GAP}… +${left} more`) : 0) <= width) {
      line = whole;
      continue;
    }
    const more = left > 0 ? ` +${left} more` : '';
    const room = width - length(prefix) - length(more);
    if (room >= 12 && room < length(items[i]!)) return prefix + fitText(items[i]!, room) + more;
    return `${prefix}… +${left + 1} more`;
  }
  return line;
}

function length(text: string): number {
  return Array.from(text).length;
}
