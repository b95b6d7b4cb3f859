import type { GateReading, TierResult } from '../engine/result.js';

/** The evidence contract (`evidence.json`): see schema/evidence.schema.json. Bump on incompatible change. */
export const EVIDENCE_SCHEMA_VERSION = 1;

export interface StageRecord {
  name: 'A' | 'B' | 'C';
  title: string;
  tiers: TierResult[];
  /** checks this stage made beyond the tiers (fingerprints, honest gaps …) */
  checks: CheckRecord[];
}

export interface CheckRecord {
  name: string;
  ok: boolean;
  detail: string;
}

export interface FingerprintDiff {
  objects: string[];
  tables: string[];
}

export interface Evidence {
  schemaVersion: number;
  tool: { name: 'tiergate'; version: string };
  createdAt: string;
  plan: { name: string; dir: string; sha256: string; files: Record<string, string> };
  source: {
    kind: 'pglite-sample' | 'postgres' | 'dump';
    /** redacted URL or file name */
    location: string;
    database: string;
    gate: GateReading | null;
    preflight: TierResult | null;
  };
  clone: { kind: 'pglite' | 'postgres'; location: string; kept: boolean; copyMs: number };
  stages: StageRecord[];
  rollback: {
    tier: number;
    reverted: number[];
    matchesKeptTiers: boolean;
    reapplyMatches: boolean;
    keptDiff: FingerprintDiff | null;
    reapplyDiff: FingerprintDiff | null;
  } | null;
  verdict: { rehearsal: 'PASS' | 'FAIL'; execution: 'GO' | 'NO-GO'; reason: string; failures: string[] };
  durationMs: number;
}
