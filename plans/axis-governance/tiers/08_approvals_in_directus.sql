-- Tier 8 — Approvals in Directus (data, not gated)
--
-- What:   makes approving an accountable act in Directus, by registering
--         Directus metadata only (no table is created or changed here):
--         * the policy "Proposal approvers" (id e5a8b6f2-1c3d-4a7e-9f00-7e5700a0e001,
--           the approver policy the gate names; attach it to users or roles in
--           Directus: Settings → Access Policies);
--         * os_proposals and os_proposal_approvals as Directus collections, with
--           the fields Directus needs: `approver` is a user-created field —
--           Directus fills it with the signed-in user and ignores what a request
--           sends —, and `payload_sha256` must be 64 hex digits;
--         * permissions of the approver policy: create approvals (proposal and
--           payload_sha256 only), read proposals and approvals; no update and no
--           delete for anyone (tier 7's trigger refuses them to administrators
--           too). Administrators approve through their admin access.
--         Every row is written only when it is missing: re-running is harmless.
--         Directus caches its schema and permissions: after this tier an
--         administrator clears them (POST /utils/cache/clear?system) or
--         Directus restarts.
-- Gate:   none: ratification-independent (it makes approving possible, so it
--         runs before anyone approves). A data tier only because it writes
--         rows (Directus's metadata), not objects.
-- Post:   both collections are registered, the approver field is user-created,
--         and the approver policy may create approvals (asserted at the end).
-- Revert: not reverted by tier 99 (kept). By hand: delete the rows this file
--         inserts (directus_permissions of the policy, the directus_fields,
--         directus_relations and directus_collections rows of the two
--         collections, the policy).
--
-- (The governance substrate does not govern these two collections: tier 1's
-- rule leaves them out of the user collections.)

INSERT INTO directus_policies (id, name, icon, description, admin_access, app_access, enforce_tfa)
SELECT 'e5a8b6f2-1c3d-4a7e-9f00-7e5700a0e001', 'Proposal approvers', 'how_to_reg',
       'May approve governance proposals (tiergate): create rows in os_proposal_approvals, read proposals', false, true, false
WHERE NOT EXISTS (SELECT 1 FROM directus_policies WHERE id = 'e5a8b6f2-1c3d-4a7e-9f00-7e5700a0e001');

INSERT INTO directus_collections (collection, icon, note, display_template, hidden, singleton, accountability)
SELECT c.collection, c.icon, c.note, c.display_template, false, false, 'all'
FROM (VALUES
        ('os_proposals', 'gavel', 'Governance proposals: their payload is what approvers ratify (written by SQL; read-only here)', '{{key}}: {{title}}'),
        ('os_proposal_approvals', 'how_to_reg', 'Approvals of governance proposals: append-only; the approver is the signed-in user', '{{proposal.key}} · {{approver.email}}')
     ) AS c(collection, icon, note, display_template)
WHERE NOT EXISTS (SELECT 1 FROM directus_collections d WHERE d.collection = c.collection);

INSERT INTO directus_fields (collection, field, special, interface, options, display, display_options, readonly, hidden, sort, width, required, note, validation, validation_message)
SELECT f.collection, f.field, f.special, f.interface, f.options::json, f.display, f.display_options::json, f.readonly, f.hidden, f.sort, f.width, f.required, f.note, f.validation::json, f.validation_message
FROM (VALUES
  ('os_proposal_approvals', 'id', NULL, 'input', NULL, NULL, NULL, true, true, 1, 'full', false, NULL, NULL, NULL),
  ('os_proposal_approvals', 'proposal', 'm2o', 'select-dropdown-m2o', '{"template":"{{key}}: {{title}}"}', 'related-values', '{"template":"{{key}}"}', false, false, 2, 'full', true, 'The proposal you approve', NULL, NULL),
  ('os_proposal_approvals', 'payload_sha256', NULL, 'input', '{"font":"monospace"}', NULL, NULL, false, false, 3, 'full', true,
   'payload_sha256 of the proposal as you reviewed it (copy it from the proposal)', '{"_and":[{"payload_sha256":{"_regex":"^[0-9a-f]{64}$"}}]}', '64 lowercase hex digits'),
  ('os_proposal_approvals', 'approver', 'user-created', 'select-dropdown-m2o', '{"template":"{{first_name}} {{last_name}} <{{email}}>"}', 'user', NULL, true, false, 4, 'half', false, 'Set by Directus to the signed-in user', NULL, NULL),
  ('os_proposal_approvals', 'date_created', 'date-created', 'datetime', NULL, 'datetime', '{"relative":true}', true, false, 5, 'half', false, NULL, NULL, NULL),
  ('os_proposals', 'id', NULL, 'input', NULL, NULL, NULL, true, true, 1, 'full', false, NULL, NULL, NULL),
  ('os_proposals', 'key', NULL, 'input', NULL, NULL, NULL, true, false, 2, 'half', false, NULL, NULL, NULL),
  ('os_proposals', 'title', NULL, 'input', NULL, NULL, NULL, true, false, 3, 'full', false, NULL, NULL, NULL),
  ('os_proposals', 'payload', 'cast-json', 'input-code', '{"language":"JSON"}', NULL, NULL, true, false, 4, 'full', false, NULL, NULL, NULL),
  ('os_proposals', 'payload_sha256', NULL, 'input', '{"font":"monospace"}', NULL, NULL, true, false, 5, 'full', false, 'sha256 of payload::text, by PostgreSQL: what an approval approves', NULL, NULL),
  ('os_proposals', 'date_created', 'date-created', 'datetime', NULL, 'datetime', '{"relative":true}', true, false, 7, 'half', false, NULL, NULL, NULL)
) AS f(collection, field, special, interface, options, display, display_options, readonly, hidden, sort, width, required, note, validation, validation_message)
WHERE NOT EXISTS (SELECT 1 FROM directus_fields d WHERE d.collection = f.collection AND d.field = f.field);

-- os_proposals.user_created, where the column exists (Directus creates it for a collection with accountability fields)
INSERT INTO directus_fields (collection, field, special, interface, display, readonly, hidden, sort, width)
SELECT 'os_proposals', 'user_created', 'user-created', 'select-dropdown-m2o', 'user', true, false, 6, 'half'
WHERE EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'os_proposals' AND column_name = 'user_created'
                AND table_schema = (SELECT n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = 'os_proposals'::regclass))
  AND NOT EXISTS (SELECT 1 FROM directus_fields WHERE collection = 'os_proposals' AND field = 'user_created');

INSERT INTO directus_relations (many_collection, many_field, one_collection, one_deselect_action)
SELECT r.many_collection, r.many_field, r.one_collection, 'nullify'
FROM (VALUES ('os_proposal_approvals', 'proposal', 'os_proposals'), ('os_proposal_approvals', 'approver', 'directus_users')) AS r(many_collection, many_field, one_collection)
WHERE NOT EXISTS (SELECT 1 FROM directus_relations d WHERE d.many_collection = r.many_collection AND d.many_field = r.many_field);

INSERT INTO directus_permissions (collection, action, permissions, validation, presets, fields, policy)
SELECT v.collection, v.action, '{}', '{}', NULL, v.fields, 'e5a8b6f2-1c3d-4a7e-9f00-7e5700a0e001'
FROM (VALUES ('os_proposal_approvals', 'create', 'proposal,payload_sha256'),
             ('os_proposal_approvals', 'read', '*'),
             ('os_proposals', 'read', '*')) AS v(collection, action, fields)
WHERE NOT EXISTS (SELECT 1 FROM directus_permissions d
                   WHERE d.policy = 'e5a8b6f2-1c3d-4a7e-9f00-7e5700a0e001' AND d.collection = v.collection AND d.action = v.action);

-- Post-condition: approving is possible in Directus, and only as the signed-in user
DO $post$
BEGIN
    IF (SELECT count(*) FROM directus_collections WHERE collection IN ('os_proposals', 'os_proposal_approvals')) <> 2
       OR NOT EXISTS (SELECT 1 FROM directus_fields WHERE collection = 'os_proposal_approvals' AND field = 'approver' AND special = 'user-created')
       OR NOT EXISTS (SELECT 1 FROM directus_permissions WHERE policy = 'e5a8b6f2-1c3d-4a7e-9f00-7e5700a0e001'
                        AND collection = 'os_proposal_approvals' AND action = 'create' AND fields = 'proposal,payload_sha256')
       OR EXISTS (SELECT 1 FROM directus_permissions WHERE collection = 'os_proposal_approvals' AND action IN ('update', 'delete')) THEN
        RAISE EXCEPTION 'tier 8 post-condition failed: os_proposal_approvals is not registered as an append-only, user-created approval collection'
            USING ERRCODE = 'TG002',
                  HINT = 'a policy may update or delete approvals (directus_permissions), or a row of this tier is missing';
    END IF;
END
$post$;
