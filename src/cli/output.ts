import { scrub, scrubValue } from '../secrets.js';

/**
 * Everything the CLI prints goes through here: secrets are scrubbed, `--json`
 * prints exactly one object, a TTY gets a live tier list, anything else gets
 * plain lines.
 */
export class Output {
  readonly live: boolean;
  private liveLines = 0;

  constructor(
    readonly json: boolean,
    private readonly out: NodeJS.WriteStream = process.stdout,
    private readonly err: NodeJS.WriteStream = process.stderr,
  ) {
    this.live = !json && Boolean(out.isTTY) && process.env.TERM !== 'dumb';
  }

  /** A line of human output (suppressed under --json). */
  line(text = ''): void {
    if (this.json) return;
    this.liveLines = 0;
    this.out.write(scrub(text) + '\n');
  }

  /** A line that the next `replace` overwrites on a TTY (a tier in progress). */
  pending(text: string): void {
    if (this.json) return;
    if (!this.live) return;
    this.out.write(scrub(text) + '\n');
    this.liveLines = 1;
  }

  /** Replaces the pending line on a TTY; prints a new line otherwise. */
  replace(text: string): void {
    if (this.json) return;
    if (this.live && this.liveLines === 1) this.out.write('\x1b[1A\x1b[2K');
    this.liveLines = 0;
    this.out.write(scrub(text) + '\n');
  }

  /** The one machine-readable result of a --json run. */
  result(value: unknown): void {
    if (!this.json) return;
    this.out.write(JSON.stringify(scrubValue(value), null, 2) + '\n');
  }

  /** Errors and warnings: always to stderr, scrubbed. */
  error(text: string): void {
    this.err.write(scrub(text) + '\n');
  }

  paint(code: 'red' | 'green' | 'yellow' | 'dim' | 'bold', text: string): string {
    if (!this.live || process.env.NO_COLOR) return text;
    const codes = { red: 31, green: 32, yellow: 33, dim: 2, bold: 1 } as const;
    return `\x1b[${codes[code]}m${text}\x1b[0m`;
  }
}
