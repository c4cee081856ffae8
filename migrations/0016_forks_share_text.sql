-- Up Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;
--
-- Version 16: a forked file shares its text, not only its chunks; every file row carries the
-- SHA-256 of its body.
--
-- Why (BENCHMARKS.md, "Fork"): a fork copied each file row with its compressed text (files.content,
-- TOAST): 0.4-0.7x the corpus of extra storage where issue 13 asks for <= 5%, and the time to
-- copy it. The claim check compared each copied text with its source's (~1 s for 100 MB), and
-- history hashed every copied body again (SHA-256, another 0.3-0.8 s).
--
-- 1. files.hash: the SHA-256 of the body (UTF-8 text or bytes), set by chunks_assign on every
--    write (never taken from the writer, except as below). History records it instead of hashing
--    the body again; files_version_rises compares it instead of the texts.
-- 2. A text file's row may leave content NULL: its text is then its chunk set's (the chunks
--    joined by line breaks, chunk_set_text; text_chunks cuts between lines, so that is exact).
--    fs_fork copies text files that way: a row, no text, no chunk. Readers of whole texts
--    (fs_download, fs_read_raw, fs_edit, version_data, history) go through file_text().
--    Constraint files_body: a text file has a set (content optional), a binary file has bytes.
-- 3. Who may name a set: an INSERT that leaves content NULL names the set it shares, and the
--    hash, size and line count of its text; chunks_claim (now AFTER INSERT, per statement, still
--    as the writer) requires a file outside the statement that the writer can read with that set
--    and those values, and locks one such file per set (FOR SHARE) until the writer commits, so
--    no writer of it re-cuts the set in place meanwhile. An INSERT that gives content always gets
--    a set of its own (0010 let it name a set with the same text; the fork no longer needs that).
--    An UPDATE cannot repoint a row; one that sets content NULL keeps its set and its hash (the
--    text is unchanged) and drops its inline copy.
-- 4. The deletion of unused chunk sets runs after the history of a DELETE has kept the deleted
--    text (PostgreSQL fires a table's triggers in name order): files_chunks_delete is renamed
--    files_zy_chunks_delete.
-- Released: never edit this file; add a new migration instead.

ALTER TABLE files ADD COLUMN hash bytea;
ALTER TABLE files DISABLE TRIGGER USER; -- hashing the bodies changes no file: no version, change or history
UPDATE files SET hash = sha256(file_body(content, bytes));
ALTER TABLE files ENABLE TRIGGER USER;
ALTER TABLE files ALTER COLUMN hash SET NOT NULL;
ALTER TABLE files DROP CONSTRAINT files_chunk_set, DROP CONSTRAINT files_one_body,
  ADD CONSTRAINT files_body CHECK ((bytes IS NULL) <> (chunk_set IS NULL) AND (content IS NULL OR chunk_set IS NOT NULL));

-- The text of a chunk set (as the caller: chunks' row-level security applies).
CREATE FUNCTION chunk_set_text(p_set bigint) RETURNS text
LANGUAGE sql STABLE SET search_path FROM CURRENT SET enable_seqscan = off SET jit = off AS $$
  SELECT string_agg(c.content, E'\n' ORDER BY c.first_line) FROM chunks c WHERE c.chunk_set = p_set
$$;

-- A file row's text: its content, or its set's when it has none inline (NULL for a binary file).
CREATE FUNCTION file_text(p_content text, p_set bigint) RETURNS text
LANGUAGE sql STABLE SET search_path FROM CURRENT
RETURN CASE WHEN p_content IS NOT NULL OR p_set IS NULL THEN p_content ELSE chunk_set_text(p_set) END;

-- BEFORE INSERT OR UPDATE: the set a written row's text lives in, and the hash of its body.
CREATE OR REPLACE FUNCTION chunks_assign() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT SET enable_seqscan = off SET jit = off AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.content IS NOT NULL THEN
      NEW.chunk_set := nextval('chunk_sets');
      NEW.hash := sha256(convert_to(NEW.content, 'UTF8'));
    ELSIF NEW.bytes IS NOT NULL THEN
      NEW.chunk_set := NULL;
      NEW.hash := sha256(NEW.bytes);
    END IF; -- neither: the text of the set it names, with that text's hash (chunks_claim checks)
    RETURN NEW;
  END IF;
  IF NEW.content IS NULL AND NEW.bytes IS NULL THEN
    -- Its text stays its set's (a fork's copy, or a row dropping its inline copy): the same body.
    NEW.chunk_set := OLD.chunk_set;
    NEW.hash := OLD.hash;
  ELSIF NEW.content IS NULL THEN
    NEW.chunk_set := NULL;
    NEW.hash := CASE WHEN NEW.bytes IS NOT DISTINCT FROM OLD.bytes THEN OLD.hash ELSE sha256(NEW.bytes) END;
  ELSIF NEW.content IS NOT DISTINCT FROM OLD.content THEN
    NEW.chunk_set := OLD.chunk_set;
    NEW.hash := OLD.hash;
  ELSE
    NEW.hash := sha256(convert_to(NEW.content, 'UTF8'));
    IF OLD.chunk_set IS NOT NULL AND NEW.hash = OLD.hash THEN
      NEW.chunk_set := OLD.chunk_set; -- the text its set has already (a shared row given it inline)
    ELSIF OLD.chunk_set IS NOT NULL AND current_setting('transaction_isolation') = 'read committed'
          AND NOT EXISTS (SELECT 1 FROM files f WHERE f.chunk_set = OLD.chunk_set
                          AND (f.workspace, f.path) IS DISTINCT FROM (OLD.workspace, OLD.path)) THEN
      NEW.chunk_set := OLD.chunk_set; -- its own set: re-cut in place, unchanged chunks kept
    ELSE
      -- Shared (a fork's), text where there was none, or a snapshot older than this statement
      -- (one that might not see a fork's copies): a new set.
      NEW.chunk_set := nextval('chunk_sets');
    END IF;
  END IF;
  RETURN NEW;
END
$$;

-- AFTER INSERT, per statement, as the writer: every row that names a set (content NULL) is the
-- text of a file outside the statement that the writer can read, with the same hash, size and
-- line count; one such file per set is locked until the writer commits (see 3 above).
DROP TRIGGER files_chunks_claim ON files;
CREATE OR REPLACE FUNCTION chunks_claim() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT SET enable_seqscan = off SET jit = off AS $$
DECLARE
  v_sets bigint[];
  v_workspaces text[];
  v_paths text[] COLLATE "C";
  v_hashes bytea[];
  v_missing bigint;
  v_locked integer;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.content IS NULL AND n.chunk_set IS NOT NULL) THEN
    RETURN NULL;
  END IF;
  -- One readable witness per named (set, hash, size, line count): the first file of the set
  -- outside this statement (LIMIT 1: a set shared by many forks is not read whole); the first key
  -- without one. (NOT IN: a hashed subplan over the statement's rows, built once. As NOT EXISTS,
  -- the planner's estimate of one row made it a loop over them: 15 s for a 10,000-file fork.)
  SELECT array_agg(w.chunk_set), array_agg(w.workspace), array_agg(w.path), array_agg(w.hash),
         min(w.chunk_set) FILTER (WHERE w.path IS NULL)
    INTO v_sets, v_workspaces, v_paths, v_hashes, v_missing
  FROM (
    SELECT k.chunk_set, k.hash, f.workspace, f.path
    FROM (SELECT DISTINCT n.chunk_set, n.hash, n.size, n.line_count FROM new_rows n
          WHERE n.content IS NULL AND n.chunk_set IS NOT NULL) k
    LEFT JOIN LATERAL (
      SELECT f.workspace, f.path FROM files f
      WHERE f.chunk_set = k.chunk_set AND f.hash = k.hash AND f.size = k.size AND f.line_count = k.line_count
        AND (f.workspace, f.path) NOT IN (SELECT m.workspace, m.path FROM new_rows m)
      LIMIT 1
    ) f ON true
  ) w;
  IF v_missing IS NULL THEN
    -- Locked in path order (every writer's order); a witness changed meanwhile no longer matches.
    SELECT count(*) INTO v_locked FROM (
      SELECT 1 FROM files f
      JOIN unnest(v_workspaces, v_paths, v_sets, v_hashes) AS w(workspace, path, chunk_set, hash)
        ON f.workspace = w.workspace AND f.path = w.path
      WHERE f.chunk_set = w.chunk_set AND f.hash = w.hash
      ORDER BY f.workspace, f.path
      FOR SHARE OF f
    ) l;
    IF v_locked = cardinality(v_sets) THEN
      RETURN NULL;
    END IF;
    v_missing := v_sets[1];
  END IF;
  RAISE EXCEPTION 'chunk set % is not the text of a file this role can read', v_missing
    USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER files_chunks_claim AFTER INSERT ON files
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION chunks_claim();

ALTER TRIGGER files_chunks_delete ON files RENAME TO files_zy_chunks_delete;

CREATE OR REPLACE FUNCTION files_version_rises() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT SET enable_seqscan = off SET jit = off AS $$
BEGIN
  IF (OLD.workspace, OLD.path) IS DISTINCT FROM (NEW.workspace, NEW.path) THEN
    RETURN NEW; -- a rename: files_renamed_version numbers the new name
  END IF;
  -- (chunks_assign, which fires first, has set NEW.hash from the new body)
  IF (NEW.hash, NEW.bytes IS NULL, NEW.mime_type) IS DISTINCT FROM (OLD.hash, OLD.bytes IS NULL, OLD.mime_type) THEN
    NEW.version := greatest(NEW.version, OLD.version + 1);
  ELSE
    NEW.version := greatest(NEW.version, OLD.version);
  END IF;
  RETURN NEW;
END
$$;

-- Whole texts through file_text(); history records files.hash.

CREATE OR REPLACE FUNCTION history_capture(r files, p_op text, p_change_id bigint, p_at timestamp with time zone)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
BEGIN
  INSERT INTO file_versions AS v (workspace, path, version, op, change_id, at, size, mime_type, is_text, hash, tag)
  VALUES (r.workspace, r.path, r.version, p_op, p_change_id, p_at, r.size, r.mime_type, r.chunk_set IS NOT NULL,
          r.hash, nullif(current_setting('deepagents_backends.tag', true), ''))
  ON CONFLICT (workspace, path, version, deleted) DO UPDATE
    SET op = excluded.op, change_id = excluded.change_id, at = excluded.at, size = excluded.size,
        mime_type = excluded.mime_type, is_text = excluded.is_text, hash = excluded.hash, tag = excluded.tag,
        blob = NULL, delta_prefix = NULL, delta_suffix = NULL, delta_middle = NULL, depth = 0;
END
$function$;

CREATE OR REPLACE FUNCTION history_inserted()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
BEGIN
  INSERT INTO file_versions AS v (workspace, path, version, op, change_id, at, size, mime_type, is_text, hash, tag)
  SELECT n.workspace, n.path, n.version, 'create', NULL, n.modified_at, n.size, n.mime_type, n.chunk_set IS NOT NULL,
         n.hash, nullif(current_setting('deepagents_backends.tag', true), '')
  FROM new_rows n
  -- (OFFSET 0: pushed below the DISTINCT, history_enabled ran once per row, not per workspace)
  WHERE n.workspace IN (SELECT w.workspace FROM (SELECT DISTINCT r.workspace FROM new_rows r OFFSET 0) w
                        WHERE history_enabled(w.workspace))
  ORDER BY n.workspace, n.path COLLATE "C" -- version rows are locked in path order too
  ON CONFLICT (workspace, path, version, deleted) DO UPDATE
    SET op = excluded.op, change_id = excluded.change_id, at = excluded.at, size = excluded.size,
        mime_type = excluded.mime_type, is_text = excluded.is_text, hash = excluded.hash, tag = excluded.tag,
        blob = NULL, delta_prefix = NULL, delta_suffix = NULL, delta_middle = NULL, depth = 0;
  RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION history_deleted()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
DECLARE
  v_tag text := nullif(current_setting('deepagents_backends.tag', true), '');
  v_on text[];
BEGIN
  SELECT array_agg(w.workspace) INTO v_on
  FROM (SELECT DISTINCT o.workspace FROM old_rows o OFFSET 0) w WHERE history_enabled(w.workspace); -- (as above)
  IF v_on IS NULL THEN
    RETURN NULL;
  END IF;
  -- A version written before history was kept for it: recorded now, as there all along.
  INSERT INTO file_versions (workspace, path, version, op, change_id, at, size, mime_type, is_text, hash, tag)
  SELECT o.workspace, o.path, o.version, CASE WHEN o.version = 1 THEN 'create' ELSE 'update' END, 0,
         o.modified_at, o.size, o.mime_type, o.chunk_set IS NOT NULL, o.hash, v_tag
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
    SELECT o.workspace, o.path, o.version, o.hash, k.body
    FROM old_rows o
    JOIN file_versions v ON v.workspace = o.workspace AND v.path = o.path AND v.version = o.version AND NOT v.deleted
    CROSS JOIN LATERAL (SELECT file_body(file_text(o.content, o.chunk_set), o.bytes) AS body) k
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
$function$;

CREATE OR REPLACE FUNCTION history_retire(o files, n files)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
DECLARE
  v_row file_versions;
  v_old bytea := file_body(file_text(o.content, o.chunk_set), o.bytes);
  v_new bytea;
  v_depth integer;
  v_prefix integer;
  v_suffix integer;
  v_hash bytea;
BEGIN
  SELECT * INTO v_row FROM file_versions v
  WHERE v.workspace = o.workspace AND v.path = o.path AND v.version = o.version AND NOT v.deleted;
  IF NOT FOUND THEN
    -- Written before history was kept for it: record it now, as having been there all along.
    PERFORM history_capture(o, CASE WHEN o.version = 1 THEN 'create' ELSE 'update' END, 0, o.modified_at);
    SELECT * INTO v_row FROM file_versions v
    WHERE v.workspace = o.workspace AND v.path = o.path AND v.version = o.version AND NOT v.deleted;
  ELSIF v_row.blob IS NOT NULL OR v_row.delta_middle IS NOT NULL THEN
    RETURN; -- already kept
  END IF;

  -- Delta or whole is decided from this path's own versions only: were it decided by whether a
  -- blob of these bytes already exists (anywhere), a tenant could learn from its own rows that
  -- another workspace holds some content. (n.path, not n: a row IS NOT NULL only when every
  -- column is, and a file has content or bytes.)
  IF n.path IS NOT NULL THEN
    v_new := file_body(file_text(n.content, n.chunk_set), n.bytes);
    -- The deltas just below: those of the previous kept version (raw SQL may leave gaps).
    v_depth := coalesce((SELECT CASE WHEN p.delta_middle IS NOT NULL THEN p.depth END FROM file_versions p
                         WHERE p.workspace = o.workspace AND p.path = o.path AND p.version < o.version
                           AND NOT p.deleted
                         ORDER BY p.version DESC LIMIT 1), 0) + 1;
    IF v_depth <= history_max_depth(greatest(length(v_old), length(v_new))) THEN
      v_prefix := bytes_common_prefix(v_old, v_new);
      v_suffix := bytes_common_suffix(v_old, v_new, least(length(v_old), length(v_new)) - v_prefix);
      IF length(v_old) - v_prefix - v_suffix <= length(v_old) / 2 + 64 THEN
        UPDATE file_versions v
           SET delta_prefix = v_prefix, delta_suffix = v_suffix,
               delta_middle = substr(v_old, v_prefix + 1, length(v_old) - v_prefix - v_suffix), depth = v_depth
         WHERE v.workspace = o.workspace AND v.path = o.path AND v.version = o.version AND NOT v.deleted;
        RETURN;
      END IF;
    END IF;
  END IF;

  v_hash := blob_keep(v_old);
  UPDATE file_versions v SET blob = v_hash, hash = v_hash, depth = 0
   WHERE v.workspace = o.workspace AND v.path = o.path AND v.version = o.version AND NOT v.deleted;
END
$function$;

CREATE OR REPLACE FUNCTION version_data(p_workspace text, p_path text, p_version bigint)
 RETURNS bytea
 LANGUAGE plpgsql
 STABLE
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
DECLARE
  v_end file_versions;
  v_data bytea;
  v_step record;
BEGIN
  SELECT * INTO v_end FROM file_versions v
  WHERE v.workspace = p_workspace AND v.path = p_path AND v.version >= p_version AND NOT v.deleted
    AND v.delta_middle IS NULL
  ORDER BY v.version LIMIT 1;
  IF NOT FOUND OR NOT EXISTS (SELECT 1 FROM file_versions v WHERE v.workspace = p_workspace
                              AND v.path = p_path AND v.version = p_version AND NOT v.deleted) THEN
    RETURN NULL;
  END IF;
  IF v_end.blob IS NOT NULL THEN
    SELECT b.data INTO v_data FROM blobs b WHERE b.hash = v_end.blob;
  ELSE
    SELECT file_body(file_text(f.content, f.chunk_set), f.bytes) INTO v_data FROM files f
    WHERE f.workspace = p_workspace AND f.path = p_path AND f.version = v_end.version;
  END IF;
  IF v_data IS NULL THEN
    RAISE EXCEPTION 'the history of "%" is damaged: version % is neither stored nor current', p_path, v_end.version
      USING ERRCODE = 'DA010';
  END IF;
  FOR v_step IN
    SELECT v.version, v.delta_prefix, v.delta_suffix, v.delta_middle FROM file_versions v
    WHERE v.workspace = p_workspace AND v.path = p_path AND NOT v.deleted
      AND v.version >= p_version AND v.version < v_end.version
    ORDER BY v.version DESC
  LOOP
    v_data := substr(v_data, 1, v_step.delta_prefix) || v_step.delta_middle
              || substr(v_data, length(v_data) - v_step.delta_suffix + 1);
  END LOOP;
  -- Every answer is checked against the hash recorded with the version: history that raw SQL
  -- (or a bug) damaged is an error, never other bytes.
  IF sha256(v_data) IS DISTINCT FROM (SELECT v.hash FROM file_versions v WHERE v.workspace = p_workspace
                                      AND v.path = p_path AND v.version = p_version AND NOT v.deleted) THEN
    RAISE EXCEPTION 'the history of "%" is damaged: version % does not rebuild to its recorded hash', p_path, p_version
      USING ERRCODE = 'DA010';
  END IF;
  RETURN v_data;
END
$function$;

CREATE OR REPLACE FUNCTION chunks_insert()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
BEGIN
  INSERT INTO chunks (chunk_set, first_line, line_count, content)
  SELECT n.chunk_set, c.first_line, c.line_count, c.content
  FROM new_rows n CROSS JOIN LATERAL text_chunks(n.content) c
  -- A scalar subquery, never pulled up into a join: one primary-key probe per row. As NOT EXISTS
  -- the planner hashed the whole chunks table for an upload of 2,000 files (300 MB read, 30 s).
  WHERE n.chunk_set IS NOT NULL AND n.content IS NOT NULL -- (a row naming a set shares its chunks)
    AND (SELECT true FROM chunks x WHERE x.chunk_set = n.chunk_set LIMIT 1) IS NULL
  ON CONFLICT DO NOTHING; -- two new rows of one statement naming the same set
  RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION chunks_update()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
DECLARE
  v_sets bigint[];
  v_cut_sets bigint[];
  v_cut_first_lines integer[];
  v_cut_line_counts integer[];
  v_cut_contents text[];
  v_gone bigint[];
BEGIN
  -- Sets of new rows whose text is not the text the set had: new sets, and sets re-cut in place.
  -- (Rows pair up by the set: raw SQL may even change a row's key.) By hash: a row of a set
  -- without its text inline (content NULL) is never cut. Old and new
  -- rows meet by grouping on the set, not by a join: the planner estimates a transition table at
  -- a few rows and nested-looped one over the other (an upload of 500 files over themselves:
  -- 24 ms here, quadratic in the statement).
  SELECT array_agg(g.chunk_set) INTO v_sets
  FROM (
    SELECT u.chunk_set
    FROM (SELECT n.chunk_set, n.hash, true AS is_new FROM new_rows n
          WHERE n.chunk_set IS NOT NULL AND n.content IS NOT NULL
          UNION ALL
          SELECT o.chunk_set, o.hash, false FROM old_rows o WHERE o.chunk_set IS NOT NULL) u
    GROUP BY u.chunk_set
    HAVING bool_or(u.is_new)
       AND NOT (array_agg(u.hash) FILTER (WHERE u.is_new)
                <@ coalesce(array_agg(u.hash) FILTER (WHERE NOT u.is_new), '{}'))
  ) g;
  IF v_sets IS NOT NULL THEN
    SELECT array_agg(s.chunk_set), array_agg(c.first_line), array_agg(c.line_count), array_agg(c.content)
      INTO v_cut_sets, v_cut_first_lines, v_cut_line_counts, v_cut_contents
    FROM (SELECT DISTINCT ON (n.chunk_set) n.chunk_set, n.content
          FROM new_rows n WHERE n.chunk_set = ANY (v_sets) AND n.content IS NOT NULL
          ORDER BY n.chunk_set) s
    CROSS JOIN LATERAL text_chunks(s.content) c;
    -- Old chunks minus the new cut, as a set difference (hashed or sorted, linear): see 0003.
    DELETE FROM chunks c
    USING (
      SELECT o.chunk_set, o.first_line, o.content
      FROM chunks o JOIN unnest(v_sets) AS k(chunk_set) ON o.chunk_set = k.chunk_set
      EXCEPT
      SELECT f.chunk_set, f.first_line, f.content
      FROM unnest(v_cut_sets, v_cut_first_lines, v_cut_contents) AS f(chunk_set, first_line, content)
    ) gone
    WHERE c.chunk_set = gone.chunk_set AND c.first_line = gone.first_line;
    INSERT INTO chunks (chunk_set, first_line, line_count, content)
    SELECT f.chunk_set, f.first_line, f.line_count, f.content
    FROM unnest(v_cut_sets, v_cut_first_lines, v_cut_line_counts, v_cut_contents)
         AS f(chunk_set, first_line, line_count, content)
    WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.chunk_set = f.chunk_set AND c.first_line = f.first_line);
  END IF;
  -- Sets left unused, if any (most writes re-cut their set in place and leave none: no call).
  SELECT array_agg(g.chunk_set) INTO v_gone
  FROM (SELECT o.chunk_set FROM old_rows o EXCEPT SELECT n.chunk_set FROM new_rows n) g;
  IF v_gone IS NOT NULL THEN
    PERFORM chunks_collect(v_gone);
  END IF;
  RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION fs_download(p_workspace text, p_paths text[])
 RETURNS TABLE(ord bigint, content text, bytes bytea, is_dir boolean)
 LANGUAGE sql
 STABLE
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
  SELECT u.ord, file_text(f.content, f.chunk_set), f.bytes,
         f.path IS NULL AND EXISTS (
           SELECT 1 FROM files d
           WHERE d.workspace = p_workspace AND d.path >= u.path || '/' AND d.path < u.path || '0')
  FROM unnest(p_paths) WITH ORDINALITY AS u(path, ord)
  LEFT JOIN files f ON f.workspace = p_workspace AND f.path = u.path
  ORDER BY u.ord
$function$;

CREATE OR REPLACE FUNCTION fs_read_raw(p_workspace text, p_path text)
 RETURNS TABLE(mime_type text, content text, bytes bytea, created_at timestamp with time zone, modified_at timestamp with time zone)
 LANGUAGE sql
 STABLE
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
  SELECT f.mime_type, file_text(f.content, f.chunk_set), f.bytes, f.created_at, f.modified_at
  FROM files f WHERE f.workspace = p_workspace AND f.path = p_path
$function$;

CREATE OR REPLACE FUNCTION fs_edit(p_workspace text, p_path text, p_old text, p_new text, p_replace_all boolean, p_if_version bigint, p_max_bytes bigint)
 RETURNS TABLE(status text, occurrences integer, version bigint)
 LANGUAGE plpgsql
 SET search_path FROM CURRENT
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
DECLARE
  v_content text;
  v_binary  boolean;
  v_version bigint;
  v_count   integer;
  v_new     text;
BEGIN
  SELECT file_text(f.content, f.chunk_set), f.bytes IS NOT NULL, f.version INTO v_content, v_binary, v_version
    FROM files f WHERE f.workspace = p_workspace AND f.path = p_path FOR UPDATE;
  IF NOT FOUND THEN
    RETURN QUERY SELECT 'not_found'::text, 0, NULL::bigint; RETURN;
  END IF;
  IF p_if_version IS NOT NULL AND p_if_version <> v_version THEN
    RETURN QUERY SELECT 'version_mismatch'::text, 0, v_version; RETURN;
  END IF;
  IF v_binary THEN
    RETURN QUERY SELECT 'binary'::text, 0, v_version; RETURN;
  END IF;

  IF v_content = '' AND p_old = '' THEN
    v_new := p_new; v_count := 0;
  ELSIF p_old = '' THEN
    RETURN QUERY SELECT 'empty_old'::text, 0, v_version; RETURN;
  ELSE
    v_count := (length(v_content) - length(replace(v_content, p_old, ''))) / length(p_old);
    IF v_count = 0 THEN
      RETURN QUERY SELECT 'no_match'::text, 0, v_version; RETURN;
    END IF;
    IF v_count > 1 AND NOT p_replace_all THEN
      RETURN QUERY SELECT 'multiple'::text, v_count, v_version; RETURN;
    END IF;
    v_new := replace(v_content, p_old, p_new);
  END IF;
  IF octet_length(v_new) > p_max_bytes THEN
    RETURN QUERY SELECT 'too_large'::text, v_count, octet_length(v_new)::bigint; RETURN;
  END IF;

  UPDATE files f
     SET content = v_new, size = octet_length(v_new), line_count = text_line_count(v_new),
         version = f.version + 1, modified_at = clock_timestamp()
   WHERE f.workspace = p_workspace AND f.path = p_path
  RETURNING f.version INTO v_version;
  RETURN QUERY SELECT 'ok'::text, v_count, v_version;
END
$function$;

CREATE OR REPLACE FUNCTION fs_fork(p_source text, p_target text, p_at bigint, p_history boolean DEFAULT false)
 RETURNS TABLE(files bigint, bytes bigint, versions bigint)
 LANGUAGE plpgsql
 SET search_path FROM CURRENT
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
DECLARE
  v_position bigint;
  v_workspace text;
  v_files bigint;
  v_bytes bigint;
  v_versions bigint := 0;
BEGIN
  IF p_source = p_target THEN
    RAISE EXCEPTION 'cannot fork workspace "%" into itself', p_source USING ERRCODE = 'DA013';
  END IF;
  -- Under row-level security a workspace without a grant looks empty; say so instead.
  IF row_security_active('files') THEN
    FOREACH v_workspace IN ARRAY ARRAY[p_source, p_target] LOOP
      IF NOT EXISTS (SELECT 1 FROM workspace_grants g WHERE g.workspace = v_workspace OR g.workspace IS NULL) THEN
        RAISE EXCEPTION 'permission denied for workspace "%"', v_workspace
          USING ERRCODE = 'insufficient_privilege', DETAIL = v_workspace;
      END IF;
    END LOOP;
  END IF;
  IF p_history THEN
    IF NOT (has_table_privilege('file_versions', 'INSERT') AND has_table_privilege('tombstones', 'INSERT')) THEN
      RAISE EXCEPTION 'copying history into workspace "%" needs INSERT on file_versions and tombstones', p_target
        USING ERRCODE = 'DA015', DETAIL = p_target;
    END IF;
  END IF;
  -- One fork into a workspace at a time: a second waits here, then finds the files.
  PERFORM pg_advisory_xact_lock(hashtext('deepagents-backends:fork:' || current_schema() || E'\n' || p_target)::bigint);
  IF EXISTS (SELECT 1 FROM files f WHERE f.workspace = p_target) THEN
    RAISE EXCEPTION 'cannot fork into workspace "%": it has files', p_target USING ERRCODE = 'DA014', DETAIL = p_target;
  END IF;
  IF p_at IS NOT NULL THEN
    v_position := checkpoint_position(p_source, p_at);
  END IF;
  IF p_history THEN
    -- prune_history and set_history take this lock exclusively: no version or blob named below
    -- goes away, and the target's history setting holds. (Taken before any row lock: they lock
    -- no file rows, and the source's writers need not wait behind a long prune.)
    PERFORM pg_advisory_xact_lock_shared(hashtext('deepagents-backends:prune-history:' || current_schema()));
    IF NOT history_enabled(p_target) THEN
      RAISE EXCEPTION 'history is off for workspace "%"', p_target USING ERRCODE = 'DA011', DETAIL = p_target;
    END IF;
    -- A target that had files once keeps their history and version numbers, and a checkpoint
    -- taken on it marks a position in its own log: copies would mix with them, and reuse numbers
    -- its watchers have seen. Only a new workspace takes history.
    IF EXISTS (SELECT 1 FROM tombstones t WHERE t.workspace = p_target)
       OR EXISTS (SELECT 1 FROM file_versions v WHERE v.workspace = p_target)
       OR EXISTS (SELECT 1 FROM checkpoints c WHERE c.workspace = p_target)
       OR EXISTS (SELECT 1 FROM changes c WHERE c.workspace = p_target)
       OR EXISTS (SELECT 1 FROM changes_horizon h WHERE h.workspace = p_target) THEN
      RAISE EXCEPTION 'cannot fork with history into workspace "%": it has history of its own', p_target
        USING ERRCODE = 'DA016', DETAIL = p_target;
    END IF;
  END IF;
  -- Every row of the source, locked in path order: writers of them wait for this transaction, so
  -- the copy below (a new snapshot, taken once all are locked) is one state of the source, and
  -- no writer re-cuts a set in place while a copy points at it (chunks_assign sees the copies).
  PERFORM 1 FROM files f WHERE f.workspace = p_source ORDER BY f.path COLLATE "C" FOR SHARE;

  IF p_at IS NULL THEN
    WITH copied AS (
      -- A text file is copied without its text (content NULL): it is the text of its chunk set,
      -- which it shares (chunks_claim checks the caller may read it).
      INSERT INTO files (workspace, path, content, bytes, mime_type, size, line_count, chunk_set, hash, created_at,
                         modified_at, version)
      SELECT p_target, s.path, NULL, s.bytes, s.mime_type, s.size, s.line_count, s.chunk_set, s.hash, s.created_at,
             s.modified_at, CASE WHEN p_history THEN s.version ELSE 1 END
      FROM files s WHERE s.workspace = p_source
      ORDER BY s.path COLLATE "C"
      FOR SHARE -- (a file created since the first statement is locked too before its set is shared)
      RETURNING size
    )
    SELECT count(*), coalesce(sum(c.size), 0)::bigint INTO v_files, v_bytes FROM copied c;
  ELSE
    -- At a checkpoint: the rows that did not change since, shared; the others as history has them.
    WITH changed AS (
      SELECT h.path, h.from_version FROM history_compare(p_source, v_position, NULL, NULL) h
    ), unchanged AS (
      SELECT s.path, NULL::text AS content, s.bytes, s.mime_type, s.size, s.line_count, s.chunk_set, s.hash, s.created_at,
             s.modified_at, s.version
      FROM files s WHERE s.workspace = p_source AND NOT EXISTS (SELECT 1 FROM changed c WHERE c.path = s.path)
      FOR SHARE
    ), rebuilt AS (
      SELECT r.path, r.mime_type, r.is_text, version_data(p_source, r.path, r.from_version) AS data, r.at,
             r.from_version
      FROM (SELECT c.path, v.mime_type, v.is_text, c.from_version, v.at
            FROM changed c
            JOIN file_versions v ON v.workspace = p_source AND v.path = c.path
                                AND v.version = c.from_version AND NOT v.deleted
            WHERE c.from_version IS NOT NULL
            OFFSET 0) r -- a fence: pulled up, version_data would run once per use of `data`
    ), copied AS (
      INSERT INTO files (workspace, path, content, bytes, mime_type, size, line_count, chunk_set, hash, created_at,
                         modified_at, version)
      SELECT p_target, u.path, u.content, u.bytes, u.mime_type, u.size, u.line_count, u.chunk_set, u.hash, u.created_at,
             u.modified_at, CASE WHEN p_history THEN u.version ELSE 1 END
      FROM (
        SELECT * FROM unchanged
        UNION ALL
        SELECT b.path, t.content, t.bytes, b.mime_type, length(b.data), text_line_count(t.content), NULL, NULL, b.at, b.at,
               b.from_version
        FROM rebuilt b
        CROSS JOIN LATERAL (SELECT CASE WHEN b.is_text THEN convert_from(b.data, 'UTF8') END AS content,
                                   CASE WHEN NOT b.is_text THEN b.data END AS bytes) t
      ) u
      ORDER BY u.path COLLATE "C"
      RETURNING size
    )
    SELECT count(*), coalesce(sum(c.size), 0)::bigint INTO v_files, v_bytes FROM copied c;
  END IF;

  IF p_history THEN
    -- The source's versions, copied after the files (every copied file is locked by now, so its
    -- older versions cannot change under the copy): for a file of the fork, those below its
    -- version (history_inserted has just recorded that one); for a path without a file in the
    -- fork, those up to its last deletion (a version after it would be a live one, whose bytes
    -- are in a source file the fork did not copy). Up to the checkpoint, with p_at.
    INSERT INTO file_versions (workspace, path, version, deleted, op, change_id, at, size, mime_type, is_text,
                               hash, tag, blob, delta_prefix, delta_suffix, delta_middle, depth)
    SELECT p_target, v.path, v.version, v.deleted, v.op, v.change_id, v.at, v.size, v.mime_type, v.is_text,
           v.hash, v.tag, v.blob, v.delta_prefix, v.delta_suffix, v.delta_middle, v.depth
    FROM file_versions v
    LEFT JOIN files t ON t.workspace = p_target AND t.path = v.path
    WHERE v.workspace = p_source AND (v_position IS NULL OR v.change_id <= v_position)
      AND CASE WHEN t.path IS NOT NULL THEN v.version < t.version
               ELSE v.version <= (SELECT max(d.version) FROM file_versions d
                                  WHERE d.workspace = p_source AND d.path = v.path AND d.deleted
                                    AND (v_position IS NULL OR d.change_id <= v_position)) END
    ORDER BY v.path COLLATE "C", v.version, v.deleted;
    GET DIAGNOSTICS v_versions = ROW_COUNT;
    -- history_inserted recorded each copied file as created by the fork; it is the source's
    -- version, and keeps the source's record of it (op, time, tag, change). The fork's change log
    -- still has its creates, so diff and rewind from the fork's checkpoints see every file.
    UPDATE file_versions t SET op = s.op, at = s.at, tag = s.tag, change_id = s.change_id
    FROM files f
    JOIN file_versions s ON s.workspace = p_source AND s.path = f.path AND s.version = f.version AND NOT s.deleted
    WHERE f.workspace = p_target AND t.workspace = p_target AND t.path = f.path AND t.version = f.version
      AND NOT t.deleted AND (v_position IS NULL OR s.change_id <= v_position);
    v_versions := v_versions + v_files; -- (and the one history_inserted recorded for each file)
    -- Paths with history but no file in the fork: their numbers stay taken.
    INSERT INTO tombstones (workspace, path, version)
    SELECT p_target, v.path, max(v.version) FROM file_versions v
    WHERE v.workspace = p_target
      AND NOT EXISTS (SELECT 1 FROM files f WHERE f.workspace = p_target AND f.path = v.path)
    GROUP BY v.path ORDER BY v.path COLLATE "C";
  END IF;
  RETURN QUERY SELECT v_files, v_bytes, v_versions;
END
$function$;

-- Row triggers and the helpers they call per row plan their key probes once (generic plans).
-- With the default plan_cache_mode, PL/pgSQL re-planned each probe on every call (the custom
-- plan of a one-key lookup always looks a little cheaper than the generic one): 42 us of a
-- files_first_version call, 425 ms of a 10,000-file fork, now 8 us. Every probe here is a full
-- key (enable_seqscan off since 0011, except in history_policy, whose table has a row per
-- setting), so a generic plan is the right one whatever the values.
DO $$
DECLARE
  f text;
BEGIN
  FOREACH f IN ARRAY ARRAY['files_first_version()', 'files_renamed_version()', 'chunks_assign()', 'history_record()',
                           'history_capture(files, text, bigint, timestamp with time zone)',
                           'history_retire(files, files)', 'history_policy(text)'] LOOP
    EXECUTE format('ALTER FUNCTION %s SET plan_cache_mode = force_generic_plan', f);
  END LOOP;
END
$$;
-- The statement triggers, whose queries read their transition tables, are planned per call
-- instead: a cached plan is made for the rows a table had then (one, for a single write), and the
-- default mode may keep it after five calls; it then nested-looped over the next statement's
-- hundreds of rows (an upload of 500 files over themselves after single writes: 24 ms in
-- chunks_update alone).
DO $$
DECLARE
  f text;
BEGIN
  FOREACH f IN ARRAY ARRAY['chunks_claim()', 'chunks_insert()', 'chunks_update()', 'chunks_delete()',
                           'history_inserted()', 'history_deleted()', 'tombstones_record()', 'tombstones_clear()'] LOOP
    EXECUTE format('ALTER FUNCTION %s SET plan_cache_mode = force_custom_plan', f);
  END LOOP;
END
$$;

-- Down Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;

-- Rows without their text inline get it back (0015's files hold every text).
ALTER TABLE files DISABLE TRIGGER USER;
UPDATE files SET content = chunk_set_text(chunk_set) WHERE content IS NULL AND chunk_set IS NOT NULL;
ALTER TABLE files ENABLE TRIGGER USER;
ALTER TABLE files DROP CONSTRAINT files_body,
  ADD CONSTRAINT files_chunk_set CHECK ((content IS NULL) = (chunk_set IS NULL)),
  ADD CONSTRAINT files_one_body CHECK ((content IS NULL) <> (bytes IS NULL));
ALTER TRIGGER files_zy_chunks_delete ON files RENAME TO files_chunks_delete;
DROP TRIGGER files_chunks_claim ON files;

-- The definitions 0015 left.

CREATE OR REPLACE FUNCTION chunks_claim()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path FROM CURRENT
 SET enable_seqscan = off
 SET jit = off
AS $function$
BEGIN
  IF NEW.chunk_set IS NOT NULL THEN
    PERFORM 1 FROM files f
    WHERE f.chunk_set = NEW.chunk_set AND f.size = octet_length(NEW.content) AND f.content = NEW.content
    LIMIT 1 FOR SHARE;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'chunk set % is not the text of a file this role can read', NEW.chunk_set
        USING ERRCODE = 'insufficient_privilege';
    END IF;
  END IF;
  RETURN NEW;
END
$function$;

CREATE OR REPLACE FUNCTION chunks_assign()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
 SET enable_seqscan = off
 SET jit = off
AS $function$
BEGIN
  IF NEW.content IS NULL THEN
    NEW.chunk_set := NULL;
  ELSIF TG_OP = 'INSERT' THEN
    NEW.chunk_set := coalesce(NEW.chunk_set, nextval('chunk_sets')); -- (a named set passed chunks_claim)
  ELSIF OLD.content IS NOT DISTINCT FROM NEW.content THEN
    NEW.chunk_set := OLD.chunk_set;
  ELSIF OLD.chunk_set IS NOT NULL AND current_setting('transaction_isolation') = 'read committed'
        AND NOT EXISTS (SELECT 1 FROM files f WHERE f.chunk_set = OLD.chunk_set
                        AND (f.workspace, f.path) IS DISTINCT FROM (OLD.workspace, OLD.path)) THEN
    NEW.chunk_set := OLD.chunk_set; -- its own set: re-cut in place, unchanged chunks kept
  ELSE
    -- Shared (a fork's), text where there was none, or a snapshot older than this statement (one
    -- that might not see a fork's copies).
    NEW.chunk_set := nextval('chunk_sets');
  END IF;
  RETURN NEW;
END
$function$;

CREATE OR REPLACE FUNCTION chunks_insert()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
 SET enable_seqscan = off
 SET jit = off
AS $function$
BEGIN
  INSERT INTO chunks (chunk_set, first_line, line_count, content)
  SELECT n.chunk_set, c.first_line, c.line_count, c.content
  FROM new_rows n CROSS JOIN LATERAL text_chunks(n.content) c
  -- A scalar subquery, never pulled up into a join: one primary-key probe per row. As NOT EXISTS
  -- the planner hashed the whole chunks table for an upload of 2,000 files (300 MB read, 30 s).
  WHERE n.chunk_set IS NOT NULL
    AND (SELECT true FROM chunks x WHERE x.chunk_set = n.chunk_set LIMIT 1) IS NULL
  ON CONFLICT DO NOTHING; -- two new rows of one statement naming the same set
  RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION chunks_update()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
 SET enable_seqscan = off
 SET jit = off
AS $function$
DECLARE
  v_sets bigint[];
  v_cut_sets bigint[];
  v_cut_first_lines integer[];
  v_cut_line_counts integer[];
  v_cut_contents text[];
BEGIN
  -- Sets of new rows whose text is not the text the set had: new sets, and sets re-cut in place.
  -- (A hash join on the set: rows pair up by it; raw SQL may even change a row's key.)
  SELECT array_agg(DISTINCT n.chunk_set) INTO v_sets
  FROM new_rows n LEFT JOIN old_rows o ON o.chunk_set = n.chunk_set
  WHERE n.chunk_set IS NOT NULL AND (o.chunk_set IS NULL OR o.content IS DISTINCT FROM n.content);
  IF v_sets IS NOT NULL THEN
    SELECT array_agg(s.chunk_set), array_agg(c.first_line), array_agg(c.line_count), array_agg(c.content)
      INTO v_cut_sets, v_cut_first_lines, v_cut_line_counts, v_cut_contents
    FROM (SELECT DISTINCT ON (n.chunk_set) n.chunk_set, n.content
          FROM new_rows n JOIN unnest(v_sets) AS k(chunk_set) ON k.chunk_set = n.chunk_set
          ORDER BY n.chunk_set) s
    CROSS JOIN LATERAL text_chunks(s.content) c;
    -- Old chunks minus the new cut, as a set difference (hashed or sorted, linear): see 0003.
    DELETE FROM chunks c
    USING (
      SELECT o.chunk_set, o.first_line, o.content
      FROM chunks o JOIN unnest(v_sets) AS k(chunk_set) ON o.chunk_set = k.chunk_set
      EXCEPT
      SELECT f.chunk_set, f.first_line, f.content
      FROM unnest(v_cut_sets, v_cut_first_lines, v_cut_contents) AS f(chunk_set, first_line, content)
    ) gone
    WHERE c.chunk_set = gone.chunk_set AND c.first_line = gone.first_line;
    INSERT INTO chunks (chunk_set, first_line, line_count, content)
    SELECT f.chunk_set, f.first_line, f.line_count, f.content
    FROM unnest(v_cut_sets, v_cut_first_lines, v_cut_line_counts, v_cut_contents)
         AS f(chunk_set, first_line, line_count, content)
    WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.chunk_set = f.chunk_set AND c.first_line = f.first_line);
  END IF;
  PERFORM chunks_collect((SELECT array_agg(g.chunk_set)
                          FROM (SELECT o.chunk_set FROM old_rows o EXCEPT SELECT n.chunk_set FROM new_rows n) g));
  RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION files_version_rises()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path FROM CURRENT
 SET enable_seqscan = off
 SET jit = off
AS $function$
BEGIN
  IF (OLD.workspace, OLD.path) IS DISTINCT FROM (NEW.workspace, NEW.path) THEN
    RETURN NEW; -- a rename: files_renamed_version numbers the new name
  END IF;
  IF (NEW.content, NEW.bytes, NEW.mime_type) IS DISTINCT FROM (OLD.content, OLD.bytes, OLD.mime_type) THEN
    NEW.version := greatest(NEW.version, OLD.version + 1);
  ELSE
    NEW.version := greatest(NEW.version, OLD.version);
  END IF;
  RETURN NEW;
END
$function$;

CREATE OR REPLACE FUNCTION history_capture(r files, p_op text, p_change_id bigint, p_at timestamp with time zone)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path FROM CURRENT
 SET enable_seqscan = off
 SET jit = off
AS $function$
BEGIN
  INSERT INTO file_versions AS v (workspace, path, version, op, change_id, at, size, mime_type, is_text, hash, tag)
  VALUES (r.workspace, r.path, r.version, p_op, p_change_id, p_at, r.size, r.mime_type, r.content IS NOT NULL,
          sha256(file_body(r.content, r.bytes)), nullif(current_setting('deepagents_backends.tag', true), ''))
  ON CONFLICT (workspace, path, version, deleted) DO UPDATE
    SET op = excluded.op, change_id = excluded.change_id, at = excluded.at, size = excluded.size,
        mime_type = excluded.mime_type, is_text = excluded.is_text, hash = excluded.hash, tag = excluded.tag,
        blob = NULL, delta_prefix = NULL, delta_suffix = NULL, delta_middle = NULL, depth = 0;
END
$function$;

CREATE OR REPLACE FUNCTION history_inserted()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
 SET enable_seqscan = off
 SET jit = off
AS $function$
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
$function$;

CREATE OR REPLACE FUNCTION history_deleted()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
 SET enable_seqscan = off
 SET jit = off
AS $function$
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
$function$;

CREATE OR REPLACE FUNCTION history_retire(o files, n files)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path FROM CURRENT
 SET enable_seqscan = off
 SET jit = off
AS $function$
DECLARE
  v_row file_versions;
  v_old bytea := file_body(o.content, o.bytes);
  v_new bytea;
  v_depth integer;
  v_prefix integer;
  v_suffix integer;
  v_hash bytea;
BEGIN
  SELECT * INTO v_row FROM file_versions v
  WHERE v.workspace = o.workspace AND v.path = o.path AND v.version = o.version AND NOT v.deleted;
  IF NOT FOUND THEN
    -- Written before history was kept for it: record it now, as having been there all along.
    PERFORM history_capture(o, CASE WHEN o.version = 1 THEN 'create' ELSE 'update' END, 0, o.modified_at);
    SELECT * INTO v_row FROM file_versions v
    WHERE v.workspace = o.workspace AND v.path = o.path AND v.version = o.version AND NOT v.deleted;
  ELSIF v_row.blob IS NOT NULL OR v_row.delta_middle IS NOT NULL THEN
    RETURN; -- already kept
  END IF;

  -- Delta or whole is decided from this path's own versions only: were it decided by whether a
  -- blob of these bytes already exists (anywhere), a tenant could learn from its own rows that
  -- another workspace holds some content. (n.path, not n: a row IS NOT NULL only when every
  -- column is, and a file has content or bytes.)
  IF n.path IS NOT NULL THEN
    v_new := file_body(n.content, n.bytes);
    -- The deltas just below: those of the previous kept version (raw SQL may leave gaps).
    v_depth := coalesce((SELECT CASE WHEN p.delta_middle IS NOT NULL THEN p.depth END FROM file_versions p
                         WHERE p.workspace = o.workspace AND p.path = o.path AND p.version < o.version
                           AND NOT p.deleted
                         ORDER BY p.version DESC LIMIT 1), 0) + 1;
    IF v_depth <= history_max_depth(greatest(length(v_old), length(v_new))) THEN
      v_prefix := bytes_common_prefix(v_old, v_new);
      v_suffix := bytes_common_suffix(v_old, v_new, least(length(v_old), length(v_new)) - v_prefix);
      IF length(v_old) - v_prefix - v_suffix <= length(v_old) / 2 + 64 THEN
        UPDATE file_versions v
           SET delta_prefix = v_prefix, delta_suffix = v_suffix,
               delta_middle = substr(v_old, v_prefix + 1, length(v_old) - v_prefix - v_suffix), depth = v_depth
         WHERE v.workspace = o.workspace AND v.path = o.path AND v.version = o.version AND NOT v.deleted;
        RETURN;
      END IF;
    END IF;
  END IF;

  v_hash := blob_keep(v_old);
  UPDATE file_versions v SET blob = v_hash, hash = v_hash, depth = 0
   WHERE v.workspace = o.workspace AND v.path = o.path AND v.version = o.version AND NOT v.deleted;
END
$function$;

CREATE OR REPLACE FUNCTION version_data(p_workspace text, p_path text, p_version bigint)
 RETURNS bytea
 LANGUAGE plpgsql
 STABLE
 SET search_path FROM CURRENT
 SET enable_seqscan = off
 SET jit = off
AS $function$
DECLARE
  v_end file_versions;
  v_data bytea;
  v_step record;
BEGIN
  SELECT * INTO v_end FROM file_versions v
  WHERE v.workspace = p_workspace AND v.path = p_path AND v.version >= p_version AND NOT v.deleted
    AND v.delta_middle IS NULL
  ORDER BY v.version LIMIT 1;
  IF NOT FOUND OR NOT EXISTS (SELECT 1 FROM file_versions v WHERE v.workspace = p_workspace
                              AND v.path = p_path AND v.version = p_version AND NOT v.deleted) THEN
    RETURN NULL;
  END IF;
  IF v_end.blob IS NOT NULL THEN
    SELECT b.data INTO v_data FROM blobs b WHERE b.hash = v_end.blob;
  ELSE
    SELECT file_body(f.content, f.bytes) INTO v_data FROM files f
    WHERE f.workspace = p_workspace AND f.path = p_path AND f.version = v_end.version;
  END IF;
  IF v_data IS NULL THEN
    RAISE EXCEPTION 'the history of "%" is damaged: version % is neither stored nor current', p_path, v_end.version
      USING ERRCODE = 'DA010';
  END IF;
  FOR v_step IN
    SELECT v.version, v.delta_prefix, v.delta_suffix, v.delta_middle FROM file_versions v
    WHERE v.workspace = p_workspace AND v.path = p_path AND NOT v.deleted
      AND v.version >= p_version AND v.version < v_end.version
    ORDER BY v.version DESC
  LOOP
    v_data := substr(v_data, 1, v_step.delta_prefix) || v_step.delta_middle
              || substr(v_data, length(v_data) - v_step.delta_suffix + 1);
  END LOOP;
  -- Every answer is checked against the hash recorded with the version: history that raw SQL
  -- (or a bug) damaged is an error, never other bytes.
  IF sha256(v_data) IS DISTINCT FROM (SELECT v.hash FROM file_versions v WHERE v.workspace = p_workspace
                                      AND v.path = p_path AND v.version = p_version AND NOT v.deleted) THEN
    RAISE EXCEPTION 'the history of "%" is damaged: version % does not rebuild to its recorded hash', p_path, p_version
      USING ERRCODE = 'DA010';
  END IF;
  RETURN v_data;
END
$function$;

CREATE OR REPLACE FUNCTION fs_download(p_workspace text, p_paths text[])
 RETURNS TABLE(ord bigint, content text, bytes bytea, is_dir boolean)
 LANGUAGE sql
 STABLE
 SET search_path FROM CURRENT
 SET enable_seqscan = off
 SET jit = off
AS $function$
  SELECT u.ord, f.content, f.bytes,
         f.path IS NULL AND EXISTS (
           SELECT 1 FROM files d
           WHERE d.workspace = p_workspace AND d.path >= u.path || '/' AND d.path < u.path || '0')
  FROM unnest(p_paths) WITH ORDINALITY AS u(path, ord)
  LEFT JOIN files f ON f.workspace = p_workspace AND f.path = u.path
  ORDER BY u.ord
$function$;

CREATE OR REPLACE FUNCTION fs_read_raw(p_workspace text, p_path text)
 RETURNS TABLE(mime_type text, content text, bytes bytea, created_at timestamp with time zone, modified_at timestamp with time zone)
 LANGUAGE sql
 STABLE
 SET search_path FROM CURRENT
 SET enable_seqscan = off
 SET jit = off
AS $function$
  SELECT f.mime_type, f.content, f.bytes, f.created_at, f.modified_at
  FROM files f WHERE f.workspace = p_workspace AND f.path = p_path
$function$;

CREATE OR REPLACE FUNCTION fs_edit(p_workspace text, p_path text, p_old text, p_new text, p_replace_all boolean, p_if_version bigint, p_max_bytes bigint)
 RETURNS TABLE(status text, occurrences integer, version bigint)
 LANGUAGE plpgsql
 SET search_path FROM CURRENT
 SET enable_seqscan = off
 SET jit = off
AS $function$
DECLARE
  v_content text;
  v_binary  boolean;
  v_version bigint;
  v_count   integer;
  v_new     text;
BEGIN
  SELECT f.content, f.bytes IS NOT NULL, f.version INTO v_content, v_binary, v_version
    FROM files f WHERE f.workspace = p_workspace AND f.path = p_path FOR UPDATE;
  IF NOT FOUND THEN
    RETURN QUERY SELECT 'not_found'::text, 0, NULL::bigint; RETURN;
  END IF;
  IF p_if_version IS NOT NULL AND p_if_version <> v_version THEN
    RETURN QUERY SELECT 'version_mismatch'::text, 0, v_version; RETURN;
  END IF;
  IF v_binary THEN
    RETURN QUERY SELECT 'binary'::text, 0, v_version; RETURN;
  END IF;

  IF v_content = '' AND p_old = '' THEN
    v_new := p_new; v_count := 0;
  ELSIF p_old = '' THEN
    RETURN QUERY SELECT 'empty_old'::text, 0, v_version; RETURN;
  ELSE
    v_count := (length(v_content) - length(replace(v_content, p_old, ''))) / length(p_old);
    IF v_count = 0 THEN
      RETURN QUERY SELECT 'no_match'::text, 0, v_version; RETURN;
    END IF;
    IF v_count > 1 AND NOT p_replace_all THEN
      RETURN QUERY SELECT 'multiple'::text, v_count, v_version; RETURN;
    END IF;
    v_new := replace(v_content, p_old, p_new);
  END IF;
  IF octet_length(v_new) > p_max_bytes THEN
    RETURN QUERY SELECT 'too_large'::text, v_count, octet_length(v_new)::bigint; RETURN;
  END IF;

  UPDATE files f
     SET content = v_new, size = octet_length(v_new), line_count = text_line_count(v_new),
         version = f.version + 1, modified_at = clock_timestamp()
   WHERE f.workspace = p_workspace AND f.path = p_path
  RETURNING f.version INTO v_version;
  RETURN QUERY SELECT 'ok'::text, v_count, v_version;
END
$function$;

CREATE OR REPLACE FUNCTION fs_fork(p_source text, p_target text, p_at bigint, p_history boolean DEFAULT false)
 RETURNS TABLE(files bigint, bytes bigint, versions bigint)
 LANGUAGE plpgsql
 SET search_path FROM CURRENT
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
DECLARE
  v_position bigint;
  v_workspace text;
  v_files bigint;
  v_bytes bigint;
  v_versions bigint := 0;
BEGIN
  IF p_source = p_target THEN
    RAISE EXCEPTION 'cannot fork workspace "%" into itself', p_source USING ERRCODE = 'DA013';
  END IF;
  -- Under row-level security a workspace without a grant looks empty; say so instead.
  IF row_security_active('files') THEN
    FOREACH v_workspace IN ARRAY ARRAY[p_source, p_target] LOOP
      IF NOT EXISTS (SELECT 1 FROM workspace_grants g WHERE g.workspace = v_workspace OR g.workspace IS NULL) THEN
        RAISE EXCEPTION 'permission denied for workspace "%"', v_workspace
          USING ERRCODE = 'insufficient_privilege', DETAIL = v_workspace;
      END IF;
    END LOOP;
  END IF;
  IF p_history THEN
    IF NOT (has_table_privilege('file_versions', 'INSERT') AND has_table_privilege('tombstones', 'INSERT')) THEN
      RAISE EXCEPTION 'copying history into workspace "%" needs INSERT on file_versions and tombstones', p_target
        USING ERRCODE = 'DA015', DETAIL = p_target;
    END IF;
  END IF;
  -- One fork into a workspace at a time: a second waits here, then finds the files.
  PERFORM pg_advisory_xact_lock(hashtext('deepagents-backends:fork:' || current_schema() || E'\n' || p_target)::bigint);
  IF EXISTS (SELECT 1 FROM files f WHERE f.workspace = p_target) THEN
    RAISE EXCEPTION 'cannot fork into workspace "%": it has files', p_target USING ERRCODE = 'DA014', DETAIL = p_target;
  END IF;
  IF p_at IS NOT NULL THEN
    v_position := checkpoint_position(p_source, p_at);
  END IF;
  IF p_history THEN
    -- prune_history and set_history take this lock exclusively: no version or blob named below
    -- goes away, and the target's history setting holds. (Taken before any row lock: they lock
    -- no file rows, and the source's writers need not wait behind a long prune.)
    PERFORM pg_advisory_xact_lock_shared(hashtext('deepagents-backends:prune-history:' || current_schema()));
    IF NOT history_enabled(p_target) THEN
      RAISE EXCEPTION 'history is off for workspace "%"', p_target USING ERRCODE = 'DA011', DETAIL = p_target;
    END IF;
    -- A target that had files once keeps their history and version numbers, and a checkpoint
    -- taken on it marks a position in its own log: copies would mix with them, and reuse numbers
    -- its watchers have seen. Only a new workspace takes history.
    IF EXISTS (SELECT 1 FROM tombstones t WHERE t.workspace = p_target)
       OR EXISTS (SELECT 1 FROM file_versions v WHERE v.workspace = p_target)
       OR EXISTS (SELECT 1 FROM checkpoints c WHERE c.workspace = p_target)
       OR EXISTS (SELECT 1 FROM changes c WHERE c.workspace = p_target)
       OR EXISTS (SELECT 1 FROM changes_horizon h WHERE h.workspace = p_target) THEN
      RAISE EXCEPTION 'cannot fork with history into workspace "%": it has history of its own', p_target
        USING ERRCODE = 'DA016', DETAIL = p_target;
    END IF;
  END IF;
  -- Every row of the source, locked in path order: writers of them wait for this transaction, so
  -- the copy below (a new snapshot, taken once all are locked) is one state of the source, and
  -- no writer re-cuts a set in place while a copy points at it (chunks_assign sees the copies).
  PERFORM 1 FROM files f WHERE f.workspace = p_source ORDER BY f.path COLLATE "C" FOR SHARE;

  IF p_at IS NULL THEN
    WITH copied AS (
      INSERT INTO files (workspace, path, content, bytes, mime_type, size, line_count, chunk_set, created_at,
                         modified_at, version)
      SELECT p_target, s.path, s.content, s.bytes, s.mime_type, s.size, s.line_count, s.chunk_set, s.created_at,
             s.modified_at, CASE WHEN p_history THEN s.version ELSE 1 END
      FROM files s WHERE s.workspace = p_source
      ORDER BY s.path COLLATE "C"
      FOR SHARE -- (a file created since the first statement is locked too before its set is shared)
      RETURNING size
    )
    SELECT count(*), coalesce(sum(c.size), 0)::bigint INTO v_files, v_bytes FROM copied c;
  ELSE
    -- At a checkpoint: the rows that did not change since, shared; the others as history has them.
    WITH changed AS (
      SELECT h.path, h.from_version FROM history_compare(p_source, v_position, NULL, NULL) h
    ), unchanged AS (
      SELECT s.path, s.content, s.bytes, s.mime_type, s.size, s.line_count, s.chunk_set, s.created_at,
             s.modified_at, s.version
      FROM files s WHERE s.workspace = p_source AND NOT EXISTS (SELECT 1 FROM changed c WHERE c.path = s.path)
      FOR SHARE
    ), rebuilt AS (
      SELECT r.path, r.mime_type, r.is_text, version_data(p_source, r.path, r.from_version) AS data, r.at,
             r.from_version
      FROM (SELECT c.path, v.mime_type, v.is_text, c.from_version, v.at
            FROM changed c
            JOIN file_versions v ON v.workspace = p_source AND v.path = c.path
                                AND v.version = c.from_version AND NOT v.deleted
            WHERE c.from_version IS NOT NULL
            OFFSET 0) r -- a fence: pulled up, version_data would run once per use of `data`
    ), copied AS (
      INSERT INTO files (workspace, path, content, bytes, mime_type, size, line_count, chunk_set, created_at,
                         modified_at, version)
      SELECT p_target, u.path, u.content, u.bytes, u.mime_type, u.size, u.line_count, u.chunk_set, u.created_at,
             u.modified_at, CASE WHEN p_history THEN u.version ELSE 1 END
      FROM (
        SELECT * FROM unchanged
        UNION ALL
        SELECT b.path, t.content, t.bytes, b.mime_type, length(b.data), text_line_count(t.content), NULL, b.at, b.at,
               b.from_version
        FROM rebuilt b
        CROSS JOIN LATERAL (SELECT CASE WHEN b.is_text THEN convert_from(b.data, 'UTF8') END AS content,
                                   CASE WHEN NOT b.is_text THEN b.data END AS bytes) t
      ) u
      ORDER BY u.path COLLATE "C"
      RETURNING size
    )
    SELECT count(*), coalesce(sum(c.size), 0)::bigint INTO v_files, v_bytes FROM copied c;
  END IF;

  IF p_history THEN
    -- The source's versions, copied after the files (every copied file is locked by now, so its
    -- older versions cannot change under the copy): for a file of the fork, those below its
    -- version (history_inserted has just recorded that one); for a path without a file in the
    -- fork, those up to its last deletion (a version after it would be a live one, whose bytes
    -- are in a source file the fork did not copy). Up to the checkpoint, with p_at.
    INSERT INTO file_versions (workspace, path, version, deleted, op, change_id, at, size, mime_type, is_text,
                               hash, tag, blob, delta_prefix, delta_suffix, delta_middle, depth)
    SELECT p_target, v.path, v.version, v.deleted, v.op, v.change_id, v.at, v.size, v.mime_type, v.is_text,
           v.hash, v.tag, v.blob, v.delta_prefix, v.delta_suffix, v.delta_middle, v.depth
    FROM file_versions v
    LEFT JOIN files t ON t.workspace = p_target AND t.path = v.path
    WHERE v.workspace = p_source AND (v_position IS NULL OR v.change_id <= v_position)
      AND CASE WHEN t.path IS NOT NULL THEN v.version < t.version
               ELSE v.version <= (SELECT max(d.version) FROM file_versions d
                                  WHERE d.workspace = p_source AND d.path = v.path AND d.deleted
                                    AND (v_position IS NULL OR d.change_id <= v_position)) END
    ORDER BY v.path COLLATE "C", v.version, v.deleted;
    GET DIAGNOSTICS v_versions = ROW_COUNT;
    -- history_inserted recorded each copied file as created by the fork; it is the source's
    -- version, and keeps the source's record of it (op, time, tag, change). The fork's change log
    -- still has its creates, so diff and rewind from the fork's checkpoints see every file.
    UPDATE file_versions t SET op = s.op, at = s.at, tag = s.tag, change_id = s.change_id
    FROM files f
    JOIN file_versions s ON s.workspace = p_source AND s.path = f.path AND s.version = f.version AND NOT s.deleted
    WHERE f.workspace = p_target AND t.workspace = p_target AND t.path = f.path AND t.version = f.version
      AND NOT t.deleted AND (v_position IS NULL OR s.change_id <= v_position);
    v_versions := v_versions + v_files; -- (and the one history_inserted recorded for each file)
    -- Paths with history but no file in the fork: their numbers stay taken.
    INSERT INTO tombstones (workspace, path, version)
    SELECT p_target, v.path, max(v.version) FROM file_versions v
    WHERE v.workspace = p_target
      AND NOT EXISTS (SELECT 1 FROM files f WHERE f.workspace = p_target AND f.path = v.path)
    GROUP BY v.path ORDER BY v.path COLLATE "C";
  END IF;
  RETURN QUERY SELECT v_files, v_bytes, v_versions;
END
$function$;

CREATE TRIGGER files_chunks_claim BEFORE INSERT ON files FOR EACH ROW EXECUTE FUNCTION chunks_claim();
DO $$
DECLARE
  f text;
BEGIN
  FOREACH f IN ARRAY ARRAY['files_first_version()', 'files_renamed_version()', 'history_record()', 'chunks_delete()',
                           'tombstones_record()', 'tombstones_clear()',
                           'history_capture(files, text, bigint, timestamp with time zone)',
                           'history_retire(files, files)', 'history_policy(text)'] LOOP
    EXECUTE format('ALTER FUNCTION %s RESET plan_cache_mode', f);
  END LOOP;
END
$$;
ALTER TABLE files DROP COLUMN hash;
DROP FUNCTION file_text(text, bigint);
DROP FUNCTION chunk_set_text(bigint);
