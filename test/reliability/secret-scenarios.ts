/**
 * The secrets canary (guarantee 9): scenarios that put a password into
 * tiergate's hands — in the URL, in PGPASSWORD, in a URL tiergate cannot
 * even parse — and collect everything it printed or wrote, to be searched
 * for the password. Shared by the campaign (a role that really logs in with
 * the password) and the fast subset in `npm test`.
 */

export interface LeakScan {
  /** what was searched (for the notes) */
  where: string;
  text: string;
}

/** Every form in which a password can leak: raw, URL-encoded, and a distinctive prefix (a partial leak). */
export function leakForms(password: string): string[] {
  const forms = new Set([password, encodeURIComponent(password), password.slice(0, 8)]);
  return [...forms].filter((f) => f.length >= 6);
}

/** Problems: each place where a form of the password appears. */
export function findLeaks(password: string, scans: LeakScan[]): string[] {
  const problems: string[] = [];
  for (const s of scans) {
    for (const form of leakForms(password)) {
      const at = s.text.indexOf(form);
      if (at >= 0) problems.push(`${s.where} holds '${form}': …${s.text.slice(Math.max(0, at - 60), at + form.length + 20).replace(/\s+/g, ' ')}…`);
    }
  }
  return problems;
}

/** Puts a password into a URL's user-info, encoded as a user would. */
export function withPassword(url: string, user: string, password: string): string {
  const u = new URL(url);
  u.username = user;
  u.password = password;
  return u.toString();
}

/** URLs tiergate cannot use, each carrying the password: the redaction must not depend on parsing them. */
export function unparseableUrls(password: string): string[] {
  const enc = encodeURIComponent(password);
  return [
    `mysql://root:${enc}@db/x`,
    `postgres://canary:${enc}@localhost:abc/db`,
    `postgres://canary:${enc}@[::1/db`,
    `postgresql://canary:${enc}@localhost:99999/db`,
    `postgres://canary:${password}@localhost/db`,
    `host=localhost user=canary password=${password} dbname=x`,
  ];
}
