/**
 * Repetitions, interleaving and medians. Every figure of the benchmark is a
 * ratio against a baseline run in the same script, the two interleaved
 * (baseline, subject, baseline, subject, …), so that load from other work on
 * the machine falls on both sides alike.
 */

export function median(xs: number[]): number {
  if (!xs.length) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** One contender of an interleaved measurement. */
export interface Contender {
  name: string;
  /** untimed set-up before every run (a fresh database copy, …) */
  prepare?: () => Promise<void>;
  /** the timed work; returns its own duration in ms when it measures itself, else wall time is taken */
  run: () => Promise<number | void>;
  /** untimed clean-up after every run */
  cleanup?: () => Promise<void>;
}

/**
 * Runs `reps` rounds; each round runs every contender once, in order
 * (baseline first) — or, with `rotate`, starting one contender further each
 * round, so that none always follows the same one (a heavy contender leaves
 * the machine busier, the server's caches and this process's heap different,
 * for whoever comes next). Returns each contender's durations in ms.
 *
 * @example const t = await interleave(5, [psql, tiergate]); median(t.tiergate) / median(t.psql)
 */
export async function interleave(
  reps: number,
  contenders: Contender[],
  log: (m: string) => void = () => undefined,
  options: { rotate?: boolean } = {},
): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = Object.fromEntries(contenders.map((c) => [c.name, []]));
  for (let r = 0; r < reps; r++) {
    const round = options.rotate ? [...contenders.slice(r % contenders.length), ...contenders.slice(0, r % contenders.length)] : contenders;
    for (const c of round) {
      await c.prepare?.();
      let ms: number;
      try {
        const t = performance.now();
        const own = await c.run();
        ms = typeof own === 'number' ? own : performance.now() - t;
      } finally {
        await c.cleanup?.();
      }
      out[c.name]!.push(ms);
      log(`    ${c.name.padEnd(34)} rep ${r + 1}/${reps}: ${fmtMs(ms)}`);
    }
  }
  return out;
}

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  return `${Math.round(ms)} ms`;
}

export function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
