-- On a new partition of an interrupted splitCluster() (src/postgres/cluster/split.ts), in the
-- transaction of sql/cluster_scope.sql (the definition: schema): every row of the schema's data
-- tables deleted with triggers off, and the privileges its grants gave revoked: as it was before
-- the split copied into it.
DO $empty$
DECLARE
  v_schema name := current_setting('deepagents_backends.cluster')::jsonb->>'schema';
  v_table  name;
BEGIN
  PERFORM pg_catalog.set_config('session_replication_role', 'replica', true);
  -- The grants the split made here, with the privileges they gave (as cluster_forget.sql
  -- revokes them: not the owner's or a superuser's).
  EXECUTE format($f$SELECT count(%1$I.revoke_workspace(g.role_name, g.workspace)) FROM %1$I.workspace_grants g
                  WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.rolname = g.role_name
                                    AND (r.rolsuper OR r.oid = (SELECT n.nspowner FROM pg_catalog.pg_namespace n
                                                                WHERE n.nspname = %2$L)))$f$,
                 v_schema, v_schema);
  FOREACH v_table IN ARRAY ARRAY['files', 'directories', 'changes', 'changes_horizon', 'checkpoints', 'file_versions',
                                 'tombstones', 'history_settings', 'workspace_grants', 'chunks', 'blobs']::name[] LOOP
    EXECUTE format('DELETE FROM %I.%I', v_schema, v_table);
  END LOOP;
END
$empty$
