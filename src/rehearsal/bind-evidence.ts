import { readFileSync } from 'node:fs';
import type { RunResult } from '../engine/apply.js';
import type { Delta, TierResult } from '../engine/result.js';
import { UsageError } from '../errors.js';
import { planFileHashes, type Plan } from '../plan/plan.js';
import { parseEvidence } from '../report/render-json.js';
import type { Evidence } from './evidence.js';

export interface EvidenceComparison {
  evidence: { file: string; createdAt: string; planSha256: string };
  /** tiers whose production delta differs from the rehearsal's */
  differences: { tier: number; what: string; rehearsal: string; production: string }[];
  lines: string[];
}

/**
 * Binds a production apply to a rehearsal: refuses unless the evidence is a
 * PASS for exactly these plan files (same sha256 of every file), then
 * compares production's deltas with the rehearsal's stage B.
 */
export function bindEvidence(file: string, plan: Plan): { evidence: Evidence; compare(r: RunResult): EvidenceComparison } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new UsageError(`cannot read evidence file '${file}'`);
  }
  const evidence = parseEvidence(text, file);
  if (evidence.verdict.rehearsal !== 'PASS') {
    throw new UsageError(`evidence '${file}' is a rehearsal ${evidence.verdict.rehearsal}: apply needs a PASS (${evidence.verdict.failures.join('; ') || evidence.verdict.reason})`);
  }
  if (evidence.plan.name !== plan.name) throw new UsageError(`evidence '${file}' is for plan '${evidence.plan.name}', not '${plan.name}'`);
  const files = planFileHashes(plan);
  const mismatched = [
    ...Object.entries(files).filter(([f, sha]) => evidence.plan.files[f] !== sha).map(([f, sha]) => `${f}: rehearsed ${evidence.plan.files[f]?.slice(0, 12) ?? 'absent'}, now ${sha.slice(0, 12)}`),
    ...Object.keys(evidence.plan.files).filter((f) => !(f in files)).map((f) => `${f}: rehearsed, no longer in the plan`),
  ];
  if (mismatched.length || evidence.plan.sha256 !== plan.sha256) {
    throw new UsageError(
      `evidence '${file}' was rehearsed with other plan files; rehearse again before applying:\n  ${mismatched.join('\n  ') || `plan sha256 ${evidence.plan.sha256.slice(0, 12)} → ${plan.sha256.slice(0, 12)}`}`,
    );
  }
  return {
    evidence,
    compare(r: RunResult): EvidenceComparison {
      const rehearsed = new Map<number, TierResult>();
      for (const stage of evidence.stages) for (const t of stage.tiers) if (t.status === 'Applied' && !rehearsed.has(t.id)) rehearsed.set(t.id, t);
      const differences: EvidenceComparison['differences'] = [];
      for (const t of r.tiers) {
        const ref = rehearsed.get(t.id);
        if (t.status !== 'Applied' || !ref?.delta || !t.delta) continue;
        differences.push(...diffDeltas(t.id, ref.delta, t.delta));
      }
      const lines = differences.length
        ? [`production differs from the rehearsal (${file}):`, ...differences.map((d) => `  tier ${d.tier} ${d.what}: rehearsal ${d.rehearsal}, production ${d.production}`)]
        : [`production deltas match the rehearsal (${file})`];
      return { evidence: { file, createdAt: evidence.createdAt, planSha256: evidence.plan.sha256 }, differences, lines };
    },
  };
}

function diffDeltas(tier: number, a: Delta, b: Delta): EvidenceComparison['differences'] {
  const out: EvidenceComparison['differences'] = [];
  const kinds = new Set([...Object.keys(a.objects), ...Object.keys(b.objects)]) as Set<keyof Delta['objects']>;
  for (const k of kinds) {
    const x = a.objects[k];
    const y = b.objects[k];
    const fx = x ? `+${x.added.length} -${x.removed.length} ~${x.changed.length}` : '±0';
    const fy = y ? `+${y.added.length} -${y.removed.length} ~${y.changed.length}` : '±0';
    if (fx !== fy) out.push({ tier, what: k, rehearsal: fx, production: fy });
  }
  for (const rel of new Set([...Object.keys(a.rows), ...Object.keys(b.rows)])) {
    const x = a.rows[rel];
    const y = b.rows[rel];
    const fx = x ? `+${x.added} -${x.removed} ~${x.changed}` : '±0';
    const fy = y ? `+${y.added} -${y.removed} ~${y.changed}` : '±0';
    if (fx !== fy) out.push({ tier, what: `rows ${rel}`, rehearsal: fx, production: fy });
  }
  for (const m of new Set([...Object.keys(a.metrics), ...Object.keys(b.metrics)])) {
    const x = a.metrics[m];
    const y = b.metrics[m];
    const fx = `${x?.before ?? 'n/a'}→${x?.after ?? 'n/a'}`;
    const fy = `${y?.before ?? 'n/a'}→${y?.after ?? 'n/a'}`;
    if (fx !== fy) out.push({ tier, what: `metric ${m}`, rehearsal: fx, production: fy });
  }
  return out;
}
