/**
 * Splits a plain SQL dump (as `pg_dump --format=plain` writes it, and as
 * `psql -f` reads it) into statements, COPY … FROM stdin blocks and psql
 * meta-commands. Quotes, dollar quotes and comments are followed across lines
 * the way psql's lexer does, so a `;` or a line starting with `\` inside a
 * function body is just text.
 */

export type DumpPiece =
  | { kind: 'statement'; sql: string; line: number }
  | { kind: 'copy'; header: string; line: number }
  | { kind: 'copy-data'; rows: string[] }
  | { kind: 'copy-end' }
  | { kind: 'meta'; command: string; text: string; line: number };

type Mode = { t: 'normal' } | { t: 'squote'; escapes: boolean } | { t: 'dquote' } | { t: 'dollar'; tag: string } | { t: 'block'; depth: number };

const DOLLAR_TAG = /^\$([A-Za-z_\u0080-\uffff][\w\u0080-\uffff]*)?\$/;
const IDENT_CHAR = /[\w$\u0080-\uffff]/;
const ROWS_PER_PIECE = 20_000;
/** a COPY statement whose data follows inline */
const COPY_FROM_STDIN = /^COPY\s[\s\S]*\sFROM\s+stdin\b[^;]*;$/i;

export class DumpScanner {
  private mode: Mode = { t: 'normal' };
  private statement = '';
  private statementLine = 0;
  private inCopy = false;
  private copyRows: string[] = [];
  private lineNo = 0;

  /** Feeds one line (without its newline); returns what it completed. */
  push(line: string): DumpPiece[] {
    this.lineNo++;
    const out: DumpPiece[] = [];
    if (this.inCopy) {
      if (line === '\\.') {
        this.inCopy = false;
        if (this.copyRows.length) out.push({ kind: 'copy-data', rows: this.copyRows });
        this.copyRows = [];
        out.push({ kind: 'copy-end' });
      } else {
        this.copyRows.push(line);
        // hand the rows over in pieces: a table of any size loads in bounded memory
        if (this.copyRows.length >= ROWS_PER_PIECE) {
          out.push({ kind: 'copy-data', rows: this.copyRows });
          this.copyRows = [];
        }
      }
      return out;
    }
    if (this.mode.t === 'normal' && line.startsWith('\\') && !meaningful(this.statement)) {
      const command = /^\\([A-Za-z!?]+|\S)/.exec(line)?.[1] ?? line.slice(1, 2);
      out.push({ kind: 'meta', command, text: line, line: this.lineNo });
      return out;
    }
    let start = 0;
    for (let i = 0; i < line.length; i++) {
      const ch = line[i]!;
      const m = this.mode;
      if (m.t === 'normal') {
        if (ch === '-' && line[i + 1] === '-') break; // comment to the end of the line
        if (ch === '/' && line[i + 1] === '*') {
          this.mode = { t: 'block', depth: 1 };
          i++;
        } else if (ch === "'") {
          const prev = line[i - 1] ?? '';
          const beforePrev = line[i - 2] ?? '';
          this.mode = { t: 'squote', escapes: (prev === 'e' || prev === 'E') && !IDENT_CHAR.test(beforePrev) };
        } else if (ch === '"') this.mode = { t: 'dquote' };
        else if (ch === '$' && !IDENT_CHAR.test(line[i - 1] ?? '')) {
          const tag = DOLLAR_TAG.exec(line.slice(i));
          if (tag) {
            this.mode = { t: 'dollar', tag: tag[0] };
            i += tag[0].length - 1;
          }
        } else if (ch === ';') {
          this.append(line.slice(start, i + 1));
          start = i + 1;
          out.push(...this.endStatement());
        }
      } else if (m.t === 'squote') {
        if (m.escapes && ch === '\\') i++;
        else if (ch === "'") {
          if (line[i + 1] === "'") i++;
          else this.mode = { t: 'normal' };
        }
      } else if (m.t === 'dquote') {
        if (ch === '"') {
          if (line[i + 1] === '"') i++;
          else this.mode = { t: 'normal' };
        }
      } else if (m.t === 'dollar') {
        if (ch === '$' && line.startsWith(m.tag, i)) {
          i += m.tag.length - 1;
          this.mode = { t: 'normal' };
        }
      } else if (ch === '/' && line[i + 1] === '*') {
        m.depth++;
        i++;
      } else if (ch === '*' && line[i + 1] === '/') {
        i++;
        if (--m.depth === 0) this.mode = { t: 'normal' };
      }
    }
    const rest = line.slice(start);
    if (rest.trim() || this.statement) this.append(rest + '\n');
    return out;
  }

  /** The end of the file: a last statement without `;`, or an error for an unterminated COPY. */
  end(): DumpPiece[] {
    if (this.inCopy) throw new Error(`the COPY block starting at line ${this.statementLine} has no terminating '\\.' line`);
    const sql = this.statement;
    this.statement = '';
    return meaningful(sql) ? [{ kind: 'statement', sql, line: this.statementLine }] : [];
  }

  private append(text: string): void {
    if (!this.statement.trim() && text.trim()) this.statementLine = this.lineNo;
    if (this.statement || text.trim()) this.statement += text;
  }

  private endStatement(): DumpPiece[] {
    const sql = this.statement;
    this.statement = '';
    const bare = sql
      .split('\n')
      .filter((l) => !/^\s*--/.test(l))
      .join('\n')
      .trim();
    if (COPY_FROM_STDIN.test(bare)) {
      this.inCopy = true;
      return [{ kind: 'copy', header: bare, line: this.statementLine }];
    }
    return meaningful(sql) ? [{ kind: 'statement', sql, line: this.statementLine }] : [];
  }
}

/** Not only comments and whitespace. */
function meaningful(sql: string): boolean {
  return sql.split('\n').some((l) => l.trim() && !/^\s*--/.test(l));
}
