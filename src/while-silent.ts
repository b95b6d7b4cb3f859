/**
 * Runs `fn`; while it runs, says `say(seconds since it started)` whenever
 * `every` ms passed without `fn` telling anything (`told()`): a step whose
 * own progress comes per table (pg_restore, a fingerprint's batches) is not
 * silent for the minutes one table of gigabytes takes.
 */
export async function sayingWhileSilent<T>(every: number, say: (seconds: number) => void, fn: (told: () => void) => Promise<T>): Promise<T> {
  const started = performance.now();
  let last = started;
  const ticker = setInterval(() => {
    if (performance.now() - last < every) return;
    last = performance.now();
    say(Math.round((last - started) / 1000));
  }, Math.min(every, 1000));
  ticker.unref();
  try {
    return await fn(() => {
      last = performance.now();
    });
  } finally {
    clearInterval(ticker);
  }
}
