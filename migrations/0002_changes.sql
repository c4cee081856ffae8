-- Up Migration
--
-- The change log: every mutation of `files` (write, edit, upload, delete — one row per file)
-- appends a row in the same transaction, and a NOTIFY wakes subscribers, who then read the log
-- from their last id, so nothing committed is ever missed (a notification is only a hint).
--
-- The rows are written at COMMIT, by deferred constraint triggers, under a transaction-level
-- advisory lock taken by the first of them: ids are drawn in commit order. So once a reader sees
-- id N, every id below N is committed and visible too, and "id > cursor" can never skip a late
-- commit with a lower id. The lock spans only the commit itself, which NOTIFY serialises
-- database-wide anyway, and it is taken after every row lock of the transaction, so it cannot
-- deadlock with them.
-- Released: never edit this file; add a new migration instead.

CREATE TABLE changes (
  id        bigint PRIMARY KEY,
  workspace text NOT NULL,
  path      text COLLATE "C" NOT NULL,
  op        text NOT NULL CHECK (op IN ('create', 'update', 'delete')),
  -- The file's version after the change (for a delete: the version it had).
  version   bigint NOT NULL,
  size      bigint NOT NULL,
  at        timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE SEQUENCE changes_id_seq AS bigint OWNED BY changes.id;
ALTER TABLE changes ALTER COLUMN id SET DEFAULT nextval('changes_id_seq');
CREATE INDEX changes_workspace_id_idx ON changes (workspace, id);

-- What retention removed, per workspace: a cursor below it can no longer be served.
CREATE TABLE changes_horizon (
  workspace  text PRIMARY KEY,
  pruned_to  bigint NOT NULL
);

-- The NOTIFY channel of this schema (channel names are at most 63 bytes).
CREATE FUNCTION changes_channel() RETURNS text
LANGUAGE sql STABLE SET search_path FROM CURRENT
RETURN left(current_schema(), 50) || '.changes';

-- Transaction-local markers (set_config(..., true) reverts at the end of the transaction).
-- first_change: the id of this transaction's first change; notified: its NOTIFY went out.
CREATE FUNCTION record_change() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  v_first boolean := coalesce(current_setting('deepagents_backends.first_change', true), '') = '';
  v_id    bigint;
BEGIN
  IF v_first THEN
    PERFORM pg_advisory_xact_lock(hashtext('deepagents-backends:changes:' || current_schema()));
  END IF;
  IF TG_OP = 'DELETE' THEN
    INSERT INTO changes (workspace, path, op, version, size)
    VALUES (OLD.workspace, OLD.path, 'delete', OLD.version, OLD.size) RETURNING id INTO v_id;
  ELSE
    INSERT INTO changes (workspace, path, op, version, size)
    VALUES (NEW.workspace, NEW.path, CASE WHEN TG_OP = 'INSERT' THEN 'create' ELSE 'update' END, NEW.version, NEW.size)
    RETURNING id INTO v_id;
  END IF;
  IF v_first THEN
    PERFORM set_config('deepagents_backends.first_change', v_id::text, true);
  END IF;
  RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER files_record_change
AFTER INSERT OR UPDATE OR DELETE ON files DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION record_change();

-- Fires at commit after every change row of the transaction exists (their insert events queue
-- behind the files events): one NOTIFY per workspace carrying only the workspace and the highest
-- id — never content, far below the 8000-byte limit. The first firing does it, the rest return.
CREATE FUNCTION notify_changes() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  v_note record;
BEGIN
  IF coalesce(current_setting('deepagents_backends.notified', true), '') = '1' THEN
    RETURN NULL;
  END IF;
  PERFORM set_config('deepagents_backends.notified', '1', true);
  FOR v_note IN
    SELECT c.workspace, max(c.id) AS id FROM changes c
    WHERE c.id >= current_setting('deepagents_backends.first_change')::bigint
    GROUP BY c.workspace
  LOOP
    PERFORM pg_notify(changes_channel(), json_build_object('workspace', v_note.workspace, 'id', v_note.id)::text);
  END LOOP;
  RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER changes_notify
AFTER INSERT ON changes DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION notify_changes();

-- Changes of a workspace after a cursor, oldest first. A cursor older than what retention kept
-- raises SQLSTATE DA001 (resync required): silently starting later would hide changes.
CREATE FUNCTION fs_changes(p_workspace text, p_after bigint, p_limit integer)
RETURNS TABLE (id bigint, path text, op text, version bigint, size bigint, at timestamptz)
LANGUAGE plpgsql STABLE SET search_path FROM CURRENT AS $$
DECLARE
  v_pruned bigint;
BEGIN
  SELECT h.pruned_to INTO v_pruned FROM changes_horizon h WHERE h.workspace = p_workspace;
  IF v_pruned IS NOT NULL AND p_after < v_pruned THEN
    RAISE EXCEPTION 'change cursor % is older than the retained log (changes up to % were pruned)', p_after, v_pruned
      USING ERRCODE = 'DA001';
  END IF;
  RETURN QUERY
    SELECT c.id, c.path, c.op, c.version, c.size, c.at FROM changes c
    WHERE c.workspace = p_workspace AND c.id > p_after
    ORDER BY c.id LIMIT p_limit;
END
$$;

-- The newest committed change id (0 when none): where a watch without `since` starts.
CREATE FUNCTION fs_changes_head() RETURNS bigint
LANGUAGE sql STABLE SET search_path FROM CURRENT
RETURN coalesce((SELECT max(id) FROM changes), 0);

-- Retention: drop changes older than p_older_than and/or beyond the newest p_keep per workspace;
-- records per workspace how far the log was cut. Returns how many rows were removed.
CREATE FUNCTION prune_changes(p_older_than interval DEFAULT NULL, p_keep integer DEFAULT NULL)
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

-- Down Migration

DROP FUNCTION prune_changes(interval, integer);
DROP FUNCTION fs_changes_head();
DROP FUNCTION fs_changes(text, bigint, integer);
DROP TRIGGER changes_notify ON changes;
DROP FUNCTION notify_changes();
DROP TRIGGER files_record_change ON files;
DROP FUNCTION record_change();
DROP FUNCTION changes_channel();
DROP TABLE changes_horizon;
DROP TABLE changes;
