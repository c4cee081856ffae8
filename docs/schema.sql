-- deepagents-backends: the database schema after migration 0030_flush_one_workspace_lock_inline.
--
-- GENERATED FILE, do not edit: `npm run schema` (scripts/schema.ts) writes it from the catalogs of
-- a freshly migrated schema. test/schema.test.ts and `npm run schema -- --check` fail when it is
-- out of date.
-- Documentation only: migrations/ is what installs the schema (node-pg-migrate, run by
-- src/postgres/migrate.ts). Nothing loads this file, and it is not meant to be run: statements are
-- grouped by kind and sorted by name, not in an order PostgreSQL could replay.
--
-- Placeholders:
--   deepagents           the schema migrated into (MigrateOptions.schema, default "deepagents")
--   @extschema:pg_trgm@  the schema pg_trgm lives in (public, or extensions: sql/pg_trgm_home.sql)
--   :"owner"             the role that ran the migrations, which owns every object below
--
-- Included: node-pg-migrate's own table `migrations`, which lives in this schema (grant_workspace()
-- gives SELECT on it). Not included: pg_trgm's objects; the owner's own privileges; the grants
-- grant_workspace() makes at run time (src/postgres/rls.ts).

-- Schema -----------------------------------------------------------------------------------------

CREATE SCHEMA deepagents;

-- Tables (PostgreSQL 18 also lists each NOT NULL as a constraint <table>_<column>_not_null) ------

CREATE TABLE deepagents.blobs (
  hash bytea NOT NULL,
  data bytea NOT NULL,
  CONSTRAINT blobs_pkey PRIMARY KEY (hash)
);

CREATE TABLE deepagents.changes (
  id bigint DEFAULT nextval('deepagents.changes_id_seq'::regclass) NOT NULL,
  workspace text NOT NULL,
  path text COLLATE "C" NOT NULL,
  op text NOT NULL,
  version bigint NOT NULL,
  size bigint NOT NULL,
  at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
  moved text COLLATE "C",
  CONSTRAINT changes_op_check CHECK ((op = ANY (ARRAY['create'::text, 'update'::text, 'delete'::text]))),
  CONSTRAINT changes_pkey PRIMARY KEY (id)
);

CREATE UNLOGGED TABLE deepagents.changes_flush (
  xact xid8 NOT NULL,
  CONSTRAINT changes_flush_pkey PRIMARY KEY (xact)
);

CREATE TABLE deepagents.changes_horizon (
  workspace text NOT NULL,
  pruned_to bigint NOT NULL,
  CONSTRAINT changes_horizon_pkey PRIMARY KEY (workspace)
);

CREATE UNLOGGED TABLE deepagents.changes_pending (
  xact xid8 DEFAULT pg_current_xact_id() NOT NULL,
  seq bigint GENERATED ALWAYS AS IDENTITY NOT NULL,
  workspace text NOT NULL,
  path text COLLATE "C" NOT NULL,
  op text NOT NULL,
  version bigint NOT NULL,
  size bigint NOT NULL,
  moved text COLLATE "C"
);

CREATE TABLE deepagents.checkpoints (
  id bigint GENERATED ALWAYS AS IDENTITY NOT NULL,
  workspace text NOT NULL,
  change_id bigint NOT NULL,
  label text,
  tag text,
  created_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
  CONSTRAINT checkpoints_pkey PRIMARY KEY (id)
);

CREATE TABLE deepagents.chunks (
  chunk_set bigint NOT NULL,
  first_line integer NOT NULL,
  line_count integer NOT NULL,
  content text NOT NULL,
  CONSTRAINT chunks_pkey PRIMARY KEY (chunk_set, first_line)
) WITH (toast_tuple_target=128);

CREATE TABLE deepagents.directories (
  workspace text NOT NULL,
  path text COLLATE "C" NOT NULL,
  created_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
  CONSTRAINT directories_path_shape CHECK ((("left"(path, 1) = '/'::text) AND ("right"(path, 1) <> '/'::text) AND (strpos(path, '//'::text) = 0))),
  CONSTRAINT directories_pkey PRIMARY KEY (workspace, path)
);

CREATE TABLE deepagents.file_versions (
  workspace text NOT NULL,
  path text COLLATE "C" NOT NULL,
  version bigint NOT NULL,
  deleted boolean DEFAULT false NOT NULL,
  op text NOT NULL,
  change_id bigint,
  at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
  size bigint NOT NULL,
  mime_type text,
  is_text boolean,
  hash bytea,
  tag text,
  blob bytea,
  delta_prefix integer,
  delta_suffix integer,
  delta_middle bytea,
  depth integer DEFAULT 0 NOT NULL,
  moved text COLLATE "C",
  CONSTRAINT file_versions_body CHECK (((deleted = (hash IS NULL)) AND ((blob IS NULL) OR (delta_middle IS NULL)) AND ((delta_middle IS NULL) = (delta_prefix IS NULL)) AND ((delta_middle IS NULL) = (delta_suffix IS NULL)) AND ((NOT deleted) OR ((blob IS NULL) AND (delta_middle IS NULL))))),
  CONSTRAINT file_versions_op_check CHECK ((op = ANY (ARRAY['create'::text, 'update'::text, 'delete'::text]))),
  CONSTRAINT file_versions_pkey PRIMARY KEY (workspace, path, version, deleted)
) WITH (fillfactor=80);

CREATE TABLE deepagents.files (
  workspace text NOT NULL,
  path text COLLATE "C" NOT NULL,
  parent text COLLATE "C" GENERATED ALWAYS AS (regexp_replace(path, '[^/]*$'::text, ''::text)) STORED NOT NULL,
  content text,
  bytes bytea,
  mime_type text NOT NULL,
  size bigint NOT NULL,
  line_count integer NOT NULL,
  version bigint DEFAULT 1 NOT NULL,
  created_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
  modified_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
  chunk_set bigint,
  hash bytea NOT NULL,
  CONSTRAINT files_body CHECK ((((bytes IS NULL) <> (chunk_set IS NULL)) AND ((content IS NULL) OR (chunk_set IS NOT NULL)))),
  CONSTRAINT files_path_shape CHECK ((("left"(path, 1) = '/'::text) AND ("right"(path, 1) <> '/'::text) AND (strpos(path, '//'::text) = 0))),
  CONSTRAINT files_pkey PRIMARY KEY (workspace, path)
);

CREATE UNLOGGED TABLE deepagents.fork_marks (
  xact xid8 DEFAULT pg_current_xact_id() NOT NULL,
  workspace text NOT NULL,
  CONSTRAINT fork_marks_pkey PRIMARY KEY (xact, workspace)
);

CREATE TABLE deepagents.history_settings (
  scope text NOT NULL,
  enabled boolean,
  keep_versions integer,
  keep_days integer,
  CONSTRAINT history_settings_keep_days_check CHECK ((keep_days >= 1)),
  CONSTRAINT history_settings_keep_versions_check CHECK ((keep_versions >= 1)),
  CONSTRAINT history_settings_pkey PRIMARY KEY (scope)
);

CREATE TABLE deepagents.migrations (
  id integer DEFAULT nextval('deepagents.migrations_id_seq'::regclass) NOT NULL,
  name character varying(255) NOT NULL,
  run_on timestamp without time zone NOT NULL,
  CONSTRAINT migrations_pkey PRIMARY KEY (id)
);

CREATE TABLE deepagents.tombstones (
  workspace text NOT NULL,
  path text COLLATE "C" NOT NULL,
  version bigint NOT NULL,
  CONSTRAINT tombstones_pkey PRIMARY KEY (workspace, path)
);

CREATE TABLE deepagents.workspace_grants (
  role_name name NOT NULL,
  workspace text,
  granted_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL
);

-- Sequences --------------------------------------------------------------------------------------

CREATE SEQUENCE deepagents.changes_id_seq
  AS bigint START WITH 1 INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 CACHE 1
  OWNED BY deepagents.changes.id;

CREATE SEQUENCE deepagents.chunk_sets
  AS bigint START WITH 1 INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 CACHE 1;

CREATE SEQUENCE deepagents.migrations_id_seq
  AS integer START WITH 1 INCREMENT BY 1 MINVALUE 1 MAXVALUE 2147483647 CACHE 1
  OWNED BY deepagents.migrations.id;

-- Indexes (those of primary keys and unique constraints are their constraints, above) ------------

CREATE INDEX changes_pending_xact_idx ON deepagents.changes_pending USING btree (xact, seq);

CREATE INDEX changes_workspace_id_idx ON deepagents.changes USING btree (workspace, id);

CREATE INDEX checkpoints_workspace_idx ON deepagents.checkpoints USING btree (workspace, id);

CREATE INDEX chunks_content_trgm_idx ON deepagents.chunks USING gin (content @extschema:pg_trgm@.gin_trgm_ops);

CREATE INDEX file_versions_blob_idx ON deepagents.file_versions USING btree (blob) WHERE (blob IS NOT NULL);

CREATE INDEX files_chunk_set_idx ON deepagents.files USING btree (chunk_set);

CREATE INDEX files_parent_idx ON deepagents.files USING btree (workspace, parent, path);

CREATE UNIQUE INDEX workspace_grants_role_all_idx ON deepagents.workspace_grants USING btree (role_name) WHERE (workspace IS NULL);

CREATE UNIQUE INDEX workspace_grants_role_workspace_idx ON deepagents.workspace_grants USING btree (role_name, workspace) WHERE (workspace IS NOT NULL);

-- Functions --------------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION deepagents.blob_keep(p_data bytea)
 RETURNS bytea
 LANGUAGE plpgsql
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
DECLARE
  v_hash bytea := sha256(p_data);
BEGIN
  INSERT INTO blobs AS b (hash, data) VALUES (v_hash, p_data)
  ON CONFLICT (hash) DO UPDATE SET hash = b.hash;
  RETURN v_hash;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.bytes_common_prefix(a bytea, b bytea)
 RETURNS integer
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE STRICT
AS $function$
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
$function$;

CREATE OR REPLACE FUNCTION deepagents.bytes_common_suffix(a bytea, b bytea, p_max integer)
 RETURNS integer
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE STRICT
AS $function$
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
$function$;

CREATE OR REPLACE FUNCTION deepagents.changes_channel(p_workspace text)
 RETURNS text
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'deepagents', 'pg_temp'
AS $function$
BEGIN
  -- The schema's name (cut to 20 characters: NOTIFY channels are identifiers, 63 bytes at most)
  -- and a digest of schema and workspace: a workspace's own channel, whatever its name.
  RETURN left(current_schema()::text, 20) || '.changes.'
         || left(encode(sha256(convert_to(current_schema()::text || E'\n' || p_workspace, 'UTF8')), 'hex'), 32);
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.changes_flush_now()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
DECLARE
  v_ids bigint[];
  v_workspaces text[];
  v_paths text[] COLLATE "C"; -- (as changes.path: compared with files.path below)
  v_ops text[];
  v_bad record;
  v_note record;
  v_forked text[];
  v_horizons bigint[];
  v_with_dirs text[];
  v_staged record;
  v_key integer;
BEGIN
  DELETE FROM changes_flush f WHERE f.xact = NEW.xact;
  -- What was staged: the workspaces, and which kinds of rows, so that a commit runs only the
  -- statements it needs (most change files and create none: no directory, horizon or tree check).
  SELECT array_agg(DISTINCT p.workspace) AS workspaces, bool_or(p.op = 'directory') AS directories,
         bool_or(p.op = 'horizon') AS horizons, bool_or(p.op = 'create') AS creates
    INTO v_staged
  FROM changes_pending p WHERE p.xact = NEW.xact;
  -- The commit-order locks of every workspace staged (changes, forks' horizons, directories),
  -- before any id is drawn.
  -- One workspace (most commits): changes_lock(text[])'s two locks, taken here with the same
  -- keys, without calling it (a call of a function with settings of its own: 15-20 us of every
  -- commit's 125).
  IF cardinality(v_staged.workspaces) = 1 THEN
    v_key := hashtext('deepagents-backends:changes:' || current_schema());
    PERFORM pg_advisory_xact_lock_shared(v_key);
    PERFORM pg_advisory_xact_lock(v_key, hashtext(v_staged.workspaces[1]));
  ELSE
    PERFORM changes_lock(v_staged.workspaces);
  END IF;
  -- New directory rows still there (0027's directories_check): no file has the directory's path
  -- or lies above it. Committed files cannot appear meanwhile: their commit waits for the lock.
  IF v_staged.directories THEN
    WITH made AS (
      DELETE FROM changes_pending p WHERE p.xact = NEW.xact AND p.op = 'directory' RETURNING p.seq, p.workspace, p.path
    )
    SELECT m.path, b.file INTO v_bad
    FROM made m
    CROSS JOIN LATERAL (
      SELECT a.dir AS file FROM unnest(path_ancestors(m.path) || m.path::text) WITH ORDINALITY AS a(dir, i)
      WHERE (SELECT true FROM files f WHERE f.workspace = m.workspace AND f.path = a.dir COLLATE "C" LIMIT 1)
      ORDER BY a.i LIMIT 1
    ) b
    WHERE (SELECT true FROM directories d WHERE d.workspace = m.workspace AND d.path = m.path LIMIT 1)
    ORDER BY m.seq LIMIT 1;
    IF FOUND THEN
      RAISE EXCEPTION 'cannot create "%": "%" is a file, not a directory', v_bad.path, v_bad.file
        USING ERRCODE = 'DA002', DETAIL = v_bad.file;
    END IF;
  END IF;
  -- Forks' horizons (0017), before any change id of this transaction is taken. (A fork mark
  -- always stages one: fork_log_start.)
  IF v_staged.horizons THEN
    WITH started AS (
      DELETE FROM changes_pending p WHERE p.xact = NEW.xact AND p.op = 'horizon' RETURNING p.seq, p.workspace
    ), horizon AS (
      INSERT INTO changes_horizon AS h (workspace, pruned_to)
      SELECT s.workspace, nextval('changes_id_seq') FROM (SELECT s.workspace FROM started s ORDER BY s.seq) s
      ON CONFLICT (workspace) DO UPDATE SET pruned_to = greatest(h.pruned_to, excluded.pruned_to)
      RETURNING h.workspace, h.pruned_to
    )
    SELECT array_agg(h.workspace), array_agg(h.pruned_to) INTO v_forked, v_horizons FROM horizon h;
    DELETE FROM fork_marks m WHERE m.xact = NEW.xact;
  END IF;
  WITH staged AS (
    DELETE FROM changes_pending p WHERE p.xact = NEW.xact
    RETURNING p.seq, p.workspace, p.path, p.op, p.version, p.size, p.moved
  ), logged AS (
    INSERT INTO changes (workspace, path, op, version, size, moved)
    SELECT s.workspace, s.path, s.op, s.version, s.size, s.moved FROM staged s ORDER BY s.seq
    RETURNING changes.id, changes.workspace, changes.path, changes.op, changes.version, changes.moved
  ), stamped AS (
    UPDATE file_versions v SET change_id = l.id, moved = l.moved
    FROM (SELECT DISTINCT ON (l.workspace, l.path, l.version, l.op = 'delete') l.*
          FROM logged l ORDER BY l.workspace, l.path, l.version, l.op = 'delete', l.id) l
    WHERE v.workspace = l.workspace AND v.path = l.path AND v.version = l.version
      AND v.deleted = (l.op = 'delete') AND v.change_id IS NULL
  )
  SELECT array_agg(l.id ORDER BY l.id), array_agg(l.workspace ORDER BY l.id), array_agg(l.path ORDER BY l.id),
         array_agg(l.op ORDER BY l.id)
    INTO v_ids, v_workspaces, v_paths, v_ops
  FROM logged l;
  IF v_ids IS NULL AND v_forked IS NULL THEN
    RETURN NULL;
  END IF;

  IF v_staged.creates OR v_forked IS NOT NULL THEN
    -- The workspaces of this commit that have directory rows: only their creates probe them (most
    -- workspaces have none; two probes per created file were 6% of an upload's cost). Committed
    -- directory rows cannot appear meanwhile: their commit waits for the workspace's lock, held here.
    SELECT array_agg(w.workspace) INTO v_with_dirs
    FROM (SELECT DISTINCT x.workspace FROM unnest(v_workspaces || v_forked) AS x(workspace)) w
    WHERE EXISTS (SELECT 1 FROM directories d WHERE d.workspace = w.workspace);

    -- The file/directory rule, for each create whose file is still there (0005's check, per set):
    -- no ancestor of it is a file, and it is not a directory (holding files, or made by mkdir:
    -- 0027). The first broken one, in log order. Every file of a forked workspace counts as created
    -- (none of them was logged).
    SELECT c.path, b.file INTO v_bad
    FROM (SELECT * FROM unnest(v_ids, v_workspaces, v_paths, v_ops) AS l(id, workspace, path, op)
          UNION ALL
          SELECT 0, f.workspace, f.path, 'create' FROM files f WHERE f.workspace = ANY (v_forked)) c
    CROSS JOIN LATERAL (
      SELECT x.file FROM (
        SELECT a.dir AS file, a.i FROM unnest(path_ancestors(c.path)) WITH ORDINALITY AS a(dir, i)
        WHERE (SELECT true FROM files f WHERE f.workspace = c.workspace AND f.path = a.dir COLLATE "C"
               AND f.parent = regexp_replace(a.dir, '[^/]*$', '') COLLATE "C" LIMIT 1)
        UNION ALL
        SELECT NULL, 2147483647
        WHERE (SELECT true FROM files f WHERE f.workspace = c.workspace
               AND f.path >= c.path || '/' AND f.path < c.path || '0'
               AND f.parent >= c.path || '/' AND f.parent < c.path || '0' LIMIT 1)
           -- A directory made by mkdir (0027), empty or not: the path itself or a path below it.
           OR (c.workspace = ANY (v_with_dirs)
               AND ((SELECT true FROM directories d WHERE d.workspace = c.workspace AND d.path = c.path LIMIT 1)
                    OR (SELECT true FROM directories d WHERE d.workspace = c.workspace
                        AND d.path >= c.path || '/' AND d.path < c.path || '0' LIMIT 1)))
      ) x ORDER BY x.i LIMIT 1
    ) b
    WHERE c.op = 'create'
      AND (SELECT true FROM files n WHERE n.workspace = c.workspace AND n.path = c.path
           AND n.parent = regexp_replace(c.path, '[^/]*$', '') LIMIT 1)
    ORDER BY c.id LIMIT 1;
    IF FOUND THEN
      IF v_bad.file IS NOT NULL THEN
        RAISE EXCEPTION 'cannot create "%": "%" is a file, not a directory', v_bad.path, v_bad.file
          USING ERRCODE = 'DA002', DETAIL = v_bad.file;
      END IF;
      RAISE EXCEPTION 'cannot create file "%": it is a directory', v_bad.path
        USING ERRCODE = 'DA003', DETAIL = v_bad.path;
    END IF;
  END IF;

  -- One wake-up per workspace: the last change id, or a fork's horizon (watchers read the log
  -- from their cursor; one older than the horizon is told to resync). Not from this commit when
  -- the writer sends its wake-ups after it (4 above): NOTIFY would hold the database-wide lock
  -- through this commit's WAL flush.
  IF current_setting('deepagents_backends.wake_up', true) IS DISTINCT FROM 'after_commit' THEN
    FOR v_note IN
      SELECT c.workspace, max(c.id) AS id
      FROM (SELECT * FROM unnest(v_ids, v_workspaces) AS l(id, workspace)
            UNION ALL
            SELECT * FROM unnest(v_horizons, v_forked)) c
      GROUP BY c.workspace
    LOOP
      PERFORM pg_notify(changes_channel(v_note.workspace), json_build_object('id', v_note.id)::text);
    END LOOP;
  END IF;
  RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.changes_lock()
 RETURNS void
 LANGUAGE sql
RETURN pg_advisory_xact_lock((hashtext(('deepagents-backends:changes:'::text || ("current_schema"())::text)))::bigint);

CREATE OR REPLACE FUNCTION deepagents.changes_lock(p_workspaces text[])
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO 'deepagents', 'pg_temp'
AS $function$
DECLARE
  v_key integer;
BEGIN
  PERFORM pg_advisory_xact_lock_shared(hashtext('deepagents-backends:changes:' || current_schema()));
  FOR v_key IN SELECT DISTINCT hashtext(w.workspace) FROM unnest(p_workspaces) AS w(workspace) ORDER BY 1 LOOP
    PERFORM pg_advisory_xact_lock(hashtext('deepagents-backends:changes:' || current_schema()), v_key);
  END LOOP;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.changes_stage()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'deepagents', 'pg_temp'
 SET jit TO 'off'
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
DECLARE
  v_rows bigint;
  v_new record;
  v_old record;
BEGIN
  IF TG_OP = 'INSERT' THEN
    -- An INSERT ... ON CONFLICT DO UPDATE that updated (every write of an existing file) fires
    -- this with no row: return before planning the statement below.
    PERFORM FROM new_rows LIMIT 1;
    IF NOT FOUND THEN
      RETURN NULL;
    END IF;
    -- (Not a fork's own rows: its target's log starts after them, at fork_log_start's horizon.)
    INSERT INTO changes_pending (workspace, path, op, version, size)
    SELECT n.workspace, n.path, 'create', n.version, n.size FROM new_rows n
    WHERE n.workspace NOT IN (SELECT m.workspace FROM fork_marks m WHERE m.xact = pg_current_xact_id())
    ORDER BY n.workspace, n.path;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO changes_pending (workspace, path, op, version, size)
    SELECT o.workspace, o.path, 'delete', o.version, o.size FROM old_rows o ORDER BY o.workspace, o.path;
  ELSE
    -- One row updated in place (a write or an edit of an existing file: the common case): one
    -- 'update', as the statement below would log it, without planning that statement for it.
    IF (SELECT count(*) FROM (SELECT FROM new_rows LIMIT 2) n) = 1 THEN
      SELECT n.workspace, n.path, n.version, n.size INTO v_new FROM new_rows n;
      SELECT o.workspace, o.path INTO v_old FROM old_rows o;
      IF v_old.workspace = v_new.workspace AND v_old.path = v_new.path THEN
        INSERT INTO changes_pending (workspace, path, op, version, size)
        VALUES (v_new.workspace, v_new.path, 'update', v_new.version, v_new.size);
        INSERT INTO changes_flush (xact) VALUES (pg_current_xact_id()) ON CONFLICT DO NOTHING;
        RETURN NULL;
      END IF;
    END IF;
    -- Each path of the statement is an update (an old and a new row have it), a create (only a
    -- new one) or a delete (only an old one), as 0015 logs them: rows grouped by path, not joined
    -- (the planner estimates a transition table at a few rows and nested-looped one over the
    -- other: quadratic in the statement).
    -- A moved row also names its other side (moved) on both: PostgreSQL appends a row's before-
    -- and after-image to the two transition tables together (trigger.c, AfterTriggerSaveEvent),
    -- so the n-th old row is the n-th new row's before-image even when the UPDATE changed its key.
    -- The rows are zipped by that position (unnest of several arrays pairs them: linear). A row
    -- counts as moved only if it kept its body (the same hash), stayed in its workspace, and both
    -- of its paths are pure: the old one written by no row of the statement, the new one held by
    -- none before (a rename chain, b -> c while a -> b, logs b as the update it is, as history
    -- does, and names no move at all: a reader must never apply a move onto a path that changed).
    -- The two key sets are built only when some row changed its key (sub-selects in the CASE:
    -- evaluated on first use), so an UPDATE of content pays nothing for them.
    INSERT INTO changes_pending (workspace, path, op, version, size, moved)
    SELECT k.workspace, k.path,
           CASE WHEN k.has_new AND k.has_old THEN 'update' WHEN k.has_new THEN 'create' ELSE 'delete' END,
           k.version, k.size, k.other
    FROM (
      SELECT u.workspace, u.path, bool_or(u.is_new) AS has_new, bool_or(NOT u.is_new) AS has_old,
             (array_agg(u.version ORDER BY u.is_new DESC))[1] AS version, -- the new row's, if any
             (array_agg(u.size ORDER BY u.is_new DESC))[1] AS size,
             (array_agg(u.other))[1] AS other
      FROM (SELECT a.w AS ow, a.p AS op, a.v AS ov, a.s AS os, a.h AS oh,
                   b.w AS nw, b.p AS np, b.v AS nv, b.s AS ns, b.h AS nh
            FROM (SELECT array_agg(o.workspace) AS w, array_agg(o.path) AS p, array_agg(o.version) AS v,
                         array_agg(o.size) AS s, array_agg(o.hash) AS h FROM old_rows o) a
            CROSS JOIN (SELECT array_agg(n.workspace) AS w, array_agg(n.path) AS p, array_agg(n.version) AS v,
                               array_agg(n.size) AS s, array_agg(n.hash) AS h FROM new_rows n) b) z
      CROSS JOIN LATERAL unnest(z.ow, z.op, z.ov, z.os, z.oh, z.nw, z.np, z.nv, z.ns, z.nh)
        AS x(old_workspace, old_path, old_version, old_size, old_hash,
             new_workspace, new_path, new_version, new_size, new_hash)
      CROSS JOIN LATERAL (
        SELECT CASE WHEN x.old_workspace = x.new_workspace AND x.old_path <> x.new_path
                         AND x.old_hash = x.new_hash
                         AND NOT (SELECT jsonb_object_agg(n.workspace || E'\n' || n.path, true) FROM new_rows n)
                                 ? (x.old_workspace || E'\n' || x.old_path)
                         AND NOT (SELECT jsonb_object_agg(o.workspace || E'\n' || o.path, true) FROM old_rows o)
                                 ? (x.new_workspace || E'\n' || x.new_path)
                    THEN true ELSE false END AS moved
        OFFSET 0 -- (a fence: pulled up, the CASE was copied into both arms below, each key set built twice)
      ) m
      CROSS JOIN LATERAL (
        SELECT x.old_workspace, x.old_path, x.old_version, x.old_size, false, CASE WHEN m.moved THEN x.new_path END
        UNION ALL
        SELECT x.new_workspace, x.new_path, x.new_version, x.new_size, true, CASE WHEN m.moved THEN x.old_path END
      ) u(workspace, path, version, size, is_new, other)
      GROUP BY u.workspace, u.path
    ) k
    ORDER BY k.has_new, k.workspace, k.path;
  END IF;
  GET DIAGNOSTICS v_rows = ROW_COUNT;
  IF v_rows > 0 THEN
    INSERT INTO changes_flush (xact) VALUES (pg_current_xact_id()) ON CONFLICT DO NOTHING;
  END IF;
  RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.checkpoint_position(p_workspace text, p_id bigint)
 RETURNS bigint
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
DECLARE
  v_change bigint;
BEGIN
  SELECT c.change_id INTO v_change FROM checkpoints c WHERE c.workspace = p_workspace AND c.id = p_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'checkpoint % does not exist in workspace "%"', p_id, p_workspace
      USING ERRCODE = 'DA012', DETAIL = p_id::text;
  END IF;
  -- (Neither prune_changes nor a fork moves the horizon past a checkpoint it can see; one taken
  -- concurrently, before they committed, is older than the log that is left.)
  IF v_change < (SELECT h.pruned_to FROM changes_horizon h WHERE h.workspace = p_workspace) THEN
    RAISE EXCEPTION 'checkpoint % of workspace "%" is older than the retained change log: it was taken while a fork or pruneChanges was writing the workspace', p_id, p_workspace
      USING ERRCODE = 'DA018', DETAIL = p_id::text;
  END IF;
  RETURN v_change;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.chunk_lines(p_content text)
 RETURNS TABLE(line text, n bigint)
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  SELECT t.line, t.n FROM unnest(string_to_array(p_content, E'\n')) WITH ORDINALITY AS t(line, n)
  UNION ALL
  SELECT '', 1 WHERE p_content = ''
$function$;

CREATE OR REPLACE FUNCTION deepagents.chunk_matches(p_content text, p_test text, p_regex boolean, p_ignore_case boolean)
 RETURNS boolean
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE STRICT COST 1000
AS $function$
BEGIN
  IF p_regex THEN
    RETURN CASE WHEN p_ignore_case THEN p_content OPERATOR(pg_catalog.~*) p_test
                ELSE p_content OPERATOR(pg_catalog.~) p_test END;
  END IF;
  RETURN CASE WHEN p_ignore_case THEN p_content OPERATOR(pg_catalog.~~*) p_test
              ELSE p_content OPERATOR(pg_catalog.~~) p_test END;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.chunk_set_text(p_set bigint)
 RETURNS text
 LANGUAGE sql
 STABLE
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
  SELECT string_agg(c.content, E'\n' ORDER BY c.first_line) FROM chunks c WHERE c.chunk_set = p_set
$function$;

CREATE OR REPLACE FUNCTION deepagents.chunks_assign()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
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
$function$;

CREATE OR REPLACE FUNCTION deepagents.chunks_claim()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
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
$function$;

CREATE OR REPLACE FUNCTION deepagents.chunks_collect(p_sets bigint[])
 RETURNS void
 LANGUAGE sql
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
  DELETE FROM chunks c
  USING (SELECT DISTINCT s.chunk_set FROM unnest(p_sets) AS s(chunk_set)
         WHERE s.chunk_set IS NOT NULL -- (one index probe per set, as in chunks_insert)
           AND (SELECT true FROM files f WHERE f.chunk_set = s.chunk_set LIMIT 1) IS NULL) gone
  WHERE c.chunk_set = gone.chunk_set AND current_setting('transaction_isolation') = 'read committed'
$function$;

CREATE OR REPLACE FUNCTION deepagents.chunks_delete()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
BEGIN
  PERFORM chunks_collect((SELECT array_agg(o.chunk_set) FROM old_rows o));
  RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.chunks_insert()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
 SET plan_cache_mode TO 'force_custom_plan'
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

CREATE OR REPLACE FUNCTION deepagents.chunks_truncate()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'deepagents', 'pg_temp'
AS $function$
BEGIN
  TRUNCATE chunks;
  RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.chunks_update()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
DECLARE
  v_sets bigint[];
  v_workspaces text[];
  v_paths text[] COLLATE "C"; -- (as files.path: compared with it below)
  v_texts text[];
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
  -- (With each set, the text to cut it from, taken here: a later filter `= ANY (v_sets)` over
  -- new_rows compared every row with every set under a generic plan, quadratic; 0018.)
  -- (0026: with each set, the key of the row to cut it from, and its text read by that key below,
  -- only for the sets to cut. Aggregating the text itself detoasted every row of the statement,
  -- a move's too, whose sets are never cut: 100 MB decompressed to rename a directory of it.)
  SELECT array_agg(g.chunk_set), array_agg(g.workspace), array_agg(g.path) INTO v_sets, v_workspaces, v_paths
  FROM (
    SELECT u.chunk_set, (array_agg(u.workspace) FILTER (WHERE u.is_new))[1] AS workspace,
           (array_agg(u.path) FILTER (WHERE u.is_new))[1] AS path
    FROM (SELECT n.chunk_set, n.hash, n.workspace, n.path, true AS is_new FROM new_rows n
          WHERE n.chunk_set IS NOT NULL AND n.content IS NOT NULL
          UNION ALL
          SELECT o.chunk_set, o.hash, NULL, NULL, false FROM old_rows o WHERE o.chunk_set IS NOT NULL) u
    GROUP BY u.chunk_set
    HAVING bool_or(u.is_new)
       AND NOT (array_agg(u.hash) FILTER (WHERE u.is_new)
                <@ coalesce(array_agg(u.hash) FILTER (WHERE NOT u.is_new), '{}'))
  ) g;
  IF v_sets IS NOT NULL THEN
    -- The text as this statement left the row (a key probe each; the row is the new row).
    SELECT array_agg((SELECT f.content FROM files f WHERE f.workspace = k.workspace AND f.path = k.path)
                     ORDER BY k.i)
      INTO v_texts
    FROM unnest(v_workspaces, v_paths) WITH ORDINALITY AS k(workspace, path, i);
    SELECT array_agg(s.chunk_set), array_agg(c.first_line), array_agg(c.line_count), array_agg(c.content)
      INTO v_cut_sets, v_cut_first_lines, v_cut_line_counts, v_cut_contents
    FROM unnest(v_sets, v_texts) AS s(chunk_set, content)
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

CREATE OR REPLACE FUNCTION deepagents.content_has(p_content text, p_pattern text)
 RETURNS boolean
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE STRICT COST 1000
AS $function$
BEGIN
  RETURN strpos(p_content, p_pattern) > 0;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.dir_upper_bound(dir text)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
RETURN ("left"(dir, '-1'::integer) || '0'::text);

CREATE OR REPLACE FUNCTION deepagents.directories_stage()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'deepagents', 'pg_temp'
 SET jit TO 'off'
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
BEGIN
  INSERT INTO changes_pending (workspace, path, op, version, size)
  SELECT n.workspace, n.path, 'directory', 0, 0 FROM new_rows n ORDER BY n.workspace, n.path;
  IF FOUND THEN
    INSERT INTO changes_flush (xact) VALUES (pg_current_xact_id()) ON CONFLICT DO NOTHING;
  END IF;
  RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.file_body(p_content text, p_bytes bytea)
 RETURNS bytea
 LANGUAGE sql
 STABLE PARALLEL SAFE
RETURN COALESCE(convert_to(p_content, 'UTF8'::name), p_bytes);

CREATE OR REPLACE FUNCTION deepagents.file_text(p_content text, p_set bigint)
 RETURNS text
 LANGUAGE sql
 STABLE
RETURN CASE WHEN ((p_content IS NOT NULL) OR (p_set IS NULL)) THEN p_content ELSE deepagents.chunk_set_text(p_set) END;

CREATE OR REPLACE FUNCTION deepagents.files_first_version()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
BEGIN
  PERFORM 1 FROM files f WHERE f.workspace = NEW.workspace AND f.path = NEW.path
    AND f.parent = regexp_replace(NEW.path, '[^/]*$', '') FOR UPDATE;
  NEW.version := greatest(NEW.version, coalesce((SELECT t.version FROM tombstones t
                                                 WHERE t.workspace = NEW.workspace AND t.path = NEW.path), 0) + 1);
  RETURN NEW;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.files_fork(p_source text, p_target text, p_at bigint, p_history boolean DEFAULT false)
 RETURNS TABLE(files bigint, bytes bigint, versions bigint)
 LANGUAGE plpgsql
 SET search_path TO 'deepagents', 'pg_temp'
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
DECLARE
  v_position bigint;
  v_workspace text;
  v_files bigint;
  v_bytes bigint;
  v_versions bigint := 0;
  v_marked boolean := false;
  v_locked bigint;
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
  IF NOT p_history THEN
    -- A new target's change log and history start at the fork (0017): a horizon, and no change
    -- or version row per copied file. A target that had files, a log or history once keeps them,
    -- and is logged file by file as before.
    BEGIN
      INSERT INTO fork_marks (workspace) VALUES (p_target);
      v_marked := true;
    EXCEPTION WHEN SQLSTATE 'DA017' THEN
      v_marked := false;
    END;
  END IF;
  IF p_history OR p_at IS NOT NULL THEN
    -- prune_history and set_history take this lock exclusively: no version or blob named below
    -- goes away, and the target's history setting holds. (Taken before any row lock: they lock
    -- no file rows, and the source's writers need not wait behind a long prune.) At a checkpoint
    -- too, and before it is read: a prune committing between the checkpoint's position and the
    -- versions at it left paths out of the fork, which still reported success (0019, found by
    -- review).
    PERFORM pg_advisory_xact_lock_shared(hashtext('deepagents-backends:prune-history:' || current_schema()));
  END IF;
  IF p_at IS NOT NULL THEN
    v_position := checkpoint_position(p_source, p_at);
  END IF;
  IF p_history THEN
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

  IF v_marked THEN
    -- What this transaction writes into the target from now on is logged (after the horizon).
    DELETE FROM fork_marks m WHERE m.xact = pg_current_xact_id() AND m.workspace = p_target;
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
    -- The blobs those versions name, locked in hash order as the foreign key's check locked them
    -- (0019 dropped it). The prune lock keeps collection out only for READ COMMITTED callers: a
    -- REPEATABLE READ fork whose snapshot predates a prune's collection fails to serialize here
    -- (40001, to be retried) instead of naming a blob that is gone.
    SELECT count(*) INTO v_locked FROM (
      SELECT b.hash FROM blobs b
      WHERE b.hash IN (SELECT v.blob FROM file_versions v WHERE v.workspace = p_target AND v.blob IS NOT NULL)
      ORDER BY b.hash FOR KEY SHARE
    ) l;
    IF v_locked < (SELECT count(DISTINCT v.blob) FROM file_versions v WHERE v.workspace = p_target AND v.blob IS NOT NULL) THEN
      RAISE EXCEPTION 'cannot fork the history of workspace "%": a version names bytes that are gone', p_source
        USING ERRCODE = 'DA010', DETAIL = p_source;
    END IF;
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

CREATE OR REPLACE FUNCTION deepagents.files_move(p_workspace text, p_from text, p_to text, p_overwrite boolean, p_copy boolean, p_max_bytes integer)
 RETURNS TABLE(status text, files bigint, conflict text)
 LANGUAGE plpgsql
 STRICT
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
DECLARE
  v_files bigint;
  v_single boolean;
  v_conflict text;
  -- The new path of each source, in the sources' path order.
  v_targets text[] COLLATE "C";
  v_constraint text;
  -- A moved path is p_to followed by what follows p_from in it (characters, as substr counts).
  v_rest integer := length(p_from) + 1;
BEGIN
  IF p_from = '/' OR p_to = '/' OR p_from = p_to
     OR starts_with(p_to, p_from || '/') OR starts_with(p_from, p_to || '/') THEN
    RETURN QUERY SELECT 'into_itself'::text, 0::bigint, p_to;
    RETURN;
  END IF;
  -- A file committed at a new path while this move waited for its writer fails the write with a
  -- unique violation; the move then looks again (each statement sees what committed before it),
  -- three times at most (then SQLSTATE 40001, "try again").
  FOR v_attempt IN 1..3 LOOP
    -- Every row either side holds, locked in one statement in path order (every writer's order).
    -- A new path has no row to lock: a writer holding one there while it waits for a source row
    -- is a deadlock, which PostgreSQL breaks by failing one of the two (the client retries it).
    PERFORM 1 FROM files f
     WHERE f.workspace = p_workspace
       AND (f.path = p_from OR (f.path >= p_from || '/' AND f.path < p_from || '0')
            OR f.path = p_to OR (f.path >= p_to || '/' AND f.path < p_to || '0'))
     ORDER BY f.path FOR UPDATE;
    SELECT count(*), coalesce(bool_or(f.path = p_from), false),
           array_agg((p_to || substr(f.path, v_rest)) COLLATE "C" ORDER BY f.path)
      INTO v_files, v_single, v_targets
    FROM files f
    WHERE f.workspace = p_workspace AND (f.path = p_from OR (f.path >= p_from || '/' AND f.path < p_from || '0'));
    IF v_files = 0 THEN
      RETURN QUERY SELECT 'not_found'::text, 0::bigint, NULL::text;
      RETURN;
    END IF;

    -- A new path longer than the client allows.
    SELECT t.path INTO v_conflict FROM unnest(v_targets) AS t(path)
    WHERE octet_length(t.path) > p_max_bytes ORDER BY t.path LIMIT 1;
    IF v_conflict IS NOT NULL THEN
      RETURN QUERY SELECT 'too_long'::text, 0::bigint, v_conflict;
      RETURN;
    END IF;
    -- A directory above p_to that is a file (the first from the root).
    SELECT a.dir INTO v_conflict FROM unnest(path_ancestors(p_to)) WITH ORDINALITY AS a(dir, i)
    WHERE (SELECT true FROM files f WHERE f.workspace = p_workspace AND f.path = a.dir COLLATE "C" LIMIT 1)
    ORDER BY a.i LIMIT 1;
    IF v_conflict IS NULL AND NOT v_single THEN
      -- A directory moved onto a file, or a file of the target directory where a moved path needs
      -- a directory (the source's counterpart of it has files under it). Each file of the target
      -- tree probes the source's range by key (a scalar sub-select: never turned into a join).
      SELECT e.path INTO v_conflict FROM files e
      WHERE e.workspace = p_workspace AND (e.path = p_to OR (e.path >= p_to || '/' AND e.path < p_to || '0'))
        AND (SELECT true FROM files s
             WHERE s.workspace = p_workspace
               AND s.path >= (p_from || substr(e.path, length(p_to) + 1) || '/') COLLATE "C"
               AND s.path < (p_from || substr(e.path, length(p_to) + 1) || '0') COLLATE "C"
             LIMIT 1)
      ORDER BY e.path LIMIT 1;
    END IF;
    IF v_conflict IS NOT NULL THEN
      RETURN QUERY SELECT 'parent_is_file'::text, 0::bigint, v_conflict;
      RETURN;
    END IF;
    -- A moved file whose new path is a directory: one range probe per new path.
    SELECT t.path INTO v_conflict FROM unnest(v_targets) AS t(path)
    WHERE (SELECT true FROM files e
           WHERE e.workspace = p_workspace AND e.path >= t.path || '/' AND e.path < t.path || '0' LIMIT 1)
    ORDER BY t.path LIMIT 1;
    IF v_conflict IS NOT NULL THEN
      RETURN QUERY SELECT 'is_directory'::text, 0::bigint, v_conflict;
      RETURN;
    END IF;
    -- Files at the new paths (found by key, = ANY of the array: a join of the two sides was
    -- planned as a loop over both, 10,000 x 10,000 comparisons): refused, or replaced.
    SELECT e.path INTO v_conflict FROM files e
    WHERE e.workspace = p_workspace AND e.path = ANY (v_targets) ORDER BY e.path LIMIT 1;
    IF v_conflict IS NOT NULL AND NOT p_overwrite THEN
      RETURN QUERY SELECT 'target_exists'::text, 0::bigint, v_conflict;
      RETURN;
    END IF;

    BEGIN
      IF v_conflict IS NOT NULL THEN
        DELETE FROM files e WHERE e.workspace = p_workspace AND e.path = ANY (v_targets);
      END IF;
      IF p_copy THEN
        INSERT INTO files (workspace, path, content, bytes, mime_type, size, line_count, chunk_set, hash)
        SELECT p_workspace, p_to || substr(s.path, v_rest), NULL, s.bytes, s.mime_type, s.size, s.line_count,
               s.chunk_set, s.hash
        FROM files s
        WHERE s.workspace = p_workspace AND (s.path = p_from OR (s.path >= p_from || '/' AND s.path < p_from || '0'))
        ORDER BY s.path;
      ELSE
        UPDATE files f SET path = p_to || substr(f.path, v_rest)
        WHERE f.workspace = p_workspace AND (f.path = p_from OR (f.path >= p_from || '/' AND f.path < p_from || '0'));
      END IF;
      GET DIAGNOSTICS v_files = ROW_COUNT;
      RETURN QUERY SELECT CASE WHEN p_copy THEN 'copied' ELSE 'moved' END, v_files, NULL::text;
      RETURN;
    EXCEPTION WHEN unique_violation THEN
      -- Undone (a subtransaction). A file at a new path: look again; any other key is not ours.
      GET STACKED DIAGNOSTICS v_constraint = CONSTRAINT_NAME;
      IF v_constraint IS DISTINCT FROM 'files_pkey' THEN
        RAISE;
      END IF;
    END;
  END LOOP;
  -- Files kept appearing at the new paths while the move waited for their writers.
  RAISE EXCEPTION 'files kept being written at the new paths of the move of "%" to "%"; try again', p_from, p_to
    USING ERRCODE = 'serialization_failure';
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.files_renamed_version()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
BEGIN
  IF (OLD.workspace, OLD.path) IS NOT DISTINCT FROM (NEW.workspace, NEW.path) THEN
    RETURN NEW;
  END IF;
  INSERT INTO tombstones AS t (workspace, path, version) VALUES (OLD.workspace, OLD.path, OLD.version)
  ON CONFLICT (workspace, path) DO UPDATE SET version = greatest(t.version, excluded.version);
  NEW.version := coalesce((SELECT t.version FROM tombstones t
                           WHERE t.workspace = NEW.workspace AND t.path = NEW.path), 0) + 1;
  DELETE FROM tombstones t WHERE t.workspace = NEW.workspace AND t.path = NEW.path;
  RETURN NEW;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.files_version_rises()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
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
$function$;

CREATE OR REPLACE FUNCTION deepagents.fork_log_start()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
BEGIN
  IF NEW.xact <> pg_current_xact_id() THEN
    RAISE EXCEPTION 'a fork mark is for the transaction that writes it' USING ERRCODE = 'insufficient_privilege';
  END IF;
  -- fs_fork's lock on the target (held already when it is the caller): one fork at a time.
  PERFORM pg_advisory_xact_lock(hashtext('deepagents-backends:fork:' || current_schema() || E'\n' || NEW.workspace)::bigint);
  IF EXISTS (SELECT 1 FROM files f WHERE f.workspace = NEW.workspace)
     OR EXISTS (SELECT 1 FROM changes c WHERE c.workspace = NEW.workspace)
     OR EXISTS (SELECT 1 FROM changes_horizon h WHERE h.workspace = NEW.workspace)
     OR EXISTS (SELECT 1 FROM file_versions v WHERE v.workspace = NEW.workspace)
     OR EXISTS (SELECT 1 FROM checkpoints c WHERE c.workspace = NEW.workspace)
     OR EXISTS (SELECT 1 FROM tombstones t WHERE t.workspace = NEW.workspace) THEN
    RAISE EXCEPTION 'the change log of workspace "%" can start at a fork only while the workspace is new', NEW.workspace
      USING ERRCODE = 'DA017', DETAIL = NEW.workspace;
  END IF;
  -- The horizon is taken at commit (changes_flush_now), in commit order like every change id.
  INSERT INTO changes_pending (workspace, path, op, version, size) VALUES (NEW.workspace, '', 'horizon', 0, 0);
  INSERT INTO changes_flush (xact) VALUES (pg_current_xact_id()) ON CONFLICT DO NOTHING;
  RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.fs_changes(p_workspace text, p_after bigint, p_limit integer)
 RETURNS TABLE(id bigint, path text, op text, version bigint, size bigint, at timestamp with time zone, moved text)
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
DECLARE
  v_pruned bigint;
BEGIN
  SELECT h.pruned_to INTO v_pruned FROM changes_horizon h WHERE h.workspace = p_workspace;
  IF v_pruned IS NOT NULL AND p_after < v_pruned THEN
    RAISE EXCEPTION 'change cursor % is older than the retained log (changes up to % were pruned)', p_after, v_pruned
      USING ERRCODE = 'DA001';
  END IF;
  RETURN QUERY
    SELECT c.id, c.path, c.op, c.version, c.size, c.at, c.moved FROM changes c
    WHERE c.workspace = p_workspace AND c.id > p_after
    ORDER BY c.id LIMIT p_limit;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.fs_changes_head()
 RETURNS bigint
 LANGUAGE sql
 STABLE
 SET search_path TO 'deepagents', 'pg_temp'
RETURN COALESCE((SELECT max(changes.id) AS max FROM deepagents.changes), (0)::bigint);

CREATE OR REPLACE FUNCTION deepagents.fs_changes_head(p_workspace text)
 RETURNS bigint
 LANGUAGE sql
 STABLE
 SET search_path TO 'deepagents', 'pg_temp'
RETURN deepagents.history_head(p_workspace);

CREATE OR REPLACE FUNCTION deepagents.fs_checkpoint(p_workspace text, p_label text, p_tag text)
 RETURNS TABLE(id bigint, change_id bigint, created_at timestamp with time zone)
 LANGUAGE plpgsql
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
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
$function$;

CREATE OR REPLACE FUNCTION deepagents.fs_checkpoints(p_workspace text)
 RETURNS TABLE(id bigint, change_id bigint, label text, tag text, created_at timestamp with time zone)
 LANGUAGE sql
 STABLE
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
  SELECT c.id, c.change_id, c.label, c.tag, c.created_at FROM checkpoints c
  WHERE c.workspace = p_workspace ORDER BY c.id
$function$;

CREATE OR REPLACE FUNCTION deepagents.fs_delete(p_workspace text, p_path text)
 RETURNS bigint
 LANGUAGE plpgsql
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
DECLARE
  v_files bigint;
  v_dirs bigint;
BEGIN
  -- Files first, then directories: the order every writer locks them in.
  IF p_path = '/' THEN
    PERFORM 1 FROM files f WHERE f.workspace = p_workspace ORDER BY f.path FOR UPDATE;
    DELETE FROM files f WHERE f.workspace = p_workspace;
    GET DIAGNOSTICS v_files = ROW_COUNT;
    DELETE FROM directories d WHERE d.workspace = p_workspace;
  ELSE
    PERFORM 1 FROM files f
     WHERE f.workspace = p_workspace
       AND (f.path = p_path OR (f.path >= p_path || '/' AND f.path < p_path || '0'))
     ORDER BY f.path FOR UPDATE;
    DELETE FROM files f
     WHERE f.workspace = p_workspace
       AND (f.path = p_path OR (f.path >= p_path || '/' AND f.path < p_path || '0'));
    GET DIAGNOSTICS v_files = ROW_COUNT;
    DELETE FROM directories d
     WHERE d.workspace = p_workspace
       AND (d.path = p_path OR (d.path >= p_path || '/' AND d.path < p_path || '0'));
  END IF;
  GET DIAGNOSTICS v_dirs = ROW_COUNT;
  RETURN v_files + v_dirs;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.fs_delete_checkpoint(p_workspace text, p_id bigint)
 RETURNS boolean
 LANGUAGE plpgsql
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
BEGIN
  DELETE FROM checkpoints c WHERE c.workspace = p_workspace AND c.id = p_id;
  RETURN FOUND;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.fs_diff(p_workspace text, p_from bigint, p_to bigint, p_scope text[])
 RETURNS TABLE(path text, op text, from_version bigint, from_size bigint, to_version bigint, to_size bigint, binary_change boolean)
 LANGUAGE sql
 STABLE
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
  SELECT d.path,
         CASE WHEN d.from_version IS NULL THEN 'created' WHEN d.to_version IS NULL THEN 'deleted' ELSE 'updated' END,
         d.from_version, d.from_size, d.to_version, d.to_size,
         coalesce(d.from_mime, d.to_mime) IS NOT NULL AND NOT coalesce(
           (SELECT bool_and(v.is_text) FROM file_versions v WHERE v.workspace = p_workspace AND v.path = d.path
              AND NOT v.deleted AND v.version IN (d.from_version, d.to_version)), true)
  FROM history_compare(p_workspace, checkpoint_position(p_workspace, p_from),
                       CASE WHEN p_to IS NULL THEN NULL ELSE checkpoint_position(p_workspace, p_to) END, p_scope) d
$function$;

CREATE OR REPLACE FUNCTION deepagents.fs_download(p_workspace text, p_paths text[])
 RETURNS TABLE(ord bigint, content text, bytes bytea, is_dir boolean)
 LANGUAGE sql
 STABLE
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
  SELECT u.ord, file_text(f.content, f.chunk_set), f.bytes,
         f.path IS NULL AND fs_is_directory(p_workspace, u.path)
  FROM unnest(p_paths) WITH ORDINALITY AS u(path, ord)
  LEFT JOIN files f ON f.workspace = p_workspace AND f.path = u.path
  ORDER BY u.ord
$function$;

CREATE OR REPLACE FUNCTION deepagents.fs_edit(p_workspace text, p_path text, p_old text, p_new text, p_replace_all boolean, p_if_version bigint, p_max_bytes bigint)
 RETURNS TABLE(status text, occurrences integer, version bigint)
 LANGUAGE plpgsql
 SET search_path TO 'deepagents', 'pg_temp'
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

CREATE OR REPLACE FUNCTION deepagents.fs_fork(p_source text, p_target text, p_at bigint, p_history boolean DEFAULT false)
 RETURNS TABLE(files bigint, bytes bigint, versions bigint)
 LANGUAGE plpgsql
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
BEGIN
  -- A target with directories of its own is not new either (files_fork looks at files only).
  IF p_source <> p_target AND EXISTS (SELECT 1 FROM directories d WHERE d.workspace = p_target) THEN
    RAISE EXCEPTION 'cannot fork into workspace "%": it has files', p_target USING ERRCODE = 'DA014', DETAIL = p_target;
  END IF;
  RETURN QUERY SELECT * FROM files_fork(p_source, p_target, p_at, p_history);
  IF p_at IS NULL THEN
    INSERT INTO directories (workspace, path)
    SELECT p_target, d.path FROM directories d WHERE d.workspace = p_source ORDER BY d.path
    ON CONFLICT DO NOTHING;
  END IF;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.fs_glob(p_workspace text, p_path text, p_allow_exact boolean, p_base text, p_pattern text, p_regex text)
 RETURNS TABLE(path text, size bigint, modified_at timestamp with time zone)
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
DECLARE
  s record;
BEGIN
  s := search_scope(p_workspace, p_path, p_allow_exact, p_base);
  RETURN QUERY
    SELECT f.path, f.size, f.modified_at
    FROM files f
    CROSS JOIN LATERAL (SELECT CASE WHEN s.exact THEN substr(f.path, length(f.parent) + 1)
                                    ELSE substr(f.path, length(s.dir) + 1) END AS rel) r
    WHERE f.workspace = p_workspace AND f.path >= s.lo AND f.path < s.hi
      AND (r.rel = p_pattern OR r.rel ~ p_regex)
    ORDER BY f.modified_at DESC, f.path;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.fs_grep(p_workspace text, p_path text, p_allow_exact boolean, p_glob text, p_glob_regex text, p_glob_basename boolean, p_pattern text, p_limit bigint)
 RETURNS TABLE(path text, line integer, text text)
 LANGUAGE sql
 STABLE
 SET search_path TO 'deepagents', 'pg_temp'
AS $function$
  SELECT * FROM fs_search(p_workspace, p_path, p_allow_exact, p_glob, p_glob_regex, p_glob_basename,
                          p_pattern, false, false, p_limit)
$function$;

CREATE OR REPLACE FUNCTION deepagents.fs_history(p_workspace text, p_path text)
 RETURNS TABLE(version bigint, op text, change_id bigint, size bigint, mime_type text, at timestamp with time zone, tag text, moved text)
 LANGUAGE sql
 STABLE
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
  SELECT s.version, s.op, s.change_id, s.size, s.mime_type, s.at, s.tag, s.moved FROM (
    SELECT v.version, v.deleted, v.op, v.change_id, v.size, v.mime_type, v.at, v.tag, v.moved::text
    FROM file_versions v
    WHERE v.workspace = p_workspace AND v.path = p_path
    UNION ALL
    -- The current version when no row records it yet (see version_meta): there since before the
    -- log (change id 0), as a version written before history was kept is recorded.
    SELECT f.version, false, CASE WHEN f.version = 1 THEN 'create' ELSE 'update' END, 0, f.size, f.mime_type,
           f.modified_at, NULL, NULL
    FROM files f
    WHERE f.workspace = p_workspace AND f.path = p_path AND history_enabled(p_workspace)
      AND NOT EXISTS (SELECT 1 FROM file_versions v WHERE v.workspace = p_workspace AND v.path = p_path
                                                       AND v.version = f.version AND NOT v.deleted)
  ) s
  ORDER BY s.version, s.deleted
$function$;

CREATE OR REPLACE FUNCTION deepagents.fs_is_directory(p_workspace text, p_path text)
 RETURNS boolean
 LANGUAGE sql
 STABLE STRICT
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
  SELECT EXISTS (SELECT 1 FROM directories d WHERE d.workspace = p_workspace AND d.path = p_path)
      OR EXISTS (SELECT 1 FROM directories d WHERE d.workspace = p_workspace
                 AND d.path >= p_path || '/' AND d.path < p_path || '0')
      OR EXISTS (SELECT 1 FROM files f WHERE f.workspace = p_workspace
                 AND f.path >= p_path || '/' AND f.path < p_path || '0')
$function$;

CREATE OR REPLACE FUNCTION deepagents.fs_ls(p_workspace text, p_dir text)
 RETURNS TABLE(path text, is_dir boolean, size bigint, modified_at timestamp with time zone)
 LANGUAGE sql
 STABLE
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
  SELECT f.path, false, f.size, f.modified_at
  FROM files f WHERE f.workspace = p_workspace AND f.parent = p_dir
  UNION ALL
  SELECT p_dir || d.name || '/', true, 0::bigint, NULL::timestamptz
  FROM (
    -- Directories made by mkdir: the first name of every row below p_dir, not only the rows whose
    -- parent it is (a delete racing mkdir -p can take a parent row and leave its child). One
    -- range of the key; directory rows are few beside files.
    SELECT split_part(substr(m.path, length(p_dir) + 1), '/', 1) AS name
    FROM directories m
    WHERE m.workspace = p_workspace AND m.path > p_dir AND m.path < dir_upper_bound(p_dir)
    UNION
    -- and those holding files: one probe per name, skipping each one's subtree.
    SELECT e.name FROM (
    WITH RECURSIVE sub(name) AS (
      SELECT (SELECT split_part(substr(f.path, length(p_dir) + 1), '/', 1)
              FROM files f
              WHERE f.workspace = p_workspace AND f.path >= p_dir AND f.path < dir_upper_bound(p_dir)
                AND strpos(substr(f.path, length(p_dir) + 1), '/') > 0
              ORDER BY f.path LIMIT 1)
      UNION ALL
      SELECT (SELECT split_part(substr(f.path, length(p_dir) + 1), '/', 1)
              FROM files f
              WHERE f.workspace = p_workspace AND f.path >= p_dir || s.name || '0'
                AND f.path < dir_upper_bound(p_dir)
                AND strpos(substr(f.path, length(p_dir) + 1), '/') > 0
              ORDER BY f.path LIMIT 1)
      FROM sub s WHERE s.name IS NOT NULL
    )
    SELECT name FROM sub WHERE name IS NOT NULL
    ) e
  ) d
  ORDER BY 1
$function$;

CREATE OR REPLACE FUNCTION deepagents.fs_mkdir(p_workspace text, p_path text, p_parents boolean)
 RETURNS TABLE(status text, conflict text)
 LANGUAGE plpgsql
 STRICT
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
DECLARE
  v_file text;
  v_parent text := regexp_replace(p_path, '/[^/]*$', '');
BEGIN
  SELECT a.dir INTO v_file FROM unnest(path_ancestors(p_path) || p_path) WITH ORDINALITY AS a(dir, i)
  WHERE (SELECT true FROM files f WHERE f.workspace = p_workspace AND f.path = a.dir COLLATE "C" LIMIT 1)
  ORDER BY a.i LIMIT 1;
  IF v_file = p_path THEN
    RETURN QUERY SELECT 'is_file'::text, p_path; RETURN;
  ELSIF v_file IS NOT NULL THEN
    RETURN QUERY SELECT 'parent_is_file'::text, v_file; RETURN;
  END IF;
  IF fs_is_directory(p_workspace, p_path) THEN
    IF p_parents THEN
      INSERT INTO directories (workspace, path)
      SELECT p_workspace, a.dir FROM unnest(path_ancestors(p_path) || p_path) AS a(dir) ORDER BY a.dir COLLATE "C"
      ON CONFLICT DO NOTHING;
    END IF;
    RETURN QUERY SELECT 'exists'::text, NULL::text; RETURN;
  END IF;
  IF NOT p_parents AND v_parent <> '' AND NOT fs_is_directory(p_workspace, v_parent) THEN
    RETURN QUERY SELECT 'parent_missing'::text, v_parent; RETURN;
  END IF;
  -- In path order, as every writer takes keys.
  INSERT INTO directories (workspace, path)
  SELECT p_workspace, a.dir FROM unnest(path_ancestors(p_path) || p_path) AS a(dir) ORDER BY a.dir COLLATE "C"
  ON CONFLICT DO NOTHING;
  RETURN QUERY SELECT 'created'::text, NULL::text;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.fs_move(p_workspace text, p_from text, p_to text, p_overwrite boolean, p_copy boolean, p_max_bytes integer)
 RETURNS TABLE(status text, files bigint, conflict text)
 LANGUAGE plpgsql
 STRICT
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
DECLARE
  -- Directory rows at and below p_from, in path order.
  v_dirs text[] COLLATE "C";
  v_conflict text;
  v_rest integer := length(p_from) + 1;
  v_moved record;
BEGIN
  IF p_from = '/' OR p_to = '/' OR p_from = p_to
     OR starts_with(p_to, p_from || '/') OR starts_with(p_from, p_to || '/') THEN
    RETURN QUERY SELECT 'into_itself'::text, 0::bigint, p_to;
    RETURN;
  END IF;
  -- A directory made by mkdir where a moved file would go (its counterpart in the source is a file).
  SELECT e.path INTO v_conflict FROM directories e
  WHERE e.workspace = p_workspace AND (e.path = p_to OR (e.path >= p_to || '/' AND e.path < p_to || '0'))
    AND (SELECT true FROM files s WHERE s.workspace = p_workspace
         AND s.path = (p_from || substr(e.path, length(p_to) + 1)) COLLATE "C" LIMIT 1)
  ORDER BY e.path LIMIT 1;
  IF v_conflict IS NOT NULL THEN
    RETURN QUERY SELECT 'is_directory'::text, 0::bigint, v_conflict;
    RETURN;
  END IF;
  SELECT array_agg(d.path ORDER BY d.path) INTO v_dirs FROM directories d
  WHERE d.workspace = p_workspace AND (d.path = p_from OR (d.path >= p_from || '/' AND d.path < p_from || '0'));
  IF v_dirs IS NULL THEN
    RETURN QUERY SELECT * FROM files_move(p_workspace, p_from, p_to, p_overwrite, p_copy, p_max_bytes);
    RETURN;
  END IF;

  SELECT t.path INTO v_conflict FROM unnest(v_dirs) AS d(path), LATERAL (SELECT p_to || substr(d.path, v_rest)) AS t(path)
  WHERE octet_length(t.path) > p_max_bytes ORDER BY t.path LIMIT 1;
  IF v_conflict IS NOT NULL THEN
    RETURN QUERY SELECT 'too_long'::text, 0::bigint, v_conflict;
    RETURN;
  END IF;
  -- A file at or above a new directory path (the first from the root).
  SELECT a.dir INTO v_conflict
  FROM (SELECT a.dir, a.i FROM unnest(path_ancestors(p_to)) WITH ORDINALITY AS a(dir, i)
        UNION ALL
        SELECT p_to || substr(d.path, v_rest), 1000000 + d.i FROM unnest(v_dirs) WITH ORDINALITY AS d(path, i)) a
  WHERE (SELECT true FROM files f WHERE f.workspace = p_workspace AND f.path = a.dir COLLATE "C" LIMIT 1)
  ORDER BY a.i LIMIT 1;
  IF v_conflict IS NOT NULL THEN
    RETURN QUERY SELECT 'parent_is_file'::text, 0::bigint, v_conflict;
    RETURN;
  END IF;

  IF EXISTS (SELECT 1 FROM files f WHERE f.workspace = p_workspace
             AND (f.path = p_from OR (f.path >= p_from || '/' AND f.path < p_from || '0'))) THEN
    SELECT * INTO v_moved FROM files_move(p_workspace, p_from, p_to, p_overwrite, p_copy, p_max_bytes);
    IF v_moved.status NOT IN ('moved', 'copied') THEN
      RETURN QUERY SELECT v_moved.status, v_moved.files, v_moved.conflict;
      RETURN;
    END IF;
  ELSE
    SELECT CASE WHEN p_copy THEN 'copied' ELSE 'moved' END AS status, 0::bigint AS files INTO v_moved;
  END IF;
  -- The new rows (and p_to's ancestors: every ancestor of a directory row is one), in path order,
  -- then the old ones go.
  INSERT INTO directories (workspace, path)
  SELECT p_workspace, n.path FROM (
    SELECT a.dir FROM unnest(path_ancestors(p_to)) AS a(dir)
    UNION
    SELECT p_to || substr(d.path, v_rest) FROM unnest(v_dirs) AS d(path)
  ) n(path)
  ORDER BY n.path COLLATE "C"
  ON CONFLICT DO NOTHING;
  IF NOT p_copy THEN
    DELETE FROM directories d WHERE d.workspace = p_workspace AND d.path = ANY (v_dirs);
  END IF;
  RETURN QUERY SELECT v_moved.status, v_moved.files, NULL::text;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.fs_read(p_workspace text, p_path text, p_offset integer, p_limit integer)
 RETURNS TABLE(mime_type text, bytes bytea, total_lines integer, window_text text, window_lines integer)
 LANGUAGE sql
 STABLE
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
  SELECT f.mime_type, f.bytes, f.line_count, w.text, w.n
  FROM files f
  CROSS JOIN LATERAL (
    SELECT string_agg(l.line, E'\n' ORDER BY c.first_line, l.n) AS text, count(*)::integer AS n
    FROM chunks c
    CROSS JOIN LATERAL chunk_lines(c.content) l
    WHERE c.chunk_set = f.chunk_set
      AND c.first_line >= (SELECT coalesce(max(c0.first_line), 1) FROM chunks c0
                           WHERE c0.chunk_set = f.chunk_set AND c0.first_line <= p_offset::bigint + 1)
      AND c.first_line <= p_offset::bigint + p_limit
      AND c.first_line + l.n - 1 > p_offset
      AND c.first_line + l.n - 1 <= p_offset::bigint + p_limit
  ) w
  WHERE f.workspace = p_workspace AND f.path = p_path
$function$;

CREATE OR REPLACE FUNCTION deepagents.fs_read_raw(p_workspace text, p_path text)
 RETURNS TABLE(mime_type text, content text, bytes bytea, created_at timestamp with time zone, modified_at timestamp with time zone)
 LANGUAGE sql
 STABLE
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
  SELECT f.mime_type, file_text(f.content, f.chunk_set), f.bytes, f.created_at, f.modified_at
  FROM files f WHERE f.workspace = p_workspace AND f.path = p_path
$function$;

CREATE OR REPLACE FUNCTION deepagents.fs_read_version(p_workspace text, p_path text, p_version bigint, p_offset integer, p_limit integer)
 RETURNS TABLE(mime_type text, bytes bytea, total_lines integer, window_text text, window_lines integer)
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
DECLARE
  v record;
  v_data bytea;
  v_text text;
BEGIN
  SELECT * INTO v FROM version_meta(p_workspace, p_path, p_version);
  IF v.hash IS NULL THEN
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
$function$;

CREATE OR REPLACE FUNCTION deepagents.fs_restore(p_workspace text, p_path text, p_version bigint, p_if_version bigint)
 RETURNS TABLE(status text, version bigint, conflict text)
 LANGUAGE plpgsql
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
DECLARE
  v record;
  v_data bytea;
BEGIN
  SELECT * INTO v FROM version_meta(p_workspace, p_path, p_version);
  IF v.hash IS NULL THEN
    RETURN QUERY SELECT 'no_version'::text, 0::bigint, NULL::text;
    RETURN;
  END IF;
  v_data := version_data(p_workspace, p_path, p_version);
  RETURN QUERY
    SELECT w.status, w.version, w.conflict
    FROM fs_write(p_workspace, p_path, CASE WHEN v.is_text THEN convert_from(v_data, 'UTF8') END,
                  CASE WHEN NOT v.is_text THEN v_data END, v.mime_type, p_if_version) w;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.fs_rewind(p_workspace text, p_id bigint, p_scope text[], p_dry_run boolean)
 RETURNS TABLE(path text, op text, version_before bigint, size_before bigint, restored_version bigint, size_after bigint, version bigint, undo_checkpoint bigint)
 LANGUAGE plpgsql
 SET search_path TO 'deepagents', 'pg_temp'
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

CREATE OR REPLACE FUNCTION deepagents.fs_search(p_workspace text, p_path text, p_allow_exact boolean, p_glob text, p_glob_regex text, p_glob_basename boolean, p_pattern text, p_regex boolean, p_ignore_case boolean, p_limit bigint, p_chunk_pattern text DEFAULT NULL::text)
 RETURNS TABLE(path text, line integer, text text)
 LANGUAGE plpgsql
 SET search_path TO 'deepagents', 'pg_temp'
 SET jit TO 'off'
AS $function$
DECLARE
  s record;
  v_like text := '%' || replace(replace(replace(p_pattern, '\', '\\'), '%', '\%'), '_', '\_') || '%';
  v_chunk_test text;
  v_line_test text;
  v_query text;
  v_plan text;
  v_files refcursor;
  v_file record;
  v_left bigint := p_limit;
  v_sort text;
  v_indexed boolean;
  v_probe_files constant integer := 1024; -- the most files read in path order before the index
  v_seen integer := 0;
  v_hits integer := 0;
  v_bytes bigint := 0;
  v_switch boolean := false;
  v_glob_ok text := '$6 IS NULL OR r.rel = $10 OR r.rel ~ $6';
  v_matches text;
  v_chunk_pattern text := CASE WHEN p_regex THEN '(?n)' || coalesce(p_chunk_pattern, p_pattern) ELSE v_like END;
  -- The file's path relative to the scope (or its name), and the rows of the scope and glob: one
  -- text for both strategies, so they answer for the same files.
  v_rel text := $f$CROSS JOIN LATERAL (SELECT CASE WHEN $5 THEN substr(f.path, length(f.path) - strpos(reverse(f.path), '/') + 2)
                                               ELSE substr(f.path, length($7) + 1) END AS rel) r$f$;
  v_in_scope text := $f$f.workspace = $1 AND f.path >= $2 AND f.path < $3 AND ($6 IS NULL OR r.rel = $10 OR r.rel ~ $6)$f$;
BEGIN
  s := search_scope(p_workspace, p_path, p_allow_exact, '');
  IF p_regex THEN
    v_chunk_test := CASE WHEN p_ignore_case THEN 'c.content ~* $4' ELSE 'c.content ~ $4' END;
    v_line_test := CASE WHEN p_ignore_case THEN 'l.line ~* $8' ELSE 'l.line ~ $8' END;
  ELSIF p_ignore_case THEN
    v_chunk_test := 'c.content ILIKE $4';
    v_line_test := 'l.line ILIKE $4';
  ELSE
    v_chunk_test := 'c.content LIKE $4';
    v_line_test := 'strpos(l.line, $8) > 0';
  END IF;
  v_chunk_test := v_chunk_test || format(' AND chunk_matches(c.content, $4, %L, %L)', p_regex, p_ignore_case);
  v_query := format($q$
    SELECT c.path, (c.first_line + l.n - 1)::integer, l.line
    FROM (
      SELECT f.path, c.first_line, c.content
      FROM files f
      JOIN chunks c ON c.chunk_set = f.chunk_set
      %s
      WHERE %s AND %s
    ) c
    CROSS JOIN LATERAL chunk_lines(c.content) l
    WHERE %s
    ORDER BY c.path, c.first_line, l.n
    LIMIT $9
  $q$, v_rel, v_in_scope, v_chunk_test, v_line_test);

  -- A file's first p_limit matching lines (chunks in line order from the chunk set's key, lines
  -- in order within a chunk), for the path-order cursors below; %%s: a condition on the file.
  v_matches := format($q$
    CROSS JOIN LATERAL (
      SELECT array_agg(x.line ORDER BY x.line) AS lines, array_agg(x.text ORDER BY x.line) AS texts
      FROM (
        SELECT (c.first_line + l.n - 1)::integer AS line, l.line AS text
        FROM chunks c
        CROSS JOIN LATERAL chunk_lines(c.content) l
        WHERE c.chunk_set = f.chunk_set AND (%%s) AND %s AND %s
        ORDER BY c.first_line, l.n
        LIMIT $9
      ) x
    ) m
  $q$, v_chunk_test, v_line_test);

  IF p_limit >= 0 THEN -- (a negative one goes on to the query, which refuses it)
    EXECUTE 'EXPLAIN (FORMAT JSON) ' || v_query INTO v_plan
    USING p_workspace, s.lo, s.hi, v_chunk_pattern, p_glob_basename OR s.exact, p_glob_regex, s.dir,
          p_pattern, p_limit, p_glob;
    -- (The node's field, quoted: a pattern naming the index appears in the plan escaped.)
    v_indexed := position('"Index Name": "chunks_content_trgm_idx"' IN v_plan) > 0;
    -- The path-order strategy, one row per file with its first matches (v_matches). Planned
    -- with enable_sort off, for this OPEN only: the planner believes a chunk set holds one chunk, and
    -- would sort all of a big file's matches to take the first few; with sorting off it sorts
    -- each chunk's lines only (Incremental Sort over the key's order) and stops.
    v_sort := current_setting('enable_sort');
    PERFORM set_config('enable_sort', 'off', true);
    IF NOT v_indexed THEN
      -- The files with a match, up to the cap (0014).
      OPEN v_files FOR EXECUTE format($q$
        SELECT f.path, m.lines, m.texts
        FROM files f
        %s
        %s
        WHERE %s AND m.lines IS NOT NULL
        ORDER BY f.path
        LIMIT $9
      $q$, v_rel, format(v_matches, 'true'), v_in_scope)
      USING p_workspace, s.lo, s.hi, v_chunk_pattern, p_glob_basename OR s.exact, p_glob_regex, s.dir,
            p_pattern, p_limit, p_glob;
    ELSE
      -- Every file of the path range, the glob's rejects included (with no lines and not read:
      -- they count as files without a match, so a selective glob over a big range cannot make
      -- the probe below walk all of it), with its size; at most one more than the probe reads.
      -- SCROLL: the probe's rows are kept (a tuplestore), and read again for the answer.
      OPEN v_files SCROLL FOR EXECUTE format($q$
        SELECT f.path, f.size, (%s) AS wanted, m.lines, m.texts
        FROM files f
        %s
        %s
        WHERE f.workspace = $1 AND f.path >= $2 AND f.path < $3
        ORDER BY f.path
        LIMIT %s
      $q$, v_glob_ok, v_rel, format(v_matches, v_glob_ok), v_probe_files + 1)
      USING p_workspace, s.lo, s.hi, v_chunk_pattern, p_glob_basename OR s.exact, p_glob_regex, s.dir,
            p_pattern, p_limit, p_glob;
    END IF;
    PERFORM set_config('enable_sort', v_sort, true);
    IF v_indexed AND p_limit > 0 THEN
      -- The planner chose the trigram index, from a selectivity it estimates over every
      -- workspace of the table: a pattern rare in the table but in most files of this workspace
      -- fetched and sorted every matching chunk of it to return the first few (25–41 ms against
      -- 3–4 ms in path order, capped at 100). So the range is read in path order first, one file
      -- at a time: if the matches fill the cap, or the range ends, that is the answer, read
      -- again from the start of the cursor; the trigram query answers instead, for the whole
      -- scope, once fewer than a quarter of the files read had a match after 32 files or 256 kB
      -- (8 files when none matched), or after v_probe_files files or 8 MiB without the cap
      -- filled (found by review: big files first, or a selective glob, made a rare pattern read
      -- far more before it gave up). Every row returned comes from one statement (the cursor's,
      -- or the trigram query's), so from one snapshot. What a pattern in no file pays: 8 files.
      LOOP
        FETCH v_files INTO v_file;
        EXIT WHEN NOT FOUND; -- the range ended
        v_seen := v_seen + 1;
        IF v_file.lines IS NOT NULL THEN
          v_hits := v_hits + 1;
          v_left := v_left - least(v_left, cardinality(v_file.lines));
          EXIT WHEN v_left = 0; -- the cap is filled
        END IF;
        IF v_file.wanted THEN
          v_bytes := v_bytes + v_file.size;
        END IF;
        IF v_seen > v_probe_files OR v_bytes >= 8388608
           OR (v_hits * 4 < v_seen AND (v_seen >= 32 OR v_bytes >= 262144 OR (v_hits = 0 AND v_seen >= 8))) THEN
          v_switch := true;
          EXIT;
        END IF;
      END LOOP;
      IF NOT v_switch THEN
        MOVE ABSOLUTE 0 FROM v_files;
        v_left := p_limit;
      END IF;
    END IF;
    IF NOT v_switch THEN
      -- One file at a time (a FOR loop would fetch ten, reading past the file that fills the cap).
      WHILE v_left > 0 LOOP
        FETCH v_files INTO v_file;
        EXIT WHEN NOT FOUND;
        CONTINUE WHEN v_file.lines IS NULL;
        RETURN QUERY SELECT v_file.path, u.line, u.text
                     FROM unnest(v_file.lines, v_file.texts) AS u(line, text) LIMIT v_left;
        v_left := v_left - least(v_left, cardinality(v_file.lines));
      END LOOP;
      CLOSE v_files;
      RETURN;
    END IF;
    CLOSE v_files;
  END IF;
  RETURN QUERY EXECUTE v_query
  USING p_workspace, s.lo, s.hi, v_chunk_pattern, p_glob_basename OR s.exact, p_glob_regex, s.dir,
        p_pattern, p_limit, p_glob;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.fs_search_open(p_cursor refcursor, p_workspace text, p_path text, p_allow_exact boolean, p_glob text, p_glob_regex text, p_glob_basename boolean, p_pattern text, p_regex boolean, p_ignore_case boolean, p_chunk_pattern text, p_from text, p_to text, OUT o_cursor refcursor, OUT o_path_order boolean)
 RETURNS record
 LANGUAGE plpgsql
 SET search_path TO 'deepagents', 'pg_temp'
 SET jit TO 'off'
AS $function$
DECLARE
  s record;
  v_cursor refcursor := p_cursor;
  v_like text := '%' || replace(replace(replace(p_pattern, '\', '\\'), '%', '\%'), '_', '\_') || '%';
  v_chunk_pattern text := CASE WHEN p_regex THEN '(?n)' || coalesce(p_chunk_pattern, p_pattern) ELSE v_like END;
  v_chunk_test text;
  v_line_test text;
  v_indexed_query text;
  v_path_query text;
  v_plan text;
  v_seen bigint;
  v_hits bigint;
  v_sort text;
  v_fraction text;
  v_lo text;
  v_hi text;
  -- The same texts as fs_search's (0022): the file's path relative to the scope (or its name),
  -- and the rows of the scope and glob, so both queries answer for the same files as it does.
  v_rel text := $f$CROSS JOIN LATERAL (SELECT CASE WHEN $5 THEN substr(f.path, length(f.path) - strpos(reverse(f.path), '/') + 2)
                                               ELSE substr(f.path, length($7) + 1) END AS rel) r$f$;
  v_in_scope text := $f$f.workspace = $1 AND f.path >= $2 AND f.path < $3 AND ($6 IS NULL OR r.rel = $9 OR r.rel ~ $6)$f$;
BEGIN
  IF p_cursor IS NULL THEN
    RAISE EXCEPTION 'fs_search_open: the cursor name is null' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  s := search_scope(p_workspace, p_path, p_allow_exact, '');
  -- The part of the scope this cursor reads: [p_from, p_to), either end NULL for the scope's own.
  v_lo := greatest(s.lo COLLATE "C", p_from);
  v_hi := least(s.hi COLLATE "C", p_to);
  IF p_regex THEN
    v_chunk_test := CASE WHEN p_ignore_case THEN 'c.content ~* $4' ELSE 'c.content ~ $4' END;
    v_line_test := CASE WHEN p_ignore_case THEN 'l.line ~* $8' ELSE 'l.line ~ $8' END;
  ELSIF p_ignore_case THEN
    v_chunk_test := 'c.content ILIKE $4';
    v_line_test := 'l.line ILIKE $4';
  ELSE
    v_chunk_test := 'c.content LIKE $4';
    v_line_test := 'strpos(l.line, $8) > 0';
  END IF;
  v_chunk_test := v_chunk_test || format(' AND chunk_matches(c.content, $4, %L, %L)', p_regex, p_ignore_case);

  v_indexed_query := format($q$
    SELECT c.path, (c.first_line + l.n - 1)::integer AS line, l.line AS text
    FROM (
      SELECT f.path, c.first_line, c.content
      FROM files f
      JOIN chunks c ON c.chunk_set = f.chunk_set
      %s
      WHERE %s AND %s
    ) c
    CROSS JOIN LATERAL chunk_lines(c.content) l
    WHERE %s
    ORDER BY c.path, c.first_line, l.n
  $q$, v_rel, v_in_scope, v_chunk_test, v_line_test);

  v_path_query := format($q$
    SELECT f.path, m.line, m.text
    FROM files f
    %s
    CROSS JOIN LATERAL (
      -- OFFSET 0: read per file, by the chunk set's key. Pulled up into the outer query, the
      -- planner joined every file to every candidate chunk of the trigram index (16 million
      -- comparisons for a word in a quarter of 6,300 files: 22 s instead of 0.2 under EXPLAIN
      -- ANALYZE).
      -- The lines by string_to_table, not chunk_lines (0010's array, kept for its row estimate,
      -- which this plan's shape does not depend on): a sixth less time for a common literal.
      SELECT (c.first_line + l.n - 1)::integer AS line, l.line AS text
      FROM chunks c
      CROSS JOIN LATERAL (SELECT t.line, t.n FROM string_to_table(c.content, E'\n') WITH ORDINALITY AS t(line, n)
                          UNION ALL
                          SELECT '', 1 WHERE c.content = '') l
      WHERE c.chunk_set = f.chunk_set AND %s AND %s
      OFFSET 0
    ) m
    WHERE %s
    ORDER BY f.path, m.line
  $q$, v_rel, v_chunk_test, v_line_test, v_in_scope);

  EXECUTE 'EXPLAIN (FORMAT JSON) ' || v_indexed_query INTO v_plan
  USING p_workspace, v_lo, v_hi, v_chunk_pattern, p_glob_basename OR s.exact, p_glob_regex, s.dir,
        p_pattern, p_glob;
  -- (The node's field, quoted: a pattern naming the index appears in the plan escaped.)
  IF position('"Index Name": "chunks_content_trgm_idx"' IN v_plan) > 0 THEN
    -- How dense the pattern is where the stream reads first: 32 to 63 text files under 256 kB
    -- spread evenly over the first 1,024 of the scope in path order (their rows of `files` read
    -- in the primary key's order; the text of the sampled ones, at most 16 MiB). Over the whole
    -- scope, the sample cost a scan and sort of every file of it: 8 ms of a rare literal's 11 on
    -- 6,300 files.
    EXECUTE format($q$
      SELECT count(*), count(*) FILTER (WHERE EXISTS (SELECT 1 FROM chunks c WHERE c.chunk_set = p.chunk_set AND %s))
      FROM (
        SELECT f.chunk_set, row_number() OVER () AS n, count(*) OVER () AS total
        FROM (
          SELECT f.chunk_set
          FROM files f
          %s
          WHERE %s AND f.chunk_set IS NOT NULL AND f.size <= 262144
          ORDER BY f.path
          LIMIT 1024
        ) f
      ) p
      WHERE (p.n - 1) %% greatest(1, p.total / 32) = 0
    $q$, v_chunk_test, v_rel, v_in_scope) INTO v_seen, v_hits
    USING p_workspace, v_lo, v_hi, v_chunk_pattern, p_glob_basename OR s.exact, p_glob_regex, s.dir,
          p_pattern, p_glob;
    -- (No file sampled: every file of the range is over 256 kB, or the range is empty; the
    -- planner's choice stands, rather than a path-order read of big files for a sparse pattern.)
    IF v_seen = 0 OR v_hits * 4 < v_seen THEN
      -- Planned for all its rows, as the EXPLAIN above was: a cursor is otherwise planned for its
      -- first tenth (cursor_tuple_fraction), and the planner then walks the scope in path order
      -- with the index unused (measured: 202 ms against 27 for a word in 7% of a 20 MiB tree).
      v_fraction := current_setting('cursor_tuple_fraction');
      PERFORM set_config('cursor_tuple_fraction', '1', true);
      OPEN v_cursor NO SCROLL FOR EXECUTE v_indexed_query
      USING p_workspace, v_lo, v_hi, v_chunk_pattern, p_glob_basename OR s.exact, p_glob_regex, s.dir,
            p_pattern, p_glob;
      PERFORM set_config('cursor_tuple_fraction', v_fraction, true);
      o_cursor := v_cursor;
      o_path_order := false;
      RETURN;
    END IF;
  END IF;
  v_sort := current_setting('enable_sort');
  PERFORM set_config('enable_sort', 'off', true);
  OPEN v_cursor NO SCROLL FOR EXECUTE v_path_query
  USING p_workspace, v_lo, v_hi, v_chunk_pattern, p_glob_basename OR s.exact, p_glob_regex, s.dir,
        p_pattern, p_glob;
  PERFORM set_config('enable_sort', v_sort, true);
  o_cursor := v_cursor;
  o_path_order := true;
  RETURN;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.fs_search_split(p_workspace text, p_path text, p_allow_exact boolean, p_parts integer, p_min_bytes bigint)
 RETURNS text[]
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'deepagents', 'pg_temp'
 SET jit TO 'off'
AS $function$
DECLARE
  s record;
  v_bounds text[];
BEGIN
  IF p_parts IS NULL OR p_parts < 2 THEN
    RETURN '{}';
  END IF;
  s := search_scope(p_workspace, p_path, p_allow_exact, '');
  SELECT coalesce(array_agg(b.path ORDER BY b.path), '{}') INTO v_bounds
  FROM (
    SELECT min(r.path COLLATE "C") AS path
    FROM (
      SELECT f.path, sum(f.size) OVER (ORDER BY f.path ROWS UNBOUNDED PRECEDING) - f.size AS before,
             sum(f.size) OVER () AS total
      FROM files f
      WHERE f.workspace = p_workspace AND f.path >= s.lo AND f.path < s.hi AND f.chunk_set IS NOT NULL
    ) r
    WHERE r.total >= p_min_bytes AND r.before > 0
    GROUP BY floor(r.before * p_parts / r.total)
    HAVING floor(r.before * p_parts / r.total) > 0
  ) b;
  RETURN v_bounds;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.fs_stat(p_workspace text, p_path text)
 RETURNS TABLE(mime_type text, is_binary boolean, size bigint, line_count integer, version bigint, created_at timestamp with time zone, modified_at timestamp with time zone)
 LANGUAGE sql
 STABLE
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
  SELECT f.mime_type, f.bytes IS NOT NULL, f.size, f.line_count, f.version, f.created_at, f.modified_at
  FROM files f WHERE f.workspace = p_workspace AND f.path = p_path
$function$;

CREATE OR REPLACE FUNCTION deepagents.fs_upload(p_workspace text, p_paths text[], p_contents text[], p_bytes bytea[], p_mime_types text[])
 RETURNS TABLE(path text, status text, conflict text)
 LANGUAGE plpgsql
 SET search_path TO 'deepagents', 'pg_temp'
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
DECLARE
  v_refused   text[];
  v_statuses  text[];
  v_conflicts text[];
  v_with_dirs boolean := EXISTS (SELECT 1 FROM directories d WHERE d.workspace = p_workspace);
BEGIN
  SELECT coalesce(array_agg(r.path), '{}'), coalesce(array_agg(r.status), '{}'), coalesce(array_agg(r.conflict), '{}')
    INTO v_refused, v_statuses, v_conflicts
  FROM (
    SELECT b.path, CASE WHEN x.file IS NOT NULL THEN 'parent_is_file' ELSE 'is_directory' END AS status,
           coalesce(x.file, b.path) AS conflict
    FROM unnest(p_paths) AS b(path)
    CROSS JOIN LATERAL (
      -- Scalar subqueries, never pulled up into joins: one primary-key probe each, whatever
      -- the statistics claim right after a bulk upload.
      SELECT (SELECT a.dir FROM unnest(path_ancestors(b.path)) WITH ORDINALITY AS a(dir, i)
              WHERE (SELECT true FROM files f WHERE f.workspace = p_workspace AND f.path = a.dir COLLATE "C" LIMIT 1)
              ORDER BY a.i LIMIT 1) AS file,
             coalesce((SELECT true FROM files f WHERE f.workspace = p_workspace
                       AND f.path >= b.path || '/' AND f.path < b.path || '0' LIMIT 1),
                      -- (directory rows only where the workspace has any: planned away otherwise)
                      CASE WHEN v_with_dirs THEN
                        coalesce((SELECT true FROM directories d WHERE d.workspace = p_workspace AND d.path = b.path LIMIT 1),
                                 (SELECT true FROM directories d WHERE d.workspace = p_workspace
                                  AND d.path >= b.path || '/' AND d.path < b.path || '0' LIMIT 1)) END) AS is_dir
    ) x
    WHERE x.file IS NOT NULL OR x.is_dir
  ) r;

  INSERT INTO files AS f (workspace, path, content, bytes, mime_type, size, line_count)
  SELECT p_workspace, u.path, u.content, u.bytes, u.mime_type,
         coalesce(octet_length(u.content), length(u.bytes)), text_line_count(u.content)
  FROM unnest(p_paths, p_contents, p_bytes, p_mime_types) AS u(path, content, bytes, mime_type)
  WHERE u.path <> ALL (v_refused)
  ORDER BY u.path COLLATE "C"
  ON CONFLICT ON CONSTRAINT files_pkey DO UPDATE -- (workspace, path); `path` is also an OUT column here
    SET content = excluded.content, bytes = excluded.bytes, mime_type = excluded.mime_type,
        size = excluded.size, line_count = excluded.line_count,
        version = f.version + 1, modified_at = clock_timestamp();
  RETURN QUERY SELECT r.path, r.status, r.conflict FROM unnest(v_refused, v_statuses, v_conflicts) AS r(path, status, conflict);
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.fs_wake_up(p_workspaces text[])
 RETURNS integer
 LANGUAGE plpgsql
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
DECLARE
  v_note record;
  v_count integer := 0;
BEGIN
  FOR v_note IN
    SELECT w.workspace, history_head(w.workspace) AS id
    FROM (SELECT DISTINCT x.workspace FROM unnest(p_workspaces) AS x(workspace) WHERE x.workspace IS NOT NULL) w
  LOOP
    CONTINUE WHEN v_note.id = 0;
    PERFORM pg_notify(changes_channel(v_note.workspace), json_build_object('id', v_note.id)::text);
    v_count := v_count + 1;
  END LOOP;
  RETURN v_count;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.fs_write(p_workspace text, p_path text, p_content text, p_bytes bytea, p_mime_type text, p_if_version bigint)
 RETURNS TABLE(status text, version bigint, conflict text)
 LANGUAGE plpgsql
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
DECLARE
  v_size    bigint  := coalesce(octet_length(p_content), length(p_bytes));
  v_lines   integer := text_line_count(p_content);
  v_version bigint;
  v_status  text;
  v_file    text;
BEGIN
  SELECT a.dir INTO v_file FROM unnest(path_ancestors(p_path)) WITH ORDINALITY AS a(dir, i)
  WHERE (SELECT true FROM files f WHERE f.workspace = p_workspace AND f.path = a.dir COLLATE "C" LIMIT 1)
  ORDER BY a.i LIMIT 1;
  IF v_file IS NOT NULL THEN
    RETURN QUERY SELECT 'parent_is_file'::text, 0::bigint, v_file; RETURN;
  END IF;
  IF EXISTS (SELECT 1 FROM files f WHERE f.workspace = p_workspace
             AND f.path >= p_path || '/' AND f.path < p_path || '0')
     OR EXISTS (SELECT 1 FROM directories d WHERE d.workspace = p_workspace AND d.path = p_path)
     OR EXISTS (SELECT 1 FROM directories d WHERE d.workspace = p_workspace
                AND d.path >= p_path || '/' AND d.path < p_path || '0') THEN
    RETURN QUERY SELECT 'is_directory'::text, 0::bigint, p_path; RETURN;
  END IF;

  IF p_if_version IS NULL THEN
    INSERT INTO files AS f (workspace, path, content, bytes, mime_type, size, line_count)
    VALUES (p_workspace, p_path, p_content, p_bytes, p_mime_type, v_size, v_lines)
    ON CONFLICT (workspace, path) DO UPDATE
      SET content = excluded.content, bytes = excluded.bytes, mime_type = excluded.mime_type,
          size = excluded.size, line_count = excluded.line_count,
          version = f.version + 1, modified_at = clock_timestamp()
    RETURNING CASE WHEN f.xmax = 0 THEN 'created' ELSE 'updated' END, f.version INTO v_status, v_version;
    RETURN QUERY SELECT v_status, v_version, NULL::text;
    RETURN;
  END IF;

  IF p_if_version = 0 THEN
    INSERT INTO files (workspace, path, content, bytes, mime_type, size, line_count)
    VALUES (p_workspace, p_path, p_content, p_bytes, p_mime_type, v_size, v_lines)
    ON CONFLICT (workspace, path) DO NOTHING
    RETURNING files.version INTO v_version;
    IF FOUND THEN
      RETURN QUERY SELECT 'created'::text, v_version, NULL::text;
      RETURN;
    END IF;
  ELSE
    UPDATE files f
       SET content = p_content, bytes = p_bytes, mime_type = p_mime_type, size = v_size,
           line_count = v_lines, version = f.version + 1, modified_at = clock_timestamp()
     WHERE f.workspace = p_workspace AND f.path = p_path AND f.version = p_if_version
    RETURNING f.version INTO v_version;
    IF FOUND THEN
      RETURN QUERY SELECT 'updated'::text, v_version, NULL::text;
      RETURN;
    END IF;
  END IF;

  SELECT f.version INTO v_version FROM files f WHERE f.workspace = p_workspace AND f.path = p_path;
  RETURN QUERY SELECT 'version_mismatch'::text, coalesce(v_version, 0), NULL::text;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.grant_workspace(p_role name, p_workspace text)
 RETURNS boolean
 LANGUAGE plpgsql
 SET search_path TO 'deepagents', 'pg_temp'
AS $function$
DECLARE
  v_schema text := current_schema();
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = p_role) THEN
    RAISE EXCEPTION 'role "%" does not exist', p_role USING ERRCODE = 'undefined_object';
  END IF;
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', v_schema, p_role);
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I.files, %I.directories TO %I', v_schema, v_schema, p_role);
  EXECUTE format('GRANT SELECT ON %I.chunks, %I.changes, %I.changes_horizon, %I.migrations TO %I',
                 v_schema, v_schema, v_schema, v_schema, p_role);
  PERFORM history_grant(p_role);
  INSERT INTO workspace_grants (role_name, workspace) VALUES (p_role, p_workspace) ON CONFLICT DO NOTHING;
  RETURN FOUND;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.history_body_lost(p_path text, p_version bigint)
 RETURNS bytea
 LANGUAGE plpgsql
 SET search_path TO 'deepagents', 'pg_temp'
AS $function$
BEGIN
  RAISE EXCEPTION 'cannot keep version % of "%" in its history: its text is gone (deleted by the same statement)',
    p_version, p_path
    USING ERRCODE = 'DA010', DETAIL = p_path;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.history_collect_blobs()
 RETURNS bigint
 LANGUAGE plpgsql
 SET search_path TO 'deepagents', 'pg_temp'
AS $function$
DECLARE
  v_free bytea[];
  v_count bigint;
BEGIN
  -- Only a READ COMMITTED caller collects (a later one sweeps what is left): an older snapshot may
  -- not see a version that names a blob, committed by a fork after it was taken (0019: no foreign
  -- key stops the delete).
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RETURN 0;
  END IF;
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
$function$;

CREATE OR REPLACE FUNCTION deepagents.history_compare(p_workspace text, p_from bigint, p_to bigint, p_scope text[])
 RETURNS TABLE(path text, from_version bigint, from_size bigint, from_hash bytea, from_mime text, to_version bigint, to_size bigint, to_hash bytea, to_mime text)
 LANGUAGE sql
 STABLE
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
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
      SELECT f.version, false, f.size, f.hash, f.mime_type FROM files f
      WHERE p_to IS NULL AND f.workspace = p_workspace AND f.path = t.path
    ) b ON true
  )
  SELECT * FROM states s
  WHERE (s.from_hash, s.from_mime) IS DISTINCT FROM (s.to_hash, s.to_mime)
  ORDER BY s.path
$function$;

CREATE OR REPLACE FUNCTION deepagents.history_deleted()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
 SET plan_cache_mode TO 'force_custom_plan'
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
  -- prune_history's collection, as blob_keep does, or inserts it again if a collector deleted it
  -- meanwhile: no version names a blob that is gone (0019, which dropped the foreign key).
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

CREATE OR REPLACE FUNCTION deepagents.history_enabled(p_workspace text)
 RETURNS boolean
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'deepagents', 'pg_temp'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
BEGIN
  RETURN coalesce((SELECT s.enabled FROM history_settings s WHERE s.scope = p_workspace),
                  (SELECT s.enabled FROM history_settings s WHERE s.scope = ''), true);
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.history_grant(p_role name)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO 'deepagents', 'pg_temp'
AS $function$
DECLARE
  v_schema text := current_schema();
BEGIN
  EXECUTE format('GRANT SELECT ON %I.file_versions, %I.blobs, %I.history_settings TO %I',
                 v_schema, v_schema, v_schema, p_role);
  EXECUTE format('GRANT SELECT, INSERT, DELETE ON %I.checkpoints TO %I', v_schema, p_role);
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.history_head(p_workspace text)
 RETURNS bigint
 LANGUAGE sql
 STABLE
 SET search_path TO 'deepagents', 'pg_temp'
RETURN GREATEST((SELECT max(c.id) AS max FROM deepagents.changes c WHERE (c.workspace = history_head.p_workspace)), (SELECT h.pruned_to FROM deepagents.changes_horizon h WHERE (h.workspace = history_head.p_workspace)), (0)::bigint);

CREATE OR REPLACE FUNCTION deepagents.history_inserted()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
BEGIN
  INSERT INTO file_versions AS v (workspace, path, version, op, change_id, at, size, mime_type, is_text, hash, tag)
  SELECT n.workspace, n.path, n.version, 'create', NULL, n.modified_at, n.size, n.mime_type, n.chunk_set IS NOT NULL,
         n.hash, nullif(current_setting('deepagents_backends.tag', true), '')
  FROM new_rows n
  -- (OFFSET 0: pushed below the DISTINCT, history_enabled ran once per row, not per workspace)
  WHERE n.workspace IN (SELECT w.workspace FROM (SELECT DISTINCT r.workspace FROM new_rows r OFFSET 0) w
                        WHERE history_enabled(w.workspace))
    -- (A fork's own rows have no version row: version_meta reads their versions off the files.)
    AND n.workspace NOT IN (SELECT m.workspace FROM fork_marks m WHERE m.xact = pg_current_xact_id())
  ORDER BY n.workspace, n.path COLLATE "C" -- version rows are locked in path order too
  ON CONFLICT (workspace, path, version, deleted) DO UPDATE
    SET op = excluded.op, change_id = excluded.change_id, at = excluded.at, size = excluded.size,
        mime_type = excluded.mime_type, is_text = excluded.is_text, hash = excluded.hash, tag = excluded.tag,
        blob = NULL, delta_prefix = NULL, delta_suffix = NULL, delta_middle = NULL, depth = 0;
  RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.history_max_depth(p_size bigint)
 RETURNS integer
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
RETURN GREATEST(8, LEAST(200, ((268435456 / GREATEST(p_size, (1)::bigint)))::integer));

CREATE OR REPLACE FUNCTION deepagents.history_policy(p_workspace text, OUT enabled boolean, OUT keep_versions integer, OUT keep_days integer)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'deepagents', 'pg_temp'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
BEGIN
  -- The workspace's setting where it has one; its retention only if it sets one of the two.
  SELECT coalesce(w.enabled, d.enabled, true),
         CASE WHEN w.keep_versions IS NOT NULL OR w.keep_days IS NOT NULL THEN w.keep_versions ELSE d.keep_versions END,
         CASE WHEN w.keep_versions IS NOT NULL OR w.keep_days IS NOT NULL THEN w.keep_days ELSE d.keep_days END
    INTO enabled, keep_versions, keep_days
  FROM (SELECT) x
  LEFT JOIN history_settings d ON d.scope = ''
  LEFT JOIN history_settings w ON w.scope = p_workspace;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.history_updated()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
DECLARE
  v_tag text := nullif(current_setting('deepagents_backends.tag', true), '');
  v_on text[];
  v_all boolean;
BEGIN
  -- The workspaces of the statement that keep history (a settings read each, not one per row),
  -- and whether that is all of them (the rows are then not filtered: a generic plan compares each
  -- row with every element of an array parameter, rows x workspaces).
  SELECT array_agg(w.workspace) FILTER (WHERE w.enabled), bool_and(w.enabled) INTO v_on, v_all
  FROM (SELECT d.workspace, history_enabled(d.workspace) AS enabled
        FROM (SELECT DISTINCT r.workspace
              FROM (SELECT o.workspace FROM old_rows o UNION ALL SELECT n.workspace FROM new_rows n) r) d
        OFFSET 0) w;
  IF v_on IS NULL THEN
    RETURN NULL;
  END IF;
  -- Linear in the rows whatever plan it keeps: the pairing is a FULL JOIN (hash or merge), each
  -- version row is found by a key probe, and the two CTEs are materialized, so each body and each
  -- delta is computed once (OFFSET 0 keeps a lateral's column from being computed once per use).
  WITH pairs AS MATERIALIZED (
    SELECT coalesce(o.workspace, n.workspace) AS workspace, coalesce(o.path, n.path) AS path,
           o.version AS old_version, o.modified_at AS old_at, o.size AS old_size, o.mime_type AS old_mime,
           o.chunk_set IS NOT NULL AS old_is_text, o.hash AS old_hash,
           n.version AS new_version, n.modified_at AS new_at, n.size AS new_size, n.mime_type AS new_mime,
           n.chunk_set IS NOT NULL AS new_is_text, n.hash AS new_hash,
           n.path IS NULL OR n.version > o.version AS replaced,
           -- The bodies, where a version is replaced: the old one to keep, the new one to diff with.
           CASE WHEN n.path IS NULL OR n.version > o.version
                THEN coalesce(file_body(file_text(o.content, o.chunk_set), o.bytes),
                              history_body_lost(o.path, o.version)) END AS old_body,
           CASE WHEN n.version > o.version
                THEN file_body(file_text(n.content, n.chunk_set), n.bytes) END AS new_body
    FROM old_rows o FULL JOIN new_rows n ON n.workspace = o.workspace AND n.path = o.path
    WHERE v_all OR coalesce(o.workspace, n.workspace) = ANY (v_on)
  ), kept AS MATERIALIZED (
    -- Each replaced version whose bytes are not kept yet (normally: the live one had none), with
    -- whether a row records it, kept as a reverse delta against the new version where that is
    -- small and the chain below it short enough, else whole. Delta or whole is decided from this
    -- path's own versions only (by whether a blob of these bytes exists anywhere, a tenant could
    -- learn what other workspaces hold; 0008).
    SELECT p.workspace, p.path, p.old_version, p.old_at, p.old_size, p.old_mime, p.old_is_text, p.old_hash,
           v.recorded, d.is_delta, CASE WHEN d.is_delta THEN c.depth ELSE 0 END AS depth,
           CASE WHEN d.is_delta THEN d.prefix END AS delta_prefix,
           CASE WHEN d.is_delta THEN d.suffix END AS delta_suffix,
           CASE WHEN d.is_delta THEN substr(p.old_body, d.prefix + 1, length(p.old_body) - d.prefix - d.suffix) END
             AS delta_middle,
           CASE WHEN NOT d.is_delta THEN p.old_body END AS whole
    FROM pairs p
    LEFT JOIN LATERAL (
      SELECT true AS recorded, v.blob IS NOT NULL OR v.delta_middle IS NOT NULL AS has_body FROM file_versions v
      WHERE v.workspace = p.workspace AND v.path = p.path AND v.version = p.old_version AND NOT v.deleted LIMIT 1
    ) v ON true
    -- The depth a delta would have: one more than the deltas just below it (those of the
    -- previous kept version; raw SQL may leave gaps).
    CROSS JOIN LATERAL (
      SELECT CASE WHEN p.new_body IS NOT NULL THEN
               coalesce((SELECT CASE WHEN q.delta_middle IS NOT NULL THEN q.depth END FROM file_versions q
                         WHERE q.workspace = p.workspace AND q.path = p.path AND q.version < p.old_version
                           AND NOT q.deleted
                         ORDER BY q.version DESC LIMIT 1), 0) + 1 END AS depth
      OFFSET 0
    ) c
    CROSS JOIN LATERAL (
      SELECT x.prefix, x.suffix,
             coalesce(length(p.old_body) - x.prefix - x.suffix <= length(p.old_body) / 2 + 64, false) AS is_delta
      FROM (SELECT CASE WHEN c.depth <= history_max_depth(greatest(length(p.old_body), length(p.new_body)))
                        THEN bytes_common_prefix(p.old_body, p.new_body) END AS prefix
            OFFSET 0) w
      CROSS JOIN LATERAL (
        SELECT w.prefix,
               CASE WHEN w.prefix IS NOT NULL
                    THEN bytes_common_suffix(p.old_body, p.new_body,
                                             least(length(p.old_body), length(p.new_body)) - w.prefix) END AS suffix
        OFFSET 0
      ) x
      OFFSET 0
    ) d
    WHERE p.replaced AND v.has_body IS NOT TRUE
  ), stored AS (
    -- Each body kept whole, stored once by its SHA-256 (a file's hash is that of its body) and in
    -- hash order (the lock order of blobs); an existing blob is touched, which locks it against
    -- history_collect_blobs (see the end of this file).
    INSERT INTO blobs AS b (hash, data)
    SELECT DISTINCT ON (k.old_hash) k.old_hash, k.whole FROM kept k WHERE NOT k.is_delta ORDER BY k.old_hash
    ON CONFLICT (hash) DO UPDATE SET hash = b.hash
  ), recorded_late AS (
    -- A version written before history was kept for it: recorded now, as there all along.
    INSERT INTO file_versions (workspace, path, version, op, change_id, at, size, mime_type, is_text, hash, tag,
                               blob, delta_prefix, delta_suffix, delta_middle, depth)
    SELECT k.workspace, k.path, k.old_version, CASE WHEN k.old_version = 1 THEN 'create' ELSE 'update' END, 0,
           k.old_at, k.old_size, k.old_mime, k.old_is_text, k.old_hash, v_tag,
           CASE WHEN NOT k.is_delta THEN k.old_hash END, k.delta_prefix, k.delta_suffix, k.delta_middle, k.depth
    FROM kept k WHERE k.recorded IS NULL
    ORDER BY k.workspace, k.path
    ON CONFLICT (workspace, path, version, deleted) DO NOTHING
  ), recorded AS (
    UPDATE file_versions v
       SET blob = CASE WHEN NOT k.is_delta THEN k.old_hash END,
           hash = CASE WHEN NOT k.is_delta THEN k.old_hash ELSE v.hash END,
           delta_prefix = k.delta_prefix, delta_suffix = k.delta_suffix, delta_middle = k.delta_middle,
           depth = k.depth
      FROM kept k
     WHERE k.recorded AND v.workspace = k.workspace AND v.path = k.path AND v.version = k.old_version
       AND NOT v.deleted
  ), renamed_away AS (
    INSERT INTO file_versions (workspace, path, version, deleted, op, size, tag)
    SELECT p.workspace, p.path, p.old_version, true, 'delete', p.old_size, v_tag
    FROM pairs p WHERE p.new_version IS NULL
    ORDER BY p.workspace, p.path
    ON CONFLICT (workspace, path, version, deleted) DO UPDATE
      SET change_id = NULL, at = excluded.at, size = excluded.size, tag = excluded.tag
  )
  -- The new versions (stamped with their change ids at commit, as every version).
  INSERT INTO file_versions AS v (workspace, path, version, op, change_id, at, size, mime_type, is_text, hash, tag)
  SELECT p.workspace, p.path, p.new_version, CASE WHEN p.old_version IS NULL THEN 'create' ELSE 'update' END, NULL,
         p.new_at, p.new_size, p.new_mime, p.new_is_text, p.new_hash, v_tag
  FROM pairs p
  WHERE p.new_version IS NOT NULL AND (p.old_version IS NULL OR p.new_version > p.old_version)
  ORDER BY p.workspace, p.path
  ON CONFLICT (workspace, path, version, deleted) DO UPDATE
    SET op = excluded.op, change_id = excluded.change_id, at = excluded.at, size = excluded.size,
        mime_type = excluded.mime_type, is_text = excluded.is_text, hash = excluded.hash, tag = excluded.tag,
        blob = NULL, delta_prefix = NULL, delta_suffix = NULL, delta_middle = NULL, depth = 0;
  RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.path_ancestors(p_path text)
 RETURNS text[]
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE STRICT
AS $function$
DECLARE
  v_parts pg_catalog.text[] := pg_catalog.string_to_array(p_path, '/');
  v_dirs pg_catalog.text[] := '{}';
BEGIN
  FOR i IN 2 .. pg_catalog.cardinality(v_parts) - 1 LOOP
    v_dirs := v_dirs || pg_catalog.array_to_string(v_parts[1:i], '/');
  END LOOP;
  RETURN v_dirs;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.prune_changes(p_older_than interval DEFAULT NULL::interval, p_keep integer DEFAULT NULL::integer)
 RETURNS bigint
 LANGUAGE plpgsql
 SET search_path TO 'deepagents', 'pg_temp'
AS $function$
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
$function$;

CREATE OR REPLACE FUNCTION deepagents.prune_chunks()
 RETURNS bigint
 LANGUAGE sql
 SET search_path TO 'deepagents', 'pg_temp'
AS $function$
  WITH gone AS (
    DELETE FROM chunks c WHERE NOT EXISTS (SELECT 1 FROM files f WHERE f.chunk_set = c.chunk_set)
    RETURNING c.chunk_set
  )
  SELECT count(DISTINCT g.chunk_set) FROM gone g
$function$;

CREATE OR REPLACE FUNCTION deepagents.prune_history(p_workspace text)
 RETURNS TABLE(versions bigint, blobs bigint)
 LANGUAGE plpgsql
 SET search_path TO 'deepagents', 'pg_temp'
AS $function$
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
$function$;

CREATE OR REPLACE FUNCTION deepagents.revoke_workspace(p_role name, p_workspace text)
 RETURNS boolean
 LANGUAGE plpgsql
 SET search_path TO 'deepagents', 'pg_temp'
AS $function$
DECLARE
  v_schema text := current_schema();
  v_removed boolean;
BEGIN
  DELETE FROM workspace_grants g WHERE g.role_name = p_role AND g.workspace IS NOT DISTINCT FROM p_workspace;
  v_removed := FOUND;
  IF NOT EXISTS (SELECT 1 FROM workspace_grants g WHERE g.role_name = p_role)
     AND EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = p_role) THEN
    EXECUTE format('REVOKE ALL ON %I.files, %I.chunks, %I.changes, %I.changes_horizon, %I.migrations, '
                   '%I.file_versions, %I.blobs, %I.history_settings, %I.checkpoints, %I.directories FROM %I',
                   v_schema, v_schema, v_schema, v_schema, v_schema, v_schema, v_schema, v_schema, v_schema,
                   v_schema, p_role);
    EXECUTE format('REVOKE USAGE ON SCHEMA %I FROM %I', v_schema, p_role);
  END IF;
  RETURN v_removed;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.search_scope(p_workspace text, p_path text, p_allow_exact boolean, p_base text, OUT lo text, OUT hi text, OUT dir text, OUT exact boolean)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
BEGIN
  exact := p_allow_exact AND p_path <> '/'
           AND EXISTS (SELECT 1 FROM files f WHERE f.workspace = p_workspace AND f.path = p_path);
  IF exact THEN
    -- Nothing sorts between a string and itself followed by U+0001: the range is that one path.
    lo := p_path; hi := p_path || chr(1); dir := p_path || '/';
    RETURN;
  END IF;
  dir := CASE WHEN p_path = '/' THEN '/' ELSE p_path || '/' END;
  IF p_base <> '' THEN
    lo := dir || p_base; hi := dir || p_base || '0';
  ELSE
    lo := dir; hi := dir_upper_bound(dir);
  END IF;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.set_history(p_scope text, p_enabled boolean, p_keep_versions integer, p_keep_days integer)
 RETURNS TABLE(versions bigint, checkpoints bigint, blobs bigint)
 LANGUAGE plpgsql
 SET search_path TO 'deepagents', 'pg_temp'
AS $function$
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
$function$;

CREATE OR REPLACE FUNCTION deepagents.statistics_analyze()
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO 'deepagents', 'pg_temp'
 SET default_statistics_target TO '100'
 SET vacuum_cost_delay TO '0'
 SET client_min_messages TO 'error'
AS $function$
BEGIN
  IF pg_try_advisory_xact_lock(hashtext('deepagents-backends:statistics:' || current_schema())) THEN
    BEGIN
      ANALYZE (SKIP_LOCKED) files, chunks;
    EXCEPTION WHEN deadlock_detected OR lock_not_available THEN
      NULL;
    END;
  END IF;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.statistics_refresh()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'deepagents', 'pg_temp'
 SET jit TO 'off'
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
DECLARE
  r record;
  v_plan json;
  v_estimate double precision;
  v_rows bigint;
BEGIN
  -- A bulk statement: 50 rows or more, or 8 MiB or more (an import of big files, 500 files or
  -- 16 MiB a batch, may write fewer than 50 rows a statement).
  IF (SELECT count(*) FROM (SELECT 1 FROM new_rows n LIMIT 50) s) < 50
     AND (SELECT coalesce(sum(n.size), 0) FROM new_rows n) < 8388608 THEN
    RETURN NULL;
  END IF;
  -- A table twice the size it had at its last ANALYZE (its pages now against the pages counted
  -- then; 64 pages or more: below that any plan is quick).
  IF EXISTS (SELECT 1 FROM pg_class c
             WHERE c.oid IN ('files'::regclass, 'chunks'::regclass)
               AND pg_relation_size(c.oid) / current_setting('block_size')::bigint
                   > greatest(2 * c.relpages::bigint, 64)) THEN
    PERFORM statistics_analyze();
    RETURN NULL;
  END IF;
  FOR r IN
    SELECT n.workspace, count(*) AS written FROM new_rows n
    GROUP BY n.workspace HAVING count(*) >= 50 OR sum(n.size) >= 8388608 ORDER BY n.workspace
  LOOP
    -- The literal in the statement, not a parameter: the estimate a search of it would get.
    EXECUTE format('EXPLAIN (FORMAT JSON) SELECT 1 FROM files f WHERE f.workspace = %L', r.workspace) INTO v_plan;
    v_estimate := (v_plan -> 0 -> 'Plan' ->> 'Plan Rows')::double precision;
    -- This statement's own rows may already be more than the estimate allows for; else count, no
    -- further than that, and not for a workspace the planner already takes for 10,000 rows or
    -- more (its plans are the big workspace's; counting it would cost every batch a scan).
    IF r.written > 2 * v_estimate + 50 THEN
      PERFORM statistics_analyze();
      RETURN NULL;
    END IF;
    CONTINUE WHEN v_estimate >= 10000;
    SELECT count(*) INTO v_rows
    FROM (SELECT 1 FROM files f WHERE f.workspace = r.workspace LIMIT (2 * v_estimate)::bigint + 51) s;
    IF v_rows > 2 * v_estimate + 50 THEN
      PERFORM statistics_analyze();
      RETURN NULL;
    END IF;
  END LOOP;
  RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.text_chunks(p_content text)
 RETURNS TABLE(first_line integer, line_count integer, content text)
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
  SELECT min(s.n)::integer, count(*)::integer, string_agg(s.line, E'\n' ORDER BY s.n)
  FROM (
    SELECT t.line, t.n,
           (sum(octet_length(t.line) + 1) OVER (ORDER BY t.n ROWS UNBOUNDED PRECEDING)
              - octet_length(t.line) - 1) / 3000 AS slot
    FROM string_to_table(p_content, E'\n') WITH ORDINALITY AS t(line, n)
  ) s
  GROUP BY s.slot
  UNION ALL
  SELECT 1, 1, '' WHERE p_content = ''
$function$;

CREATE OR REPLACE FUNCTION deepagents.text_line_count(t text)
 RETURNS integer
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN ((t IS NULL) OR (t = ''::text)) THEN 0 ELSE ((length(t) - length(replace(t, '
'::text, ''::text))) + (("right"(t, 1) <> '
'::text))::integer) END;

CREATE OR REPLACE FUNCTION deepagents.tombstones_clear()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
BEGIN
  DELETE FROM tombstones t USING new_rows n WHERE t.workspace = n.workspace AND t.path = n.path;
  RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.tombstones_record()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
BEGIN
  INSERT INTO tombstones AS t (workspace, path, version)
  SELECT o.workspace, o.path, o.version FROM old_rows o ORDER BY o.workspace, o.path
  ON CONFLICT (workspace, path) DO UPDATE SET version = greatest(t.version, excluded.version);
  RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.version_data(p_workspace text, p_path text, p_version bigint)
 RETURNS bytea
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
DECLARE
  v_hash bytea := (version_meta(p_workspace, p_path, p_version)).hash;
  v_end file_versions;
  v_end_version bigint;
  v_data bytea;
  v_step record;
BEGIN
  IF v_hash IS NULL THEN
    RETURN NULL;
  END IF;
  SELECT * INTO v_end FROM file_versions v
  WHERE v.workspace = p_workspace AND v.path = p_path AND v.version >= p_version AND NOT v.deleted
    AND v.delta_middle IS NULL
  ORDER BY v.version LIMIT 1;
  IF v_end.blob IS NOT NULL THEN
    SELECT b.data, v_end.version INTO v_data, v_end_version FROM blobs b WHERE b.hash = v_end.blob;
  ELSE
    -- The chain ends at the current file: the version of v_end, or, when no row records the
    -- current version (version_meta), the file's.
    SELECT file_body(file_text(f.content, f.chunk_set), f.bytes), f.version INTO v_data, v_end_version FROM files f
    WHERE f.workspace = p_workspace AND f.path = p_path AND f.version = coalesce(v_end.version, f.version)
      AND f.version >= p_version;
  END IF;
  IF v_data IS NULL THEN
    RAISE EXCEPTION 'the history of "%" is damaged: version % is neither stored nor current', p_path,
      coalesce(v_end.version, p_version)
      USING ERRCODE = 'DA010';
  END IF;
  FOR v_step IN
    SELECT v.version, v.delta_prefix, v.delta_suffix, v.delta_middle FROM file_versions v
    WHERE v.workspace = p_workspace AND v.path = p_path AND NOT v.deleted
      AND v.version >= p_version AND v.version < v_end_version
    ORDER BY v.version DESC
  LOOP
    v_data := substr(v_data, 1, v_step.delta_prefix) || v_step.delta_middle
              || substr(v_data, length(v_data) - v_step.delta_suffix + 1);
  END LOOP;
  -- Every answer is checked against the hash recorded with the version: history that raw SQL
  -- (or a bug) damaged is an error, never other bytes.
  IF sha256(v_data) IS DISTINCT FROM v_hash THEN
    RAISE EXCEPTION 'the history of "%" is damaged: version % does not rebuild to its recorded hash', p_path, p_version
      USING ERRCODE = 'DA010';
  END IF;
  RETURN v_data;
END
$function$;

CREATE OR REPLACE FUNCTION deepagents.version_meta(p_workspace text, p_path text, p_version bigint, OUT mime_type text, OUT is_text boolean, OUT hash bytea)
 RETURNS record
 LANGUAGE sql
 STABLE
 SET search_path TO 'deepagents', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET jit TO 'off'
AS $function$
  SELECT v.mime_type, v.is_text, v.hash FROM file_versions v
  WHERE v.workspace = p_workspace AND v.path = p_path AND v.version = p_version AND NOT v.deleted
  UNION ALL
  SELECT f.mime_type, f.chunk_set IS NOT NULL, f.hash FROM files f
  WHERE f.workspace = p_workspace AND f.path = p_path AND f.version = p_version AND history_enabled(p_workspace)
  LIMIT 1
$function$;

-- Triggers ---------------------------------------------------------------------------------------

CREATE CONSTRAINT TRIGGER changes_flush_at_commit AFTER INSERT ON deepagents.changes_flush DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION deepagents.changes_flush_now();

CREATE TRIGGER directories_zz_stage_inserted AFTER INSERT ON deepagents.directories REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION deepagents.directories_stage();

CREATE TRIGGER directories_zz_stage_updated AFTER UPDATE ON deepagents.directories REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION deepagents.directories_stage();

CREATE TRIGGER files_a_history_updated AFTER UPDATE ON deepagents.files REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION deepagents.history_updated();

CREATE TRIGGER files_chunks_claim AFTER INSERT ON deepagents.files REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION deepagents.chunks_claim();

CREATE TRIGGER files_chunks_insert AFTER INSERT ON deepagents.files REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION deepagents.chunks_insert();

CREATE TRIGGER files_chunks_set BEFORE INSERT OR UPDATE OF content, bytes, chunk_set, hash ON deepagents.files FOR EACH ROW EXECUTE FUNCTION deepagents.chunks_assign();

CREATE TRIGGER files_chunks_truncate AFTER TRUNCATE ON deepagents.files FOR EACH STATEMENT EXECUTE FUNCTION deepagents.chunks_truncate();

CREATE TRIGGER files_chunks_update AFTER UPDATE ON deepagents.files REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION deepagents.chunks_update();

CREATE TRIGGER files_first_version BEFORE INSERT ON deepagents.files FOR EACH ROW EXECUTE FUNCTION deepagents.files_first_version();

CREATE TRIGGER files_history_deleted AFTER DELETE ON deepagents.files REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION deepagents.history_deleted();

CREATE TRIGGER files_history_inserted AFTER INSERT ON deepagents.files REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION deepagents.history_inserted();

CREATE TRIGGER files_renamed_version BEFORE UPDATE OF workspace, path ON deepagents.files FOR EACH ROW EXECUTE FUNCTION deepagents.files_renamed_version();

CREATE TRIGGER files_tombstones_clear AFTER INSERT ON deepagents.files REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION deepagents.tombstones_clear();

CREATE TRIGGER files_tombstones_record AFTER DELETE ON deepagents.files REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION deepagents.tombstones_record();

CREATE TRIGGER files_version_rises BEFORE UPDATE ON deepagents.files FOR EACH ROW EXECUTE FUNCTION deepagents.files_version_rises();

CREATE TRIGGER files_zy_chunks_delete AFTER DELETE ON deepagents.files REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION deepagents.chunks_delete();

CREATE TRIGGER files_zz_log_deleted AFTER DELETE ON deepagents.files REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION deepagents.changes_stage();

CREATE TRIGGER files_zz_log_inserted AFTER INSERT ON deepagents.files REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION deepagents.changes_stage();

CREATE TRIGGER files_zz_log_updated AFTER UPDATE ON deepagents.files REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION deepagents.changes_stage();

CREATE TRIGGER files_zz_statistics AFTER INSERT ON deepagents.files REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION deepagents.statistics_refresh();

CREATE TRIGGER fork_marks_start AFTER INSERT ON deepagents.fork_marks FOR EACH ROW EXECUTE FUNCTION deepagents.fork_log_start();

-- Row-level security (where it is not forced, the table owner bypasses it) -----------------------

ALTER TABLE deepagents.blobs ENABLE ROW LEVEL SECURITY;

ALTER TABLE deepagents.changes ENABLE ROW LEVEL SECURITY;

ALTER TABLE deepagents.changes_horizon ENABLE ROW LEVEL SECURITY;

ALTER TABLE deepagents.checkpoints ENABLE ROW LEVEL SECURITY;

ALTER TABLE deepagents.chunks ENABLE ROW LEVEL SECURITY;

ALTER TABLE deepagents.directories ENABLE ROW LEVEL SECURITY;

ALTER TABLE deepagents.file_versions ENABLE ROW LEVEL SECURITY;

ALTER TABLE deepagents.files ENABLE ROW LEVEL SECURITY;

ALTER TABLE deepagents.fork_marks ENABLE ROW LEVEL SECURITY;

ALTER TABLE deepagents.history_settings ENABLE ROW LEVEL SECURITY;

ALTER TABLE deepagents.tombstones ENABLE ROW LEVEL SECURITY;

ALTER TABLE deepagents.workspace_grants ENABLE ROW LEVEL SECURITY;

-- Policies ---------------------------------------------------------------------------------------

CREATE POLICY blobs_referenced ON deepagents.blobs
  AS PERMISSIVE FOR SELECT TO PUBLIC
  USING ((EXISTS ( SELECT 1
   FROM deepagents.file_versions v
  WHERE (v.blob = blobs.hash))));

CREATE POLICY changes_granted ON deepagents.changes
  AS PERMISSIVE FOR ALL TO PUBLIC
  USING (((workspace IN ( SELECT g.workspace
   FROM deepagents.workspace_grants g)) OR (EXISTS ( SELECT 1
   FROM deepagents.workspace_grants g
  WHERE (g.workspace IS NULL)))))
  WITH CHECK (((workspace IN ( SELECT g.workspace
   FROM deepagents.workspace_grants g)) OR (EXISTS ( SELECT 1
   FROM deepagents.workspace_grants g
  WHERE (g.workspace IS NULL)))));

CREATE POLICY changes_horizon_granted ON deepagents.changes_horizon
  AS PERMISSIVE FOR ALL TO PUBLIC
  USING (((workspace IN ( SELECT g.workspace
   FROM deepagents.workspace_grants g)) OR (EXISTS ( SELECT 1
   FROM deepagents.workspace_grants g
  WHERE (g.workspace IS NULL)))))
  WITH CHECK (((workspace IN ( SELECT g.workspace
   FROM deepagents.workspace_grants g)) OR (EXISTS ( SELECT 1
   FROM deepagents.workspace_grants g
  WHERE (g.workspace IS NULL)))));

CREATE POLICY checkpoints_granted ON deepagents.checkpoints
  AS PERMISSIVE FOR ALL TO PUBLIC
  USING (((workspace IN ( SELECT g.workspace
   FROM deepagents.workspace_grants g)) OR (EXISTS ( SELECT 1
   FROM deepagents.workspace_grants g
  WHERE (g.workspace IS NULL)))))
  WITH CHECK (((workspace IN ( SELECT g.workspace
   FROM deepagents.workspace_grants g)) OR (EXISTS ( SELECT 1
   FROM deepagents.workspace_grants g
  WHERE (g.workspace IS NULL)))));

CREATE POLICY chunks_readable ON deepagents.chunks
  AS PERMISSIVE FOR SELECT TO PUBLIC
  USING ((EXISTS ( SELECT 1
   FROM deepagents.files f
  WHERE (f.chunk_set = chunks.chunk_set))));

CREATE POLICY directories_granted ON deepagents.directories
  AS PERMISSIVE FOR ALL TO PUBLIC
  USING (((workspace IN ( SELECT g.workspace
   FROM deepagents.workspace_grants g)) OR (EXISTS ( SELECT 1
   FROM deepagents.workspace_grants g
  WHERE (g.workspace IS NULL)))))
  WITH CHECK (((workspace IN ( SELECT g.workspace
   FROM deepagents.workspace_grants g)) OR (EXISTS ( SELECT 1
   FROM deepagents.workspace_grants g
  WHERE (g.workspace IS NULL)))));

CREATE POLICY file_versions_granted ON deepagents.file_versions
  AS PERMISSIVE FOR ALL TO PUBLIC
  USING (((workspace IN ( SELECT g.workspace
   FROM deepagents.workspace_grants g)) OR (EXISTS ( SELECT 1
   FROM deepagents.workspace_grants g
  WHERE (g.workspace IS NULL)))));

CREATE POLICY files_granted ON deepagents.files
  AS PERMISSIVE FOR ALL TO PUBLIC
  USING (((workspace IN ( SELECT g.workspace
   FROM deepagents.workspace_grants g)) OR (EXISTS ( SELECT 1
   FROM deepagents.workspace_grants g
  WHERE (g.workspace IS NULL)))))
  WITH CHECK (((workspace IN ( SELECT g.workspace
   FROM deepagents.workspace_grants g)) OR (EXISTS ( SELECT 1
   FROM deepagents.workspace_grants g
  WHERE (g.workspace IS NULL)))));

CREATE POLICY fork_marks_granted ON deepagents.fork_marks
  AS PERMISSIVE FOR ALL TO PUBLIC
  USING (((workspace IN ( SELECT g.workspace
   FROM deepagents.workspace_grants g)) OR (EXISTS ( SELECT 1
   FROM deepagents.workspace_grants g
  WHERE (g.workspace IS NULL)))))
  WITH CHECK ((((workspace IN ( SELECT g.workspace
   FROM deepagents.workspace_grants g)) OR (EXISTS ( SELECT 1
   FROM deepagents.workspace_grants g
  WHERE (g.workspace IS NULL)))) AND (xact = pg_current_xact_id())));

CREATE POLICY history_settings_granted ON deepagents.history_settings
  AS PERMISSIVE FOR SELECT TO PUBLIC
  USING (((scope = ''::text) OR (scope IN ( SELECT g.workspace
   FROM deepagents.workspace_grants g)) OR (EXISTS ( SELECT 1
   FROM deepagents.workspace_grants g
  WHERE (g.workspace IS NULL)))));

CREATE POLICY workspace_grants_own ON deepagents.workspace_grants
  AS PERMISSIVE FOR SELECT TO PUBLIC
  USING ((EXISTS ( SELECT 1
   FROM pg_roles r
  WHERE ((r.rolname = workspace_grants.role_name) AND pg_has_role(r.oid, 'USAGE'::text)))));

-- Comments ---------------------------------------------------------------------------------------

COMMENT ON FUNCTION deepagents.fs_changes_head() IS 'The schema''s newest committed change id. Since 0028 ids follow commit order only within a workspace: this is no place to start a watch (fs_changes_head(workspace) is).';

-- Grants and revokes (relative to PostgreSQL's default privileges of each object) ----------------

REVOKE EXECUTE ON FUNCTION deepagents.blob_keep(bytea) FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION deepagents.changes_flush_now() FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION deepagents.changes_lock(text[]) FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION deepagents.changes_stage() FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION deepagents.chunks_assign() FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION deepagents.chunks_collect(bigint[]) FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION deepagents.chunks_delete() FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION deepagents.chunks_insert() FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION deepagents.chunks_truncate() FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION deepagents.chunks_update() FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION deepagents.directories_stage() FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION deepagents.files_first_version() FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION deepagents.files_renamed_version() FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION deepagents.fork_log_start() FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION deepagents.grant_workspace(name,text) FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION deepagents.history_body_lost(text,bigint) FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION deepagents.history_collect_blobs() FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION deepagents.history_deleted() FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION deepagents.history_grant(name) FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION deepagents.history_inserted() FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION deepagents.history_updated() FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION deepagents.prune_chunks() FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION deepagents.prune_history(text) FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION deepagents.revoke_workspace(name,text) FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION deepagents.set_history(text,boolean,integer,integer) FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION deepagents.statistics_analyze() FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION deepagents.statistics_refresh() FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION deepagents.tombstones_clear() FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION deepagents.tombstones_record() FROM PUBLIC;

GRANT DELETE, INSERT, SELECT ON TABLE deepagents.fork_marks TO PUBLIC;

GRANT SELECT ON TABLE deepagents.workspace_grants TO PUBLIC;
