import { DbError } from '../errors.js';
import { scrub } from '../secrets.js';

interface DriverErrorShape {
  message?: unknown;
  code?: unknown;
  detail?: unknown;
  hint?: unknown;
  position?: unknown;
  where?: unknown;
}

const str = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v : null);

/** Normalises an error from `pg` or PGlite into a DbError that keeps every field PostgreSQL sent. */
export function toDbError(e: unknown): DbError {
  if (e instanceof DbError) return e;
  const x = (typeof e === 'object' && e !== null ? e : { message: String(e) }) as DriverErrorShape;
  const code = str(x.code);
  const pos = x.position === undefined || x.position === null ? null : Number(x.position);
  return new DbError(
    scrub(str(x.message) ?? String(e)),
    // node errors (ECONNRESET …) carry a `code` too, but not an SQLSTATE
    code && /^[0-9A-Z]{5}$/.test(code) ? code : null,
    str(x.detail) && scrub(str(x.detail)!),
    str(x.hint) && scrub(str(x.hint)!),
    pos !== null && Number.isFinite(pos) ? pos : null,
    str(x.where) && scrub(str(x.where)!),
  );
}
