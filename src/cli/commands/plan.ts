import { planOf } from '../common.js';
import type { Outcome } from '../exit-code.js';
import type { Output } from '../output.js';
import { table } from '../table.js';

/** `tiergate plan [--plan DIR] [--json]`: the ordered tiers with kind, gate, requires and sha256. */
export async function planCommand(opts: { plan?: string; json?: boolean }, out: Output): Promise<Outcome> {
  const p = await planOf(opts);
  out.result({
    ok: true,
    plan: { name: p.name, dir: p.dir, sha256: p.sha256, database: p.database ?? null, schemas: p.schemas, gate: p.gate ?? null, figures: Object.keys(p.figures) },
    tiers: p.tiers.map((t) => ({ id: t.id, name: t.name, kind: t.kind, gated: t.gated, requires: t.requires, reverts: t.reverts, file: t.file, sha256: t.sha256 })),
  });
  out.line(`plan ${p.name}  (${p.tiers.length} tiers, sha256 ${p.sha256.slice(0, 16)}…)`);
  if (p.gate) out.line(`gate ${p.gate.name} ≥ ${p.gate.min}`);
  out.line('');
  const rows = [
    ['id', 'name', 'kind', 'gate', 'requires / reverts', 'file', 'sha256'],
    ...p.tiers.map((t) => [
      String(t.id),
      t.name,
      t.kind,
      t.gated ? (p.gate?.name ?? 'yes') : '—',
      t.kind === 'rollback' ? `reverts ${t.reverts.join(', ')}` : t.requires.join(', ') || '—',
      t.file,
      t.sha256.slice(0, 16) + '…',
    ]),
  ];
  for (const line of table(rows, { max: [4, 40, 10, 8, 20, 40, 17], right: [0] })) out.line(line);
  return 'ok';
}
