/**
 * Secrets never leak: every password tiergate sees (in a URL, in PGPASSWORD)
 * is registered here, and everything printed, logged or written passes
 * through `scrub`.
 */
import { editPostgresUrl, isPostgresUrl } from './db/pg-url.js';

const secrets = new Set<string>();

export function registerSecret(secret: string | undefined | null): void {
  if (!secret) return;
  secrets.add(secret);
  // the URL-encoded form appears in URLs
  const encoded = encodeURIComponent(secret);
  if (encoded !== secret) secrets.add(encoded);
}

/**
 * Replaces every registered secret in `text` with `***`, and any password
 * written as one is written in a connection string, whoever's it is: the
 * user-info of a URL (`postgres://admin:PW@db`) and a `password=PW` key (a
 * tier's RAISE may quote another database's URL).
 *
 * @example scrub('see postgres://admin:Hunter2@db/prod') // 'see postgres://admin:***@db/prod'
 */
export function scrub(text: string): string {
  let out = text;
  for (const s of secrets) if (s.length > 0) out = out.split(s).join('***');
  return out.replace(URL_PASSWORD, '$1:***@').replace(KEYWORD_PASSWORD, '$1***');
}

/** `scheme://user:PASSWORD@` (the password runs to the last '@' before a space or '/': a raw '@' in it hides more, never less) */
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:@/?#]*):[^\s/]*@/gi;
/** `password=PASSWORD`, `sslpassword = 'PASSWORD'` (a conninfo string, a URL's query; quoted, its quotes doubled as SQL writes them) */
const KEYWORD_PASSWORD = /\b((?:ssl)?password\s*=\s*)(''(?:[^']|'(?!'))*''|'(?:[^']|'')*'|"(?:[^"]|"")*"|[^\s&'";,]+)/gi;

/** Deeply scrubs strings inside a JSON-like value (for --json output and evidence). */
export function scrubValue<T>(value: T): T {
  if (secrets.size === 0) return value;
  return JSON.parse(scrub(JSON.stringify(value))) as T;
}

/**
 * A connection URL fit for display: the password replaced by `***`.
 * @example redactUrl('postgres://app:s3cret@db/directus') // 'postgres://app:***@db/directus'
 */
export function redactUrl(url: string): string {
  const redact = (u: URL) => {
    if (u.password) {
      registerSecret(decodeURIComponent(u.password));
      u.password = '***';
    }
    for (const key of ['password', 'sslpassword']) {
      const v = u.searchParams.get(key);
      if (v) {
        registerSecret(v);
        u.searchParams.set(key, '***');
      }
    }
  };
  // a URL with an authority (`scheme://…`); without one a user-info is no URL's ('app:pw@db/x' parses as scheme 'app:')
  const withAuthority = /^[a-z][a-z0-9+.-]*:\/\//i.test(url);
  try {
    // libpq's empty-host form (`postgres://app:pw@/db?host=/run/pg`) parses through pg-url
    if (isPostgresUrl(url)) return editPostgresUrl(url, redact);
    if (withAuthority) {
      const u = new URL(url);
      redact(u);
      return u.toString();
    }
  } catch {
    /* read below */
  }
  // Not a URL the parser accepts (a bad port, an unencoded '#' or '/' in the
  // password, a libpq keyword string, no authority): the password must go all the same.
  // User-info runs to the last '@' — hiding too much beats showing a password.
  // (its scheme mistyped or left out too: 'app:pw@db/x', '//app:pw@db/x', 'postgres:/app:pw@db/x' — there a
  // password starting with '/' is not told from a scheme's 'postgres:/u@db': left, not '/u' hidden everywhere)
  const userInfo = (withAuthority ? /^[a-z][a-z0-9+.-]*:\/\/[^:@/?#\s]*:(.*)@/i : /^(?:[a-z][a-z0-9+.-]*:)?\/*[^:@/?#\s]*:([^/\s].*)@/i).exec(url);
  const keyword = /password\s*=\s*('[^']*'|\S+)/i.exec(url);
  for (const secret of [userInfo?.[1], keyword?.[1]?.replace(/^'|'$/g, '')]) {
    if (!secret) continue;
    registerSecret(secret);
    try {
      registerSecret(decodeURIComponent(secret));
    } catch {
      /* not percent-encoded */
    }
  }
  // (scrub hides a keyword's password, registered or not)
  return scrub(url);
}

/** `url` with `password` when it has none of its own (a fleet target's password_env, ~/.pgpass), the password registered as a secret. */
export function withPassword(url: string, password: string): string {
  registerSecret(password);
  return editPostgresUrl(url, (u) => {
    if (!u.password) u.password = encodeURIComponent(password);
  });
}
