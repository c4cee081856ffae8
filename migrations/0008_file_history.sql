-- Up Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;
--
-- Version 8: file history and checkpoints (issue 13 of the project's tracker, first part).
--
-- Every change of a file keeps what it replaced, in `file_versions`: one row per version of a
-- path (and one more when the path was deleted), written by a trigger on `files` in the writing
-- transaction, so raw SQL is recorded as the backend is. Where a version's bytes are:
--   live   the version `files` holds now (no copy is made while it is current);
--   delta  derived from the next version: its first delta_prefix bytes, then delta_middle, then
--          its last delta_suffix bytes (a reverse delta, as RCS keeps them: the newest version is
--          whole, older ones cost what changed);
--   blob   whole, in `blobs`, addressed by its SHA-256 (identical contents are stored once, across
--          versions, paths and workspaces).
-- A version becomes a delta when the next one replaces it, or a blob (a keyframe) when it is
-- deleted, when the delta would be more than half of it, or when reading it would apply more
-- deltas than history_max_depth() allows. Reading walks up to the first blob or live row.
--
-- change_id is the id of the change (in `changes`) that wrote the version, stamped by
-- record_change at commit; 0 marks a version that existed before history was kept for it
-- (recorded the first time it was replaced). A checkpoint is a position in the change log: the
-- state of a path at checkpoint C is its row with the greatest change_id <= C.
--
-- Who may do what: restricted roles read their workspaces' history and checkpoints through
-- row-level security and make checkpoints; only the definer triggers write history; retention
-- (history_settings, prune_history) is the owner's.
-- Released: never edit this file; add a new migration instead.

-- Contents addressed by their SHA-256. Shared by all workspaces: a role reads a blob only when a
-- version it may read points to it (the policy below).
CREATE TABLE blobs (
  hash bytea PRIMARY KEY,
  data bytea NOT NULL
);

CREATE TABLE file_versions (
  workspace text NOT NULL,
  path text COLLATE "C" NOT NULL,
  version bigint NOT NULL,
  -- false: the content of `version`; true: the marker of its deletion.
  deleted boolean NOT NULL DEFAULT false,
  op text NOT NULL CHECK (op IN ('create', 'update', 'delete')),
  change_id bigint,
  at timestamptz NOT NULL DEFAULT clock_timestamp(),
  size bigint NOT NULL,
  mime_type text,
  is_text boolean,
  hash bytea,
  tag text,
  blob bytea REFERENCES blobs (hash),
  delta_prefix integer,
  delta_suffix integer,
  delta_middle bytea,
  -- Deltas in a row below this one and including it (0 for live and blob rows).
  depth integer NOT NULL DEFAULT 0,
  PRIMARY KEY (workspace, path, version, deleted),
  CONSTRAINT file_versions_body CHECK (
    deleted = (hash IS NULL)
    AND (blob IS NULL OR delta_middle IS NULL)
    AND (delta_middle IS NULL) = (delta_prefix IS NULL)
    AND (delta_middle IS NULL) = (delta_suffix IS NULL)
    AND (NOT deleted OR (blob IS NULL AND delta_middle IS NULL)))
);
-- No index on change_id: stamping it at commit (record_change) and turning the previous version
-- into a delta are then HOT updates, which add no index entries. Which paths changed after a
-- checkpoint comes from `changes` (its (workspace, id) index), kept from pruning while a
-- checkpoint needs it (prune_changes below).
-- Blob collection asks whether any version still points to a blob.
CREATE INDEX file_versions_blob_idx ON file_versions (blob) WHERE blob IS NOT NULL;

-- Compress whole contents with lz4 where the server has it (faster than pglz to write and read).
DO $$
BEGIN
  ALTER TABLE blobs ALTER COLUMN data SET COMPRESSION lz4;
  ALTER TABLE file_versions ALTER COLUMN delta_middle SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
  NULL; -- built without lz4: the default (pglz)
END
$$;

CREATE TABLE checkpoints (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  workspace text NOT NULL,
  change_id bigint NOT NULL,
  label text,
  tag text,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX checkpoints_workspace_idx ON checkpoints (workspace, id);

-- Retention and the on/off switch. scope '' is the schema's default (a workspace name is never
-- empty); a workspace's own row overrides it column by column (NULL: take the default's).
-- A version is pruned when neither limit keeps it: keep_versions (the newest N of each path)
-- and keep_days (younger than N days); a NULL limit keeps nothing by itself, and when both are
-- NULL nothing is pruned.
CREATE TABLE history_settings (
  scope text PRIMARY KEY,
  enabled boolean,
  keep_versions integer CHECK (keep_versions >= 1),
  keep_days integer CHECK (keep_days >= 1)
);
INSERT INTO history_settings (scope, enabled, keep_versions, keep_days) VALUES ('', true, 100, NULL);

ALTER TABLE blobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE file_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE checkpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE history_settings ENABLE ROW LEVEL SECURITY;

CREATE POLICY file_versions_granted ON file_versions
  USING (workspace IN (SELECT g.workspace FROM workspace_grants g)
         OR EXISTS (SELECT 1 FROM workspace_grants g WHERE g.workspace IS NULL));
CREATE POLICY checkpoints_granted ON checkpoints
  USING (workspace IN (SELECT g.workspace FROM workspace_grants g)
         OR EXISTS (SELECT 1 FROM workspace_grants g WHERE g.workspace IS NULL))
  WITH CHECK (workspace IN (SELECT g.workspace FROM workspace_grants g)
              OR EXISTS (SELECT 1 FROM workspace_grants g WHERE g.workspace IS NULL));
-- The subquery runs with the reader's rights, so file_versions' own policy applies inside it.
CREATE POLICY blobs_referenced ON blobs FOR SELECT
  USING (EXISTS (SELECT 1 FROM file_versions v WHERE v.blob = blobs.hash));
CREATE POLICY history_settings_granted ON history_settings FOR SELECT
  USING (scope = ''
         OR scope IN (SELECT g.workspace FROM workspace_grants g)
         OR EXISTS (SELECT 1 FROM workspace_grants g WHERE g.workspace IS NULL));

-- Settings --------------------------------------------------------------------------------------

-- The settings in force for a workspace (its own row over the default, column by column).
CREATE FUNCTION history_policy(p_workspace text,
                               OUT enabled boolean, OUT keep_versions integer, OUT keep_days integer)
-- plpgsql, not sql: the trigger calls it for every row written, and plpgsql keeps its plans.
LANGUAGE plpgsql STABLE SET search_path FROM CURRENT AS $$
DECLARE
  d history_settings;
  w history_settings;
BEGIN
  SELECT * INTO d FROM history_settings s WHERE s.scope = '';
  SELECT * INTO w FROM history_settings s WHERE s.scope = p_workspace;
  enabled := coalesce(w.enabled, d.enabled, true);
  IF w.keep_versions IS NOT NULL OR w.keep_days IS NOT NULL THEN
    keep_versions := w.keep_versions;
    keep_days := w.keep_days;
  ELSE
    keep_versions := d.keep_versions;
    keep_days := d.keep_days;
  END IF;
END
$$;

-- Byte-level deltas -----------------------------------------------------------------------------
-- Pure helpers: no relation, no non-built-in type, so (like 0005's) unpinned -- the SQL ones are
-- then inlined into their callers, and none pays for a search_path change on every write.

-- How many leading bytes a and b share: 64 KiB blocks compared as wholes (memcmp), then the
-- differing block halved, so a change near the end of a 5 MB file costs a few ms, not a byte loop.
CREATE FUNCTION bytes_common_prefix(a bytea, b bytea) RETURNS integer
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  v_max integer := least(length(a), length(b));
  v_step constant integer := 65536;
  v_lo integer := 0; -- the first v_lo bytes are equal
  v_hi integer;      -- and no more than v_hi are
  v_mid integer;
BEGIN
  WHILE v_lo + v_step <= v_max AND substr(a, v_lo + 1, v_step) = substr(b, v_lo + 1, v_step) LOOP
    v_lo := v_lo + v_step;
  END LOOP;
  v_hi := least(v_lo + v_step, v_max);
  WHILE v_lo < v_hi LOOP
    v_mid := (v_lo + v_hi + 1) / 2;
    IF substr(a, v_lo + 1, v_mid - v_lo) = substr(b, v_lo + 1, v_mid - v_lo) THEN
      v_lo := v_mid;
    ELSE
      v_hi := v_mid - 1;
    END IF;
  END LOOP;
  RETURN v_lo;
END
$$;

-- How many trailing bytes a and b share, at most p_max (so that prefix and suffix never overlap).
CREATE FUNCTION bytes_common_suffix(a bytea, b bytea, p_max integer) RETURNS integer
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  v_la integer := length(a);
  v_lb integer := length(b);
  v_step constant integer := 65536;
  v_lo integer := 0;
  v_hi integer;
  v_mid integer;
BEGIN
  WHILE v_lo + v_step <= p_max
        AND substr(a, v_la - v_lo - v_step + 1, v_step) = substr(b, v_lb - v_lo - v_step + 1, v_step) LOOP
    v_lo := v_lo + v_step;
  END LOOP;
  v_hi := least(v_lo + v_step, p_max);
  WHILE v_lo < v_hi LOOP
    v_mid := (v_lo + v_hi + 1) / 2;
    IF substr(a, v_la - v_mid + 1, v_mid - v_lo) = substr(b, v_lb - v_mid + 1, v_mid - v_lo) THEN
      v_lo := v_mid;
    ELSE
      v_hi := v_mid - 1;
    END IF;
  END LOOP;
  RETURN v_lo;
END
$$;

-- The most deltas a read may apply to reach a version of this size: a read costs about
-- depth x size bytes of copying, kept near 256 MB, and never more than 200 steps.
CREATE FUNCTION history_max_depth(p_size bigint) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN greatest(8, least(200, (268435456 / greatest(p_size, 1))::integer));

-- A file row's body as bytes (text is stored as UTF-8, the only server encoding we accept).
CREATE FUNCTION file_body(p_content text, p_bytes bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce(convert_to(p_content, 'UTF8'), p_bytes);

-- Recording (definer triggers: restricted roles cannot write history themselves) ----------------

-- Stores a whole content under its SHA-256, computed here from the bytes themselves (a caller's
-- hash is never trusted: blobs are shared, and a blob whose key lied would hand one workspace's
-- bytes to another). Returns the hash. An existing blob is touched (its row is updated), which
-- locks it against prune_history's collection until this transaction ends: a blob is never
-- removed under a version that is about to point to it.
CREATE FUNCTION blob_keep(p_data bytea) RETURNS bytea
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  v_hash bytea := sha256(p_data);
BEGIN
  INSERT INTO blobs AS b (hash, data) VALUES (v_hash, p_data)
  ON CONFLICT (hash) DO UPDATE SET hash = b.hash;
  RETURN v_hash;
END
$$;

-- The row of the version a file row holds, as live (its bytes are in `files`). p_change_id is
-- NULL for a change being made (record_change stamps it at commit) and 0 for a version written
-- before history was kept. The bytes of a version never change (files_version_rises), so a
-- second capture of one describes the same bytes.
CREATE FUNCTION history_capture(r files, p_op text, p_change_id bigint, p_at timestamptz) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
  INSERT INTO file_versions AS v (workspace, path, version, op, change_id, at, size, mime_type, is_text, hash, tag)
  VALUES (r.workspace, r.path, r.version, p_op, p_change_id, p_at, r.size, r.mime_type, r.content IS NOT NULL,
          sha256(file_body(r.content, r.bytes)), nullif(current_setting('deepagents_backends.tag', true), ''))
  ON CONFLICT (workspace, path, version, deleted) DO UPDATE
    SET op = excluded.op, change_id = excluded.change_id, at = excluded.at, size = excluded.size,
        mime_type = excluded.mime_type, is_text = excluded.is_text, hash = excluded.hash, tag = excluded.tag,
        blob = NULL, delta_prefix = NULL, delta_suffix = NULL, delta_middle = NULL, depth = 0;
END
$$;

-- The version `o` holds is being replaced by `n` (NULL: deleted or renamed away): keep its bytes,
-- as a reverse delta against n's where that is small and shallow enough, else whole in a blob.
CREATE FUNCTION history_retire(o files, n files) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT SET enable_seqscan = off AS $$
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
$$;

CREATE FUNCTION history_enabled(p_workspace text) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path FROM CURRENT AS $$
BEGIN
  RETURN (history_policy(p_workspace)).enabled;
END
$$;

-- Versions only go up, and the bytes of a version never change: an UPDATE (raw SQL) that changes
-- a file's content or type without raising its version gets the next one, and one that lowers a
-- version is raised back. History keys kept bytes by version; without this, a rewrite that kept
-- its version would leave every older version's reverse delta pointing at bytes that are gone,
-- and a version moved down and up again could be recorded with another version's hash.
CREATE FUNCTION files_version_rises() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
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
$$;

CREATE TRIGGER files_version_rises BEFORE UPDATE ON files
FOR EACH ROW EXECUTE FUNCTION files_version_rises();

-- After each row change of `files`. A rename by raw SQL is a delete of the old name and a create
-- of the new one, as record_change logs it.
CREATE FUNCTION history_record() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
  v_renamed boolean := TG_OP = 'UPDATE' AND (OLD.workspace, OLD.path) IS DISTINCT FROM (NEW.workspace, NEW.path);
  v_old_on boolean := TG_OP <> 'INSERT' AND history_enabled(OLD.workspace);
  v_new_on boolean := CASE WHEN TG_OP = 'DELETE' THEN false
                           WHEN TG_OP = 'UPDATE' AND OLD.workspace = NEW.workspace THEN v_old_on
                           ELSE history_enabled(NEW.workspace) END;
BEGIN
  IF (TG_OP = 'DELETE' OR v_renamed) AND v_old_on THEN
    PERFORM history_retire(OLD, NULL);
    INSERT INTO file_versions (workspace, path, version, deleted, op, size, tag)
    VALUES (OLD.workspace, OLD.path, OLD.version, true, 'delete', OLD.size,
            nullif(current_setting('deepagents_backends.tag', true), ''))
    ON CONFLICT (workspace, path, version, deleted) DO UPDATE
      SET change_id = NULL, at = excluded.at, size = excluded.size, tag = excluded.tag;
  END IF;
  IF NOT v_new_on THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'INSERT' OR v_renamed THEN
    PERFORM history_capture(NEW, 'create', NULL, NEW.modified_at);
  ELSIF NEW.version > OLD.version THEN
    -- (files_version_rises: the bytes of a file never change without a new version)
    PERFORM history_retire(OLD, NEW);
    PERFORM history_capture(NEW, 'update', NULL, NEW.modified_at);
  END IF;
  RETURN NULL;
END
$$;
-- Only the definer trigger writes history: a role calling these itself would write as itself.
REVOKE EXECUTE ON FUNCTION history_record(), history_retire(files, files),
  history_capture(files, text, bigint, timestamptz), blob_keep(bytea) FROM PUBLIC;

CREATE TRIGGER files_history AFTER INSERT OR UPDATE OR DELETE ON files
FOR EACH ROW EXECUTE FUNCTION history_record();

-- 0005's record_change, which now also stamps the history rows of the change with its id.
CREATE OR REPLACE FUNCTION record_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
  v_xact  text := pg_current_xact_id()::text;
  v_first boolean := split_part(coalesce(current_setting('deepagents_backends.first_change', true), ''), '/', 1) <> v_xact;
  v_id    bigint;
  v_id2   bigint;
BEGIN
  PERFORM changes_lock();
  IF TG_OP = 'DELETE' THEN
    INSERT INTO changes (workspace, path, op, version, size)
    VALUES (OLD.workspace, OLD.path, 'delete', OLD.version, OLD.size) RETURNING id INTO v_id;
    UPDATE file_versions v SET change_id = v_id
     WHERE v.workspace = OLD.workspace AND v.path = OLD.path AND v.version = OLD.version AND v.deleted
       AND v.change_id IS NULL;
  ELSIF TG_OP = 'UPDATE' AND (OLD.workspace, OLD.path) IS DISTINCT FROM (NEW.workspace, NEW.path) THEN
    -- A rename (raw SQL): the old name is gone and a new one exists, for watchers and for the
    -- file/directory rule alike.
    INSERT INTO changes (workspace, path, op, version, size)
    VALUES (OLD.workspace, OLD.path, 'delete', OLD.version, OLD.size) RETURNING id INTO v_id;
    INSERT INTO changes (workspace, path, op, version, size)
    VALUES (NEW.workspace, NEW.path, 'create', NEW.version, NEW.size) RETURNING id INTO v_id2;
    UPDATE file_versions v SET change_id = v_id
     WHERE v.workspace = OLD.workspace AND v.path = OLD.path AND v.version = OLD.version AND v.deleted
       AND v.change_id IS NULL;
    UPDATE file_versions v SET change_id = v_id2
     WHERE v.workspace = NEW.workspace AND v.path = NEW.path AND v.version = NEW.version AND NOT v.deleted
       AND v.change_id IS NULL;
  ELSE
    INSERT INTO changes (workspace, path, op, version, size)
    VALUES (NEW.workspace, NEW.path, CASE WHEN TG_OP = 'INSERT' THEN 'create' ELSE 'update' END, NEW.version, NEW.size)
    RETURNING id INTO v_id;
    UPDATE file_versions v SET change_id = v_id
     WHERE v.workspace = NEW.workspace AND v.path = NEW.path AND v.version = NEW.version AND NOT v.deleted
       AND v.change_id IS NULL;
  END IF;
  IF v_first THEN
    PERFORM set_config('deepagents_backends.first_change', v_xact || '/' || v_id, true);
  END IF;
  RETURN NULL;
END
$$;

-- Reading ---------------------------------------------------------------------------------------
-- These run with the caller's rights: row-level security decides what they can see.

-- The bytes of one version of a path (NULL: no such version is kept). Walks the reverse deltas up
-- to the first whole copy -- a blob, or the live file -- and applies them newest first.
CREATE FUNCTION version_data(p_workspace text, p_path text, p_version bigint) RETURNS bytea
LANGUAGE plpgsql STABLE SET search_path FROM CURRENT AS $$
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
$$;

-- A path's versions, oldest first, with the deletions between them.
CREATE FUNCTION fs_history(p_workspace text, p_path text)
RETURNS TABLE (version bigint, op text, change_id bigint, size bigint, mime_type text, at timestamptz, tag text)
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
  SELECT v.version, v.op, v.change_id, v.size, v.mime_type, v.at, v.tag
  FROM file_versions v
  WHERE v.workspace = p_workspace AND v.path = p_path
  ORDER BY v.version, v.deleted
$$;

-- One version, read as fs_read reads a file: binary whole, text as a window of lines.
CREATE FUNCTION fs_read_version(p_workspace text, p_path text, p_version bigint, p_offset integer, p_limit integer)
RETURNS TABLE (mime_type text, bytes bytea, total_lines integer, window_text text, window_lines integer)
LANGUAGE plpgsql STABLE SET search_path FROM CURRENT AS $$
DECLARE
  v file_versions;
  v_data bytea;
  v_text text;
BEGIN
  SELECT * INTO v FROM file_versions fv
  WHERE fv.workspace = p_workspace AND fv.path = p_path AND fv.version = p_version AND NOT fv.deleted;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  v_data := version_data(p_workspace, p_path, p_version);
  IF NOT v.is_text THEN
    RETURN QUERY SELECT v.mime_type, v_data, 0, NULL::text, 0;
    RETURN;
  END IF;
  v_text := convert_from(v_data, 'UTF8');
  RETURN QUERY
    SELECT v.mime_type, NULL::bytea, text_line_count(v_text), string_agg(l.line, E'\n' ORDER BY l.n), count(*)::integer
    FROM chunk_lines(v_text) l
    WHERE l.n > p_offset AND l.n <= p_offset::bigint + p_limit;
END
$$;

-- The change id a checkpoint taken now would hold: the workspace's newest committed change, or,
-- when pruneChanges removed all of them, the horizon it cut the log at (0 would put the
-- checkpoint before files that exist).
CREATE FUNCTION history_head(p_workspace text) RETURNS bigint
LANGUAGE sql STABLE SET search_path FROM CURRENT
RETURN greatest((SELECT max(c.id) FROM changes c WHERE c.workspace = p_workspace),
                (SELECT h.pruned_to FROM changes_horizon h WHERE h.workspace = p_workspace), 0);

CREATE FUNCTION fs_checkpoint(p_workspace text, p_label text, p_tag text)
RETURNS TABLE (id bigint, change_id bigint, created_at timestamptz)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
  IF NOT history_enabled(p_workspace) THEN
    RAISE EXCEPTION 'history is off for workspace "%": a checkpoint could not be rewound to', p_workspace
      USING ERRCODE = 'DA011';
  END IF;
  RETURN QUERY
    INSERT INTO checkpoints AS c (workspace, change_id, label, tag)
    VALUES (p_workspace, history_head(p_workspace), p_label, p_tag)
    RETURNING c.id, c.change_id, c.created_at;
END
$$;

CREATE FUNCTION fs_checkpoints(p_workspace text)
RETURNS TABLE (id bigint, change_id bigint, label text, tag text, created_at timestamptz)
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
  SELECT c.id, c.change_id, c.label, c.tag, c.created_at FROM checkpoints c
  WHERE c.workspace = p_workspace ORDER BY c.id
$$;

CREATE FUNCTION fs_delete_checkpoint(p_workspace text, p_id bigint) RETURNS boolean
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
  DELETE FROM checkpoints c WHERE c.workspace = p_workspace AND c.id = p_id;
  RETURN FOUND;
END
$$;

-- Two states of a workspace's files, compared: at change id p_from and at p_to (NULL: now, as
-- `files` holds it), for the paths changed in between -- under p_scope (NULL: all; a path names
-- itself and everything below it). Each row has both sides; a missing side has NULL version.
CREATE FUNCTION history_compare(p_workspace text, p_from bigint, p_to bigint, p_scope text[])
RETURNS TABLE (path text, from_version bigint, from_size bigint, from_hash bytea, from_mime text,
               to_version bigint, to_size bigint, to_hash bytea, to_mime text)
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
  WITH touched AS (
    SELECT DISTINCT c.path FROM changes c
    WHERE c.workspace = p_workspace
      AND c.id > least(p_from, coalesce(p_to, p_from))
      AND (p_to IS NULL OR c.id <= greatest(p_from, p_to))
      AND (p_scope IS NULL OR EXISTS (SELECT 1 FROM unnest(p_scope) s(p)
                                      WHERE s.p = '/' OR c.path = s.p OR left(c.path, length(s.p) + 1) = s.p || '/'))
  ), states AS (
    SELECT t.path, a.version AS from_version, a.size AS from_size, a.hash AS from_hash, a.mime_type AS from_mime,
           b.version AS to_version, b.size AS to_size, b.hash AS to_hash, b.mime_type AS to_mime
    FROM touched t
    LEFT JOIN LATERAL (
      SELECT s.* FROM (SELECT v.version, v.deleted, v.size, v.hash, v.mime_type FROM file_versions v
                       WHERE v.workspace = p_workspace AND v.path = t.path AND v.change_id <= p_from
                       ORDER BY v.change_id DESC LIMIT 1) s
      WHERE NOT s.deleted
    ) a ON true
    LEFT JOIN LATERAL (
      SELECT s.* FROM (SELECT v.version, v.deleted, v.size, v.hash, v.mime_type FROM file_versions v
                       WHERE v.workspace = p_workspace AND v.path = t.path AND v.change_id <= p_to
                       ORDER BY v.change_id DESC LIMIT 1) s
      WHERE NOT s.deleted AND p_to IS NOT NULL
      UNION ALL
      SELECT f.version, false, f.size, v.hash, f.mime_type FROM files f
      JOIN file_versions v ON v.workspace = f.workspace AND v.path = f.path AND v.version = f.version AND NOT v.deleted
      WHERE p_to IS NULL AND f.workspace = p_workspace AND f.path = t.path
    ) b ON true
  )
  SELECT * FROM states s
  WHERE (s.from_hash, s.from_mime) IS DISTINCT FROM (s.to_hash, s.to_mime)
  ORDER BY s.path
$$;

CREATE FUNCTION checkpoint_position(p_workspace text, p_id bigint) RETURNS bigint
LANGUAGE plpgsql STABLE SET search_path FROM CURRENT AS $$
DECLARE
  v_change bigint;
BEGIN
  SELECT c.change_id INTO v_change FROM checkpoints c WHERE c.workspace = p_workspace AND c.id = p_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'checkpoint % does not exist in workspace "%"', p_id, p_workspace
      USING ERRCODE = 'DA012', DETAIL = p_id::text;
  END IF;
  RETURN v_change;
END
$$;

-- What changed from checkpoint p_from to checkpoint p_to (NULL: now): one row per path.
CREATE FUNCTION fs_diff(p_workspace text, p_from bigint, p_to bigint, p_scope text[])
RETURNS TABLE (path text, op text, from_version bigint, from_size bigint, to_version bigint, to_size bigint,
               binary_change boolean)
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
  SELECT d.path,
         CASE WHEN d.from_version IS NULL THEN 'created' WHEN d.to_version IS NULL THEN 'deleted' ELSE 'updated' END,
         d.from_version, d.from_size, d.to_version, d.to_size,
         coalesce(d.from_mime, d.to_mime) IS NOT NULL AND NOT coalesce(
           (SELECT bool_and(v.is_text) FROM file_versions v WHERE v.workspace = p_workspace AND v.path = d.path
              AND NOT v.deleted AND v.version IN (d.from_version, d.to_version)), true)
  FROM history_compare(p_workspace, checkpoint_position(p_workspace, p_from),
                       CASE WHEN p_to IS NULL THEN NULL ELSE checkpoint_position(p_workspace, p_to) END, p_scope) d
$$;

-- Puts the files under p_scope (NULL: the whole workspace) back as they were at checkpoint p_id:
-- one ordinary write per path that differs, in path order, in this transaction -- so watchers
-- see them, history keeps them, and the file/directory rule is checked at commit as for any
-- write. Before the first write it takes a checkpoint (undo_checkpoint in every row): rewinding to
-- it undoes the rewind. p_dry_run: only report. A row per path: op is what the rewind does to it
-- (created, updated, deleted), with the version and size before, the version restored and its
-- size, and the version written (NULL for a delete or a dry run).
CREATE FUNCTION fs_rewind(p_workspace text, p_id bigint, p_scope text[], p_dry_run boolean)
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

-- Writes version p_version of a path (deleted or not) as its newest version, through fs_write:
-- the same checks, statuses and change as a write; 'no_version' when that version is not kept.
CREATE FUNCTION fs_restore(p_workspace text, p_path text, p_version bigint, p_if_version bigint)
RETURNS TABLE (status text, version bigint, conflict text)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  v file_versions;
  v_data bytea;
BEGIN
  SELECT * INTO v FROM file_versions fv
  WHERE fv.workspace = p_workspace AND fv.path = p_path AND fv.version = p_version AND NOT fv.deleted;
  IF NOT FOUND THEN
    RETURN QUERY SELECT 'no_version'::text, 0::bigint, NULL::text;
    RETURN;
  END IF;
  v_data := version_data(p_workspace, p_path, p_version);
  RETURN QUERY
    SELECT w.status, w.version, w.conflict
    FROM fs_write(p_workspace, p_path, CASE WHEN v.is_text THEN convert_from(v_data, 'UTF8') END,
                  CASE WHEN NOT v.is_text THEN v_data END, v.mime_type, p_if_version) w;
END
$$;

-- 0002's prune_changes, which now keeps every change after a workspace's oldest checkpoint:
-- diff and rewind read from the change log which paths changed since a checkpoint.
CREATE OR REPLACE FUNCTION prune_changes(p_older_than interval DEFAULT NULL, p_keep integer DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  v_count bigint;
BEGIN
  WITH doomed AS (
    SELECT c.workspace, c.id FROM changes c
    WHERE ((p_older_than IS NOT NULL AND c.at < clock_timestamp() - p_older_than)
           OR (p_keep IS NOT NULL AND c.id <= (SELECT k.id FROM changes k WHERE k.workspace = c.workspace
                                               ORDER BY k.id DESC OFFSET p_keep LIMIT 1)))
      AND NOT EXISTS (SELECT 1 FROM checkpoints k WHERE k.workspace = c.workspace AND k.change_id < c.id)
  ), deleted AS (
    DELETE FROM changes c USING doomed d WHERE c.id = d.id RETURNING c.workspace, c.id
  ), horizon AS (
    INSERT INTO changes_horizon AS h (workspace, pruned_to)
    SELECT workspace, max(id) FROM deleted GROUP BY workspace
    ON CONFLICT (workspace) DO UPDATE SET pruned_to = greatest(h.pruned_to, excluded.pruned_to)
  )
  SELECT count(*) INTO v_count FROM deleted;
  RETURN v_count;
END
$$;

-- Retention (the owner's: EXECUTE revoked from PUBLIC) ----------------------------------------

-- Drops the blobs no version points to. A blob a writer is keeping right now is locked by its
-- blob_keep and skipped; one kept and committed since this statement's snapshot is seen by the
-- DELETE's own (newer) snapshot.
CREATE FUNCTION history_collect_blobs() RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  v_free bytea[];
  v_count bigint;
BEGIN
  SELECT coalesce(array_agg(s.hash), '{}') INTO v_free FROM (
    SELECT b.hash FROM blobs b
    WHERE NOT EXISTS (SELECT 1 FROM file_versions v WHERE v.blob = b.hash)
    FOR UPDATE SKIP LOCKED
  ) s;
  DELETE FROM blobs b
  WHERE b.hash = ANY (v_free) AND NOT EXISTS (SELECT 1 FROM file_versions v WHERE v.blob = b.hash);
  GET DIAGNOSTICS v_count = ROW_COUNT;
  RETURN v_count;
END
$$;

-- Applies the retention of history_settings to one workspace (NULL: all). Never pruned: a file's
-- current version, and for each checkpoint the state of every path at it. A version kept whose
-- next one goes is first made whole (its reverse delta would have nothing to apply to).
CREATE FUNCTION prune_history(p_workspace text)
RETURNS TABLE (versions bigint, blobs bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  v_ws text[]; v_paths text[]; v_versions bigint[]; v_deleted boolean[];
  r record;
  v_hash bytea;
BEGIN
  -- One pruner at a time: two would each make whole a version from a chain the other cuts.
  PERFORM pg_advisory_xact_lock(hashtext('deepagents-backends:prune-history:' || current_schema()));
  SELECT coalesce(array_agg(d.workspace), '{}'), coalesce(array_agg(d.path), '{}'),
         coalesce(array_agg(d.version), '{}'), coalesce(array_agg(d.deleted), '{}')
    INTO v_ws, v_paths, v_versions, v_deleted
  FROM (
    WITH policies AS (
      SELECT w.workspace, p.keep_versions, p.keep_days
      FROM (SELECT DISTINCT v.workspace FROM file_versions v
            WHERE p_workspace IS NULL OR v.workspace = p_workspace) w
      CROSS JOIN LATERAL history_policy(w.workspace) p
    )
    SELECT v.workspace, v.path, v.version, v.deleted, v.change_id, v.at,
           dense_rank() OVER (PARTITION BY v.workspace, v.path ORDER BY v.version DESC) AS newness,
           p.keep_versions, p.keep_days
    FROM file_versions v
    JOIN policies p ON p.workspace = v.workspace
    WHERE v.change_id IS NOT NULL
  ) d
  WHERE (d.keep_versions IS NOT NULL OR d.keep_days IS NOT NULL)
    AND NOT coalesce(d.newness <= d.keep_versions, false)
    AND NOT coalesce(d.at > clock_timestamp() - make_interval(days => d.keep_days), false)
    AND NOT EXISTS (SELECT 1 FROM files f WHERE f.workspace = d.workspace AND f.path = d.path
                    AND f.version = d.version AND NOT d.deleted)
    AND NOT EXISTS (
      SELECT 1 FROM checkpoints k
      WHERE k.workspace = d.workspace AND d.change_id <= k.change_id
        AND NOT EXISTS (SELECT 1 FROM file_versions w
                        WHERE w.workspace = d.workspace AND w.path = d.path
                          AND w.change_id > d.change_id AND w.change_id <= k.change_id));

  -- Kept deltas whose next version (the next kept one: raw SQL may leave gaps) goes: made whole
  -- first.
  FOR r IN
    SELECT k.workspace, k.path, k.version FROM file_versions k
    JOIN unnest(v_ws, v_paths, v_versions, v_deleted) AS g(workspace, path, version, deleted)
      ON g.workspace = k.workspace AND g.path = k.path COLLATE "C" AND NOT g.deleted
     AND g.version = (SELECT min(s.version) FROM file_versions s
                      WHERE s.workspace = k.workspace AND s.path = k.path AND s.version > k.version AND NOT s.deleted)
    WHERE NOT k.deleted AND k.delta_middle IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM unnest(v_ws, v_paths, v_versions, v_deleted) AS x(workspace, path, version, deleted)
                      WHERE x.workspace = k.workspace AND x.path = k.path COLLATE "C" AND x.version = k.version
                        AND NOT x.deleted)
  LOOP
    v_hash := blob_keep(version_data(r.workspace, r.path, r.version));
    UPDATE file_versions k
       SET blob = v_hash, delta_prefix = NULL, delta_suffix = NULL, delta_middle = NULL, depth = 0
     WHERE k.workspace = r.workspace AND k.path = r.path AND k.version = r.version AND NOT k.deleted;
  END LOOP;

  DELETE FROM file_versions k
  USING unnest(v_ws, v_paths, v_versions, v_deleted) AS g(workspace, path, version, deleted)
  WHERE k.workspace = g.workspace AND k.path = g.path COLLATE "C" AND k.version = g.version AND k.deleted = g.deleted;
  GET DIAGNOSTICS versions = ROW_COUNT;
  blobs := history_collect_blobs();
  RETURN NEXT;
END
$$;

-- Sets history on or off and its retention, for the schema (p_scope '') or one workspace (NULL
-- arguments: take the schema's). Turning history off for a workspace drops its history and
-- checkpoints: versions written while it is off are not kept, so neither could be rewound to
-- faithfully afterwards.
CREATE FUNCTION set_history(p_scope text, p_enabled boolean, p_keep_versions integer, p_keep_days integer)
RETURNS TABLE (versions bigint, checkpoints bigint, blobs bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
  IF p_scope = '' AND p_enabled IS NULL THEN
    RAISE EXCEPTION 'the schema''s history setting must say on or off' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF p_scope <> '' AND p_enabled IS NULL AND p_keep_versions IS NULL AND p_keep_days IS NULL THEN
    DELETE FROM history_settings s WHERE s.scope = p_scope;
  ELSE
    INSERT INTO history_settings AS s (scope, enabled, keep_versions, keep_days)
    VALUES (p_scope, p_enabled, p_keep_versions, p_keep_days)
    ON CONFLICT (scope) DO UPDATE
      SET enabled = excluded.enabled, keep_versions = excluded.keep_versions, keep_days = excluded.keep_days;
  END IF;
  -- Writers of the workspaces turned off may be recording right now: wait for them (the prune
  -- lock is not theirs; their rows are), then drop what they and earlier ones recorded.
  PERFORM pg_advisory_xact_lock(hashtext('deepagents-backends:prune-history:' || current_schema()));
  DELETE FROM file_versions v WHERE (p_scope = '' OR v.workspace = p_scope) AND NOT history_enabled(v.workspace);
  GET DIAGNOSTICS versions = ROW_COUNT;
  DELETE FROM checkpoints c WHERE (p_scope = '' OR c.workspace = p_scope) AND NOT history_enabled(c.workspace);
  GET DIAGNOSTICS checkpoints = ROW_COUNT;
  blobs := history_collect_blobs();
  RETURN NEXT;
END
$$;

REVOKE EXECUTE ON FUNCTION history_collect_blobs(), prune_history(text),
  set_history(text, boolean, integer, integer) FROM PUBLIC;

-- Grants (0004's helpers, now also over the history tables) -------------------------------------

CREATE OR REPLACE FUNCTION grant_workspace(p_role name, p_workspace text) RETURNS boolean
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
  PERFORM history_grant(p_role);
  INSERT INTO workspace_grants (role_name, workspace) VALUES (p_role, p_workspace) ON CONFLICT DO NOTHING;
  RETURN FOUND;
END
$$;

CREATE FUNCTION history_grant(p_role name) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  v_schema text := current_schema();
BEGIN
  EXECUTE format('GRANT SELECT ON %I.file_versions, %I.blobs, %I.history_settings TO %I',
                 v_schema, v_schema, v_schema, p_role);
  EXECUTE format('GRANT SELECT, INSERT, DELETE ON %I.checkpoints TO %I', v_schema, p_role);
END
$$;

CREATE OR REPLACE FUNCTION revoke_workspace(p_role name, p_workspace text) RETURNS boolean
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  v_schema text := current_schema();
  v_removed boolean;
BEGIN
  DELETE FROM workspace_grants g WHERE g.role_name = p_role AND g.workspace IS NOT DISTINCT FROM p_workspace;
  v_removed := FOUND;
  IF NOT EXISTS (SELECT 1 FROM workspace_grants g WHERE g.role_name = p_role)
     AND EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = p_role) THEN
    EXECUTE format('REVOKE ALL ON %I.files, %I.chunks, %I.changes, %I.changes_horizon, %I.migrations, '
                   '%I.file_versions, %I.blobs, %I.history_settings, %I.checkpoints FROM %I',
                   v_schema, v_schema, v_schema, v_schema, v_schema, v_schema, v_schema, v_schema, v_schema, p_role);
    EXECUTE format('REVOKE USAGE ON SCHEMA %I FROM %I', v_schema, p_role);
  END IF;
  RETURN v_removed;
END
$$;
REVOKE EXECUTE ON FUNCTION history_grant(name) FROM PUBLIC;

-- Roles granted before this version get the history tables too.
SELECT history_grant(g.role_name) FROM (SELECT DISTINCT role_name FROM workspace_grants) g
WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = g.role_name);

-- Down Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;

-- 0005's record_change, grant_workspace and revoke_workspace (the live ones before this version).
CREATE OR REPLACE FUNCTION record_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
  v_xact  text := pg_current_xact_id()::text;
  v_first boolean := split_part(coalesce(current_setting('deepagents_backends.first_change', true), ''), '/', 1) <> v_xact;
  v_id    bigint;
BEGIN
  PERFORM changes_lock();
  IF TG_OP = 'DELETE' THEN
    INSERT INTO changes (workspace, path, op, version, size)
    VALUES (OLD.workspace, OLD.path, 'delete', OLD.version, OLD.size) RETURNING id INTO v_id;
  ELSIF TG_OP = 'UPDATE' AND (OLD.workspace, OLD.path) IS DISTINCT FROM (NEW.workspace, NEW.path) THEN
    -- A rename (raw SQL): the old name is gone and a new one exists, for watchers and for the
    -- file/directory rule alike.
    INSERT INTO changes (workspace, path, op, version, size)
    VALUES (OLD.workspace, OLD.path, 'delete', OLD.version, OLD.size) RETURNING id INTO v_id;
    INSERT INTO changes (workspace, path, op, version, size)
    VALUES (NEW.workspace, NEW.path, 'create', NEW.version, NEW.size);
  ELSE
    INSERT INTO changes (workspace, path, op, version, size)
    VALUES (NEW.workspace, NEW.path, CASE WHEN TG_OP = 'INSERT' THEN 'create' ELSE 'update' END, NEW.version, NEW.size)
    RETURNING id INTO v_id;
  END IF;
  IF v_first THEN
    PERFORM set_config('deepagents_backends.first_change', v_xact || '/' || v_id, true);
  END IF;
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION grant_workspace(p_role name, p_workspace text) RETURNS boolean
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

CREATE OR REPLACE FUNCTION revoke_workspace(p_role name, p_workspace text) RETURNS boolean
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

CREATE OR REPLACE FUNCTION prune_changes(p_older_than interval DEFAULT NULL, p_keep integer DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  v_count bigint;
BEGIN
  WITH doomed AS (
    SELECT c.workspace, c.id FROM changes c
    WHERE (p_older_than IS NOT NULL AND c.at < clock_timestamp() - p_older_than)
       OR (p_keep IS NOT NULL AND c.id <= (SELECT k.id FROM changes k WHERE k.workspace = c.workspace
                                           ORDER BY k.id DESC OFFSET p_keep LIMIT 1))
  ), deleted AS (
    DELETE FROM changes c USING doomed d WHERE c.id = d.id RETURNING c.workspace, c.id
  ), horizon AS (
    INSERT INTO changes_horizon AS h (workspace, pruned_to)
    SELECT workspace, max(id) FROM deleted GROUP BY workspace
    ON CONFLICT (workspace) DO UPDATE SET pruned_to = greatest(h.pruned_to, excluded.pruned_to)
  )
  SELECT count(*) INTO v_count FROM deleted;
  RETURN v_count;
END
$$;

DROP FUNCTION history_grant(name);
DROP FUNCTION set_history(text, boolean, integer, integer);
DROP FUNCTION prune_history(text);
DROP FUNCTION history_collect_blobs();
DROP FUNCTION fs_restore(text, text, bigint, bigint);
DROP FUNCTION fs_rewind(text, bigint, text[], boolean);
DROP FUNCTION fs_diff(text, bigint, bigint, text[]);
DROP FUNCTION checkpoint_position(text, bigint);
DROP FUNCTION history_compare(text, bigint, bigint, text[]);
DROP FUNCTION fs_delete_checkpoint(text, bigint);
DROP FUNCTION fs_checkpoints(text);
DROP FUNCTION fs_checkpoint(text, text, text);
DROP FUNCTION history_head(text);
DROP FUNCTION fs_read_version(text, text, bigint, integer, integer);
DROP FUNCTION fs_history(text, text);
DROP FUNCTION version_data(text, text, bigint);
DROP TRIGGER files_history ON files;
DROP TRIGGER files_version_rises ON files;
DROP FUNCTION files_version_rises();
DROP FUNCTION history_record();
DROP FUNCTION history_enabled(text);
DROP FUNCTION history_retire(files, files);
DROP FUNCTION history_capture(files, text, bigint, timestamptz);
DROP FUNCTION blob_keep(bytea);
DROP FUNCTION file_body(text, bytea);
DROP FUNCTION history_max_depth(bigint);
DROP FUNCTION bytes_common_suffix(bytea, bytea, integer);
DROP FUNCTION bytes_common_prefix(bytea, bytea);
DROP FUNCTION history_policy(text);
DROP POLICY blobs_referenced ON blobs; -- it reads file_versions
DROP TABLE history_settings;
DROP TABLE checkpoints;
DROP TABLE file_versions;
DROP TABLE blobs;
