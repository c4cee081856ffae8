-- On a new partition of an interrupted splitCluster() (src/postgres/cluster/split.ts), in the
-- transaction of sql/cluster_scope.sql (the definition: schema): every row of the schema's data
-- tables deleted with triggers off, as it was before the split copied into it.
DO $empty$
DECLARE
  v_schema name := current_setting('deepagents_backends.cluster')::jsonb->>'schema';
  v_table  name;
BEGIN
  PERFORM pg_catalog.set_config('session_replication_role', 'replica', true);
  FOREACH v_table IN ARRAY ARRAY['files', 'directories', 'changes', 'changes_horizon', 'checkpoints', 'file_versions',
                                 'tombstones', 'history_settings', 'workspace_grants', 'chunks', 'blobs']::name[] LOOP
    EXECUTE format('DELETE FROM %I.%I', v_schema, v_table);
  END LOOP;
END
$empty$
