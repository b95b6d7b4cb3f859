-- Tier 7 — Approval rules in the database (structure)
--
-- What:   makes os_proposal_approvals an accountable, append-only record,
--         whoever writes it (Directus, an administrator through its API, SQL):
--         * a trigger refusing UPDATE, DELETE and TRUNCATE of approvals:
--           an approval is withdrawn by approving a new payload (its sha256
--           changes, earlier approvals stop counting) or by suspending the
--           approver, never by editing a row. Directus administrators bypass
--           Directus's own permissions; they do not bypass this;
--         * axis_audit.approval_origin: how each approval was made, recorded by a
--           trigger on insert: 'tiergate' when written by `tiergate approve`
--           (its session's application_name starts with 'tiergate approve'),
--           else 'directus'. A table of its own: adding a column to a Directus
--           table would take an ACCESS EXCLUSIVE lock, which no tier takes on
--           Directus's tables (readers are never blocked behind a tier);
--         * axis_audit.v_approval: every approval with its proposal (and its
--           author), whether it approves the current payload and how it was
--           made. It reads each column the gate reads, so that none of them
--           (os_proposals.user_created included) can be dropped or
--           retyped while it stands: Directus's "delete field" is an ALTER TABLE
--           … DROP COLUMN, which no row trigger sees, and would erase what every
--           approval approved (Directus refuses it, saying the view depends on
--           the column).
--         The functions live in schema axis, the origins in a schema of their
--         own (axis holds the governance substrate: its tables are what
--         axis_tables counts); the triggers on the table (they take SHARE ROW
--         EXCLUSIVE: writers wait a moment, readers never).
-- Gate:   none (structure, ratification-independent: it runs before anyone
--         approves, so that every approval is recorded under these rules).
-- Post:   the three triggers are on os_proposal_approvals and the view stands
--         (asserted at the end).
-- Revert: not reverted by tier 99 (kept). By hand: DROP TRIGGER
--         os_proposal_approvals_append_only, os_proposal_approvals_no_truncate,
--         os_proposal_approvals_origin ON os_proposal_approvals; DROP FUNCTION
--         axis.fn_approvals_append_only(), axis.fn_approval_origin(); DROP
--         SCHEMA axis_audit CASCADE.

CREATE SCHEMA axis_audit;
COMMENT ON SCHEMA axis_audit IS 'the record of how approvals were made (tiergate plan axis-governance)';

CREATE TABLE axis_audit.approval_origin (
    approval   integer PRIMARY KEY REFERENCES os_proposal_approvals (id),
    via        text NOT NULL CHECK (via IN ('directus', 'tiergate')),
    session    text,
    db_user    text NOT NULL DEFAULT current_user,
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE axis_audit.approval_origin IS 'how each approval of os_proposal_approvals was made: directus (the app or its API) or tiergate (tiergate approve); written by a trigger';

CREATE FUNCTION axis.fn_approval_origin() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog
AS $fn$
BEGIN
    INSERT INTO axis_audit.approval_origin (approval, via, session)
    VALUES (NEW.id,
            CASE WHEN current_setting('application_name', true) LIKE 'tiergate approve%' THEN 'tiergate' ELSE 'directus' END,
            left(current_setting('application_name', true), 200));
    RETURN NEW;
END
$fn$;

CREATE FUNCTION axis.fn_approvals_append_only() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    -- the hint in the message too: Directus shows a refusal's message, not its HINT
    RAISE EXCEPTION 'os_proposal_approvals is append-only: % refused (an approval is withdrawn by approving a new payload or by suspending the approver)', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'an approval is withdrawn by approving a new payload or by suspending the approver, never by editing a row';
END
$fn$;

CREATE TRIGGER os_proposal_approvals_origin AFTER INSERT ON os_proposal_approvals
    FOR EACH ROW EXECUTE FUNCTION axis.fn_approval_origin();
CREATE TRIGGER os_proposal_approvals_append_only BEFORE UPDATE OR DELETE ON os_proposal_approvals
    FOR EACH ROW EXECUTE FUNCTION axis.fn_approvals_append_only();
CREATE TRIGGER os_proposal_approvals_no_truncate BEFORE TRUNCATE ON os_proposal_approvals
    FOR EACH STATEMENT EXECUTE FUNCTION axis.fn_approvals_append_only();

-- (with the proposal's author where os_proposals has the column, as the gate reads it: dropped, the author could approve)
DO $view$
DECLARE
    author boolean := EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                               WHERE attrelid = 'os_proposals'::regclass AND attname = 'user_created' AND NOT attisdropped);
BEGIN
    EXECUTE format($sql$
        CREATE VIEW axis_audit.v_approval AS
        SELECT a.id AS approval, p.key AS proposal, a.approver, %s a.payload_sha256, a.date_created,
               a.payload_sha256 = p.payload_sha256 AS approves_current_payload,
               p.payload_sha256 = encode(sha256(convert_to(p.payload::text, 'UTF8')), 'hex') AS payload_matches_its_sha256,
               o.via, o.db_user
          FROM os_proposal_approvals a
          JOIN os_proposals p ON p.id = a.proposal
          LEFT JOIN axis_audit.approval_origin o ON o.approval = a.id
        $sql$, CASE WHEN author THEN 'p.user_created AS proposal_author,' ELSE '' END);
END
$view$;
COMMENT ON VIEW axis_audit.v_approval IS 'every approval, its proposal, whether it approves the current payload and how it was made; it keeps the columns the gate reads from being dropped or retyped (tiergate plan axis-governance)';

-- Post-condition: the rules are in force
DO $post$
BEGIN
    IF (SELECT count(*) FROM pg_catalog.pg_trigger
         WHERE tgrelid = 'os_proposal_approvals'::regclass AND NOT tgisinternal
           AND tgname IN ('os_proposal_approvals_origin', 'os_proposal_approvals_append_only', 'os_proposal_approvals_no_truncate')) <> 3 THEN
        RAISE EXCEPTION 'tier 7 post-condition failed: the approval triggers are not all on os_proposal_approvals' USING ERRCODE = 'TG002';
    END IF;
    IF to_regclass('axis_audit.v_approval') IS NULL THEN
        RAISE EXCEPTION 'tier 7 post-condition failed: the view axis_audit.v_approval is missing' USING ERRCODE = 'TG002';
    END IF;
END
$post$;
