import { splitStatements } from './sql-facts.js';

/** A privilege a tier's statement needs on a relation that may exist before the tier runs. */
export interface PrivilegeNeed {
  /** as written, quoted for to_regclass (found on the session's search_path when unqualified) */
  relation: string;
  /** its schema as written (null: found on the search_path) and its name, unquoted */
  schema: string | null;
  name: string;
  /** USAGE: on the schema itself (`name` empty), which a name looked up by text needs (`to_regclass('axis_audit.t')`) */
  privilege: 'SELECT' | 'INSERT' | 'UPDATE' | 'DELETE' | 'TRUNCATE' | 'TRIGGER' | 'REFERENCES' | 'USAGE';
  /** why, when not the statement's plain verb ('a row lock (FOR SHARE)') */
  why?: string;
  /** an INSERT's column list (the others take their defaults: a serial one draws from its sequence); absent: every column given */
  columns?: string[];
  /** 1-based line of the statement in the file */
  line: number;
}

/** The words a statement that needs one of these privileges must contain. */
const MAY_NEED = /\b(?:insert|update|delete|truncate|trigger|references|share)\b/i;

/** A script's statements; none when the parser refuses it (lint says why). */
async function statementsOrNone(sql: string): Promise<Awaited<ReturnType<typeof splitStatements>>> {
  try {
    return await splitStatements(sql);
  } catch {
    return [];
  }
}

/** Subtrees that do not run when the statement runs: a function's body, a rule's actions. */
const NOT_RUN = new Set(['CreateFunctionStmt', 'RuleStmt']);

/**
 * The privileges a script's own statements need on relations, read with
 * PostgreSQL's parser: INSERT, UPDATE (also INSERT … ON CONFLICT DO UPDATE),
 * DELETE and TRUNCATE on their targets, TRIGGER on a table a trigger is
 * created on, REFERENCES on a table a foreign key points to, UPDATE on the
 * tables whose rows a SELECT … FOR UPDATE / SHARE locks. What runs
 * elsewhere (a function's or a DO block's body, a rule) is not read: this
 * names what surely will be needed, never what might. Empty for a script
 * the parser refuses (lint says why).
 *
 * @example await privilegesNeeded('CREATE TRIGGER t AFTER INSERT ON os_proposal_approvals FOR EACH ROW EXECUTE FUNCTION f()')
 * // [{ relation: '"os_proposal_approvals"', privilege: 'TRIGGER', line: 1 }]
 */
export async function privilegesNeeded(sql: string): Promise<PrivilegeNeed[]> {
  const statements = await statementsOrNone(sql);
  const out: PrivilegeNeed[] = [];
  const seen = new Set<string>();
  // tables the script creates itself (its creator owns them; a temporary one shadows any other of its name): not asked
  const created = new Set<string>();
  for (const s of statements) {
    // (a statement whose text names none of these cannot need them: its parse tree, thousands of nodes for a view, is not walked)
    if (!MAY_NEED.test(s.sql)) {
      const root = s.ast as { CreateStmt?: { relation?: unknown }; CreateTableAsStmt?: { into?: { rel?: unknown } } };
      const made = root.CreateStmt?.relation ?? root.CreateTableAsStmt?.into?.rel;
      if (made) created.add(rangeVarText(made) ?? bareName(made));
      continue;
    }
    const need = (rv: unknown, privilege: PrivilegeNeed['privilege'], why?: string, columns?: string[]) => {
      const relation = rangeVarText(rv);
      if (!relation || created.has(relation) || created.has(bareName(rv)) || seen.has(`${relation}\t${privilege}\t${columns?.join(',') ?? ''}`)) return;
      seen.add(`${relation}\t${privilege}\t${columns?.join(',') ?? ''}`);
      out.push({ relation, ...schemaAndName(rv), privilege, line: s.line, ...(why ? { why } : {}), ...(columns ? { columns } : {}) });
    };
    walk(s.ast, (key, node) => {
      if (NOT_RUN.has(key)) return false;
      if ((key === 'CreateStmt' || key === 'CreateTableAsStmt') && node.relation !== undefined) created.add(rangeVarText(node.relation) ?? bareName(node.relation));
      if (key === 'CreateTableAsStmt' && (node.into as { rel?: unknown } | undefined)?.rel) created.add(rangeVarText((node.into as { rel: unknown }).rel) ?? bareName((node.into as { rel: unknown }).rel));
      if (key === 'InsertStmt') {
        const cols = (node.cols as { ResTarget?: { name?: string } }[] | undefined)?.map((c) => c.ResTarget?.name ?? '').filter(Boolean);
        need(node.relation, 'INSERT', undefined, cols?.length ? cols : undefined);
        if ((node.onConflictClause as { action?: string } | undefined)?.action === 'ONCONFLICT_UPDATE') need(node.relation, 'UPDATE');
      } else if (key === 'UpdateStmt') need(node.relation, 'UPDATE');
      else if (key === 'DeleteStmt') need(node.relation, 'DELETE');
      else if (key === 'TruncateStmt') for (const r of (node.relations as unknown[] | undefined) ?? []) need((r as { RangeVar?: unknown }).RangeVar, 'TRUNCATE');
      else if (key === 'CreateTrigStmt') need(node.relation, 'TRIGGER');
      else if (key === 'Constraint' && node.contype === 'CONSTR_FOREIGN') need(node.pktable, 'REFERENCES');
      else if (key === 'SelectStmt' && Array.isArray(node.lockingClause) && node.lockingClause.length) {
        // FOR UPDATE / SHARE locks the rows of the tables it names (all of its FROM when it names none): PostgreSQL asks UPDATE on each
        for (const c of node.lockingClause as { LockingClause?: { lockedRels?: { RangeVar?: unknown }[]; strength?: string } }[]) {
          const why = `a row lock (${ROW_LOCK[c.LockingClause?.strength ?? ''] ?? 'FOR UPDATE'})`;
          const from = fromRelations(node.fromClause);
          // FOR SHARE OF a names the FROM item by its alias
          const byAlias = new Map(from.map((rv) => [(rv as { alias?: { aliasname?: string } }).alias?.aliasname ?? (rv as { relname?: string }).relname, rv]));
          const named = (c.LockingClause?.lockedRels ?? []).map((r) => byAlias.get((r.RangeVar as { relname?: string } | undefined)?.relname) ?? r.RangeVar);
          for (const rv of named.length ? named : from) need(rv, 'UPDATE', why);
        }
      }
      return true;
    });
  }
  return out;
}

/**
 * What a statement's reading needs: SELECT on every table or view it reads —
 * named in a FROM, a JOIN, a subquery, an UPDATE's FROM or a DELETE's USING —
 * and on the target of a write that reads it: an UPDATE or DELETE with a
 * WHERE, a RETURNING or values computed from its columns, an INSERT with a
 * RETURNING or ON CONFLICT DO UPDATE (PostgreSQL's rules, "Privileges" of
 * each command). A plain INSERT needs no SELECT on its target. Not a CTE's
 * name, nor what runs elsewhere (a function's body, a rule, a view's query
 * when the view is created, a DO block), nor a table a LOCK or TRUNCATE
 * names. Empty for a script the parser refuses.
 *
 * @example await readsNeeded("insert into os_proposal_approvals (proposal) select id from os_proposals returning id")
 * // SELECT on "os_proposals" and on "os_proposal_approvals" (its RETURNING)
 */
export async function readsNeeded(sql: string): Promise<PrivilegeNeed[]> {
  const statements = await statementsOrNone(sql);
  const out: PrivilegeNeed[] = [];
  const seen = new Set<string>();
  for (const s of statements) {
    const ctes = new Set<string>();
    walk(s.ast, (key, node) => {
      if (key === 'CommonTableExpr' && typeof node.ctename === 'string') ctes.add(node.ctename);
      return true;
    });
    const need = (rv: unknown) => {
      const relation = rangeVarText(rv);
      const { schema, name } = schemaAndName(rv);
      if (!relation || (schema === null && ctes.has(name)) || seen.has(relation)) return;
      seen.add(relation);
      out.push({ relation, schema, name, privilege: 'SELECT', line: s.line });
    };
    walk(s.ast, (key, node) => {
      if (NOT_RUN.has(key) || NOT_READ.has(key)) return false;
      if (key === 'RangeVar') need(node);
      else if (key === 'FuncCall' || key === 'TypeCast') {
        // a name looked up by its text in a schema (to_regclass('axis_audit.t'), 'axis.t'::regclass): the lookup needs USAGE on the schema, or it fails
        const schema = schemaLookedUp(key, node);
        if (schema !== null && !seen.has(`schema ${schema}`)) {
          seen.add(`schema ${schema}`);
          out.push({ relation: `"${schema.replace(/"/g, '""')}"`, schema, name: '', privilege: 'USAGE', line: s.line });
        }
      }
      else if (key === 'InsertStmt' && (returns(node) || (node.onConflictClause as { action?: string } | undefined)?.action === 'ONCONFLICT_UPDATE')) need(node.relation);
      else if (key === 'UpdateStmt' && (node.whereClause || returns(node) || hasItems(node.fromClause) || readsColumns(node.targetList))) need(node.relation);
      else if (key === 'DeleteStmt' && (node.whereClause || returns(node) || hasItems(node.usingClause))) need(node.relation);
      return true;
    });
  }
  return out;
}

/** The lookups by text that need USAGE on the schema they name. */
const LOOKUPS = new Set(['to_regclass', 'to_regtype', 'to_regproc', 'to_regprocedure', 'to_regoper', 'to_regoperator', 'regclass', 'regtype', 'regproc', 'regprocedure']);

/** The schema a lookup by text names (`to_regclass('axis_audit.t')`, `'axis.t'::regclass`), as the server folds it; null for any other node. */
function schemaLookedUp(key: string, node: Record<string, unknown>): string | null {
  const last = (names: unknown) => ((names as { String?: { sval?: string } }[] | undefined)?.at(-1)?.String?.sval ?? '').toLowerCase();
  const constant = (x: unknown) => (x as { A_Const?: { sval?: { sval?: string } } } | undefined)?.A_Const?.sval?.sval;
  const text =
    key === 'FuncCall' ? (LOOKUPS.has(last(node.funcname)) ? constant((node.args as unknown[] | undefined)?.[0]) : undefined) : LOOKUPS.has(last((node.typeName as { names?: unknown } | undefined)?.names)) ? constant(node.arg) : undefined;
  const m = text ? /^\s*(?:"((?:[^"]|"")+)"|([^".\s(]+))\s*\./.exec(text) : null;
  if (!m) return null;
  return m[1] !== undefined ? m[1].replace(/""/g, '"') : m[2]!.toLowerCase();
}

/** Subtrees that read no relation's rows when the statement runs: a view's query at its creation, LOCK and TRUNCATE's tables, a row lock's names (aliases). */
const NOT_READ = new Set(['ViewStmt', 'LockStmt', 'TruncateStmt', 'LockingClause', 'DoStmt']);

/** A write's RETURNING (`returningClause` since PostgreSQL 18's parser, `returningList` before). */
function returns(node: Record<string, unknown>): boolean {
  return hasItems(node.returningList) || hasItems((node.returningClause as { exprs?: unknown } | undefined)?.exprs);
}

function hasItems(list: unknown): boolean {
  return Array.isArray(list) && list.length > 0;
}

/** Whether an UPDATE's SET values read a column (`set n = n + 1`). */
function readsColumns(targetList: unknown): boolean {
  let found = false;
  walk(targetList, (key) => {
    if (key === 'ColumnRef') found = true;
    return !found;
  });
  return found;
}

const ROW_LOCK: Record<string, string> = { LCS_FORKEYSHARE: 'FOR KEY SHARE', LCS_FORSHARE: 'FOR SHARE', LCS_FORNOKEYUPDATE: 'FOR NO KEY UPDATE', LCS_FORUPDATE: 'FOR UPDATE' };

/** The tables a FROM list names directly (joined ones included; not subqueries, which lock nothing of theirs). */
function fromRelations(from: unknown): unknown[] {
  const out: unknown[] = [];
  const visit = (item: unknown): void => {
    const x = item as { RangeVar?: unknown; JoinExpr?: { larg?: unknown; rarg?: unknown } } | null;
    if (x?.RangeVar) out.push(x.RangeVar);
    else if (x?.JoinExpr) {
      visit(x.JoinExpr.larg);
      visit(x.JoinExpr.rarg);
    }
  };
  for (const item of Array.isArray(from) ? from : []) visit(item);
  return out;
}

/** Visits every `{ Key: node }` of a parse tree; `visit` returning false skips the node's subtree. */
function walk(tree: unknown, visit: (key: string, node: Record<string, unknown>) => boolean): void {
  if (Array.isArray(tree)) {
    for (const x of tree) walk(x, visit);
    return;
  }
  if (tree === null || typeof tree !== 'object') return;
  for (const [key, value] of Object.entries(tree as Record<string, unknown>)) {
    if (/^[A-Z]/.test(key) && value !== null && typeof value === 'object' && !Array.isArray(value)) {
      if (!visit(key, value as Record<string, unknown>)) continue;
    }
    walk(value, visit);
  }
}

/** A relation as a script names it without its schema: a temporary table created in it is named so later. */
function bareName(rv: unknown): string {
  const r = rv as { relname?: string } | undefined;
  return r?.relname ? `"${r.relname.replace(/"/g, '""')}"` : '';
}

/** A relation's schema as written (null when unqualified) and its name. */
function schemaAndName(rv: unknown): { schema: string | null; name: string } {
  const r = rv as { relname?: string; schemaname?: string } | undefined;
  return { schema: r?.schemaname ? r.schemaname : null, name: r?.relname ?? '' };
}

function rangeVarText(rv: unknown): string | null {
  const r = rv as { relname?: string; schemaname?: string; relpersistence?: string } | undefined;
  if (!r?.relname || r.relpersistence === 't' || r.schemaname === 'pg_temp') return null;
  const q = (s: string) => `"${s.replace(/"/g, '""')}"`;
  return r.schemaname ? `${q(r.schemaname)}.${q(r.relname)}` : q(r.relname);
}
