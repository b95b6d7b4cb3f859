/**
 * Offsets in a SQL text. The parser reports node locations as UTF-8 BYTE
 * offsets and syntax errors as CHARACTER offsets (PostgreSQL's
 * `errposition`); the plan modules work in JavaScript string indexes and
 * report a 1-based line and column, the column counted in characters (code
 * points), as PostgreSQL counts an error's position.
 */

/** Maps the parser's UTF-8 byte and code-point offsets to string indexes, and indexes to line/column. */
export class SourceText {
  /** byte offset / code-point offset of each string index (only for non-ASCII text) */
  private readonly byteAt: Uint32Array | undefined;
  private readonly cpAt: Uint32Array | undefined;
  private readonly lineStarts: number[] = [0];

  constructor(readonly text: string) {
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) this.lineStarts.push(i + 1);
    // eslint-disable-next-line no-control-regex
    if (/^[\x00-\x7f]*$/.test(text)) return;
    const byteAt = new Uint32Array(text.length + 1);
    const cpAt = new Uint32Array(text.length + 1);
    let bytes = 0;
    let cps = 0;
    for (let i = 0; i < text.length; ) {
      const c = text.codePointAt(i)!;
      const units = c > 0xffff ? 2 : 1;
      for (let u = 0; u < units; u++) {
        byteAt[i + u] = bytes;
        cpAt[i + u] = cps;
      }
      bytes += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
      cps += 1;
      i += units;
    }
    byteAt[text.length] = bytes;
    cpAt[text.length] = cps;
    this.byteAt = byteAt;
    this.cpAt = cpAt;
  }

  /** string index of a UTF-8 byte offset (as in the parser's `location`, `stmt_location`) */
  fromByte(byte: number): number {
    return this.byteAt ? lowerBound(this.byteAt, byte) : Math.min(byte, this.text.length);
  }

  /** string index of a code-point offset (as in the parser's error cursor) */
  fromCodePoint(cp: number): number {
    return this.cpAt ? lowerBound(this.cpAt, cp) : Math.min(cp, this.text.length);
  }

  /** 1-based line and column (in characters) of a string index */
  position(index: number): { line: number; column: number } {
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid]! <= index) lo = mid;
      else hi = mid - 1;
    }
    const start = this.lineStarts[lo]!;
    const column = this.cpAt ? this.cpAt[index]! - this.cpAt[start]! : index - start;
    return { line: lo + 1, column: column + 1 };
  }

  /** string index of the first non-blank character of a 1-based line (clamped to the text) */
  lineIndex(line: number): number {
    const i = this.lineStarts[Math.min(Math.max(line, 1), this.lineStarts.length) - 1]!;
    const m = /^[ \t]*/.exec(this.text.slice(i, i + 200));
    return i + (m ? m[0].length : 0);
  }
}

function lowerBound(a: Uint32Array, value: number): number {
  let lo = 0;
  let hi = a.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Skips blanks, `-- …` and (nested) `/* … *\/` comments from `i`. */
export function skipTrivia(text: string, i: number): number {
  for (;;) {
    while (i < text.length && /\s/.test(text[i]!)) i++;
    if (text.startsWith('--', i)) {
      const nl = text.indexOf('\n', i);
      i = nl < 0 ? text.length : nl + 1;
    } else if (text.startsWith('/*', i)) {
      let depth = 0;
      while (i < text.length) {
        if (text.startsWith('/*', i)) (depth++, (i += 2));
        else if (text.startsWith('*/', i)) {
          i += 2;
          if (--depth === 0) break;
        } else i++;
      }
    } else return i;
  }
}
