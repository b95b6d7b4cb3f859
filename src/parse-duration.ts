/**
 * A duration as an operator writes it on the command line (`--wait 5min`,
 * `--max-evidence-age 7d`). Its own module so that a command reads its
 * flags without loading what it does not use (the evidence code and its
 * schema library, ~0.15 s, for an apply without `--evidence`).
 */

/** A duration such as `7d`, `36h`, `90min`, `1w` in milliseconds; null when it is not one. */
export function parseDuration(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h|d|w)?\s*$/i.exec(text);
  if (!m) return null;
  const unit: Record<string, number> = { ms: 1, s: 1000, sec: 1000, m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
  return Math.round(Number(m[1]) * unit[(m[2] ?? 's').toLowerCase()]!);
}
