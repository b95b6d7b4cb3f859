import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Plan } from './plan.js';

/**
 * The line of a tier's `post:` in the plan's YAML file (null when it cannot be
 * read or found): a failed post-condition names where it is declared. Read
 * only then, with the YAML parser loaded only then (a run reads the plan from
 * tiergate's cache, without the parser).
 */
export async function postConditionLine(plan: Plan, tierId: number): Promise<number | null> {
  try {
    const { LineCounter, parseDocument, isMap, isSeq } = await import('yaml');
    const lineCounter = new LineCounter();
    const doc = parseDocument(readFileSync(join(plan.dir, plan.yamlName), 'utf8'), { lineCounter });
    const tiers = doc.get('tiers', true);
    if (!isSeq(tiers)) return null;
    for (const item of tiers.items) {
      if (!isMap(item) || Number(item.get('id')) !== tierId) continue;
      const post = item.items.find((pair) => (pair.key as { value?: unknown } | null)?.value === 'post');
      const at = (post?.key as { range?: [number, number, number] } | null)?.range?.[0];
      return at === undefined ? null : lineCounter.linePos(at).line;
    }
    return null;
  } catch {
    return null;
  }
}
