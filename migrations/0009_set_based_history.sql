-- Up Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;
--
-- Version 9: file history in statements over sets of rows, where 0008 worked row by row. What is
-- kept, the results and the lock order are 0008's; only the number of statements changes.
--
-- 1. fs_rewind writes runs of paths in one statement each instead of one statement per path.
--    Why (BENCHMARKS.md, "File history"): a rewind of 1,000 changed files took 1.7 s against a
--    target of 1 s. Most of it was per-statement work, not per-row: the chunk triggers are
--    statement triggers with transition tables, and ran 1,000 times with four queries each; one
--    UPDATE of the same 1,000 rows took a third of the time.
--    Lock order: paths are taken in byte order (COLLATE "C"), as every multi-path writer does. A
--    run is a maximal stretch of consecutive paths (in that order) that the rewind deletes, or
--    that it writes back; deletions lock their rows in order first, and a write-back is one
--    INSERT whose rows come in order (ORDER BY). Runs go in order, so the whole rewind locks in
--    path order, as 0008's loop did. A run stops at 100 paths or 64 MiB of content, so the rows
--    it sorts stay within memory.
-- 2. History of the rows an INSERT creates and a DELETE removes is recorded by statement
--    triggers with transition tables (history_inserted, history_deleted): an upload of 500 new
--    files or the delete of a 2,000-file directory is a few statements of history, not a few per
--    file. UPDATEs keep 0008's row trigger (history_record): pairing an old row with its new one
--    needs the row, since raw SQL may rename (change the key of) rows in the same statement.
-- Released: never edit this file; add a new migration instead.

CREATE OR REPLACE FUNCTION fs_rewind(p_workspace text, p_id bigint, p_scope text[], p_dry_run boolean)
RETURNS TABLE (path text, op text, version_before bigint, size_before bigint, restored_version bigint,
               size_after bigint, version bigint, undo_checkpoint bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT SET plan_cache_mode = force_custom_plan AS $$
DECLARE
  v_paths text[];
  v_from bigint[];       -- the version at the checkpoint (NULL: no file then: delete it)
  v_from_size bigint[];
  v_to bigint[];         -- the version now (NULL: no file now)
  v_to_size bigint[];
  v_written_paths text[] := '{}';
  v_written bigint[] := '{}';
  v_done_paths text[];
  v_done bigint[];
  v_undo bigint;
  v_count integer;
  i integer := 1;
  j integer;
  v_delete boolean;
  v_bytes bigint;
BEGIN
  SELECT array_agg(c.path ORDER BY c.path COLLATE "C"), array_agg(c.from_version ORDER BY c.path COLLATE "C"),
         array_agg(c.from_size ORDER BY c.path COLLATE "C"), array_agg(c.to_version ORDER BY c.path COLLATE "C"),
         array_agg(c.to_size ORDER BY c.path COLLATE "C")
    INTO v_paths, v_from, v_from_size, v_to, v_to_size
  FROM history_compare(p_workspace, checkpoint_position(p_workspace, p_id), NULL, p_scope) c;
  v_count := coalesce(cardinality(v_paths), 0);

  IF NOT p_dry_run AND v_count > 0 THEN
    SELECT k.id INTO v_undo FROM fs_checkpoint(p_workspace, format('before rewind to checkpoint %s', p_id), NULL) k;
  END IF;

  WHILE NOT p_dry_run AND i <= v_count LOOP
    -- The run starting at i: same action, at most 100 paths and 64 MiB.
    v_delete := v_from[i] IS NULL;
    v_bytes := coalesce(v_from_size[i], 0);
    j := i;
    WHILE j < v_count AND (v_from[j + 1] IS NULL) = v_delete AND j - i < 99
          AND v_bytes + coalesce(v_from_size[j + 1], 0) <= 67108864 LOOP
      j := j + 1;
      v_bytes := v_bytes + coalesce(v_from_size[j], 0);
    END LOOP;

    IF v_delete THEN
      PERFORM 1 FROM files f WHERE f.workspace = p_workspace AND f.path = ANY (v_paths[i:j])
      ORDER BY f.path COLLATE "C" FOR UPDATE;
      DELETE FROM files f WHERE f.workspace = p_workspace AND f.path = ANY (v_paths[i:j]);
    ELSE
      WITH written AS (
        INSERT INTO files AS f (workspace, path, content, bytes, mime_type, size, line_count)
        SELECT p_workspace, s.path, t.content, t.bytes, s.mime_type, length(s.data), text_line_count(t.content)
        FROM (
          SELECT u.path, u.n, fv.mime_type, fv.is_text, version_data(p_workspace, u.path, u.from_version) AS data
          FROM unnest(v_paths[i:j], v_from[i:j]) WITH ORDINALITY AS u(path, from_version, n)
          JOIN file_versions fv ON fv.workspace = p_workspace AND fv.path = u.path
                               AND fv.version = u.from_version AND NOT fv.deleted
          OFFSET 0 -- a fence: pulled up, version_data would run once per use of `data` (three times)
        ) s
        CROSS JOIN LATERAL (SELECT CASE WHEN s.is_text THEN convert_from(s.data, 'UTF8') END AS content,
                                   CASE WHEN NOT s.is_text THEN s.data END AS bytes) t
        ORDER BY s.n -- the rows, and so their locks, in path order
        ON CONFLICT ON CONSTRAINT files_pkey DO UPDATE -- (workspace, path): both are OUT columns here
          SET content = excluded.content, bytes = excluded.bytes, mime_type = excluded.mime_type,
              size = excluded.size, line_count = excluded.line_count,
              version = f.version + 1, modified_at = clock_timestamp()
        RETURNING f.path, f.version
      )
      SELECT array_agg(w.path), array_agg(w.version) INTO v_done_paths, v_done FROM written w;
      v_written_paths := v_written_paths || v_done_paths;
      v_written := v_written || v_done;
    END IF;
    i := j + 1;
  END LOOP;

  RETURN QUERY
    SELECT c.path,
           CASE WHEN c.to_version IS NULL THEN 'created' WHEN c.from_version IS NULL THEN 'deleted' ELSE 'updated' END,
           c.to_version, c.to_size, c.from_version, c.from_size, w.version, v_undo
    FROM unnest(v_paths, v_from, v_from_size, v_to, v_to_size) WITH ORDINALITY
         AS c(path, from_version, from_size, to_version, to_size, n)
    LEFT JOIN unnest(v_written_paths, v_written) AS w(path, version) ON w.path = c.path
    ORDER BY c.n;
END
$$;

-- History of the files an INSERT statement created: each new file's first version, as 0008's
-- history_capture records it (tag and time as the statement's).
CREATE FUNCTION history_inserted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
  INSERT INTO file_versions AS v (workspace, path, version, op, change_id, at, size, mime_type, is_text, hash, tag)
  SELECT n.workspace, n.path, n.version, 'create', NULL, n.modified_at, n.size, n.mime_type, n.content IS NOT NULL,
         sha256(file_body(n.content, n.bytes)), nullif(current_setting('deepagents_backends.tag', true), '')
  FROM new_rows n
  WHERE n.workspace IN (SELECT w.workspace FROM (SELECT DISTINCT r.workspace FROM new_rows r) w
                        WHERE history_enabled(w.workspace))
  ORDER BY n.workspace, n.path COLLATE "C" -- version rows are locked in path order too
  ON CONFLICT (workspace, path, version, deleted) DO UPDATE
    SET op = excluded.op, change_id = excluded.change_id, at = excluded.at, size = excluded.size,
        mime_type = excluded.mime_type, is_text = excluded.is_text, hash = excluded.hash, tag = excluded.tag,
        blob = NULL, delta_prefix = NULL, delta_suffix = NULL, delta_middle = NULL, depth = 0;
  RETURN NULL;
END
$$;

-- History of the files a DELETE statement removed, as 0008's history_retire(o, NULL) and its
-- delete row: each deleted version kept whole (a blob), then a deletion entry.
CREATE FUNCTION history_deleted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
  v_tag text := nullif(current_setting('deepagents_backends.tag', true), '');
  v_on text[];
BEGIN
  SELECT array_agg(w.workspace) INTO v_on
  FROM (SELECT DISTINCT o.workspace FROM old_rows o) w WHERE history_enabled(w.workspace);
  IF v_on IS NULL THEN
    RETURN NULL;
  END IF;
  -- A version written before history was kept for it: recorded now, as there all along.
  INSERT INTO file_versions (workspace, path, version, op, change_id, at, size, mime_type, is_text, hash, tag)
  SELECT o.workspace, o.path, o.version, CASE WHEN o.version = 1 THEN 'create' ELSE 'update' END, 0,
         o.modified_at, o.size, o.mime_type, o.content IS NOT NULL, sha256(file_body(o.content, o.bytes)), v_tag
  FROM old_rows o
  WHERE o.workspace = ANY (v_on)
    AND NOT EXISTS (SELECT 1 FROM file_versions v WHERE v.workspace = o.workspace AND v.path = o.path
                                                     AND v.version = o.version AND NOT v.deleted)
  ORDER BY o.workspace, o.path COLLATE "C"
  ON CONFLICT (workspace, path, version, deleted) DO NOTHING;
  -- The bytes of each version not kept yet (the live one, normally), stored once by SHA-256 and
  -- in hash order (the lock order of blobs); an existing blob is touched, which locks it against
  -- prune_history's collection, as blob_keep does. (The foreign key is checked at the end of the
  -- statement, when the blobs inserted beside the UPDATE are there.)
  WITH kept AS MATERIALIZED (
    SELECT o.workspace, o.path, o.version, sha256(k.body) AS hash, k.body
    FROM old_rows o
    JOIN file_versions v ON v.workspace = o.workspace AND v.path = o.path AND v.version = o.version AND NOT v.deleted
    CROSS JOIN LATERAL (SELECT file_body(o.content, o.bytes) AS body) k
    WHERE o.workspace = ANY (v_on) AND v.blob IS NULL AND v.delta_middle IS NULL
  ), stored AS (
    INSERT INTO blobs AS b (hash, data)
    SELECT DISTINCT ON (k.hash) k.hash, k.body FROM kept k ORDER BY k.hash
    ON CONFLICT (hash) DO UPDATE SET hash = b.hash
  )
  UPDATE file_versions v SET blob = k.hash, hash = k.hash, depth = 0
  FROM kept k
  WHERE v.workspace = k.workspace AND v.path = k.path AND v.version = k.version AND NOT v.deleted;
  INSERT INTO file_versions (workspace, path, version, deleted, op, size, tag)
  SELECT o.workspace, o.path, o.version, true, 'delete', o.size, v_tag
  FROM old_rows o
  WHERE o.workspace = ANY (v_on)
  ORDER BY o.workspace, o.path COLLATE "C"
  ON CONFLICT (workspace, path, version, deleted) DO UPDATE
    SET change_id = NULL, at = excluded.at, size = excluded.size, tag = excluded.tag;
  RETURN NULL;
END
$$;
-- Only the triggers run them (as the owner): attached to a table of its own, a role would run
-- them as the owner on rows it made up.
REVOKE EXECUTE ON FUNCTION history_inserted(), history_deleted() FROM PUBLIC;

DROP TRIGGER files_history ON files;
CREATE TRIGGER files_history AFTER UPDATE ON files
FOR EACH ROW EXECUTE FUNCTION history_record();
CREATE TRIGGER files_history_inserted AFTER INSERT ON files
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION history_inserted();
CREATE TRIGGER files_history_deleted AFTER DELETE ON files
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION history_deleted();

-- Down Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;

-- 0008's row trigger for every event.
DROP TRIGGER files_history_inserted ON files;
DROP TRIGGER files_history_deleted ON files;
DROP TRIGGER files_history ON files;
CREATE TRIGGER files_history AFTER INSERT OR UPDATE OR DELETE ON files
FOR EACH ROW EXECUTE FUNCTION history_record();
DROP FUNCTION history_inserted();
DROP FUNCTION history_deleted();

-- 0008's fs_rewind: one statement per path, in path order.
CREATE OR REPLACE FUNCTION fs_rewind(p_workspace text, p_id bigint, p_scope text[], p_dry_run boolean)
RETURNS TABLE (path text, op text, version_before bigint, size_before bigint, restored_version bigint,
               size_after bigint, version bigint, undo_checkpoint bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT SET plan_cache_mode = force_custom_plan AS $$
DECLARE
  d record;
  v file_versions;
  v_data bytea;
  v_undo bigint;
  v_written bigint;
BEGIN
  FOR d IN
    SELECT * FROM history_compare(p_workspace, checkpoint_position(p_workspace, p_id), NULL, p_scope) c
    ORDER BY c.path COLLATE "C" -- the global lock order: by path, byte-wise
  LOOP
    IF NOT p_dry_run AND v_undo IS NULL THEN
      SELECT k.id INTO v_undo FROM fs_checkpoint(p_workspace, format('before rewind to checkpoint %s', p_id), NULL) k;
    END IF;
    v_written := NULL;
    IF d.from_version IS NULL THEN
      IF NOT p_dry_run THEN
        DELETE FROM files f WHERE f.workspace = p_workspace AND f.path = d.path;
      END IF;
    ELSE
      SELECT * INTO v FROM file_versions fv
      WHERE fv.workspace = p_workspace AND fv.path = d.path AND fv.version = d.from_version AND NOT fv.deleted;
      IF NOT p_dry_run THEN
        v_data := version_data(p_workspace, d.path, d.from_version);
        INSERT INTO files AS f (workspace, path, content, bytes, mime_type, size, line_count)
        SELECT p_workspace, d.path, t.content, t.bytes, v.mime_type, length(v_data), text_line_count(t.content)
        FROM (SELECT CASE WHEN v.is_text THEN convert_from(v_data, 'UTF8') END AS content,
                     CASE WHEN NOT v.is_text THEN v_data END AS bytes) t
        ON CONFLICT ON CONSTRAINT files_pkey DO UPDATE -- (workspace, path): both are OUT columns here
          SET content = excluded.content, bytes = excluded.bytes, mime_type = excluded.mime_type,
              size = excluded.size, line_count = excluded.line_count,
              version = f.version + 1, modified_at = clock_timestamp()
        RETURNING f.version INTO v_written;
      END IF;
    END IF;
    path := d.path;
    op := CASE WHEN d.to_version IS NULL THEN 'created' WHEN d.from_version IS NULL THEN 'deleted' ELSE 'updated' END;
    version_before := d.to_version;
    size_before := d.to_size;
    restored_version := d.from_version;
    size_after := d.from_size;
    version := v_written;
    undo_checkpoint := v_undo;
    RETURN NEXT;
  END LOOP;
END
$$;
