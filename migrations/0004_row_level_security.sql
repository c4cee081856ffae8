-- Up Migration
--
-- Row-level security: a database role can be restricted to some workspaces, so that even raw SQL
-- on that role's connection cannot read or change another workspace's rows.
--
-- RLS is enabled (not forced) on every table that holds workspace data. The table owner -- the
-- role that ran these migrations, and any role that has its privileges -- bypasses it, as do
-- superusers and BYPASSRLS roles, so the default setup (the backend connects as the owner) works
-- exactly as before. Any other role sees and writes only the workspaces granted to it in
-- `workspace_grants`, by role name (grants to a role it belongs to count too). The grant is keyed
-- on the role PostgreSQL authenticated, not on a setting the session could change itself.
--
-- Writes by a restricted role still maintain `chunks` and `changes`: the trigger functions that
-- do it run as the owner (SECURITY DEFINER; a trigger function cannot be called directly, and
-- each one only touches rows derived from the rows the statement itself was allowed to change),
-- so a restricted role needs SELECT on those tables and nothing more.
-- Released: never edit this file; add a new migration instead.

CREATE TABLE workspace_grants (
  role_name  name NOT NULL,
  workspace  text,          -- NULL: every workspace
  granted_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE UNIQUE INDEX workspace_grants_role_workspace_idx ON workspace_grants (role_name, workspace) WHERE workspace IS NOT NULL;
CREATE UNIQUE INDEX workspace_grants_role_all_idx ON workspace_grants (role_name) WHERE workspace IS NULL;

-- A role sees only its own grants (and those of roles whose privileges it has). Everyone may
-- read that much: the policies below read it as the current role.
ALTER TABLE workspace_grants ENABLE ROW LEVEL SECURITY;
CREATE POLICY workspace_grants_own ON workspace_grants FOR SELECT
  USING (EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
                 WHERE r.rolname = workspace_grants.role_name AND pg_catalog.pg_has_role(r.oid, 'USAGE')));
GRANT SELECT ON workspace_grants TO PUBLIC;

-- The same rule on every table with a workspace column: the row's workspace is granted, or every
-- workspace is. Both subqueries are uncorrelated, so each runs once per statement (the grants
-- table's own policy narrows them to the current role).
CREATE POLICY files_granted ON files
  USING (workspace IN (SELECT g.workspace FROM workspace_grants g)
         OR EXISTS (SELECT 1 FROM workspace_grants g WHERE g.workspace IS NULL))
  WITH CHECK (workspace IN (SELECT g.workspace FROM workspace_grants g)
              OR EXISTS (SELECT 1 FROM workspace_grants g WHERE g.workspace IS NULL));
CREATE POLICY chunks_granted ON chunks
  USING (workspace IN (SELECT g.workspace FROM workspace_grants g)
         OR EXISTS (SELECT 1 FROM workspace_grants g WHERE g.workspace IS NULL))
  WITH CHECK (workspace IN (SELECT g.workspace FROM workspace_grants g)
              OR EXISTS (SELECT 1 FROM workspace_grants g WHERE g.workspace IS NULL));
CREATE POLICY changes_granted ON changes
  USING (workspace IN (SELECT g.workspace FROM workspace_grants g)
         OR EXISTS (SELECT 1 FROM workspace_grants g WHERE g.workspace IS NULL))
  WITH CHECK (workspace IN (SELECT g.workspace FROM workspace_grants g)
              OR EXISTS (SELECT 1 FROM workspace_grants g WHERE g.workspace IS NULL));
CREATE POLICY changes_horizon_granted ON changes_horizon
  USING (workspace IN (SELECT g.workspace FROM workspace_grants g)
         OR EXISTS (SELECT 1 FROM workspace_grants g WHERE g.workspace IS NULL))
  WITH CHECK (workspace IN (SELECT g.workspace FROM workspace_grants g)
              OR EXISTS (SELECT 1 FROM workspace_grants g WHERE g.workspace IS NULL));

ALTER TABLE files ENABLE ROW LEVEL SECURITY;
ALTER TABLE chunks ENABLE ROW LEVEL SECURITY;
ALTER TABLE changes ENABLE ROW LEVEL SECURITY;
ALTER TABLE changes_horizon ENABLE ROW LEVEL SECURITY;

-- Derived rows are written by the owner on behalf of whoever changed `files` (see above).
ALTER FUNCTION record_change() SECURITY DEFINER;
ALTER FUNCTION chunks_insert() SECURITY DEFINER;
ALTER FUNCTION chunks_update() SECURITY DEFINER;
ALTER FUNCTION chunks_delete() SECURITY DEFINER;
ALTER FUNCTION chunks_truncate() SECURITY DEFINER;

-- Roles that could already use `files` without owning it keep seeing every workspace: enabling
-- RLS must not take their data away. (Restrict them later with revoke_workspace(role, NULL).)
INSERT INTO workspace_grants (role_name, workspace)
SELECT r.rolname, NULL
FROM pg_catalog.pg_roles r
WHERE r.rolname NOT LIKE 'pg\_%' AND NOT r.rolsuper AND NOT r.rolbypassrls
  AND NOT pg_catalog.pg_has_role(r.oid, (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = 'files'::regclass), 'USAGE')
  AND pg_catalog.has_table_privilege(r.oid, 'files'::regclass, 'SELECT, INSERT, UPDATE, DELETE');

-- Admin helpers, for the owner (EXECUTE is revoked from everyone else). grant_workspace gives a
-- role what the backend needs -- USAGE on the schema; SELECT, INSERT, UPDATE, DELETE on files;
-- SELECT on chunks, changes, changes_horizon and migrations; never TRUNCATE,
-- which RLS does not filter -- and the workspace (NULL: all). revoke_workspace removes one grant
-- (NULL: the all-workspaces grant) and, with the role's last grant, those privileges too.
CREATE FUNCTION grant_workspace(p_role name, p_workspace text) RETURNS boolean
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  v_schema text := current_schema();
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = p_role) THEN
    RAISE EXCEPTION 'role "%" does not exist', p_role USING ERRCODE = 'undefined_object';
  END IF;
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', v_schema, p_role);
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I.files TO %I', v_schema, p_role);
  EXECUTE format('GRANT SELECT ON %I.chunks, %I.changes, %I.changes_horizon, %I.migrations TO %I',
                 v_schema, v_schema, v_schema, v_schema, p_role);
  INSERT INTO workspace_grants (role_name, workspace) VALUES (p_role, p_workspace) ON CONFLICT DO NOTHING;
  RETURN FOUND;
END
$$;

CREATE FUNCTION revoke_workspace(p_role name, p_workspace text) RETURNS boolean
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  v_schema text := current_schema();
  v_removed boolean;
BEGIN
  DELETE FROM workspace_grants g WHERE g.role_name = p_role AND g.workspace IS NOT DISTINCT FROM p_workspace;
  v_removed := FOUND;
  IF NOT EXISTS (SELECT 1 FROM workspace_grants g WHERE g.role_name = p_role)
     AND EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = p_role) THEN
    EXECUTE format('REVOKE ALL ON %I.files, %I.chunks, %I.changes, %I.changes_horizon, %I.migrations FROM %I',
                   v_schema, v_schema, v_schema, v_schema, v_schema, p_role);
    EXECUTE format('REVOKE USAGE ON SCHEMA %I FROM %I', v_schema, p_role);
  END IF;
  RETURN v_removed;
END
$$;

REVOKE EXECUTE ON FUNCTION grant_workspace(name, text), revoke_workspace(name, text) FROM PUBLIC;

-- Down Migration

-- Without RLS a restricted role's table privileges would reach every workspace: take them back
-- (roles granted every workspace keep theirs).
DO $$
DECLARE
  v_schema text := current_schema();
  v_role name;
BEGIN
  FOR v_role IN
    SELECT DISTINCT g.role_name FROM workspace_grants g
    WHERE NOT EXISTS (SELECT 1 FROM workspace_grants a WHERE a.role_name = g.role_name AND a.workspace IS NULL)
      AND EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = g.role_name)
  LOOP
    EXECUTE format('REVOKE ALL ON %I.files, %I.chunks, %I.changes, %I.changes_horizon, %I.migrations FROM %I',
                   v_schema, v_schema, v_schema, v_schema, v_schema, v_role);
    EXECUTE format('REVOKE USAGE ON SCHEMA %I FROM %I', v_schema, v_role);
  END LOOP;
END
$$;
DROP FUNCTION revoke_workspace(name, text);
DROP FUNCTION grant_workspace(name, text);
ALTER FUNCTION chunks_truncate() SECURITY INVOKER;
ALTER FUNCTION chunks_delete() SECURITY INVOKER;
ALTER FUNCTION chunks_update() SECURITY INVOKER;
ALTER FUNCTION chunks_insert() SECURITY INVOKER;
ALTER FUNCTION record_change() SECURITY INVOKER;
ALTER TABLE changes_horizon DISABLE ROW LEVEL SECURITY;
ALTER TABLE changes DISABLE ROW LEVEL SECURITY;
ALTER TABLE chunks DISABLE ROW LEVEL SECURITY;
ALTER TABLE files DISABLE ROW LEVEL SECURITY;
DROP POLICY changes_horizon_granted ON changes_horizon;
DROP POLICY changes_granted ON changes;
DROP POLICY chunks_granted ON chunks;
DROP POLICY files_granted ON files;
DROP TABLE workspace_grants;
