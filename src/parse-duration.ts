/**
 * A duration as an operator writes it on the command line (`--wait 5min`,
 * `--max-evidence-age 7d`). Its own module so that a command reads its
 * flags without loading what it does not use (the evidence code and its
 * schema library, ~0.15 s, for an apply without `--evidence`).
 */

/**
 * A duration such as `7d`, `36h`, `90min`, `1w` in milliseconds; null when it
 * is not one. The unit is required: `--reuse-snapshot 2` read as 2 seconds
 * (an operator meaning hours got a fresh dump), `--max-evidence-age 3` as 3 s.
 */
export function parseDuration(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h|d|w)\s*$/i.exec(text);
  if (!m) return null;
  const unit: Record<string, number> = { ms: 1, s: 1000, sec: 1000, m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
  return Math.round(Number(m[1]) * unit[m[2]!.toLowerCase()]!);
}

/** An age or a duration in words, in whole units (12.5 min is `12 min`): `45 s`, `12 min`, `3 h`, `8 d` (evidence ages, snapshot ages, --reuse-snapshot). */
export function describeAge(ms: number): string {
  if (!Number.isFinite(ms)) return 'an unknown time';
  const s = Math.abs(ms) / 1000;
  if (s < 120) return `${Math.floor(s)} s`;
  if (s < 7200) return `${Math.floor(s / 60)} min`;
  if (s < 172_800) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86_400)} d`;
}
