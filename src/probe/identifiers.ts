import { createHash } from 'node:crypto';

/** An identifier as PostgreSQL reads it: unquoted folded to lower case, quoted as written. */
export const IDENT = String.raw`(?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"]|"")+")`;
const IDENTS = new RegExp(IDENT, 'g');

/**
 * The parts of a dotted name as PostgreSQL reads them: `app."odd.name"` →
 * `['app', 'odd.name']`, `Axis.Topic` → `['axis', 'topic']`.
 */
export function identifierParts(name: string): string[] {
  return [...name.matchAll(IDENTS)].map(([p]) => (p.startsWith('"') ? p.slice(1, -1).replaceAll('""', '"') : p.toLowerCase()));
}

/**
 * A text as an SQL literal that reads the same whatever
 * standard_conforming_strings is (an `E'…'` string, its backslashes and
 * quotes escaped): for the statements tiergate sends as text (EXECUTE of a
 * prepared statement takes no bound parameters).
 */
export function textLiteral(value: string): string {
  return `E'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** A prepared statement's name for `sql`: `prefix` and 16 hex digits of its sha256 (the same text, the same name, on any session). */
export function statementName(prefix: string, sql: string): string {
  return `${prefix}${createHash('sha256').update(sql).digest('hex').slice(0, 16)}`;
}
