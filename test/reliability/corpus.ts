/**
 * The bad-input corpus: malformed plans (the bundled plan mutated as data),
 * SQL files the server rejects, bad URLs and option combinations. Each case
 * says what exit code it must give and what its message must name (the
 * problem and its place: a plan path, a file:line, a flag, a URL).
 *
 * Shared by the campaign (every case) and the fast subset in `npm test`.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundledPlan } from './harness.js';
import { copyPlan, type PlanCopy, type PlanYaml } from './plan-copy.js';

export interface BadInput {
  name: string;
  /** CLI arguments; `{plan}` is the mutated plan folder, `{target}` the target URL, `{dir}` a scratch folder */
  args: string[];
  /** edits a plan copy (omitted: the plan is not involved, or used as bundled) */
  mutate?: (p: PlanCopy) => void;
  /** exit 2 for bad usage, plan or configuration; 1 for SQL the server rejects */
  code: 1 | 2;
  /** what the message must say: the problem and its place */
  says: RegExp;
  /** the run may touch the target (a tier the server rejects runs, and rolls back) */
  reachesServer?: boolean;
}

const yamlEdit =
  (edit: (y: PlanYaml, p: PlanCopy) => void) =>
  (p: PlanCopy): void => {
    const y = p.yaml();
    edit(y, p);
    p.writeYaml(y);
  };

/** a tier by id in the parsed yaml */
const tier = (y: PlanYaml, id: number) => y.tiers.find((t) => t.id === id)!;
const idx = (y: PlanYaml, id: number) => y.tiers.findIndex((t) => t.id === id);
/** Where tier 2 sits in the bundled plan's list: the cases below name it as tiers[4] and are read with its real index. */
const TIER2 = bundledPlan().tiers.findIndex((t) => t.id === 2);
const at = (r: RegExp) => new RegExp(r.source.split('tiers\\[4\\]').join(`tiers\\[${TIER2}\\]`), r.flags);

/** Runs `cases` with each command in turn, so that every command meets bad plans. */
const PLAN_COMMANDS: string[][] = [
  ['plan', '--plan', '{plan}'],
  ['lint', '--plan', '{plan}'],
  ['apply', '--yes', '--plan', '{plan}', '--target', '{target}'],
  ['status', '--plan', '{plan}', '--target', '{target}'],
  ['verify', '--plan', '{plan}', '--target', '{target}'],
  ['rollback', '--yes', '--plan', '{plan}', '--target', '{target}'],
  ['apply', '--yes', '--json', '--plan', '{plan}', '--target', '{target}'],
];

type PlanCase = { name: string; mutate: (p: PlanCopy) => void; says: RegExp };

/** Mutations of tiergate.yaml: keys, types, ids, requires, files. Every message names the path. */
const PLAN_CASES: PlanCase[] = [
  { name: 'unknown top-level key', mutate: yamlEdit((y) => (y.colour = 'blue')), says: /colour: unknown key 'colour'/ },
  { name: 'plan name missing', mutate: yamlEdit((y) => delete y.plan), says: /plan: missing/ },
  { name: 'plan name with spaces', mutate: yamlEdit((y) => (y.plan = 'Axis Governance!')), says: /plan: .*expected/ },
  { name: 'plan name a number', mutate: yamlEdit((y) => (y.plan = 42)), says: /plan: .*expected a string/ },
  { name: 'schemas not a list', mutate: yamlEdit((y) => (y.schemas = 'axis')), says: /schemas: expected a list/ },
  { name: 'schemas empty', mutate: yamlEdit((y) => (y.schemas = [])), says: /schemas: expected at least 1 item/ },
  { name: 'schema name invalid', mutate: yamlEdit((y) => (y.schemas = ['Axis-1'])), says: /schemas\[0\]: expected a lower-case identifier/ },
  { name: 'lock_timeout not a duration', mutate: yamlEdit((y) => (y.defaults = { lock_timeout: 'five seconds' })), says: /defaults\.lock_timeout: expected a duration/ },
  { name: 'statement_timeout a number', mutate: yamlEdit((y) => (y.defaults = { statement_timeout: 5 })), says: /defaults\.statement_timeout: expected a string/ },
  { name: 'unknown defaults key', mutate: yamlEdit((y) => (y.defaults = { ...y.defaults, idle_timeout: '1s' })), says: /defaults\.idle_timeout: unknown key/ },
  { name: 'gate.min a word', mutate: yamlEdit((y) => (y.gate!.min = 'one')), says: /gate\.min: expected a number/ },
  { name: 'gate.sql missing', mutate: yamlEdit((y) => delete y.gate!.sql), says: /gate\.sql: missing/ },
  { name: 'gate.name invalid', mutate: yamlEdit((y) => (y.gate!.name = 'OSPA gate')), says: /gate\.name: expected a lower-case identifier/ },
  { name: 'gate.lock empty', mutate: yamlEdit((y) => (y.gate!.lock = '')), says: /gate\.lock: expected a non-empty string/ },
  { name: 'unknown gate key', mutate: yamlEdit((y) => (y.gate!.query = 'select 1')), says: /gate\.query: unknown key/ },
  { name: 'metric not SQL text', mutate: yamlEdit((y) => (y.metrics!.owner_gap = 42 as unknown as string)), says: /metrics\.owner_gap: expected a string/ },
  { name: 'metric name invalid', mutate: yamlEdit((y) => (y.metrics!['Owner-Gap'] = 'select 1')), says: /metrics.*Owner-Gap/ },
  { name: 'metric named like the gate', mutate: yamlEdit((y) => (y.metrics!.ospa = 'select 1')), says: /metrics\.ospa: 'ospa' is the gate's name/ },
  { name: 'rehearsal.open_gate empty', mutate: yamlEdit((y) => (y.rehearsal = { open_gate: '' })), says: /rehearsal\.open_gate: expected a non-empty string/ },
  { name: 'unknown rehearsal key', mutate: yamlEdit((y) => (y.rehearsal = { ...y.rehearsal, reopen_gate: 'x' })), says: /rehearsal\.reopen_gate: unknown key/ },
  { name: 'tiers empty', mutate: yamlEdit((y) => (y.tiers = [])), says: /tiers: expected at least 1 item/ },
  { name: 'tiers a mapping', mutate: yamlEdit((y) => ((y as Record<string, unknown>).tiers = { first: 1 })), says: /tiers: expected a list/ },
  { name: 'tier id negative', mutate: yamlEdit((y) => (tier(y, 5).id = -5)), says: /tiers\[2\]\.id: expected a number ≥ 0/ },
  { name: 'tier id a word', mutate: yamlEdit((y) => (tier(y, 5).id = 'five')), says: /tiers\[2\]\.id: expected a number/ },
  { name: 'tier id fractional', mutate: yamlEdit((y) => (tier(y, 5).id = 1.5)), says: /tiers\[2\]\.id: expected an integer/ },
  { name: 'tier id listed twice', mutate: yamlEdit((y) => (tier(y, 5).id = 1)), says: /tiers\[2\]\.id: tier 1 is listed twice/ },
  { name: 'tier name missing', mutate: yamlEdit((y) => delete tier(y, 2).name), says: at(/tiers\[4\]\.name: missing/) },
  { name: 'tier kind unknown', mutate: yamlEdit((y) => (tier(y, 2).kind = 'migration')), says: at(/tiers\[4\]\.kind: expected one of/) },
  { name: 'tier file missing', mutate: yamlEdit((y) => delete tier(y, 2).file), says: at(/tiers\[4\]\.file: missing/) },
  { name: 'tier file does not exist', mutate: yamlEdit((y) => (tier(y, 2).file = 'tiers/02_nope.sql')), says: at(/tiers\[4\]\.file: file 'tiers\/02_nope\.sql' does not exist/) },
  { name: 'tier file absolute', mutate: yamlEdit((y) => (tier(y, 2).file = '/etc/passwd')), says: at(/tiers\[4\]\.file: '\/etc\/passwd' must be a path inside the plan folder/) },
  { name: 'tier file outside the plan', mutate: yamlEdit((y) => (tier(y, 2).file = '../../x.sql')), says: at(/tiers\[4\]\.file: '\.\.\/\.\.\/x\.sql' must be a path inside the plan folder/) },
  { name: 'tier file empty', mutate: (p) => p.writeFile('tiers/05_scanner.sql', '  \n'), says: /tiers\[2\]\.file: file 'tiers\/05_scanner\.sql' is empty/ },
  {
    name: 'tier file a folder',
    mutate: yamlEdit((y, p) => {
      mkdirSync(join(p.dir, 'tiers', 'folder.sql'));
      tier(y, 2).file = 'tiers/folder.sql';
    }),
    says: at(/tiers\[4\]\.file: file 'tiers\/folder\.sql' is a folder, not a regular file/),
  },
  { name: 'requires an unknown tier', mutate: yamlEdit((y) => (tier(y, 2).requires = [1, 17])), says: at(/tiers\[4\]\.requires\[1\]: tier 17 does not exist/) },
  { name: 'requires a later tier', mutate: yamlEdit((y) => (tier(y, 2).requires = [4])), says: at(/tiers\[4\]\.requires\[0\]: tier 4 must be listed before tier 2/) },
  { name: 'requires itself', mutate: yamlEdit((y) => (tier(y, 2).requires = [2])), says: at(/tiers\[4\]\.requires\[0\]: tier 2 requires itself/) },
  { name: 'requires not a list', mutate: yamlEdit((y) => (tier(y, 2).requires = 1)), says: at(/tiers\[4\]\.requires: expected a list/) },
  { name: 'requires holds a word', mutate: yamlEdit((y) => (tier(y, 2).requires = ['one'])), says: at(/tiers\[4\]\.requires\[0\]: expected a number/) },
  { name: 'post-condition operator unknown', mutate: yamlEdit((y) => (tier(y, 2).post = ['owner_gap ~ 0'])), says: at(/tiers\[4\]\.post\[0\]/) },
  { name: 'post-condition metric unknown', mutate: yamlEdit((y) => (tier(y, 2).post = ['nope = 0'])), says: at(/tiers\[4\]\.post\[0\]: metric 'nope' is not defined/) },
  { name: 'post-condition not text', mutate: yamlEdit((y) => (tier(y, 2).post = [{ owner_gap: 0 }])), says: at(/tiers\[4\]\.post\[0\]: expected a string/) },
  { name: 'expect.rows key not schema.table', mutate: yamlEdit((y) => ((tier(y, 2).expect as Record<string, unknown>).rows = { ownership: 30 })), says: at(/tiers\[4\]\.expect\.rows.*expected schema\.table/) },
  { name: 'expect.metrics unknown metric', mutate: yamlEdit((y) => ((tier(y, 2).expect as Record<string, unknown>).metrics = { nope: [0, 1] })), says: at(/tiers\[4\]\.expect\.metrics\.nope: metric 'nope' is not defined/) },
  { name: 'expect.metrics not a pair', mutate: yamlEdit((y) => ((tier(y, 2).expect as Record<string, unknown>).metrics = { owner_gap: [210] })), says: at(/tiers\[4\]\.expect\.metrics\.owner_gap/) },
  { name: 'expect.objects unknown kind', mutate: yamlEdit((y) => ((tier(y, 2).expect as Record<string, unknown>).objects = { widgets: 1 })), says: at(/tiers\[4\]\.expect\.objects/) },
  { name: 'expect.rows negative added', mutate: yamlEdit((y) => ((tier(y, 2).expect as Record<string, unknown>).rows = { 'axis.ownership': { added: -3 } })), says: at(/tiers\[4\]\.expect\.rows\.axis\.ownership/) },
  { name: 'structure tier gated', mutate: yamlEdit((y) => (tier(y, 1).gated = true)), says: /tiers\[1\]\.gated: tier 1 is a structure tier/ },
  { name: 'verify tier gated', mutate: yamlEdit((y) => (tier(y, 90).gated = true)), says: /tiers\[\d+\]\.gated: only data tiers can be gated/ },
  { name: 'gated: a word', mutate: yamlEdit((y) => (tier(y, 2).gated = 'yes')), says: at(/tiers\[4\]\.gated: expected true or false/) },
  { name: 'rollback without reverts', mutate: yamlEdit((y) => delete tier(y, 99).reverts), says: /tiers\[\d+\]\.reverts: rollback tier 99 must name the tiers it reverts/ },
  { name: 'reverts on a data tier', mutate: yamlEdit((y) => (tier(y, 2).reverts = [1])), says: at(/tiers\[4\]\.reverts: only a rollback tier reverts tiers/) },
  { name: 'reverts an unknown tier', mutate: yamlEdit((y) => (tier(y, 99).reverts = [6, 4, 13])), says: /tiers\[\d+\]\.reverts\[2\]: tier 13 does not exist/ },
  { name: 'reverts the preflight', mutate: yamlEdit((y) => (tier(y, 99).reverts = [0])), says: /tiers\[\d+\]\.reverts\[0\]: tier 0 is a preflight tier/ },
  {
    name: 'two rollback tiers',
    mutate: yamlEdit((y) => y.tiers.push({ ...tier(y, 99), id: 98 })),
    says: /tiers: a plan has at most one rollback tier/,
  },
  { name: 'two verify tiers', mutate: yamlEdit((y) => y.tiers.splice(idx(y, 90), 0, { ...tier(y, 90), id: 91 })), says: /tiers: a plan has at most one verify tier/ },
  { name: 'tier lock_timeout invalid', mutate: yamlEdit((y) => (tier(y, 2).lock_timeout = '10 seconds')), says: at(/tiers\[4\]\.lock_timeout: expected a duration/) },
  { name: 'unknown tier key', mutate: yamlEdit((y) => (tier(y, 2).retries = 3)), says: at(/tiers\[4\]\.retries: unknown key 'retries'/) },
  { name: 'gated data tier, no gate', mutate: yamlEdit((y) => delete y.gate), says: at(/tiers\[4\]\.gated: tier 2 is gated but the plan has no gate/) },
  { name: 'YAML syntax error', mutate: (p) => p.writeYaml('plan: axis-governance\ntiers: [ { id: 1, name: A\n'), says: /tiergate\.yaml:\d+: not valid YAML/ },
  { name: 'YAML duplicate key', mutate: (p) => p.writeYaml(p.readFile('tiergate.yaml') + '\nplan: again\n'), says: /tiergate\.yaml:\d+: not valid YAML/ },
  { name: 'YAML a tab indentation', mutate: (p) => p.writeYaml('plan: x\ntiers:\n\t- id: 1\n'), says: /tiergate\.yaml(:\d+)?: not valid YAML/ },
  { name: 'tiergate.yaml empty', mutate: (p) => p.writeYaml(''), says: /plan: missing|tiers: missing/ },
  { name: 'tiergate.yaml a scalar', mutate: (p) => p.writeYaml('hello\n'), says: /tiergate\.yaml: expected a mapping/ },
  { name: 'tiergate.yaml a list', mutate: (p) => p.writeYaml('- plan: x\n'), says: /tiergate\.yaml: expected a mapping/ },
  { name: 'tiergate.yaml not UTF-8', mutate: (p) => p.writeFile('tiergate.yaml', Buffer.concat([Buffer.from('plan: x\n'), Buffer.from([0x70, 0x6c, 0xc3, 0x28, 0x0a])])), says: /tiergate\.yaml:2: not valid UTF-8/ },
  { name: 'tier file with a NUL byte', mutate: (p) => p.writeFile('tiers/05_scanner.sql', 'create table axis.t (id int);\nselect 1\u0000; drop table axis.t;\n'), says: /tiers\[2\]\.file: file 'tiers\/05_scanner\.sql' holds a NUL byte \(line 2\)/ },
  { name: 'tier file not UTF-8', mutate: (p) => p.writeFile('tiers/05_scanner.sql', Buffer.concat([Buffer.from('-- ok\ncreate table axis.t (n text default \''), Buffer.from([0xc3, 0x28]), Buffer.from('\');\n')])), says: /tiers\[2\]\.file: file 'tiers\/05_scanner\.sql' is not valid UTF-8 \(line 2\)/ },
  { name: 'plan folder missing', mutate: (p) => rmSync(p.dir, { recursive: true, force: true }), says: /folder '.*' does not exist/ },
  { name: 'no tiergate.yaml', mutate: (p) => rmSync(join(p.dir, 'tiergate.yaml')), says: /no tiergate\.yaml in/ },
  // hostile files: special files are refused for what they are (never read: /dev/zero grows without end, a FIFO blocks)
  { name: 'tiergate.yaml a link to /dev/zero', mutate: (p) => replaceWithLink(join(p.dir, 'tiergate.yaml'), '/dev/zero'), says: /tiergate\.yaml: 'tiergate\.yaml' leads outside the plan folder \(to \/dev\/zero\) through a link/ },
  { name: 'tiergate.yaml a FIFO', mutate: (p) => replaceWithFifo(join(p.dir, 'tiergate.yaml')), says: /tiergate\.yaml: tiergate\.yaml is a FIFO \(named pipe\), not a regular file/ },
  { name: 'tier file a FIFO', mutate: (p) => replaceWithFifo(join(p.dir, 'tiers/05_scanner.sql')), says: /tiers\[2\]\.file: file 'tiers\/05_scanner\.sql' is a FIFO \(named pipe\), not a regular file/ },
  { name: 'a tier file replaced by a folder', mutate: (p) => (rmSync(join(p.dir, 'tiers/05_scanner.sql')), mkdirSync(join(p.dir, 'tiers/05_scanner.sql'))), says: /tiers\[2\]\.file: file 'tiers\/05_scanner\.sql' is a folder, not a regular file/ },
  // links out of the plan folder: the tiers folder, or one tier file
  {
    name: 'tiers folder a link out of the plan',
    mutate: (p) => {
      const outside = join(p.dir, '..', 'elsewhere');
      cpSync(join(p.dir, 'tiers'), outside, { recursive: true });
      replaceWithLink(join(p.dir, 'tiers'), outside);
    },
    says: /tiers\[\d+\]\.file: 'tiers\/\w+\.sql' leads outside the plan folder \(to .*elsewhere.*\) through a link/,
  },
  {
    name: 'tier file a link to a file outside',
    mutate: (p) => {
      const outside = join(p.dir, '..', 'outside.sql');
      writeFileSync(outside, 'select 1;\n');
      replaceWithLink(join(p.dir, 'tiers/05_scanner.sql'), outside);
    },
    says: /tiers\[2\]\.file: 'tiers\/05_scanner\.sql' leads outside the plan folder/,
  },
];

function replaceWithLink(path: string, to: string): void {
  rmSync(path, { recursive: true, force: true });
  symlinkSync(to, path);
}

function replaceWithFifo(path: string): void {
  rmSync(path, { force: true });
  execFileSync('mkfifo', [path]);
}

/** SQL the server rejects in the first structure tier: exit 1, the tier rolled back, file:line named. */
const SQL_CASES: { name: string; sql: string; says: RegExp; code?: 1 | 2 }[] = [
  // a file that does not parse, or cannot run in one transaction, is refused before anything runs (exit 2, file:line)
  { name: 'syntax error', sql: 'create schema if not exists axis;\nCREAT TABLE axis.t (id int);\n', says: /tiers\/01_base_substrate\.sql:2:\d+: syntax error at or near "CREAT"/, code: 2 },
  { name: 'unknown table', sql: '-- header\ncreate schema if not exists axis;\ncreate view axis.v as select * from no_such_table;\n', says: /tiers\/01_base_substrate\.sql:3.*\n.*no_such_table.*does not exist/ },
  { name: 'unknown column', sql: 'create schema if not exists axis;\ncreate view axis.v as\n  select nope from directus_collections;\n', says: /tiers\/01_base_substrate\.sql:3.*\n.*column "nope" does not exist/ },
  { name: 'unterminated dollar quote', sql: "create schema if not exists axis;\nDO $x$ BEGIN RAISE NOTICE 'hi'; END\n", says: /tiers\/01_base_substrate\.sql:\d+:\d+: (unterminated|syntax)/, code: 2 },
  { name: 'division by zero', sql: 'create schema if not exists axis;\nselect 1/0;\n', says: /tiers\/01_base_substrate\.sql:2.*\n.*division by zero/ },
  { name: 'RAISE in a DO block', sql: "create schema if not exists axis;\nDO $$\nBEGIN\n  RAISE EXCEPTION 'refused by the file' USING ERRCODE = 'TG009';\nEND\n$$;\n", says: /tiers\/01_base_substrate\.sql:4.*\n.*TG009.*refused by the file/ },
  { name: 'VACUUM inside the transaction', sql: 'create schema if not exists axis;\nvacuum directus_collections;\n', says: /tiers\/01_base_substrate\.sql:2:\d+: VACUUM cannot run inside a transaction block/, code: 2 },
  { name: 'CREATE INDEX CONCURRENTLY', sql: 'create schema if not exists axis;\ncreate index concurrently x on directus_fields (collection);\n', says: /tiers\/01_base_substrate\.sql:2:\d+: .*CONCURRENTLY cannot run inside a transaction block/, code: 2 },
  { name: 'psql meta-command', sql: 'create schema if not exists axis;\n\\i other.sql\n', says: /tiers\/01_base_substrate\.sql:2:\d+: syntax error/, code: 2 },
  { name: 'COMMIT inside the file', sql: 'create schema if not exists axis;\ncommit;\ncreate table axis.after_commit (id int);\n', says: /tiers\/01_base_substrate\.sql:2.*(COMMIT|transaction control)/i, code: 2 },
  { name: 'BEGIN inside the file', sql: 'begin;\ncreate schema if not exists axis;\n', says: /tiers\/01_base_substrate\.sql:1.*(BEGIN|transaction control)/i, code: 2 },
  { name: 'ROLLBACK inside the file', sql: 'create schema if not exists axis;\nrollback;\ncreate table axis.after_rollback (id int);\n', says: /tiers\/01_base_substrate\.sql:2.*(ROLLBACK|transaction control)/i, code: 2 },
];

/** URLs that are not a target tiergate can use (exit 2, nothing touched). */
const URL_CASES: { name: string; url: string | ((target: string) => string); says: RegExp }[] = [
  { name: 'mysql URL', url: 'mysql://root:pw@db/x', says: /'mysql:\/\/root:\*\*\*@db\/x' is not a target URL tiergate knows/ },
  { name: 'http URL', url: 'http://example.com/db', says: /'http:\/\/example\.com\/db' is not a target URL/ },
  { name: 'empty URL', url: '', says: /no target|--target/ },
  { name: 'a word', url: 'production', says: /'production' is not a target URL/ },
  { name: 'no scheme, a password', url: 'app:pw-noscheme@127.0.0.1:1/db', says: /'app:\*\*\*@127\.0\.0\.1:1\/db' is not a target URL/ },
  { name: 'scheme without //, a password', url: 'postgres:/app:pw-slash@127.0.0.1:1/db', says: /'postgres:\/app:\*\*\*@127\.0\.0\.1:1\/db' is not a target URL/ },
  { name: 'a path', url: '/var/run/postgresql', says: /is not a target URL/ },
  { name: 'postgres:// with nothing', url: 'postgres://', says: /cannot connect to postgres:\/\/: / },
  { name: 'port out of range', url: 'postgres://u@localhost:99999/db', says: /postgres:\/\/u@localhost:99999\/db.*(not a valid PostgreSQL URL|port)/ },
  { name: 'port not a number', url: 'postgres://u@localhost:abc/db', says: /'postgres:\/\/u@localhost:abc\/db' is not a valid PostgreSQL URL/ },
  { name: 'unbalanced IPv6 bracket', url: 'postgres://u@[::1/db', says: /is not a valid PostgreSQL URL/ },
  { name: 'closed port', url: 'postgres://u:pw@127.0.0.1:1/db', says: /cannot connect to postgres:\/\/u:\*\*\*@127\.0\.0\.1:1\/db/ },
  { name: 'unknown host', url: 'postgres://u@no-such-host.invalid/db', says: /cannot connect to postgres:\/\/u@no-such-host\.invalid\/db/ },
  { name: 'missing host (libpq default socket)', url: 'postgres:///directus?host=/nonexistent-socket-dir', says: /cannot connect to postgres:\/\/.*nonexistent-socket-dir/ },
  { name: 'unknown database', url: (t) => t.replace(/\/([^/?]+)\?/, '/no_such_db_x?'), says: /cannot connect .*no_such_db_x.*database "no_such_db_x" does not exist/ },
  { name: 'unknown role', url: (t) => t.replace('postgres://postgres@', 'postgres://no_such_role@'), says: /cannot connect .*no_such_role.*role "no_such_role" does not exist/ },
  { name: 'sslmode unknown', url: (t) => t + '&sslmode=sometimes', says: /sslmode/ },
  { name: 'sslmode=require on a server without SSL', url: (t) => t.replace(/\?host=[^&]+/, '').replace('localhost', '127.0.0.1') + '?sslmode=require', says: /cannot connect/ },
  { name: 'pglite: with no folder', url: 'pglite:', says: /'pglite:': a PGlite URL needs a directory/ },
  { name: 'pglite: unknown option', url: 'pglite:memory?database=x&cache=1', says: /unknown PGlite URL option 'cache'/ },
  { name: 'file URL', url: 'file:///tmp/db', says: /'file:\/\/\/tmp\/db' is not a target URL/ },
  { name: 'port in the query not a number', url: (t) => t + '&port=abc', says: /port=abc is not a whole number/ },
  { name: 'password not percent-encoding', url: 'postgres://u:CAN%ZZ@127.0.0.1:1/db', says: /the password is not valid percent-encoding/ },
  { name: 'a line break inside the URL', url: (t) => t.replace(/\/([^/?]+)\?/, '/dire\nctus?'), says: /holds a control character/ },
  { name: 'the wrong database for the plan', url: (t) => t.replace(/\/([^/?]+)\?/, '/postgres?'), says: /target database is 'postgres', but plan 'axis-governance' is for database 'directus'/ },
];

/** Flags and option combinations (exit 2). */
const OPTION_CASES: { name: string; args: string[]; says: RegExp }[] = [
  { name: 'unknown flag', args: ['apply', '--frobnicate'], says: /unknown option '--frobnicate'/ },
  { name: 'unknown command', args: ['deploy'], says: /unknown command 'deploy'/ },
  { name: 'apply without --target', args: ['apply', '--yes'], says: /no target: pass --target URL/ },
  { name: 'apply without --yes off a terminal', args: ['apply', '--target', '{target}'], says: /refusing without confirmation: pass --yes/ },
  // nothing applied: that is said before any question (test/operator.test.ts asks with the tiers applied)
  { name: 'rollback of tiers not applied, without --yes', args: ['rollback', '--target', '{target}'], says: /rollback tier 99 reverts tiers .* but tier .* (is|are) not applied on .*; nothing was changed/ },
  { name: '--target without a value', args: ['status', '--target'], says: /option '--target <url>' argument missing/ },
  { name: '--source with --dump', args: ['rehearse', '--source', '{target}', '--dump', 'x.sql'], says: /either --source URL or --dump FILE, not both/ },
  { name: '--source without --scratch', args: ['rehearse', '--source', '{target}'], says: /--source needs --scratch URL/ },
  { name: '--scratch without --source', args: ['rehearse', '--scratch', '{target}'], says: /--scratch is only used with --source/ },
  { name: 'rehearse --scale 0', args: ['rehearse', '--scale', '0', '--out', '{dir}'], says: /--scale must be a whole number from 1 to 1000 \(got '0'\)/ },
  { name: 'rehearse --scale -1', args: ['rehearse', '--scale', '-1', '--out', '{dir}'], says: /--scale/ },
  { name: 'rehearse --scale abc', args: ['rehearse', '--scale', 'abc', '--out', '{dir}'], says: /--scale must be a whole number .*got 'abc'/ },
  { name: 'rehearse --scale 1.5', args: ['rehearse', '--scale', '1.5', '--out', '{dir}'], says: /--scale must be a whole number .*got '1\.5'/ },
  { name: 'rehearse --scale 100000', args: ['rehearse', '--scale', '100000', '--out', '{dir}'], says: /--scale must be a whole number .*got '100000'/ },
  { name: 'rehearse --dump missing file', args: ['rehearse', '--dump', '/nonexistent/dump.sql', '--out', '{dir}'], says: /dump file '\/nonexistent\/dump\.sql' does not exist/ },
  { name: 'rehearse --dump a folder', args: ['rehearse', '--dump', '/tmp', '--out', '{dir}'], says: /'\/tmp' is not a file/ },
  { name: 'rehearse --source not postgres', args: ['rehearse', '--source', 'pglite:memory', '--scratch', '{target}', '--out', '{dir}'], says: /--scratch is for a PostgreSQL --source: a PGlite source is copied as a folder/ },
  { name: 'sample --scale 0', args: ['sample', '--url', '{target}', '--scale', '0'], says: /--scale must be a whole number from 1 to 10000 \(got '0'\)/ },
  { name: 'sample with --url and --pglite', args: ['sample', '--url', '{target}', '--pglite', '{dir}'], says: /exactly one of --url URL .* or --pglite DIR/ },
  { name: 'sample with neither', args: ['sample'], says: /exactly one of --url URL/ },
  { name: 'sample --variant bogus', args: ['sample', '--url', '{target}', '--variant', 'bogus'], says: /argument 'bogus' is invalid.*standard/ },
  { name: 'sample into a Directus database', args: ['sample', '--url', '{target}'], says: /already has Directus tables/ },
  { name: 'report without a file', args: ['report'], says: /missing required argument 'evidence'/ },
  { name: 'report of a missing file', args: ['report', '/nonexistent/evidence.json'], says: /evidence file '\/nonexistent\/evidence\.json' does not exist/ },
  { name: 'report --format pdf', args: ['report', 'x.json', '--format', 'pdf'], says: /argument 'pdf' is invalid/ },
  { name: 'report of a file that is not JSON', args: ['report', '{dir}/not-json.json'], says: /not-json\.json: .*(JSON|json)/ },
  { name: 'report of JSON that is not evidence', args: ['report', '{dir}/not-evidence.json'], says: /not-evidence\.json: / },
  { name: 'apply --evidence missing', args: ['apply', '--yes', '--target', '{target}', '--evidence', '/nonexistent/e.json'], says: /evidence file '\/nonexistent\/e\.json' does not exist/ },
  { name: 'apply --evidence not evidence', args: ['apply', '--yes', '--target', '{target}', '--evidence', '{dir}/not-evidence.json'], says: /not-evidence\.json: / },
  { name: '--plan empty', args: ['plan', '--plan', ''], says: /--plan \(or TIERGATE_PLAN\) is empty/ },
  // an unset variable in a script (`--source "$SOURCE"`) once rehearsed the embedded sample and exited 0
  { name: '--source empty', args: ['rehearse', '--source', '', '--out', '{dir}'], says: /--source is empty: give it a value/ },
  { name: '--scratch empty', args: ['rehearse', '--source', '{target}', '--scratch', ' ', '--out', '{dir}'], says: /--scratch is empty/ },
  { name: '--target empty', args: ['apply', '--yes', '--target', ''], says: /--target is empty/ },
  { name: '--wait without its unit', args: ['apply', '--yes', '--target', '{target}', '--wait', '5'], says: /--wait 5: expected a duration with its unit/ },
  { name: '--evidence empty', args: ['apply', '--yes', '--target', '{target}', '--evidence', ''], says: /--evidence is empty/ },
  { name: 'TIERGATE_PLAN pointing nowhere', args: ['status', '--target', '{target}', '--plan', '/nonexistent/plan'], says: /folder '\/nonexistent\/plan' does not exist/ },
  { name: '--json with a bad flag combination', args: ['rehearse', '--json', '--source', '{target}', '--dump', 'x.sql'], says: /"kind": "usage"/ },
];

/** Every case of the corpus, in a stable order (TIERGATE_RELIABILITY_ONLY=regex keeps the cases whose name matches). */
export function badInputCorpus(): BadInput[] {
  const only = process.env.TIERGATE_RELIABILITY_ONLY ? new RegExp(process.env.TIERGATE_RELIABILITY_ONLY, 'i') : null;
  return allCases().filter((c) => !only || only.test(c.name));
}

function allCases(): BadInput[] {
  const out: BadInput[] = [];
  PLAN_CASES.forEach((c, i) => {
    out.push({ name: `plan: ${c.name}`, args: PLAN_COMMANDS[i % PLAN_COMMANDS.length]!, mutate: c.mutate, code: 2, says: c.says });
  });
  for (const c of SQL_CASES) {
    out.push({
      name: `sql: ${c.name}`,
      args: ['apply', '--yes', '--plan', '{plan}', '--target', '{target}'],
      mutate: (p) => p.writeFile('tiers/01_base_substrate.sql', c.sql),
      code: c.code ?? 1,
      says: c.says,
      reachesServer: true,
    });
  }
  URL_CASES.forEach((c, i) => {
    const cmd = [['status'], ['apply', '--yes'], ['verify'], ['rollback', '--yes']][i % 4]!;
    out.push({ name: `url: ${c.name}`, args: [...cmd, '--target', typeof c.url === 'string' ? c.url : `{url:${URL_CASES.indexOf(c)}}`], code: 2, says: c.says });
  });
  for (const c of OPTION_CASES) out.push({ name: `option: ${c.name}`, args: c.args, code: 2, says: c.says });
  return out;
}

/** Resolves a case's placeholders. */
export function resolveArgs(c: BadInput, values: { plan: string; target: string; dir: string }): string[] {
  return c.args.map((a) => {
    const m = /^\{url:(\d+)\}$/.exec(a);
    if (m) {
      const u = URL_CASES[Number(m[1])]!.url;
      return typeof u === 'string' ? u : u(values.target);
    }
    return a.replace('{plan}', values.plan).replace('{target}', values.target).replace('{dir}', values.dir);
  });
}

/** Files some option cases read. */
export function writeCorpusFiles(dir: string): void {
  writeFileSync(join(dir, 'not-json.json'), '{ this is not json');
  writeFileSync(join(dir, 'not-evidence.json'), JSON.stringify({ hello: 'world' }));
}

export interface CorpusContext {
  /** a target database holding the sample (a tiergate clone of directus, gate open) */
  target: string;
  /** a scratch folder */
  dir: string;
  run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** the target's fingerprint */
  fingerprint(): Promise<string>;
}

/** Runs one case; returns what is wrong with how tiergate handled it ([] when right). */
export async function checkBadInput(c: BadInput, ctx: CorpusContext): Promise<string[]> {
  const copy = c.mutate ? copyPlan() : null;
  const problems: string[] = [];
  try {
    if (copy && c.mutate) c.mutate(copy);
    const args = resolveArgs(c, { plan: copy?.dir ?? '', target: ctx.target, dir: ctx.dir });
    const before = await ctx.fingerprint();
    const r = await ctx.run(args);
    const text = `${r.stdout}\n${r.stderr}`;
    const short = text.trim().split('\n').filter(Boolean).slice(-4).join(' / ').slice(0, 400);
    if (r.code !== c.code) problems.push(`exit ${r.code}, expected ${c.code}: ${short}`);
    if (!c.says.test(text)) problems.push(`the message does not name the problem and its place (${c.says}): ${short}`);
    if (/^\s{4}at .+/m.test(text)) problems.push('a stack trace was printed');
    if (args.includes('--json') && r.stdout.trim()) {
      try {
        const j = JSON.parse(r.stdout) as { ok?: boolean };
        if (j.ok !== false) problems.push('--json: ok is not false');
      } catch {
        problems.push('--json: stdout is not one JSON object');
      }
    }
    if ((await ctx.fingerprint()) !== before) problems.push('the database changed');
  } finally {
    copy?.remove();
  }
  return problems;
}
