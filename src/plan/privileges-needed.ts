import { splitStatements } from './sql-facts.js';

/** A privilege a tier's statement needs on a relation that may exist before the tier runs. */
export interface PrivilegeNeed {
  /** as written, quoted for to_regclass (found on the session's search_path when unqualified) */
  relation: string;
  privilege: 'INSERT' | 'UPDATE' | 'DELETE' | 'TRUNCATE' | 'TRIGGER' | 'REFERENCES';
  /** why, when not the statement's plain verb ('a row lock (FOR SHARE)') */
  why?: string;
  /** an INSERT's column list (the others take their defaults: a serial one draws from its sequence); absent: every column given */
  columns?: string[];
  /** 1-based line of the statement in the file */
  line: number;
}

/** The words a statement that needs one of these privileges must contain. */
const MAY_NEED = /\b(?:insert|update|delete|truncate|trigger|references|share)\b/i;

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
  let statements;
  try {
    statements = await splitStatements(sql);
  } catch {
    return [];
  }
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
      out.push({ relation, privilege, line: s.line, ...(why ? { why } : {}), ...(columns ? { columns } : {}) });
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

function rangeVarText(rv: unknown): string | null {
  const r = rv as { relname?: string; schemaname?: string; relpersistence?: string } | undefined;
  if (!r?.relname || r.relpersistence === 't' || r.schemaname === 'pg_temp') return null;
  const q = (s: string) => `"${s.replace(/"/g, '""')}"`;
  return r.schemaname ? `${q(r.schemaname)}.${q(r.relname)}` : q(r.relname);
}
