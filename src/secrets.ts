/**
 * Secrets never leak: every password tiergate sees (in a URL, in PGPASSWORD)
 * is registered here, and everything printed, logged or written passes
 * through `scrub`.
 */
const secrets = new Set<string>();

export function registerSecret(secret: string | undefined | null): void {
  if (!secret) return;
  secrets.add(secret);
  // the URL-encoded form appears in URLs
  const encoded = encodeURIComponent(secret);
  if (encoded !== secret) secrets.add(encoded);
}

/** Replaces every registered secret in `text` with `***`. */
export function scrub(text: string): string {
  let out = text;
  for (const s of secrets) if (s.length > 0) out = out.split(s).join('***');
  return out;
}

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
  try {
    const u = new URL(url);
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
    return u.toString();
  } catch {
    // not a URL (a libpq keyword string, a path): scrub what we know
    return scrub(url.replace(/(password\s*=\s*)('[^']*'|\S+)/gi, '$1***'));
  }
}
