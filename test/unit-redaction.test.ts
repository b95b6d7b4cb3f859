/**
 * Secrets never leak (src/secrets.ts), PostgreSQL URLs are read and edited
 * in the form given (src/db/pg-url.ts), and outside text is made safe to
 * print (src/text.ts). Pure functions; the registry of secrets is this
 * file's own (each test file runs in its own module graph), so every test
 * uses secrets no other test registers.
 */
import { describe, expect, it } from 'vitest';
import { editPostgresUrl, isPostgresUrl, parsePostgresUrl } from '../src/db/pg-url.js';
import { redactUrl, registerSecret, scrub, scrubValue } from '../src/secrets.js';
import { safeText } from '../src/text.js';

describe('scrub and scrubValue', () => {
  it('leave everything as it is while no secret is registered, the very value included', () => {
    const value = { a: ['x'] };
    expect(scrubValue(value)).toBe(value);
    expect(scrub('nothing to hide')).toBe('nothing to hide');
    registerSecret('');
    registerSecret(undefined);
    registerSecret(null);
    expect(scrubValue(value)).toBe(value);
    expect(scrub('')).toBe('');
  });

  it('replace every occurrence of a registered secret, and of its URL-encoded form', () => {
    registerSecret('s3cr3t');
    expect(scrub('s3cr3t and s3cr3t again')).toBe('*** and *** again');
    registerSecret('p@ss word');
    expect(scrub('url: postgres://u:p%40ss%20word@h/db, env: p@ss word')).toBe('url: postgres://u:***@h/db, env: ***');
  });

  it('hide any password written as a connection string writes it, registered or not (a tier quoting another URL)', () => {
    expect(scrub('copy from postgres://admin:Hunter2-Fake@db.example/prod failed')).toBe('copy from postgres://admin:***@db.example/prod failed');
    expect(scrub("host=db user=app password=Hunter2 dbname=x; sslpassword = 'a b'")).toBe('host=db user=app password=*** dbname=x; sslpassword = ***');
    expect(scrub('pglite:./x?password=Canary-S3cret&y=1')).toBe('pglite:./x?password=***&y=1');
    // a raw '@' in the password, and quotes doubled inside an SQL string literal
    expect(scrub('postgres://u:p@ss@db/x')).toBe('postgres://u:***@db/x');
    expect(scrub("select dblink('host=db password=''x y'' dbname=z')")).toBe("select dblink('host=db password=*** dbname=z')");
    expect(scrub("x password=''ab'c'' y")).toBe('x password=*** y');
    expect(scrub('a password="p w" b, password = "q""r" c')).toBe('a password=*** b, password = *** c');
    // hidden already: the same text again
    expect(scrub('postgres://u:***@h/db password=***')).toBe('postgres://u:***@h/db password=***');
    // what is no password stays: a port, a URL without one, the word alone, what is hidden already
    for (const plain of ['http://db.example:8080/x@y', 'postgres://app@db/x', 'the password is wrong', 'postgres://u:***@h/db', 'password=***']) expect(scrub(plain)).toBe(plain);
  });

  it('scrub the strings deep inside a JSON value, keys and all, into a new value', () => {
    registerSecret('deep-secret');
    const value = { list: ['a deep-secret b', 1, null, true], nested: { 'deep-secret': 'x', y: 'deep-secret' } };
    const scrubbed = scrubValue(value);
    expect(scrubbed).toEqual({ list: ['a *** b', 1, null, true], nested: { '***': 'x', y: '***' } });
    expect(value.list[0]).toBe('a deep-secret b');
  });
});

describe('redactUrl', () => {
  it("hides the password of a URL and registers it, the decoded form too", () => {
    expect(redactUrl('postgres://app:pw%2Fone@db:5432/directus')).toBe('postgres://app:***@db:5432/directus');
    expect(scrub('pw/one and pw%2Fone')).toBe('*** and ***');
    expect(redactUrl('postgresql://app:pw-two@db/directus')).toBe('postgresql://app:***@db/directus');
    expect(scrub('pw-two')).toBe('***');
  });

  it('hides password and sslpassword given as query parameters, and leaves the others', () => {
    const shown = redactUrl('postgres://app@db/directus?sslmode=require&password=pw-three&sslpassword=pw-four');
    expect(shown).toBe('postgres://app@db/directus?sslmode=require&password=***&sslpassword=***');
    expect(scrub('pw-three pw-four')).toBe('*** ***');
  });

  it('leaves a URL without a password as it is', () => {
    expect(redactUrl('postgres://app@db:5432/directus?sslmode=require')).toBe('postgres://app@db:5432/directus?sslmode=require');
    expect(redactUrl('postgres://app@/directus?host=/run/pg')).toBe('postgres://app@/directus?host=/run/pg');
  });

  it('redacts URLs of other schemes with the WHATWG parser', () => {
    expect(redactUrl('mysql://root:pw-five@db/app')).toBe('mysql://root:***@db/app');
    expect(scrub('pw-five')).toBe('***');
  });

  it('still hides the password of a URL no parser accepts, up to the last @', () => {
    // a bad port
    expect(redactUrl('postgres://app:pw-six@db:99999/directus')).toBe('postgres://app:***@db:99999/directus');
    expect(scrub('pw-six')).toBe('***');
    // an unencoded '#' and '@' in the password: user-info runs to the last '@'
    expect(redactUrl('postgres://app:pw#se@ven@db:99999/x')).toBe('postgres://app:***@db:99999/x');
    expect(scrub('pw#se@ven')).toBe('***');
    // a percent-encoded one is registered decoded too; a bad escape is kept as written
    expect(redactUrl('postgres://app:pw%21eight@db:99999/x')).toBe('postgres://app:***@db:99999/x');
    expect(scrub('pw!eight')).toBe('***');
    expect(redactUrl('postgres://app:pw%zznine@db:99999/x')).toBe('postgres://app:***@db:99999/x');
    expect(scrub('pw%zznine')).toBe('***');
  });

  it('hides the password of a user-info whose scheme is left out or mistyped (no URL parser sees a password there)', () => {
    expect(redactUrl('app:pw-s1@db:5432/directus')).toBe('app:***@db:5432/directus');
    expect(redactUrl('//app:pw-s2@db/directus')).toBe('//app:***@db/directus');
    expect(redactUrl('postgres:/app:pw-s3@db/directus')).toBe('postgres:/app:***@db/directus');
    expect(redactUrl('postgress:app:pw-s4@db/directus')).toBe('postgress:app:***@db/directus');
    for (const pw of ['pw-s1', 'pw-s2', 'pw-s3', 'pw-s4']) expect(scrub(`said ${pw}`)).toBe('said ***');
    // what holds no '@' is no user-info, nor is a scheme's colon: nothing registered (a bad port made this hide '//u' everywhere)
    expect(redactUrl('pglite:./my-directus')).toBe('pglite:./my-directus');
    expect(redactUrl('db:5432/directus')).toBe('db:5432/directus');
    expect(redactUrl('postgres://u@localhost:99999/db')).toBe('postgres://u@localhost:99999/db');
    expect(redactUrl('postgres:/u@localhost/db')).toBe('postgres:/u@localhost/db');
    expect(scrub('see postgres://user@host, /usr and //u')).toBe('see postgres://user@host, /usr and //u');
  });

  it('hides the password of a libpq keyword string, quoted or not', () => {
    expect(redactUrl('host=db user=app password=pw-ten dbname=x')).toBe('host=db user=app password=*** dbname=x');
    expect(scrub('pw-ten')).toBe('***');
    expect(redactUrl("host=db PASSWORD = 'pw eleven' dbname=x")).toBe("host=db PASSWORD = *** dbname=x");
    expect(scrub('pw eleven')).toBe('***');
    expect(redactUrl('host=db dbname=x')).toBe('host=db dbname=x');
  });

  it("replaces a quoted keyword password whole, quotes included, and registers nothing for what a string does not have", () => {
    expect(redactUrl("host=db password='pw twelve'")).toBe('host=db password=***');
    expect(redactUrl("host=db password= 'pw thirteen'")).toBe('host=db password= ***');
    // a keyword string has no URL user-info: no 'undefined' (or anything else) becomes a secret
    expect(scrub('undefined null')).toBe('undefined null');
  });
});

describe('postgres URLs', () => {
  it('are recognised by their scheme, in any case', () => {
    expect(isPostgresUrl('postgres://h/db')).toBe(true);
    expect(isPostgresUrl('postgresql://h/db')).toBe(true);
    expect(isPostgresUrl('POSTGRES://h/db')).toBe(true);
    expect(isPostgresUrl('postgres:/h/db')).toBe(false);
    expect(isPostgresUrl('postgresx://h/db')).toBe(false);
    expect(isPostgresUrl(' postgres://h/db')).toBe(false);
    expect(isPostgresUrl('mysql://postgres://h')).toBe(false);
  });

  it('parse with a placeholder host only when the host is empty, and not at all when they are not URLs', () => {
    expect(parsePostgresUrl('postgres://app@db/directus')?.hostname).toBe('db');
    expect(parsePostgresUrl('postgres://app@/directus')?.hostname).toBe('tiergate-no-host.invalid');
    expect(parsePostgresUrl('postgresql://app@?host=/run/pg')?.searchParams.get('host')).toBe('/run/pg');
    expect(parsePostgresUrl('postgres://app@#frag')?.hash).toBe('#frag');
    expect(parsePostgresUrl('POSTGRES://app@')?.hostname).toBe('tiergate-no-host.invalid');
    expect(parsePostgresUrl('postgres://app@db:99999/x')).toBeNull();
    expect(parsePostgresUrl('http://app@/x')).toBeNull();
  });

  it('are edited in the form given: an empty host stays empty', () => {
    const rename = (u: URL) => void (u.pathname = '/clone');
    expect(editPostgresUrl('postgres://app@/directus', rename)).toBe('postgres://app@/clone');
    expect(editPostgresUrl('postgresql://app@:5433/directus', rename)).toBe('postgresql://app@:5433/clone');
    expect(editPostgresUrl('postgres://app@db/directus', rename)).toBe('postgres://app@db/clone');
  });

  it('refuse to edit what does not parse, without showing its user-info', () => {
    expect(() => editPostgresUrl('postgres://app:pw-twelve@db:99999/x', () => {})).toThrow(new TypeError('not a PostgreSQL URL: db:99999/x'));
    expect(() => editPostgresUrl('mysql://a@b/c', () => {})).toThrow(TypeError);
  });
});

describe('safeText', () => {
  it('drops C0 and C1 controls but tab and line breaks, and the bidirectional overrides and isolates', () => {
    const dropped = [0x00, 0x01, 0x08, 0x0b, 0x0c, 0x0e, 0x1b, 0x1f, 0x7f, 0x80, 0x85, 0x9b, 0x9f, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069];
    for (const c of dropped) expect(safeText(`a${String.fromCharCode(c)}b`), c.toString(16)).toBe('ab');
    const kept = [0x09, 0x0a, 0x0d, 0x20, 0x7e, 0xa0, 0x2028, 0x2029, 0x2029, 0x202f, 0x2065, 0x206a, 0x200f];
    for (const c of kept) expect(safeText(`a${String.fromCharCode(c)}b`), c.toString(16)).toBe(`a${String.fromCharCode(c)}b`);
    expect(safeText('name\u001b]0;owned\u0007 \u202Egnp.exe\u202c\u0000\u0000')).toBe('name]0;owned gnp.exe');
    expect(safeText('Ünïcødé · 日本語 🚀')).toBe('Ünïcødé · 日本語 🚀');
  });
});
