import { scrub, scrubValue } from '../secrets.js';
import { safeText } from '../text.js';

/** Colours are marked with private-use characters while text is composed, and turned into escapes (or dropped) when printed. */
const PAINT_OPEN = '\uE000';
const PAINT_CLOSE = '\uE001';
const CODES = { red: 31, green: 32, yellow: 33, dim: 2, bold: 1 } as const;
export type Colour = keyof typeof CODES;

/**
 * Everything the CLI prints goes through here: secrets are scrubbed, control
 * characters and bidirectional overrides are stripped from all text (a
 * hostile name from a database or a plan cannot move the cursor, retitle the
 * terminal or reverse a line), `--json` prints exactly one object, a TTY gets
 * a live tier list and colours, anything else plain lines.
 */
export class Output {
  readonly live: boolean;
  private liveLines = 0;
  private blockLines = 0;
  /** a passing status is on the screen, its line not ended (see `status`) */
  private statusShown = false;

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
    this.clearStatus();
    this.liveLines = 0;
    this.out.write(this.render(text) + '\n');
  }

  /**
   * A line of progress: as `line`, and under --json on stderr (stdout keeps
   * its one object; a long rehearsal is not silent to whoever watches it).
   */
  progress(text: string): void {
    if (!this.json) return this.line(text);
    this.err.write(this.render(text, false) + '\n');
  }

  /** A line that the next `replace` overwrites on a TTY (a tier in progress). */
  pending(text: string): void {
    if (this.json || !this.live) return;
    this.clearStatus();
    this.out.write(this.render(text) + '\n');
    this.liveLines = 1;
  }

  /** Replaces the pending line on a TTY; prints a new line otherwise. */
  replace(text: string): void {
    if (this.json) return;
    this.clearStatus();
    if (this.live && this.liveLines === 1) this.out.write('\x1b[1A\x1b[2K');
    this.liveLines = 0;
    this.out.write(this.render(text) + '\n');
  }

  /**
   * A block of lines redrawn in place on a TTY (a fleet's live table): each
   * call replaces the block the previous call printed. Not printed at all
   * elsewhere (plain output gets event lines instead).
   */
  block(lines: string[]): void {
    if (this.json || !this.live) return;
    this.clearStatus();
    if (this.blockLines > 0 && this.liveLines === -1) this.out.write(`\x1b[${this.blockLines}A\x1b[0J`);
    this.out.write(lines.map((l) => this.render(l)).join('\n') + '\n');
    this.blockLines = lines.length;
    this.liveLines = -1;
  }

  /**
   * A passing status on a TTY (building the sample: 30 of 65 tables
   * created): one line, cut to the terminal's width, that the next status
   * or line replaces. Nothing is printed elsewhere: plain output keeps its
   * lines (see src/live-status.ts).
   */
  status(text: string): void {
    if (this.json || !this.live) return;
    const width = Math.max(20, (this.out.columns || 80) - 1);
    const shown = this.render(text);
    // cut by visible characters (colour escapes take no room)
    let visible = 0;
    let cut = shown.length;
    for (let i = 0; i < shown.length; i++) {
      if (shown[i] === '\x1b') {
        i = shown.indexOf('m', i);
        if (i < 0) break;
        continue;
      }
      if (++visible > width) {
        cut = i;
        break;
      }
    }
    const reset = cut < shown.length && shown.includes('\x1b[') ? '\x1b[0m' : ''; // a colour cut off is ended
    this.out.write(`\r\x1b[2K${shown.slice(0, cut)}${reset}`);
    this.statusShown = true;
  }

  private clearStatus(): void {
    if (!this.statusShown) return;
    this.out.write('\r\x1b[2K');
    this.statusShown = false;
  }

  /** The one machine-readable result of a --json run. */
  result(value: unknown): void {
    if (!this.json) return;
    this.out.write(JSON.stringify(scrubValue(value), null, 2) + '\n');
  }

  /** Errors and warnings: always to stderr, scrubbed and made safe. */
  error(text: string): void {
    this.clearStatus();
    this.err.write(this.render(text, false) + '\n');
  }

  /** `text` in a colour when the output is a TTY (and NO_COLOR is unset); plain otherwise. */
  paint(colour: Colour, text: string): string {
    return `${PAINT_OPEN}${CODES[colour]}${PAINT_CLOSE}${text}${PAINT_OPEN}0${PAINT_CLOSE}`;
  }

  private render(text: string, colours = this.live && !process.env.NO_COLOR): string {
    const safe = safeText(scrub(text));
    return safe.replace(/\uE000(\d+)\uE001/g, (_, code: string) => (colours ? `\x1b[${code}m` : ''));
  }
}
