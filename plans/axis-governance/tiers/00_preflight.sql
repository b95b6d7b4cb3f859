-- Tier 0 — Preflight (read-only)
--
-- What:   refuses to go on unless this is the Directus database: its name is
--         'directus', or it is a tiergate clone of it (a tiergate.clone_mark row
--         with source_database = 'directus'). tiergate names the database the
--         plan is for in the setting tiergate.database: the plan's database:,
--         or in a fleet whose targets file lists its databases (plan_database:
--         from_targets), the target's own; run by hand, it is 'directus'.
--         And it looks like Directus
--         (directus_collections, directus_fields, directus_relations,
--         os_proposals, os_proposal_approvals exist; proposal OS-AXIS exists).
--         Reports the gate (ospa) and axis_tables as a NOTICE; an ospa of 0 is
--         not a refusal here: it makes the execution verdict NO-GO.
-- Gate:   none (read-only; safe in a READ ONLY transaction).
-- Post:   none (it raises, SQLSTATE TG003, on a database it must not touch).
-- Revert: nothing to revert: it writes nothing.

DO $preflight$
DECLARE
    is_clone    boolean := false;
    expected    text := coalesce(nullif(current_setting('tiergate.database', true), ''), 'directus');
    missing     text;
    ospa        integer;
    axis_tables integer;
    intact      boolean;
BEGIN
    IF to_regclass('tiergate.clone_mark') IS NOT NULL THEN
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM tiergate.clone_mark WHERE source_database = $1)' INTO is_clone USING expected;
    END IF;
    IF current_database() <> expected AND NOT is_clone THEN
        RAISE EXCEPTION 'tier 0 preflight refused: database "%" is not the Directus database "%"', current_database(), expected
            USING ERRCODE = 'TG003',
                  DETAIL = format('the axis-governance plan runs only on the database named %s, or on a tiergate clone of it (tiergate.clone_mark.source_database = %L)', expected, expected),
                  HINT = 'check the target URL';
    END IF;

    SELECT string_agg(t, ', ' ORDER BY t) INTO missing
      FROM unnest(ARRAY['directus_collections', 'directus_fields', 'directus_relations', 'directus_users', 'directus_roles',
                        'directus_policies', 'directus_access', 'os_proposals', 'os_proposal_approvals']) AS t
     WHERE to_regclass(t) IS NULL;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'tier 0 preflight refused: database "%" does not look like Directus with governance proposals: missing %',
                        current_database(), missing
            USING ERRCODE = 'TG003',
                  DETAIL = format('looked up on this session''s search_path: %s', current_setting('search_path')),
                  HINT = 'a Directus in another schema than public (DB_SEARCH_PATH) needs that schema on the search_path of this user or database: ALTER ROLE … SET search_path = … (a rehearsal gives its clones the source''s)';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM os_proposals WHERE key = 'OS-AXIS') THEN
        RAISE EXCEPTION 'tier 0 preflight refused: proposal OS-AXIS does not exist in os_proposals'
            USING ERRCODE = 'TG003',
                  HINT = 'the rollout''s content is the payload of proposal OS-AXIS';
    END IF;

    -- ospa, as tiergate.yaml's gate counts it (accountable approvers of the current payload)
    SELECT count(DISTINCT a.approver) INTO ospa
      FROM os_proposals p
      JOIN os_proposal_approvals a ON a.proposal = p.id AND a.payload_sha256 = p.payload_sha256
      JOIN directus_users u ON u.id = a.approver AND u.status = 'active'
     WHERE p.key = 'OS-AXIS'
       AND p.payload_sha256 = encode(sha256(convert_to(p.payload::text, 'UTF8')), 'hex')
       AND u.id::text IS DISTINCT FROM (to_jsonb(p) ->> 'user_created')
       AND EXISTS (
           WITH RECURSIVE r(id) AS (SELECT u.role UNION SELECT x.parent FROM directus_roles x JOIN r ON x.id = r.id WHERE x.parent IS NOT NULL)
           SELECT 1 FROM directus_access ac JOIN directus_policies po ON po.id = ac.policy
            WHERE (ac."user" = u.id OR ac.role IN (SELECT id FROM r))
              AND (po.admin_access OR po.id::text IN (coalesce(p.payload ->> 'approver_policy', ''), 'e5a8b6f2-1c3d-4a7e-9f00-7e5700a0e001')));
    SELECT p.payload_sha256 = encode(sha256(convert_to(p.payload::text, 'UTF8')), 'hex') INTO intact
      FROM os_proposals p WHERE p.key = 'OS-AXIS';
    SELECT count(*) INTO axis_tables FROM pg_catalog.pg_tables WHERE schemaname = 'axis';

    IF NOT intact THEN
        RAISE WARNING 'proposal OS-AXIS: payload_sha256 is not the sha256 of its payload; no approval counts until it is';
    END IF;
    RAISE NOTICE 'tiergate preflight: database %, ospa = % (% 1), axis_tables = %',
                 current_database(), ospa, CASE WHEN ospa >= 1 THEN '>=' ELSE '<' END, axis_tables;
END
$preflight$;
