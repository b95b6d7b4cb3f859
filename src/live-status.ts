/**
 * A passing status line for work that takes seconds (building the sample
 * table by table, copying a clone): shown on a terminal and replaced by the
 * next line, never printed elsewhere. Whoever renders output (the CLI) runs
 * the work inside `withLiveStatus`; code deep below (a clone provider) calls
 * `liveStatus`, which does nothing when nobody shows it. The sink follows the
 * async calls of one piece of work, so rehearsals running side by side in one
 * process (a fleet) never show each other's status.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

type Sink = (text: string) => void;

const sinks = new AsyncLocalStorage<Sink>();

/** Runs `fn` with `show` receiving every `liveStatus` made inside it. */
export function withLiveStatus<T>(show: Sink, fn: () => Promise<T>): Promise<T> {
  return sinks.run(show, fn);
}

/** Shows `text` as the current status, if anyone shows status here. */
export function liveStatus(text: string): void {
  sinks.getStore()?.(text);
}

/**
 * Shows `text` with the seconds elapsed, again every 200 ms while `work`
 * runs (as often as the event loop is free: a long synchronous step, such as
 * PGlite's initdb, shows its start and its end only).
 *
 * @example await ticking('copying the sample', () => copyDirs(from, targets))
 */
export async function ticking<T>(text: string, work: () => Promise<T>): Promise<T> {
  if (!sinks.getStore()) return work();
  const started = performance.now();
  const show = () => liveStatus(`${text} … ${((performance.now() - started) / 1000).toFixed(1)} s`);
  show();
  const timer = setInterval(show, 200);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}
