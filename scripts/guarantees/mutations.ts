/**
 * The guarantees of ../shared/design/product.md (and those the issues add),
 * each broken on purpose by one or more named mutations. A mutation is a
 * transformation of the code — exact text found once and replaced — never a
 * line number, so that it still applies after the code around it moves; when
 * its text is no longer there, `npm run test:guarantees` says so and fails:
 * restate the mutation for the new code.
 *
 * `tests` names the test files and a test-name pattern (vitest -t) that must
 * kill it, kept small so that the whole run fits CI; `backends` lists where
 * the guarantee exists (PGlite is one session: what needs a second session
 * to break, or to observe, is PostgreSQL only).
 */
export type Backend = 'pglite' | 'postgres';

export interface Edit {
  file: string;
  find: string;
  replace: string;
}

export interface Mutation {
  id: string;
  guarantee: string;
  /** what the mutation breaks, in words */
  name: string;
  edits: Edit[];
  tests: { files: string[]; names: string };
  backends: Backend[];
}

const BOTH: Backend[] = ['pglite', 'postgres'];
const PG: Backend[] = ['postgres'];
const ANY: Backend[] = ['pglite']; // pure code: one run is enough (PGlite is the embedded default)

const G = {
  oneTx: '1. one tier, one transaction',
  gated: '2. gated means gated, twice',
  files: '3. files are the deliverable',
  oneRollout: '4. one rollout at a time',
  drift: '5. nothing edited behind our back',
  bounded: '6. bounded waiting',
  source: '7. rehearsal never writes to the source',
  rollback: '8. rollback is proven',
  secrets: '9. no secrets out',
  binding: '10. production does what was rehearsed',
  approvals: '11. only accountable approvals count',
  envTrue: 'expectations hold in every environment',
  hostile: 'hostile files are refused',
  metrics: 'a metric reads n/a only while its object is missing',
  amend: '12. governance stays true after the rollout (amendments)',
};

const RUN_TIER = 'src/engine/run-tier.ts';
const REHEARSE = 'src/rehearsal/rehearse.ts';
const BIND = 'src/rehearsal/bind-evidence.ts';
const PLAN_YAML = 'plans/axis-governance/tiergate.yaml';
const SEED = 'plans/axis-governance/tiers/02_ownership_seed.sql';

const GUARANTEES = 'test/guarantees.test.ts';
const ENGINE = 'test/engine.test.ts';
const OPERATOR = 'test/operator.test.ts';
const APPROVALS = 'test/approvals.test.ts';
const HOSTILE = 'test/hostile-files.test.ts';

export const MUTATIONS: Mutation[] = [
  {
    id: 'ledger-outside-tx',
    guarantee: G.oneTx,
    name: 'the ledger row is written on a second connection, outside the tier transaction',
    edits: [{ file: RUN_TIER, find: "() => recordLedger(tx, plan.name, tier, 'applied'", replace: "async () => recordLedger(await db.sibling(), plan.name, tier, 'applied'" }],
    tests: { files: [GUARANTEES], names: 'one tier, one transaction' },
    backends: PG, // PGlite has one session: a sibling is the same session, inside the same transaction
  },
  {
    id: 'post-unchecked',
    guarantee: G.oneTx,
    name: 'post-conditions are measured but not enforced before COMMIT',
    edits: [{ file: RUN_TIER, find: 'if (post.some((p) => !p.ok)) throw new PostConditionFailed(post);', replace: '' }],
    tests: { files: [ENGINE], names: 'post-condition that fails' },
    backends: BOTH,
  },
  {
    id: 'no-failure-record',
    guarantee: G.oneTx,
    name: 'a failed tier leaves no failure record',
    edits: [{ file: RUN_TIER, find: "if (!options.noLedger) await recordAttempt(db, plan.name, tier, failure, 'failed', options.command ?? null);", replace: '' }],
    tests: { files: [GUARANTEES], names: 'one tier, one transaction' },
    backends: BOTH,
  },
  {
    id: 'ctrl-c-commits',
    guarantee: G.oneTx,
    name: "a Ctrl-C that lands after a tier's last statement lets the tier COMMIT",
    edits: [{ file: RUN_TIER, find: 'if (options.signal?.aborted) throw new Interrupted(tier, options.signal);', replace: '' }],
    tests: { files: ['test/operator-tty.test.ts'], names: 'after the last statement' },
    backends: BOTH,
  },
  {
    id: 'engine-gate-unread',
    guarantee: G.gated,
    name: 'the engine never stops a gated tier when its gate reads closed, neither before the run nor in the tier (only the guard does)',
    edits: [
      { file: 'src/engine/apply.ts', find: 'if (tier.gated && gate && !gate.open) return', replace: 'if (tier.gated && gate && gate.open === null) return' },
      { file: RUN_TIER, find: 'if (gate && !gate.open) throw new GateClosed(gate);', replace: '' },
    ],
    tests: { files: [ENGINE], names: 'with the gate closed: structure tiers apply' },
    backends: BOTH,
  },
  {
    id: 'engine-gate-unread-in-tier',
    guarantee: G.gated,
    name: "the engine does not read the gate again in a gated tier's transaction (a revocation after the run began reaches the guard only)",
    edits: [{ file: RUN_TIER, find: 'if (gate && !gate.open) throw new GateClosed(gate);', replace: '' }],
    tests: { files: [GUARANTEES], names: 'revoked after the run began' },
    backends: PG, // a revocation during the run needs a second session
  },
  {
    id: 'gate-rows-unlocked',
    guarantee: G.gated,
    name: 'the gate is read without locking the approvals (an approval can be revoked during the tier)',
    edits: [{ file: RUN_TIER, find: 'gate = await readGate(tx, plan, { lockRows: true });', replace: 'gate = await readGate(tx, plan, { lockRows: false });' }],
    tests: { files: [GUARANTEES], names: 'approval revoked from another session' },
    backends: PG, // a revocation needs a second session
  },
  {
    id: 'guard-any-error',
    guarantee: G.gated,
    name: "a guard proof accepts an error of any statement, not only the guard's",
    edits: [{ file: RUN_TIER, find: 'if (e.statementIndex !== 0) return', replace: 'if (e.statementIndex < 0) return' }],
    tests: { files: [GUARANTEES], names: 'first statement' },
    backends: BOTH,
  },
  {
    id: 'guard-sqlstate',
    guarantee: G.gated,
    name: "a guard proof accepts any SQLSTATE from the first statement, not only the guard's",
    edits: [{ file: RUN_TIER, find: 'if (failure.sqlstate !== guard.sqlstate) return', replace: 'if (failure.sqlstate === null) return' }],
    tests: { files: [OPERATOR], names: 'guard proof' },
    backends: BOTH,
  },
  {
    id: 'guard-removed',
    guarantee: G.gated,
    name: "tier 2's own guard lets a closed gate through (its threshold is 0)",
    edits: [{ file: SEED, find: 'IF ospa < 1 THEN', replace: 'IF ospa < 0 THEN' }],
    tests: { files: [APPROVALS], names: 'gate, lock \\+ gate, each guard' },
    backends: BOTH,
  },
  {
    id: 'parse-late',
    guarantee: G.files,
    name: 'a tier file that does not parse is found only when its tier runs (after earlier tiers committed)',
    edits: [{ file: 'src/engine/rollout.ts', find: 'export async function assertPlanRunnable(plan: Plan): Promise<void> {', replace: 'export async function assertPlanRunnable(plan: Plan): Promise<void> {\n  if (plan) return;' }],
    tests: { files: [OPERATOR], names: 'broken tier file anywhere stops apply' },
    backends: BOTH,
  },
  {
    id: 'advisory-lock-ignored',
    guarantee: G.oneRollout,
    name: 'the rollout lock is taken but a refusal is ignored',
    edits: [{ file: 'src/engine/rollout-lock.ts', find: 'if (got.rows[0]?.ok) break;', replace: 'break;' }],
    tests: { files: [ENGINE], names: 'lock is held' },
    backends: PG,
  },
  {
    id: 'amendment-rollback-proven-for-a-rollout',
    guarantee: G.rollback,
    name: "a rehearsal that applies the rollout's tiers from nothing (after the full rollback) proves only the amendment's rollback, which leaves what they write",
    edits: [{ file: REHEARSE, find: '&& !(full?.reverts.some(fromNothing) ?? false)) this.rollbackTier = scoped;', replace: ') this.rollbackTier = scoped;' }],
    tests: { files: ['test/amendments.test.ts'], names: 'after rollback --amendment the full rollback' },
    backends: ANY,
  },
  {
    id: 'lost-rollout-lock-unchecked',
    guarantee: G.oneRollout,
    name: "a tier that released the rollout lock (pg_advisory_unlock_all() in a function) commits: another run may be applying meanwhile",
    edits: [{ file: 'src/engine/run-tier.ts', find: 'lock: heldRolloutLock(db, plan.name),', replace: 'lock: null,' }],
    tests: { files: [ENGINE], names: 'releases the rollout lock' },
    backends: BOTH,
  },
  {
    id: 'subject-change-unchecked',
    guarantee: G.binding,
    name: 'a payload replaced (and approved) between two tiers of one apply: the next gated tiers commit for it, under the evidence of the old one',
    edits: [{ file: RUN_TIER, find: 'if (gate && options.subject !== undefined && gate.subject !== options.subject)', replace: 'if (false)' }],
    tests: { files: ['test/amendments.test.ts'], names: 'the payload replaced while an apply runs' },
    backends: PG,
  },
  {
    id: 'killed-run-holds-on',
    guarantee: G.bounded,
    name: "a killed run's statement, its locks and the rollout lock stay until its statement_timeout: the server never checks that the client is gone",
    edits: [{ file: 'src/engine/session-bounds.ts', find: 'const watchClient = !db.capabilities.singleConnection;', replace: 'const watchClient = false;' }],
    tests: { files: ['test/operator-tty.test.ts'], names: 'a run killed in the middle of a statement' },
    backends: PG,
  },
  {
    id: 'role-outlasts-its-file',
    guarantee: G.oneTx,
    name: 'SET ROLE in a tier file outlasts it: the ledger records another user and the tiers after it run as that role',
    edits: [{ file: 'src/engine/run-tier.ts', find: "union all select 'role', current_setting('role')) x)", replace: ') x)' }],
    tests: { files: [ENGINE], names: 'SET ROLE in a tier file' },
    backends: BOTH,
  },
  {
    id: 'dir-lock-ignored',
    guarantee: G.oneRollout,
    name: 'a PGlite directory held by a live process is taken over as if its holder were dead',
    edits: [{ file: 'src/db/dir-lock.ts', find: 'if (holder && isAlive(holder.pid)) {', replace: 'if (holder && isAlive(-1)) {' }],
    tests: { files: [ENGINE], names: 'lock is held' },
    backends: ['pglite'],
  },
  {
    id: 'drift-ignored',
    guarantee: G.drift,
    name: 'an applied file that changed is not refused',
    edits: [{ file: 'src/engine/rollout.ts', find: 'if (drifted.length) throw new DriftError(plan.name, drifted);', replace: '' }],
    tests: { files: [ENGINE], names: 'edited applied file' },
    backends: BOTH,
  },
  {
    id: 'hand-edits-unchecked',
    guarantee: G.drift,
    name: "verify passes whatever was changed by hand in the plan's schemas since its last tier",
    edits: [{ file: RUN_TIER, find: 'if (edits) failures = [...failures,', replace: 'if (edits && false) failures = [...failures,' }],
    tests: { files: ['test/hand-edits.test.ts'], names: 'verify fails and status says so' },
    backends: BOTH,
  },
  {
    id: 'hand-edits-laundered',
    guarantee: G.drift,
    name: "a tier's record of the plan's objects takes the whole catalog after it: a later run makes a hand edit the record",
    edits: [{ file: 'src/engine/ledger.ts', find: "case when prev.o ->> 'v' = $18::text", replace: "case when false and prev.o ->> 'v' = $18::text" }],
    tests: { files: ['test/hand-edits.test.ts'], names: 'verify fails and status says so' },
    backends: ['pglite'],
  },
  {
    id: 'no-lock-timeout',
    guarantee: G.bounded,
    name: "a tier's lock_timeout is not set (it waits for ever)",
    edits: [{ file: RUN_TIER, find: "select set_config('lock_timeout', $1, true)", replace: "select set_config('lock_timeout', '0' || left($1, 0), true)" }],
    tests: { files: [GUARANTEES], names: 'bounded waiting' },
    backends: PG, // a blocker needs a second session
  },
  {
    id: 'gate-opened-anywhere',
    guarantee: G.source,
    name: 'the gate is opened on a database that is not a marked clone',
    edits: [{ file: REHEARSE, find: 'if (!mark.marked) throw new TargetError(', replace: 'if (mark.marked === null) throw new TargetError(' }],
    tests: { files: [GUARANTEES], names: 'opens a gate only on a clone' },
    backends: BOTH,
  },
  {
    id: 'kept-proof-skipped',
    guarantee: G.rollback,
    name: 'after rollback, the clone is taken to equal a clean apply of the kept tiers',
    edits: [{ file: REHEARSE, find: "const matchesKeptTiers = !('error' in pair) && sameFingerprint(...pair);", replace: "const matchesKeptTiers = !('error' in pair);" }],
    tests: { files: [GUARANTEES], names: 'leaves a policy behind' },
    backends: BOTH,
  },
  {
    id: 'kept-proof-skipped-stored',
    guarantee: G.rollback,
    name: "after rollback, the clone is taken to equal the stored reference (a repeated rehearsal of a kept snapshot, one clone)",
    edits: [{ file: REHEARSE, find: "const matchesKeptTiers = !('error' in pair) && sameFingerprint(...pair);", replace: "const matchesKeptTiers = !('error' in pair);" }],
    tests: { files: ['test/snapshot.test.ts'], names: '\\(g\\)' },
    backends: PG,
  },
  {
    id: 'stored-reference-ignores-kept-files',
    guarantee: G.rollback,
    name: "the rollback proof's stored reference is reused after a kept tier's file changed (its key leaves the kept files out)",
    edits: [{ file: 'src/rehearsal/kept-reference.ts', find: 'files: [...keptSomewhere, ...rollbacks].map((t) => [t.id, t.sha256]),', replace: 'files: rollbacks.map((t) => [t.id, t.sha256]),' }],
    tests: { files: ['test/snapshot.test.ts'], names: '\\(g\\)' },
    backends: PG,
  },
  {
    id: 'stored-reference-ignores-yaml',
    guarantee: G.rollback,
    name: "the rollback proof's stored reference is reused after tiergate.yaml changed (post-conditions, metrics, timeouts the reference run enforces)",
    edits: [{ file: 'src/rehearsal/kept-reference.ts', find: '    yaml: plan.yamlSha256,\n', replace: '' }],
    tests: { files: ['test/snapshot.test.ts'], names: '\\(g\\)' },
    backends: PG,
  },
  {
    id: 'deferred-token-unresolved',
    guarantee: G.rollback,
    name: "a large table the snapshot's baseline left unhashed is compared by its token against the other side's hash (never hashed on a copy of the snapshot)",
    edits: [{ file: REHEARSE, find: '    if (!names.length) return [a, b];\n', replace: '    return [a, b];\n' }],
    tests: { files: ['test/snapshot.test.ts'], names: '\\(k\\)' },
    backends: PG,
  },
  {
    id: 'deferred-token-equals-anything',
    guarantee: G.rollback,
    name: 'a large table the baseline left unhashed, written on one side of a comparison only, is taken to be unchanged',
    edits: [{ file: REHEARSE, find: '    return [withResolved(a, this.deferredHashes), withResolved(b, this.deferredHashes)];', replace: '    return [a, a];' }],
    tests: { files: ['test/snapshot.test.ts'], names: '\\(k\\)' },
    backends: PG,
  },
  {
    id: 'deferred-token-without-key',
    guarantee: G.rollback,
    name: "a deferred hash's token names the baseline's position only, not the table's key (columns, storage, trigger, settings)",
    edits: [{ file: 'src/probe/fingerprint.ts', find: ':${global.n}:${proof.keys.get(x.name)!.key}`', replace: ':${global.n}`' }],
    tests: { files: ['test/fingerprint-cache.test.ts'], names: 'defers its tables' },
    backends: BOTH,
  },
  {
    id: 'reapply-proof-skipped',
    guarantee: G.rollback,
    name: 're-applying the reverted tiers is taken to reproduce stage B',
    edits: [{ file: REHEARSE, find: "const reapplyMatches = !('error' in again) && sameFingerprint(...again);", replace: "const reapplyMatches = !('error' in again);" }],
    tests: { files: [GUARANTEES], names: 'does not reproduce stage B' },
    backends: BOTH,
  },
  {
    id: 'policies-unfingerprinted',
    guarantee: G.rollback,
    name: 'row-level-security policies are left out of the fingerprint',
    edits: [{ file: 'src/probe/catalog.ts', find: 'from pg_policy po join rel r on r.oid = po.polrelid', replace: 'from pg_policy po join rel r on r.oid = po.polrelid where false' }],
    tests: { files: [GUARANTEES], names: 'policy' },
    backends: BOTH,
  },
  {
    id: 'catalog-update-without-dependents',
    guarantee: G.rollback,
    name: 'a catalog read brought up to date leaves out the objects that print a changed name (a view over a renamed table)',
    edits: [{ file: 'src/probe/fingerprint.ts', find: 'for (const r of dependents.rows) if (r.owner !== null && basis.counts.has(Number(r.owner))) dirty.add(Number(r.owner));', replace: '' }],
    tests: { files: ['test/fingerprint-cache.test.ts'], names: 'brought up to date' },
    backends: BOTH,
  },
  {
    id: 'catalog-update-deaf-to-drops',
    guarantee: G.rollback,
    name: 'a catalog read brought up to date misses a relation that only lost rows (a trigger, a policy, a rule dropped: nothing of its own written)',
    edits: [{ file: 'src/probe/fingerprint.ts', find: 'for (const [oid, n] of basis.counts) if (before.counts.get(oid) !== n) changed.add(oid);', replace: 'for (const [oid] of basis.counts) if (!before.counts.has(oid)) changed.add(oid);' }],
    tests: { files: ['test/fingerprint-cache.test.ts'], names: 'brought up to date' },
    backends: BOTH,
  },
  {
    id: 'catalog-horizon-skips-running',
    guarantee: G.rollback,
    name: "a catalog read's horizon passes over the transactions of its own database still running (what they write is never read)",
    edits: [{ file: 'src/probe/fingerprint.ts', find: 'a.datid is distinct from db)', replace: 'true)' }],
    tests: { files: ['test/fingerprint-cache.test.ts'], names: 'brought up to date' },
    backends: PG, // only a second session of the same database can hold a transaction open during a read
  },
  {
    id: 'lane-settings-read',
    guarantee: G.rollback,
    name: "a fingerprint's reads on its second connection take that connection's settings, not its own session's (a DateStyle or search_path set goes unseen)",
    edits: [{ file: 'src/probe/fingerprint.ts', find: 'const global = await readGlobalProof(lane, session);', replace: 'const global = await readGlobalProof(lane);' }],
    tests: { files: ['test/fingerprint-cache.test.ts'], names: 'every kind of change|brought up to date' },
    backends: PG, // PGlite has one connection: no second one to read on
  },
  {
    id: 'stage-a-seal-tables-ignored',
    guarantee: G.rollback,
    name: "stage A's seal leaves out the rows of the tables the change log cannot vouch for",
    edits: [{ file: 'src/probe/fingerprint.ts', find: '&& differing(a.tables, b.tables).length === 0', replace: '' }],
    tests: { files: ['test/fingerprint-cache.test.ts', GUARANTEES], names: 'every kind of change|while the gated tier is blocked' },
    backends: BOTH,
  },
  {
    id: 'stage-a-unchanged-assumed',
    guarantee: G.rollback,
    name: "stage A takes a blocked tier's clone to be unchanged without comparing its seals or fingerprints",
    edits: [{ file: REHEARSE, find: 'unchanged = proof.unchanged;', replace: 'unchanged = proof.after !== null;' }],
    tests: { files: [GUARANTEES], names: 'while the gated tier is blocked' },
    backends: PG, // only a second session can change a clone behind the rehearsal
  },
  {
    id: 'stage-a-commit-taken-for-abort',
    guarantee: G.rollback,
    name: "stage A's transaction proof counts a committed transaction as aborted (a change made beside a blocked tier goes unseen)",
    edits: [{ file: 'src/probe/xact-mark.ts', find: "pg_xact_status(x) is not distinct from 'aborted'", replace: "pg_xact_status(x) in ('aborted', 'committed')" }],
    tests: { files: [GUARANTEES, 'test/xact-mark.test.ts'], names: 'while the gated tier is blocked|never clean' },
    backends: BOTH,
  },
  {
    id: 'stage-a-running-ignored',
    guarantee: G.rollback,
    name: "stage A's transaction proof leaves out the transactions running at its mark (one that commits after it goes unseen)",
    edits: [{ file: 'src/probe/xact-mark.ts', find: 'unnest($2::text[]::xid8[]) x', replace: "unnest('{}'::text[]::xid8[]) x" }],
    tests: { files: ['test/xact-mark.test.ts'], names: 'already running at the mark' },
    backends: PG, // only a second session can hold a transaction open across the mark
  },
  {
    id: 'password-shown',
    guarantee: G.secrets,
    name: 'a URL is displayed with its password',
    edits: [{ file: 'src/secrets.ts', find: "u.password = '***';", replace: '' }],
    tests: { files: [GUARANTEES, 'test/pg-url.test.ts'], names: 'redact' },
    backends: PG,
  },
  {
    id: 'scrub-off',
    guarantee: G.secrets,
    name: 'registered secrets are not scrubbed from what is printed',
    edits: [{ file: 'src/secrets.ts', find: "for (const s of secrets) if (s.length > 0) out = out.split(s).join('***');", replace: '' }],
    tests: { files: ['test/unit-redaction.test.ts'], names: 'scrub' },
    backends: ANY,
  },
  {
    id: 'other-database-accepted',
    guarantee: G.binding,
    name: 'evidence of another database is accepted',
    edits: [{ file: BIND, find: 'if (rehearsedOn.database !== identity.database) throw refuse(', replace: 'if (rehearsedOn.database === null) throw refuse(' }],
    tests: { files: [GUARANTEES], names: 'production does what was rehearsed' },
    backends: PG, // on PGlite the directory's own id tells two databases apart (next mutation)
  },
  {
    id: 'other-directory-accepted',
    guarantee: G.binding,
    name: 'evidence of another PGlite directory is accepted',
    edits: [{ file: BIND, find: 'if (rehearsedOn.instance !== null && rehearsedOn.instance !== identity.instance) {', replace: 'if (rehearsedOn.instance === undefined) {' }],
    tests: { files: [GUARANTEES], names: 'production does what was rehearsed' },
    backends: ['pglite'],
  },
  {
    id: 'deltas-uncompared',
    guarantee: G.binding,
    name: "a production tier's rows are not compared with its rehearsal",
    edits: [{ file: BIND, find: 'if (fx !== fy) out.push(', replace: 'if (fx === null) out.push(' }],
    tests: { files: [GUARANTEES], names: 'differs from its rehearsal is named' },
    backends: ANY,
  },
  {
    id: 'row-versions-despite-catalog',
    guarantee: G.binding,
    name: "a tier's row delta skips rows it did not write although the catalog changed (a column added with a default changes every row's text)",
    edits: [{ file: 'src/probe/rows.ts', find: '(${CATALOG_WRITES} = $2::int8 and ${OUTPUT_SETTINGS} = $3)', replace: '($2::int8 is not null and ${OUTPUT_SETTINGS} = $3)' }],
    tests: { files: ['test/rows.test.ts'], names: 'not hashed again' },
    backends: BOTH,
  },
  {
    id: 'row-versions-too-recent',
    guarantee: G.binding,
    name: "a tier's row delta takes the row versions written during the tier for versions the \"before\" hashed",
    edits: [{ file: 'src/probe/rows.ts', find: 'case when age(t.xmin) > ${Math.trunc(horizon)} then null', replace: 'case when age(t.xmin) >= 0 then null' }],
    tests: { files: ['test/rows.test.ts'], names: 'not hashed again' },
    backends: BOTH,
  },
  {
    id: 'verdict-trusted',
    guarantee: G.binding,
    name: "the evidence's own verdict is trusted, not recomputed from its records",
    edits: [{ file: BIND, find: 'if (verdict.rehearsal !== evidence.verdict.rehearsal || verdict.execution !== evidence.verdict.execution) {', replace: 'if (verdict === null) {' }],
    tests: { files: [HOSTILE], names: 'edited into a PASS' },
    backends: ['pglite'],
  },
  {
    id: 'post-records-unchecked',
    guarantee: G.binding,
    name: "post-condition records are not checked against their condition and the tier's metric (an edited metric beside a holding post-condition passes)",
    edits: [{ file: 'src/evidence/verdict.ts', find: '  failures.push(...postConditionRecordProblems(input.stages));\n', replace: '' }],
    tests: { files: ['test/unit-verdict.test.ts'], names: 'post-conditions' },
    backends: ANY,
  },
  {
    id: 'expectation-records-unchecked',
    guarantee: G.binding,
    name: "expectation records are not checked against the tier's delta and the plan (a delta edited beside an expectation still saying ✓ passes, and apply blames production)",
    edits: [{ file: 'src/evidence/verdict.ts', find: '  failures.push(...expectationRecordProblems(plan, input.stages));\n', replace: '' }],
    tests: { files: ['test/unit-verdict.test.ts'], names: "expectations' records" },
    backends: ANY,
  },
  {
    id: 'snapshot-stale-proposal-reused',
    guarantee: G.binding,
    name: "a kept snapshot is reused after the source's gate subject changed (the evidence would name a payload it did not rehearse)",
    edits: [{ file: 'src/rehearsal/clone-postgres.ts', find: 'if (kept.subject !== source.planState.subject) {', replace: 'if (kept.subject !== kept.subject) {' }],
    tests: { files: ['test/snapshot.test.ts'], names: '\\(d3\\)' },
    backends: PG,
  },
  {
    id: 'snapshot-stale-ledger-reused',
    guarantee: G.binding,
    name: 'a kept snapshot is reused after tiers were applied or rolled back on the source',
    edits: [{ file: 'src/rehearsal/clone-postgres.ts', find: 'if (kept.ledger !== source.planState.ledger) return', replace: 'if (kept.ledger !== kept.ledger) return' }],
    tests: { files: ['test/snapshot.test.ts'], names: '\\(d3\\)' },
    backends: PG,
  },
  {
    id: 'evidence-not-required',
    guarantee: G.binding,
    name: 'a plan that demands evidence is applied without it',
    edits: [{ file: 'src/engine/apply.ts', find: 'if (plan.evidence.required && !given) {', replace: 'if (plan.evidence.required && given === null) {' }],
    tests: { files: [HOSTILE], names: 'signed evidence' },
    backends: ['pglite'],
  },
  {
    id: 'inactive-approver',
    guarantee: G.approvals,
    name: "the gate counts approvers who are not active (tiergate.yaml's gate)",
    edits: [{ file: PLAN_YAML, find: "join directus_users u on u.id = a.approver and u.status = 'active'", replace: 'join directus_users u on u.id = a.approver' }],
    tests: { files: [APPROVALS], names: 'suspended' },
    backends: BOTH,
  },
  {
    id: 'approver-counted-twice',
    guarantee: G.approvals,
    name: 'the gate counts approvals, not distinct approvers',
    edits: [{ file: PLAN_YAML, find: 'select count(distinct a.approver)', replace: 'select count(a.approver)' }],
    tests: { files: [APPROVALS], names: 'two approvals by one approver' },
    backends: BOTH,
  },
  {
    id: 'author-approves',
    guarantee: G.approvals,
    name: "the proposal's author may approve it (guard of tier 2)",
    edits: [{ file: SEED, find: "AND u.id::text IS DISTINCT FROM (to_jsonb(p) ->> 'user_created')", replace: '' }],
    tests: { files: [APPROVALS], names: 'author' },
    backends: BOTH,
  },
  {
    id: 'any-payload',
    guarantee: G.approvals,
    name: 'an approval of an older payload counts',
    edits: [{ file: PLAN_YAML, find: 'join os_proposal_approvals a on a.proposal = p.id and a.payload_sha256 = p.payload_sha256', replace: 'join os_proposal_approvals a on a.proposal = p.id' }],
    tests: { files: [APPROVALS], names: 'older payload' },
    backends: BOTH,
  },
  {
    id: 'expectations-always-hold',
    guarantee: G.envTrue,
    name: "an expectation's expression is evaluated but any value matches",
    edits: [{ file: 'src/engine/expectations.ts', find: 'matches: (v) => value !== null && v === value };', replace: 'matches: () => true };' }],
    tests: { files: ['test/expectations.test.ts'], names: 'compareExpectations' },
    backends: ANY,
  },
  {
    id: 'figures-ignored',
    guarantee: G.envTrue,
    name: "the figures read before a tier are not available to its expectations",
    edits: [{ file: 'src/engine/expectations.ts', find: '.map(([k, m]) => [k, m.before])), ...figures };', replace: '.map(([k, m]) => [k, m.before])) };' }],
    tests: { files: ['test/expectations.test.ts'], names: 'compareExpectations' },
    backends: ANY,
  },
  {
    id: 'links-out-followed',
    guarantee: G.hostile,
    name: 'a plan file reached through a link out of the plan folder is read',
    edits: [{ file: 'src/plan/plan.ts', find: 'if (real === realDir || real.startsWith(', replace: 'if (real !== null || real.startsWith(' }],
    tests: { files: [HOSTILE], names: 'link out of the plan folder' },
    backends: ANY,
  },
  {
    id: 'size-unlimited',
    guarantee: G.hostile,
    name: 'a file larger than its limit is read',
    edits: [
      { file: 'src/safe-read.ts', find: 'if (st.size > max) return tooLarge(kind, st.size, max);', replace: '' },
      { file: 'src/safe-read.ts', find: 'if (fst.size > max) return tooLarge(kind, fst.size, max);', replace: '' },
      { file: 'src/safe-read.ts', find: 'if (n > max) return tooLarge(kind, n, max);', replace: '' },
    ],
    tests: { files: [HOSTILE], names: 'over the limit|larger than the limit' },
    backends: ANY,
  },
  {
    id: 'proto-keys-accepted',
    guarantee: G.hostile,
    name: 'evidence with __proto__ keys is parsed',
    edits: [{ file: 'src/evidence/evidence-json.ts', find: 'if (odd.length) {', replace: 'if (odd.length < 0) {' }],
    tests: { files: [HOSTILE], names: 'edited into a PASS' },
    backends: ANY,
  },
  {
    id: 'signature-unchecked',
    guarantee: G.hostile,
    name: 'an edited signed evidence file is accepted',
    edits: [{ file: BIND, find: "if (signature === 'invalid') throw refuse(", replace: "if (signature === null) throw refuse(" }],
    tests: { files: [HOSTILE], names: 'signed evidence' },
    backends: ANY,
  },
  {
    id: 'metric-errors-swallowed',
    guarantee: G.metrics,
    name: 'any error reading a metric or a gate reads as n/a (a lock timeout becomes a closed gate)',
    edits: [{ file: 'src/probe/metrics.ts', find: 'if (err.sqlstate !== null && MISSING_OBJECT.has(err.sqlstate)) return null;', replace: 'return null;' }],
    tests: { files: [OPERATOR, 'test/metrics.test.ts'], names: 'gate read under a lock|follow objects' },
    backends: BOTH,
  },
  {
    id: 'merged-aggregate-unfiltered',
    guarantee: G.metrics,
    name: "metrics of one relation read in one pass drop a sum's condition (every row summed)",
    edits: [{ file: 'src/probe/metrics.ts', find: '`${aggregate} filter (where ${condition})`', replace: "(aggregate.startsWith('sum') ? aggregate : `${aggregate} filter (where ${condition})`)" }],
    tests: { files: ['test/metrics.test.ts'], names: 'in one pass' },
    backends: BOTH,
  },
  {
    id: 'metric-cte-as-missing',
    guarantee: G.metrics,
    name: "a metric whose CTE is named like a relation that does not exist reads n/a unsent (the CTE taken for the relation)",
    edits: [{ file: 'src/plan/read-relations.ts', find: '.filter((r) => r.schema !== null || !ctes.has(r.name))', replace: '' }],
    tests: { files: ['test/metrics.test.ts'], names: 'relations that do not exist yet' },
    backends: BOTH,
  },
  {
    id: 'metric-present-as-missing',
    guarantee: G.metrics,
    name: "in a set with a missing relation, the metrics over relations that exist read n/a too",
    edits: [{ file: 'src/probe/metrics.ts', find: 'present = r.rows.map((x) => x.ok === true);', replace: 'present = r.rows.map(() => false);' }],
    tests: { files: ['test/metrics.test.ts'], names: 'relations that do not exist yet' },
    backends: BOTH,
  },
  {
    id: 'metric-statements-sent',
    guarantee: G.hostile,
    name: 'a metric of several statements is sent as it is (the ones after the query run: a DELETE in a metric deletes)',
    edits: [{ file: 'src/plan/sql-facts.ts', find: "if (count > 1) return `it holds ${count} statements, and a metric or gate is one query`;", replace: '' }],
    tests: { files: ['test/metrics.test.ts'], names: 'refused before it is sent' },
    backends: BOTH,
  },
  {
    id: 'amendment-ignored',
    guarantee: G.amend,
    name: 'a gated tier applied for another subject counts as applied (an amendment is never run)',
    edits: [{ file: 'src/engine/apply.ts', find: 'if (!tier.gated || prior?.status !== \'applied\' || !prior.subject', replace: 'if (true || !tier.gated || prior?.status !== \'applied\' || !prior.subject' }],
    tests: { files: ['test/amendments.test.ts'], names: 'closes every finding' },
    backends: BOTH,
  },
  {
    id: 'amendment-rollback-unchecked',
    guarantee: G.amend,
    name: 'rollback --amendment runs although the amendment for the current subject is not applied',
    edits: [{ file: 'src/engine/rollback.ts', find: 'if (other.length) {', replace: 'if (other.length < 0) {' }],
    tests: { files: ['test/amendments.test.ts'], names: 'refuses what is not applied' },
    backends: BOTH,
  },
  {
    id: 'amendment-tags-by-run',
    guarantee: G.amend,
    name: "tier 3 tags an amendment's rows by the run that wrote them, not by the payload (a full rollback and re-apply changes them)",
    edits: [{ file: 'plans/axis-governance/tiers/03_axis_topic_containment.sql', find: "'PROD_T3' || coalesce('#' || coalesce(ci.added_in, a.added_in), '')", replace: "'PROD_T3' || coalesce('#' || (SELECT p.payload ->> 'amendment' FROM os_proposals p WHERE p.key = 'OS-AXIS'), '')" }],
    tests: { files: ['test/amendments.test.ts'], names: 'in a row' },
    backends: PG,
  },
];
