/**
 * The CLI's way to a plan: a tiergate.yaml validated before (same bytes, same
 * tiergate) is taken from tiergate's cache, so that neither the YAML parser
 * nor the schema library is loaded (together ~0.1 s of a ~0.3 s
 * `tiergate plan`); anything else goes through `loadPlan`, which validates it
 * and, when it is valid, caches it. The tier files are read, hashed and
 * checked on every run either way.
 */
import { codeStamp, readCache } from '../cache.js';
import { assemblePlan, bundledPlanDir, readPlanSource, sha256, type Plan } from './plan.js';
import type { PlanFile } from './schema.js';

/** @example const plan = await openPlan('plans/axis-governance'); */
export async function openPlan(dirOrFile: string = bundledPlanDir()): Promise<Plan> {
  const source = readPlanSource(dirOrFile);
  const key = planCacheKey(source.yamlBytes);
  const valid = key === null ? undefined : readCache<PlanFile>('plan', key);
  if (valid && looksLikePlan(valid)) return assemblePlan(source, valid);
  const { loadPlanSource } = await import('./load-plan.js');
  return loadPlanSource(source);
}

let stamp: string | null | undefined;

/** The cache key of a tiergate.yaml: its bytes, and the code and packages that validate it (null: no caching). */
export function planCacheKey(yamlBytes: Buffer): string | null {
  if (stamp === undefined) stamp = codeStamp(import.meta.url, ['load-plan', 'schema', 'plan'], ['yaml', 'zod']);
  return stamp === null ? null : `${stamp}:${sha256(yamlBytes)}`;
}

/** The shape a validated plan has at least (an entry that lacks it is a miss). */
function looksLikePlan(v: PlanFile): boolean {
  return (
    typeof v.plan === 'string' &&
    Array.isArray(v.schemas) &&
    Array.isArray(v.tiers) &&
    v.tiers.length > 0 &&
    v.tiers.every((t) => typeof t?.id === 'number' && typeof t.kind === 'string' && typeof t.file === 'string' && typeof t.name === 'string')
  );
}
