-- On a partition of a cluster, in the transaction of sql/cluster_scope.sql (the definition:
-- schema, write_mask, write_index, read_mask, read_index): which workspaces this partition
-- answers for. Every call the front routes here passes its workspace through cluster_here()
-- first (sql/cluster_install.sql), which refuses (DA022, "it moved: try again") a workspace that
-- PL/Proxy's map (hashtext(workspace) & mask = index) does not put here: for a write by the
-- write map, for a read by the read map. splitCluster() changes the maps as it moves workspaces
-- (src/postgres/cluster/split.ts): a moving workspace's writes are refused from the fence on,
-- its reads once its rows are gone. Each call reads cluster_map, so it holds that table's ACCESS
-- SHARE lock until it commits, and a change of the maps takes ACCESS EXCLUSIVE (which a role that
-- can only read the table cannot take): a call in flight when the maps change finishes first, and
-- every later call sees the new maps. The change gives up after lock_timeout rather than keep the
-- calls queued behind it waiting on a transaction that holds the table open (the caller retries).
DO $guard$
DECLARE
  v_def    jsonb := current_setting('deepagents_backends.cluster')::jsonb;
  v_schema name := v_def->>'schema';
BEGIN
  PERFORM pg_catalog.set_config('lock_timeout', '2s', true);
  EXECUTE format($f$CREATE TABLE IF NOT EXISTS %I.cluster_map (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    write_mask integer NOT NULL, write_index integer NOT NULL,
    read_mask integer NOT NULL, read_index integer NOT NULL)$f$, v_schema);
  EXECUTE format('GRANT SELECT ON %I.cluster_map TO PUBLIC', v_schema);
  EXECUTE format('LOCK TABLE %I.cluster_map IN ACCESS EXCLUSIVE MODE', v_schema);
  EXECUTE format($f$INSERT INTO %I.cluster_map AS m (write_mask, write_index, read_mask, read_index)
    VALUES (%s, %s, %s, %s)
    ON CONFLICT (only_row) DO UPDATE SET write_mask = excluded.write_mask, write_index = excluded.write_index,
                                         read_mask = excluded.read_mask, read_index = excluded.read_index$f$,
    v_schema, (v_def->>'write_mask')::int, (v_def->>'write_index')::int,
    (v_def->>'read_mask')::int, (v_def->>'read_index')::int);
  EXECUTE format($f$CREATE OR REPLACE FUNCTION %1$I.cluster_here(p_workspace text, p_write boolean) RETURNS text
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $b$
    DECLARE
      v_mask integer;
      v_index integer;
    BEGIN
      -- (reading the map holds its ACCESS SHARE lock until this call commits; a CASE inside IF
      -- would end the condition at its first THEN)
      SELECT CASE WHEN p_write THEN m.write_mask ELSE m.read_mask END,
             CASE WHEN p_write THEN m.write_index ELSE m.read_index END
      INTO v_mask, v_index FROM %1$I.cluster_map m;
      IF (hashtext(p_workspace) & v_mask) <> v_index THEN
        RAISE EXCEPTION USING ERRCODE = 'DA022',
          MESSAGE = format('workspace %%s is moving to another partition: try again', p_workspace);
      END IF;
      RETURN p_workspace;
    END $b$$f$, v_schema);
  -- For a session opened on the partition directly (a streamed search, files.ts): the read map's
  -- answer once the session's snapshot is taken, without the lock on the map for the session's
  -- life (a stream may stay open for minutes, and the split's change of the map would wait for
  -- it): the check runs in a block always rolled back (DA099, caught here), which releases the
  -- lock. DA022 as cluster_here's, raised through.
  EXECUTE format($f$CREATE OR REPLACE FUNCTION %1$I.cluster_reads_here(p_workspace text) RETURNS boolean
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $b$
    BEGIN
      BEGIN
        PERFORM %1$I.cluster_here(p_workspace, false);
        RAISE EXCEPTION USING ERRCODE = 'DA099', MESSAGE = 'read here: rolled back to release the map';
      EXCEPTION WHEN SQLSTATE 'DA099' THEN
        RETURN true;
      END;
    END $b$$f$, v_schema);
END
$guard$
