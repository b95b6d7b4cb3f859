import type { CloneSnapshot, DatabaseIdentity, Evidence } from '../evidence/types.js';
import { describeAge } from '../parse-duration.js';
import { formatMs, formatServerVersion, formatValue } from './format.js';

/** A value of the identity table, plain text; `code` for identifiers, hashes and locations. */
export interface IdentityCell {
  text: string;
  code: boolean;
}

/** One line of the identity table: the source's value and the clone's (null: does not apply). */
export interface IdentityRow {
  label: string;
  source: IdentityCell | null;
  clone: IdentityCell | null;
}

const text = (t: string): IdentityCell => ({ text: t, code: false });
const code = (t: string): IdentityCell => ({ text: t, code: true });

/**
 * The source and the clone the rehearsal ran on, field by field, for the
 * Markdown and HTML reports: kind, location, engine, database, cluster
 * system identifier, PGlite instance, server version, snapshot time, gate
 * and its subject.
 *
 * @example identityRows(evidence).find((r) => r.label === 'Database') // { source: { text: 'directus', code: true }, … }
 */
export function identityRows(e: Evidence): IdentityRow[] {
  const s = e.source.identity;
  const c = e.clone.identity;
  /** the clone's value of an identity field; evidence from before clone.identity says so */
  const clone = (f: (i: DatabaseIdentity) => IdentityCell): IdentityCell => (c ? f(c) : text('not recorded'));
  const gate = e.source.gate;
  const rows: IdentityRow[] = [
    { label: 'Kind', source: text(e.source.kind), clone: text(e.clone.kind) },
    { label: 'Location', source: code(e.source.location), clone: code(e.clone.location) },
    { label: 'Engine', source: engine(s), clone: clone(engine) },
    { label: 'Database', source: code(s.database), clone: clone((i) => code(i.database)) },
    { label: 'Cluster system identifier', source: sysid(s), clone: clone(sysid) },
  ];
  if (s.instance !== null || c?.instance) {
    const instance = (i: DatabaseIdentity) => (i.instance === null ? text('—') : code(i.instance));
    rows.push({ label: 'PGlite instance', source: instance(s), clone: clone(instance) });
  }
  rows.push(
    { label: 'Server version', source: version(s), clone: clone(version) },
    {
      label: 'Snapshot',
      source: text(e.source.snapshotAt),
      clone: text(`${e.clone.snapshot ? `${snapshotText(e.clone.snapshot, e.createdAt)}; ` : ''}copied in ${formatMs(e.clone.copyMs)}, ${e.clone.kept ? 'kept' : 'dropped after the run'}`),
    },
    {
      label: 'Gate',
      source: text(gate ? `${gate.name} = ${formatValue(gate.value)} (minimum ${formatValue(gate.min)}, ${gate.open ? 'open' : 'closed'})` : 'the plan has no gate'),
      clone: gate && e.stages.some((x) => x.name === 'B') ? text('opened on the clone in stage B') : null,
    },
  );
  if (gate) rows.push({ label: 'Gate subject', source: gate.subject === null ? text('none') : code(gate.subject), clone: null });
  return rows;
}

function engine(i: DatabaseIdentity): IdentityCell {
  return text(i.engine ?? 'unknown (a SQL dump)');
}

function sysid(i: DatabaseIdentity): IdentityCell {
  return i.systemIdentifier === null ? text('unknown') : code(i.systemIdentifier);
}

function version(i: DatabaseIdentity): IdentityCell {
  return text(i.serverVersion === null ? 'unknown' : `${formatServerVersion(i.serverVersion)} (${i.serverVersion})`);
}

/**
 * Which kept snapshot the clones were copied from, in words (null: the
 * clones were made directly): the age is the rehearsal's, so the line reads
 * the same whenever the report is rendered.
 *
 * @example snapshotLine(e) // 'clone: copy of snapshot tiergate_snap_directus_1a2b3c4d_20261204t170000 taken 2026-12-04T17:00:00.000Z (reused, 12 min old)'
 */
export function snapshotLine(e: Evidence): string | null {
  return e.clone.snapshot ? `clone: ${snapshotText(e.clone.snapshot, e.createdAt)}` : null;
}

function snapshotText(s: CloneSnapshot, createdAt: string): string {
  const age = Date.parse(createdAt) - Date.parse(s.takenAt);
  const how = s.reused ? `reused, ${Number.isFinite(age) ? `${describeAge(age)} old` : 'age unknown'}` : 'new: the source was dumped for this rehearsal';
  return `copy of snapshot ${s.database} taken ${s.takenAt} (${how})`;
}

