/**
 * A script as PostgreSQL's parser reads it: its top-level statements, each
 * with its text, position and parse tree.
 */
import { SourceText, skipTrivia } from './source-text.js';

/** The `libpg-query` module; only its type here: `lint.ts` loads it, lazily. */
export type PgQuery = typeof import('libpg-query');

/** One top-level statement of a script, as `psql -f` would send it. */
export interface SqlStatement {
  /** the statement's text, from its first token to its last (no trailing `;`) */
  sql: string;
  /** string index of the first token (leading comments and blanks skipped) */
  start: number;
  /** string index just after the last token */
  end: number;
  /** 1-based line of `start` */
  line: number;
  /** the parse node, e.g. `{ InsertStmt: { … } }` */
  ast: unknown;
}

/** A script that PostgreSQL's parser rejects. */
export class SqlSyntaxError extends Error {
  constructor(
    /** the parser's message, e.g. `syntax error at or near ","` */
    readonly parserMessage: string,
    /** string index of the parser's cursor */
    readonly position: number,
    readonly line: number,
    readonly column: number,
  ) {
    super(`${parserMessage} (line ${line}, column ${column})`);
    this.name = 'SqlSyntaxError';
  }
}

/** A parse-tree node or struct: node objects are `{ NodeType: { …fields } }`. */
export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export interface ParsedScript {
  src: SourceText;
  statements: SqlStatement[];
}

/** Parses a script into its statements; throws `SqlSyntaxError` when PostgreSQL would refuse it. */
export function parseScript(pg: PgQuery, sql: string): ParsedScript {
  const src = new SourceText(sql);
  if (skipTrivia(sql, 0) >= sql.length) return { src, statements: [] };
  let tree;
  try {
    tree = pg.parseSync(sql);
  } catch (e) {
    const details = (e as { sqlDetails?: { cursorPosition?: number } }).sqlDetails;
    const position = src.fromCodePoint(details?.cursorPosition ?? 0);
    const { line, column } = src.position(position);
    throw new SqlSyntaxError((e as Error).message, position, line, column);
  }
  const statements = (tree.stmts ?? []).map((raw): SqlStatement => {
    const location = raw.stmt_location ?? 0;
    const start = skipTrivia(sql, src.fromByte(location));
    // stmt_len 0: the last statement, without a `;`: it runs to the end of the text, trailing comments included.
    const end = raw.stmt_len ? src.fromByte(location + raw.stmt_len) : lastTokenEnd(pg, sql, start);
    return { sql: sql.slice(start, end), start, end, line: src.position(start).line, ast: raw.stmt };
  });
  return { src, statements };
}

/** String index just after the last token of `sql` from `start` that is not a comment. */
function lastTokenEnd(pg: PgQuery, sql: string, start: number): number {
  const tail = sql.slice(start);
  const tokens = pg.scanSync(tail).tokens.filter((t) => t.tokenName !== 'SQL_COMMENT' && t.tokenName !== 'C_COMMENT');
  const last = tokens[tokens.length - 1];
  if (!last) return sql.trimEnd().length;
  return start + Buffer.from(tail, 'utf8').subarray(0, last.end).toString('utf8').length;
}
