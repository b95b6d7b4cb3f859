import { createHash } from 'node:crypto';
import { codeStamp, readCache, writeCache } from '../cache.js';
import { NO_HOST, parsePostgresUrl } from '../db/pg-url.js';
import { isBodyTier } from '../engine/run-result.js';
import type { CloneSnapshot } from '../evidence/types.js';
import type { CloneSource } from './clone.js';
import type { Plan } from '../plan/plan.js';
import type { Fingerprint } from '../probe/fingerprint.js';
import { tiergateVersion } from '../version.js';

/**
 * The reference of the rollback proof, kept from one rehearsal to the next.
 *
 * Stage C compares the main clone after the rollback with the kept tiers'
 * clean apply on a second copy of the source. When the source is a kept
 * snapshot on the scratch server (src/rehearsal/clone-postgres.ts), that
 * second copy is the same database every time: the snapshot never changes
 * (closed to connections, copied, never written), so the kept tiers' clean
 * apply on it — the same files, run by the same code, the gate opened at the
 * same point — leaves the same fingerprint. A later rehearsal of the same
 * snapshot with the same kept tiers reads that fingerprint from tiergate's
 * cache instead of copying the snapshot a second time and applying the kept
 * tiers again: one clone, not two (at 6,500 tables a copy on this machine's
 * disk is 4–8 s, and the apply 1 s of server time beside the stages).
 *
 * The key holds what the clean apply depends on besides the snapshot's
 * contents: the snapshot (the scratch server as its URL names it —
 * host, port, user and parameters, never a password — PGOPTIONS, the
 * settings its sessions get from its configuration and its user (TimeZone,
 * DateStyle and the like change how values print, and so what a
 * fingerprint hashes), the snapshot's name and time), tiergate's version and the code that applies
 * and fingerprints, the plan's tiergate.yaml (its metrics, gate,
 * post-conditions, timeouts, every tier's place), and the sha256 of every
 * file the reference runs — every tier some rollback tier keeps, and the
 * rollback tiers. A tier every rollback tier reverts never runs on the
 * reference: editing its file (what a user does between two rehearsals)
 * keeps the reference; editing tiergate.yaml does not. What the key cannot
 * hold is checked when the reference is used: the rollback tier and the
 * tiers the gate opened after must be those this rehearsal computes
 * (src/rehearsal/rehearse.ts), or stage C fails saying so.
 *
 * An entry is a cache entry (src/cache.ts): this user's, closed to others,
 * a miss when it cannot be read; `TIERGATE_CACHE=off` turns it off (then
 * every rehearsal makes its second clone, as before).
 */
export interface StoredReference {
  fp: Fingerprint;
  /** the rollback tier whose kept tiers it applied */
  rollbackTier: number;
  /** the tiers applied before the gate was opened on it (null: not opened) */
  gateAfter: number[] | null;
  /** ISO 8601: when the rehearsal that made it ran */
  madeAt: string;
}

const KIND = 'rehearsal-reference';
/** references of one fingerprint each (~3 MB at 6,500 tables): the newest few */
const KEEP = 8;

/** The key of the reference of `plan` on `snapshot` of the scratch server `scratchUrl`, or null when the code's identity cannot be read (no caching). */
export function referenceKey(plan: Plan, snapshot: CloneSnapshot, scratchUrl: string, scratchSettings: string): string | null {
  const code = codeStamp(
    import.meta.url,
    [
      'kept-reference',
      'rehearse',
      ...['fingerprint', 'catalog', 'change-log', 'rows', 'metrics', 'settings', 'jit'].map((m) => `../probe/${m}`),
      ...['run-tier', 'run-script', 'gate', 'ledger', 'expectations', 'session-bounds'].map((m) => `../engine/${m}`),
    ],
    ['pg'],
  );
  if (!code) return null;
  const body = plan.tiers.filter(isBodyTier);
  const rollbacks = plan.tiers.filter((t) => t.kind === 'rollback');
  const keptSomewhere = body.filter((t) => !rollbacks.length || rollbacks.some((r) => !r.reverts.includes(t.id)));
  return JSON.stringify({
    v: tiergateVersion(),
    code,
    scratch: serverOf(scratchUrl),
    pgoptions: process.env.PGOPTIONS ?? null,
    settings: createHash('sha256').update(scratchSettings).digest('hex'),
    snapshot: { database: snapshot.database, takenAt: snapshot.takenAt },
    plan: plan.name,
    yaml: plan.yamlSha256,
    files: [...keptSomewhere, ...rollbacks].map((t) => [t.id, t.sha256]),
  });
}

export function readReference(key: string): StoredReference | undefined {
  const r = readCache<StoredReference>(KIND, key);
  return r && typeof r.fp?.hash === 'string' && typeof r.rollbackTier === 'number' && typeof r.madeAt === 'string' ? r : undefined;
}

export function storeReference(key: string, reference: StoredReference): void {
  writeCache(KIND, key, reference, KEEP);
}

/** Which scratch server, as its URL names it: host (or socket folder), port, user and parameters — never the password. */
function serverOf(url: string): string {
  const u = parsePostgresUrl(url);
  if (!u) return createHash('sha256').update(url).digest('hex');
  const host = u.hostname === NO_HOST || !u.hostname ? (u.searchParams.get('host') ?? '') : u.hostname;
  const params = [...u.searchParams.entries()].filter(([k]) => k !== 'password').sort();
  return JSON.stringify([host, u.port || u.searchParams.get('port') || '5432', decodeURIComponent(u.username), params]);
}

/** What a rehearsal knows of its stored reference: the key (null: none can be kept) and the entry, when the snapshot chosen had one. */
export interface ReferenceLookup {
  key: string | null;
  stored?: StoredReference;
}

/**
 * The clone source a rehearsal of `plan` asks for: a PostgreSQL source with
 * a kept snapshot gets its clones counted once the snapshot is chosen — one
 * when the plan has no rollback to prove or the reference for that snapshot
 * is stored, else two. `lookup` is filled in then. Other sources unchanged.
 */
export function withStoredReference(plan: Plan, source: CloneSource): { source: CloneSource; lookup: ReferenceLookup } {
  const lookup: ReferenceLookup = { key: null };
  if (source.kind !== 'postgres' || !source.snapshot?.keep) return { source, lookup };
  const hasRollback = plan.tiers.some((t) => t.kind === 'rollback');
  const clonesFor = (snapshot: CloneSnapshot, scratchSettings: string): number => {
    if (!hasRollback) return 1;
    lookup.key = referenceKey(plan, snapshot, source.scratchUrl, scratchSettings);
    lookup.stored = lookup.key ? readReference(lookup.key) : undefined;
    return lookup.stored ? 1 : 2;
  };
  return { source: { ...source, snapshot: { ...source.snapshot, clonesFor } }, lookup };
}
