-- On an old partition after splitCluster() switched the front (src/postgres/cluster/split.ts),
-- in the transaction of sql/cluster_scope.sql (the definition: schema, mask, moved_to): the rows
-- of the workspaces that moved to partition moved_to (hashtext(workspace) & mask = moved_to),
-- deleted with triggers off (a move is not a delete in any log), and each moved workspace's log
-- closed with a horizon above every id (a watch still reading it here is told to resync), its
-- grants revoked. A workspace moved if a row of it, a grant or a setting, is here. The
-- tables are split.ts's TABLES whose rows belong to one workspace; the shared ones (chunks,
-- blobs) are swept afterwards.
DO $forget$
DECLARE
  v_def    jsonb := current_setting('deepagents_backends.cluster')::jsonb;
  v_schema name := v_def->>'schema';
  v_mask   integer := (v_def->>'mask')::int;
  v_to     integer := (v_def->>'moved_to')::int;
  v_moved  text[];
  v_table  name;
BEGIN
  PERFORM pg_catalog.set_config('session_replication_role', 'replica', true);
  EXECUTE format($f$SELECT coalesce(array_agg(DISTINCT t.workspace), '{}') FROM (
      SELECT workspace FROM %1$I.files UNION SELECT workspace FROM %1$I.directories
      UNION SELECT workspace FROM %1$I.changes UNION SELECT workspace FROM %1$I.changes_horizon
      UNION SELECT workspace FROM %1$I.checkpoints UNION SELECT workspace FROM %1$I.file_versions
      UNION SELECT workspace FROM %1$I.tombstones UNION SELECT workspace FROM %1$I.workspace_grants
      UNION SELECT scope FROM %1$I.history_settings WHERE scope <> '') t
    WHERE (pg_catalog.hashtext(t.workspace) & %2$s) = %3$s$f$, v_schema, v_mask, v_to)
    INTO v_moved;
  FOREACH v_table IN ARRAY ARRAY['files', 'directories', 'changes', 'changes_horizon', 'checkpoints',
                                 'file_versions', 'tombstones']::name[] LOOP
    EXECUTE format('DELETE FROM %I.%I t WHERE t.workspace = ANY (%L::text[])', v_schema, v_table, v_moved);
  END LOOP;
  -- Their grants (of workspaces with rows or not) through revoke_workspace(), which also takes
  -- back a role's privileges on the schema here once it has no grant left here; but not the
  -- privileges of the schema's owner or a superuser (the split goes on as the owner), whose
  -- grant rows are only deleted.
  EXECUTE format($f$SELECT count(%1$I.revoke_workspace(g.role_name, g.workspace)) FROM %1$I.workspace_grants g
                  WHERE g.workspace = ANY (%2$L::text[])
                    AND NOT EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.rolname = g.role_name
                                    AND (r.rolsuper OR r.oid = (SELECT n.nspowner FROM pg_catalog.pg_namespace n
                                                                WHERE n.nspname = %3$L)))$f$,
                 v_schema, v_moved, v_schema);
  EXECUTE format('DELETE FROM %I.workspace_grants t WHERE t.workspace = ANY (%L::text[])', v_schema, v_moved);
  EXECUTE format('DELETE FROM %I.history_settings t WHERE t.scope = ANY (%L::text[])', v_schema, v_moved);
  EXECUTE format('INSERT INTO %I.changes_horizon (workspace, pruned_to) SELECT w, 9223372036854775807 FROM unnest(%L::text[]) AS w',
                 v_schema, v_moved);
END
$forget$
