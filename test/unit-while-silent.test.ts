/** A step whose own progress comes seldom (one table of gigabytes) says the time elapsed meanwhile. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { sayingWhileSilent } from '../src/while-silent.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('sayingWhileSilent', () => {
  it('says the seconds elapsed each time the work was silent for the period, not when it told something; stops with the work', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'performance'] });
    const said: number[] = [];
    let told!: () => void;
    let finish!: (v: string) => void;
    const running = sayingWhileSilent(5000, (s) => said.push(s), (t) => {
      told = t;
      return new Promise<string>((resolve) => (finish = resolve));
    });
    // the work tells something at 4 s and at 8 s, then nothing until it ends at 20 s
    vi.advanceTimersByTime(4000);
    told();
    vi.advanceTimersByTime(4000);
    told();
    vi.advanceTimersByTime(12_000);
    finish('done');
    expect(await running).toBe('done');
    // silent from 8 s: said at 13 s and 18 s (nothing at 5 s: it had told at 4 s)
    expect(said).toEqual([13, 18]);
    vi.advanceTimersByTime(10_000);
    expect(said).toEqual([13, 18]);
  });
});
