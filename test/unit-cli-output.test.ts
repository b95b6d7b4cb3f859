/**
 * The passing status line of the CLI (src/cli/output.ts `status`, fed by
 * src/live-status.ts): on a terminal one line that moves and is replaced by
 * the next output; nothing at all on plain output or under --json.
 */
import { describe, expect, it } from 'vitest';
import { Output } from '../src/cli/output.js';
import { liveStatus, ticking, withLiveStatus } from '../src/live-status.js';

/** A stream that records what is written; a terminal `columns` wide when `tty`. */
function stream(tty: boolean, columns = 40): NodeJS.WriteStream & { text: string } {
  const s = { text: '', isTTY: tty, columns, write: (chunk: string) => ((s.text += chunk), true) };
  return s as unknown as NodeJS.WriteStream & { text: string };
}

describe('Output.status', () => {
  it('on a terminal: one line rewritten in place, cleared before the next line, cut to the width', () => {
    const term = stream(true, 30);
    const out = new Output(false, term, stream(true));
    out.status('building the sample: 5 of 65 tables created');
    out.status('building the sample: 10 of 65');
    out.line('clone 1 of 2 ready in 0.4 s');
    expect(term.text).toBe(
      '\r\x1b[2Kbuilding the sample: 5 of 65 ' + // cut to 29 columns: the cursor never wraps
        '\r\x1b[2Kbuilding the sample: 10 of 65' +
        '\r\x1b[2Kclone 1 of 2 ready in 0.4 s\n',
    );
  });

  it('a tier line pending below a status replaces the right line', () => {
    const term = stream(true, 80);
    const out = new Output(false, term, stream(true));
    out.pending('A   1  Base axis substrate');
    out.status('copying the clone: 3 of 5 parts');
    out.replace('A   1  Base axis substrate  Applied');
    expect(term.text).toBe('A   1  Base axis substrate\n\r\x1b[2Kcopying the clone: 3 of 5 parts\r\x1b[2K\x1b[1A\x1b[2KA   1  Base axis substrate  Applied\n');
  });

  it('plain output and --json: no status at all', () => {
    for (const [json, tty] of [[false, false], [true, true]] as const) {
      const s = stream(tty);
      const out = new Output(json, s, stream(tty));
      out.status('building the sample: 5 of 65 tables created');
      out.line('done');
      expect(s.text).toBe(json ? '' : 'done\n');
    }
  });
});

describe('liveStatus', () => {
  it('reaches the sink of the work it runs in, and nothing outside it', async () => {
    const seen: string[] = [];
    liveStatus('before');
    await withLiveStatus(
      (t) => seen.push(t),
      async () => {
        liveStatus('one');
        await Promise.resolve();
        liveStatus('two');
      },
    );
    liveStatus('after');
    expect(seen).toEqual(['one', 'two']);
  });

  it('two pieces of work side by side keep their own status', async () => {
    const a: string[] = [];
    const b: string[] = [];
    const work = (name: string) => async () => {
      for (let i = 0; i < 3; i++) {
        liveStatus(`${name} ${i}`);
        await new Promise((r) => setTimeout(r, 1));
      }
    };
    await Promise.all([withLiveStatus((t) => a.push(t), work('a')), withLiveStatus((t) => b.push(t), work('b'))]);
    expect(a).toEqual(['a 0', 'a 1', 'a 2']);
    expect(b).toEqual(['b 0', 'b 1', 'b 2']);
  });

  it('ticking shows the seconds while the work runs, and returns its value', async () => {
    const seen: string[] = [];
    const value = await withLiveStatus(
      (t) => seen.push(t),
      () => ticking('initialising', () => new Promise<number>((r) => setTimeout(() => r(42), 450))),
    );
    expect(value).toBe(42);
    expect(seen[0]).toBe('initialising … 0.0 s');
    expect(seen.length).toBeGreaterThanOrEqual(2);
    expect(seen.at(-1)).toMatch(/^initialising … \d+\.\d s$/);
  });
});
