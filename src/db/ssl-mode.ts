import { editPostgresUrl, NO_HOST, parsePostgresUrl } from './pg-url.js';

/**
 * A URL's `sslmode` (or `PGSSLMODE`) as libpq — and so psql, pg_dump and
 * pg_restore — read it, for node-postgres, which by default takes `require`,
 * `prefer` and `verify-ca` for `verify-full` (a server with a certificate of
 * its own then refuses to connect, and node-postgres prints a warning):
 *
 * - `disable`: no TLS; `allow`: without, then with TLS (no verification) if
 *   the server demands it; `prefer`: with TLS (no verification), then without
 *   if the server has none;
 * - `require`: TLS, the certificate not verified (verified against
 *   `sslrootcert` when one is given); `verify-ca`: against `sslrootcert`, any
 *   host name; `verify-full`: against it, and the host name.
 *
 * No sslmode at all keeps node-postgres's default (no TLS); over a Unix
 * socket the sslmode is ignored, as libpq ignores it there.
 *
 * @returns the URLs to try, in order: the connection string node-postgres
 * gets (`uselibpqcompat=true`), and, for `allow` and `prefer`, the one to try
 * when the first attempt meets a server that wants the other way.
 */
export function libpqSslUrls(url: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const u = parsePostgresUrl(url);
  if (!u) return [url];
  const mode = u.searchParams.get('sslmode') ?? env.PGSSLMODE ?? null;
  if (mode === null || u.searchParams.has('uselibpqcompat')) return [url];
  // libpq: "sslmode is ignored for Unix domain socket communication"
  // (the empty-host form with no host anywhere: libpq's default socket)
  const host = u.searchParams.get('host') ?? env.PGHOST ?? decodeURIComponent(u.hostname);
  if (host.startsWith('/') || host === NO_HOST) {
    // said as disable, not left out: node-postgres would take PGSSLMODE from the environment and try TLS on the socket
    return [editPostgresUrl(url, (x) => x.searchParams.set('sslmode', 'disable'))];
  }
  const withMode = (m: string) =>
    editPostgresUrl(url, (x) => {
      x.searchParams.set('sslmode', m);
      x.searchParams.set('uselibpqcompat', 'true');
    });
  if (mode === 'allow') return [withMode('disable'), withMode('require')];
  if (mode === 'prefer') return [withMode('prefer'), withMode('disable')];
  return [withMode(mode)];
}

/**
 * Whether a first attempt of `allow` or `prefer` failed in the way the other
 * attempt answers: the server has no TLS, or demands it (pg_hba.conf
 * `hostssl`: "no encryption").
 */
export function wantsOtherSsl(e: unknown): boolean {
  const message = e instanceof Error ? e.message : String(e);
  return /does not support SSL|no encryption/i.test(message);
}

