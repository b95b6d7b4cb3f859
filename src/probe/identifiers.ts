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
