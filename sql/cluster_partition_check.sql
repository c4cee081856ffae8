-- On a partition of a cluster, in the transaction of sql/cluster_scope.sql (the definition:
-- schema, mask, index, step): only the workspaces PL/Proxy maps to this partition may have rows
-- in files and directories, CHECK (hashtext(workspace) & mask = index). A write routed by a front
-- with an older map (one in flight while splitCluster() switched the front), or sent straight to
-- the wrong partition, then fails with check_violation instead of landing where no one reads
-- it. Step "add" replaces the constraints NOT VALID (a short ACCESS EXCLUSIVE lock, no scan);
-- step "validate" checks the rows already there (no lock that stops reads or writes).
DO $check$
DECLARE
  v_def    jsonb := current_setting('deepagents_backends.cluster')::jsonb;
  v_schema name := v_def->>'schema';
  v_table  name;
  v_check  text := format('CHECK ((pg_catalog.hashtext(workspace) & %s) = %s)', (v_def->>'mask')::int, (v_def->>'index')::int);
  v_now    record;
BEGIN
  -- (ADD waits for every transaction using the table, and everything after it waits for it: give
  -- up after a while rather than stall the partition behind a long stream)
  PERFORM pg_catalog.set_config('lock_timeout', '10s', true);
  FOREACH v_table IN ARRAY ARRAY['files', 'directories']::name[] LOOP
    SELECT c.convalidated AS valid, pg_catalog.pg_get_constraintdef(c.oid) AS def INTO v_now
    FROM pg_catalog.pg_constraint c
    WHERE c.conrelid = format('%I.%I', v_schema, v_table)::regclass AND c.conname = v_table || '_partition';
    IF v_def->>'step' = 'validate' THEN
      IF NOT v_now.valid THEN
        EXECUTE format('ALTER TABLE %I.%I VALIDATE CONSTRAINT %I', v_schema, v_table, v_table || '_partition');
      END IF;
    ELSIF v_now.def IS DISTINCT FROM v_check AND v_now.def IS DISTINCT FROM v_check || ' NOT VALID' THEN
      EXECUTE format('ALTER TABLE %I.%I DROP CONSTRAINT IF EXISTS %I', v_schema, v_table, v_table || '_partition');
      EXECUTE format('ALTER TABLE %I.%I ADD CONSTRAINT %I %s NOT VALID', v_schema, v_table, v_table || '_partition', v_check);
    END IF;
  END LOOP;
END
$check$
