import type { Queryable } from '../db/port.js';
import type { PgQuery } from '../plan/parse-script.js';
import { loadParser } from '../plan/sql-facts.js';

/** Levels of calls followed: the scanner, what it calls, what that calls. */
const DEPTH = 3;

/**
 * The statements the database's own functions run when `sql` runs: the
 * bodies of the PL/pgSQL and SQL functions it calls, and of those they
 * call, three levels deep — for the privilege check of SQL that is a
 * function call (a plan's scanner, `select id from axis.fn_governance_scan()`,
 * writes what its body writes). A SECURITY DEFINER function runs with its
 * owner's privileges: left out, with what it calls. So is what the parser
 * cannot read: a body that does not parse, `EXECUTE` of a built string, a
 * function of another language. The statements of `sql`'s own PL/pgSQL DO
 * blocks are read the same way (and what they call followed).
 */
export async function calledFunctionSql(q: Queryable, sql: string): Promise<string[]> {
  return (await calledFunctions(q, sql)).statements;
}

/** A function as a call names it: its schema when qualified, and its name. */
export interface CalledFunction {
  schema: string | null;
  name: string;
}

/**
 * `calledFunctionSql`'s statements, and the functions called on the way —
 * by `sql` and by the bodies read, three levels deep, whatever their
 * language or security (each needs EXECUTE, and USAGE on its schema).
 */
export async function calledFunctions(q: Queryable, sql: string): Promise<{ statements: string[]; functions: CalledFunction[] }> {
  const pg = await loadParser();
  const out: string[] = [];
  const functions: CalledFunction[] = [];
  const seen = new Set<string>();
  let level = [parsed(pg, sql)];
  // a DO block's statements run as `sql`'s own (a verify tier's assertions): read as a body is
  for (const statement of doBlockStatements(pg, level[0])) {
    const tree = parsed(pg, statement);
    if (tree === null) continue;
    out.push(statement);
    level.push(tree);
  }
  for (let depth = 0; depth < DEPTH && level.length; depth++) {
    const names = level.flatMap((tree) => functionNames(tree));
    const fresh = [...new Map(names.map((n) => [n.join('.'), n])).values()].filter((n) => !seen.has(n.join('.')));
    for (const n of fresh) {
      seen.add(n.join('.'));
      functions.push({ schema: n.length > 1 ? n[n.length - 2]! : null, name: n[n.length - 1]! });
    }
    if (!fresh.length) break;
    const bodies = await q.query<{ oid: string; lang: string; src: string; def: string }>(
      `select p.oid::text as oid, l.lanname::text as lang, p.prosrc as src, pg_get_functiondef(p.oid) as def
         from unnest($1::text[], $2::text[]) as f(schema, name)
         join pg_proc p on p.proname = f.name and p.prokind in ('f', 'p')
         join pg_language l on l.oid = p.prolang and l.lanname in ('plpgsql', 'sql')
        where not p.prosecdef
          and (p.pronamespace = (select oid from pg_namespace where nspname = f.schema)
               or (f.schema is null and p.pronamespace = any (current_schemas(false)::regnamespace[])))`,
      [fresh.map((n) => (n.length > 1 ? n[n.length - 2]! : null)), fresh.map((n) => n[n.length - 1]!)],
    );
    level = [];
    for (const b of bodies.rows) {
      // each statement parsed alone (the parser itself, not the scripts' cache: small, and read once): one it cannot read is left out, not the others with it
      for (const statement of b.lang === 'plpgsql' ? plpgsqlStatements(pg, b.def) : [b.src]) {
        const tree = parsed(pg, statement);
        if (tree === null) continue;
        out.push(statement);
        level.push(tree);
      }
    }
  }
  return { statements: out, functions };
}

/** The statements and expressions of the PL/pgSQL DO blocks of a parse tree (`plpgsqlStatements`); another language's are left out. */
function doBlockStatements(pg: PgQuery, tree: unknown): string[] {
  const out: string[] = [];
  eachNode(tree, (node) => {
    const block = (node as { DoStmt?: { args?: { DefElem?: { defname?: string; arg?: { String?: { sval?: string } } } }[] } }).DoStmt;
    if (!block) return true;
    const option = (name: string) => block.args?.find((a) => a.DefElem?.defname === name)?.DefElem?.arg?.String?.sval;
    const body = option('as');
    if (typeof body === 'string' && (option('language') ?? 'plpgsql').toLowerCase() === 'plpgsql') {
      let tag = '$do$';
      for (let i = 0; body.includes(tag); i++) tag = `$do${i}$`;
      out.push(...plpgsqlStatements(pg, `CREATE FUNCTION pg_temp.tiergate_do() RETURNS void LANGUAGE plpgsql AS ${tag}${body}${tag}`));
    }
    return false;
  });
  return out;
}

/** Visits every object of a parse tree, depth first; `visit` returns false to leave a node's children out. */
function eachNode(tree: unknown, visit: (node: object) => boolean): void {
  if (Array.isArray(tree)) {
    for (const x of tree) eachNode(x, visit);
    return;
  }
  if (tree === null || typeof tree !== 'object' || !visit(tree)) return;
  for (const value of Object.values(tree)) eachNode(value, visit);
}

/** The parse tree of `sql`, or null when it does not parse. */
function parsed(pg: PgQuery, sql: string): unknown {
  try {
    return pg.parseSync(sql);
  } catch {
    return null;
  }
}

/** The names of the functions a parse tree calls (`[schema, name]` or `[name]`), as written. */
function functionNames(tree: unknown): string[][] {
  const out: string[][] = [];
  eachNode(tree, (node) => {
    const call = (node as { FuncCall?: { funcname?: { String?: { sval?: string } }[] } }).FuncCall;
    if (call?.funcname) {
      const name = call.funcname.map((p) => p.String?.sval).filter((p): p is string => typeof p === 'string');
      if (name.length && name[0] !== 'pg_catalog') out.push(name);
    }
    return true;
  });
  return out;
}

/**
 * The SQL of a PL/pgSQL function's body (`CREATE FUNCTION …` as
 * pg_get_functiondef prints it): each statement it runs (`INSERT …`,
 * `PERFORM f()` as `SELECT f()`, a loop's query) and each expression, as a
 * `SELECT` (a condition may call a function). Empty when it does not parse.
 */
function plpgsqlStatements(pg: PgQuery, definition: string): string[] {
  let tree: unknown;
  try {
    tree = pg.parsePlPgSQLSync(definition);
  } catch {
    return [];
  }
  const out: string[] = [];
  eachNode(tree, (node) => {
    const expr = (node as { PLpgSQL_expr?: { query?: string; parseMode?: number } }).PLpgSQL_expr;
    // (parse modes: 0 a statement, 2 an expression; the others are assignments' and type names)
    if (typeof expr?.query === 'string') {
      if ((expr.parseMode ?? 0) === 0) out.push(expr.query);
      else if (expr.parseMode === 2) out.push(`SELECT ${expr.query}`);
    }
    return true;
  });
  return out;
}
