-- On a partition, before its migrations are reverted (migrate({ cluster, direction: "down" })):
-- what the cluster added outside the migrations (sql/cluster_partition_guard.sql,
-- sql/cluster_partition_check.sql), so the schema is the migrations' alone again.
DO $drop$
DECLARE
  v_schema name := current_setting('deepagents_backends.cluster')::jsonb->>'schema';
BEGIN
  EXECUTE format('DROP FUNCTION IF EXISTS %I.cluster_reads_here(text)', v_schema);
  EXECUTE format('DROP FUNCTION IF EXISTS %I.cluster_here(text, boolean)', v_schema);
  EXECUTE format('DROP TABLE IF EXISTS %I.cluster_map', v_schema);
  IF to_regclass(format('%I.files', v_schema)) IS NOT NULL THEN
    EXECUTE format('ALTER TABLE %I.files DROP CONSTRAINT IF EXISTS files_partition', v_schema);
  END IF;
  IF to_regclass(format('%I.directories', v_schema)) IS NOT NULL THEN
    EXECUTE format('ALTER TABLE %I.directories DROP CONSTRAINT IF EXISTS directories_partition', v_schema);
  END IF;
END
$drop$
