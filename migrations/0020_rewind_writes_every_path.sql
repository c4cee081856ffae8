-- Up Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;
--
-- Version 20: a rewind writes back every path it reports, or fails.
--
-- Why: 0009's fs_rewind writes a run of paths with one INSERT ... SELECT that joins each path to
-- the version row it restores. A row that went between the comparison (which found it) and that
-- statement (a prune that committed in between, after the checkpoint was deleted) dropped the
-- path from the join: the rewind left it as it was and still listed it as rewound. 0008, one path
-- at a time, failed there. Now the run's written paths are counted against its paths, and a
-- missing one raises DA019 (DETAIL: the path; HINT: the version), which undoes the whole rewind;
-- and a rewind takes the prune lock (shared) before it compares, so a prune waits for it, and a
-- lock of its workspace, so two rewinds of one workspace never compare at once.
-- Released: never edit this file; add a new migration instead.

CREATE OR REPLACE FUNCTION fs_rewind(p_workspace text, p_id bigint, p_scope text[], p_dry_run boolean)
 RETURNS TABLE(path text, op text, version_before bigint, size_before bigint, restored_version bigint, size_after bigint, version bigint, undo_checkpoint bigint)
 LANGUAGE plpgsql
 SET search_path FROM CURRENT
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
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
  v_missing record;
BEGIN
  -- No prune while the rewind runs (prune_history and set_history take this lock exclusively):
  -- the versions it compared stay until it has written them back. (The check after each run
  -- below still stands, against anything else that removes one.)
  -- And one rewind of a workspace at a time, each comparing after the last one committed: two
  -- that compared at once would each write back only what differed in its own snapshot, and
  -- together leave a mix of both states (the prune lock above released rewinds queued behind a
  -- prune together, and CI saw the mix). Taken first: a rewind waiting here holds nothing.
  IF NOT p_dry_run THEN
    PERFORM pg_advisory_xact_lock(hashtext('deepagents-backends:rewind:' || current_schema() || E'\n' || p_workspace)::bigint);
    PERFORM pg_advisory_xact_lock_shared(hashtext('deepagents-backends:prune-history:' || current_schema()));
  END IF;
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
      -- Every path of the run written back: a version the comparison found but the write did not
      -- (pruned after its checkpoint was deleted, by a prune that committed in between) is an
      -- error, which undoes the rewind, never a path left as it is and reported as rewound.
      SELECT u.path, u.from_version INTO v_missing
      FROM unnest(v_paths[i:j], v_from[i:j]) AS u(path, from_version)
      WHERE u.path <> ALL (coalesce(v_done_paths, '{}'))
      LIMIT 1;
      IF FOUND THEN
        RAISE EXCEPTION 'cannot rewind "%": version % is no longer kept', v_missing.path, v_missing.from_version
          USING ERRCODE = 'DA019', DETAIL = v_missing.path, HINT = v_missing.from_version::text;
      END IF;
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
$function$;


-- Down Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;

CREATE OR REPLACE FUNCTION fs_rewind(p_workspace text, p_id bigint, p_scope text[], p_dry_run boolean)
 RETURNS TABLE(path text, op text, version_before bigint, size_before bigint, restored_version bigint, size_after bigint, version bigint, undo_checkpoint bigint)
 LANGUAGE plpgsql
 SET search_path FROM CURRENT
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
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
$function$;

