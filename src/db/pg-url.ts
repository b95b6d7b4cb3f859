/**
 * `postgres://` URLs as WHATWG's URL parses them, including libpq's form with
 * user-info and an empty host (`postgres://app@/directus?host=/run/postgresql`, `postgres://app@:5433/directus`,
 * the socket given as a parameter), which WHATWG refuses: a placeholder host
 * stands in while the URL is read or edited, and is taken out again.
 */
/** The placeholder host of libpq's empty-host form while it is parsed: not a host. */
export const NO_HOST = 'tiergate-no-host.invalid';

function withPlaceholder(url: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^/?#]*@)(?=[:/?#]|$)/i, `$1${NO_HOST}`);
}

/** Whether `url` names a PostgreSQL server (`postgres://` or `postgresql://`). */
export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url);
}

/** The URL parsed, or null when it is not one (the empty-host form reads with a placeholder host). */
export function parsePostgresUrl(url: string): URL | null {
  if (!isPostgresUrl(url)) return null;
  for (const candidate of [url, withPlaceholder(url)]) {
    try {
      return new URL(candidate);
    } catch {
      /* try the next form */
    }
  }
  return null;
}

/**
 * The URL changed by `edit` (a database, a password taken out), in the form it
 * was given: an empty host stays empty. Throws a TypeError when `url` does not parse.
 *
 * @example editPostgresUrl('postgres://app@/directus?host=/run/pg', (u) => { u.pathname = '/clone'; }) // 'postgres://app@/clone?host=%2Frun%2Fpg'
 */
export function editPostgresUrl(url: string, edit: (u: URL) => void): string {
  const u = parsePostgresUrl(url);
  if (!u) throw new TypeError(`not a PostgreSQL URL: ${url.split('@').pop()}`);
  edit(u);
  return u.hostname === NO_HOST ? u.toString().replace(NO_HOST, '') : u.toString();
}
