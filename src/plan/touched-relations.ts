/** The relations a script changes, collected from the effects of its statements. */
import { analyzeStatement } from './analyze-statement.js';
import type { ParsedScript, PgQuery } from './parse-script.js';

/** The relations a script changes, as written (`schema.table` or `table`, quoted only when needed). */
export interface TouchedRelations {
  /** INSERT / UPDATE / DELETE / MERGE / TRUNCATE / COPY FROM targets and REFRESH MATERIALIZED VIEW */
  writes: string[];
  /** CREATE TABLE, CREATE TABLE AS, CREATE MATERIALIZED VIEW, SELECT INTO */
  creates: string[];
  /** DROP TABLE, DROP MATERIALIZED VIEW */
  drops: string[];
  /** ALTER TABLE (including RENAME and SET SCHEMA): their rows may change (a new column with a default) */
  alters: string[];
  /** functions and procedures the script calls, as written: they may write anything (builtins included) */
  calls: string[];
  /** why the lists above may be incomplete (`line 12: EXECUTE of a string built at run time`); empty when they are exact */
  incomplete: string[];
  /** statements that change the session's settings (`line 3: SET search_path`, `line 4: set_config()`) */
  settings: string[];
  /** the calls that move a sequence, as written (`nextval()`, `setval()`) */
  sequences: string[];
  /** what a transaction does not undo (`pg_advisory_unlock_all()`, `lo_export()`, `VACUUM`) */
  nonTransactional: string[];
}

/** `touchedRelations` of a script the parser has read: see there. */
export function touchedInParsed(pg: PgQuery, { src, statements }: ParsedScript): TouchedRelations {
  const sets = { writes: new Set<string>(), creates: new Set<string>(), drops: new Set<string>(), alters: new Set<string>(), calls: new Set<string>() };
  const incomplete: string[] = [];
  const settings: string[] = [];
  const sequences = new Set<string>();
  const nonTransactional = new Set<string>();
  for (const stmt of statements) {
    for (const e of analyzeStatement(pg, src, stmt).effects) {
      if (e.type === 'write') sets.writes.add(e.rel.text);
      else if (e.type === 'create') sets.creates.add(e.rel.text);
      else if (e.type === 'drop') sets.drops.add(e.rel.text);
      else if (e.type === 'alter') sets.alters.add(e.rel.text);
      else if (e.type === 'call') sets.calls.add(e.name);
      else if (e.type === 'sequence') sequences.add(e.what);
      else if (e.type === 'non-transactional') nonTransactional.add(e.what);
      else if (e.type === 'setting') settings.push(`line ${src.position(e.at).line}: ${e.what}`);
      else if (e.type === 'opaque' || e.type === 'invalid') incomplete.push(`line ${src.position(e.at).line}: ${e.type === 'opaque' ? e.why : e.message}`);
    }
  }
  return {
    writes: [...sets.writes],
    creates: [...sets.creates],
    drops: [...sets.drops],
    alters: [...sets.alters],
    calls: [...sets.calls],
    incomplete,
    settings,
    sequences: [...sequences],
    nonTransactional: [...nonTransactional],
  };
}
