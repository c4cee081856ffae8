-- Up Migration
--
-- The change log: every mutation of `files` (write, edit, upload, delete — one row per file)
-- appends a row in the same transaction, and a NOTIFY wakes subscribers, who then read the log
-- from their last id, so nothing committed is ever missed (a notification is only a hint).
--
-- Ids are given out at COMMIT time, under a transaction-level advisory lock, by a deferred
-- constraint trigger. So ids are in commit order: once a reader sees id N, every id below N is
-- committed and visible too, and "id > cursor" can never skip a late commit with a lower id. The
-- lock spans only the commit itself, which NOTIFY already serialises database-wide, and it is
-- taken after every row lock of the transaction, so it cannot deadlock with them.
-- Released: never edit this file; add a new migration instead.

CREATE TABLE changes (
  -- NULL until the transaction commits (see assign_change_ids below).
  id        bigint UNIQUE,
  workspace text NOT NULL,
  path      text COLLATE "C" NOT NULL,
  op        text NOT NULL CHECK (op IN ('create', 'update', 'delete')),
  -- The file's version after the change (for a delete: the version it had).
  version   bigint NOT NULL,
  size      bigint NOT NULL,
  at        timestamptz NOT NULL DEFAULT clock_timestamp(),
  txid      xid8 NOT NULL DEFAULT pg_current_xact_id(),
  -- Order of the changes inside one transaction.
  ord       bigint GENERATED ALWAYS AS IDENTITY
);

CREATE SEQUENCE changes_id_seq AS bigint OWNED BY changes.id;
CREATE INDEX changes_workspace_id_idx ON changes (workspace, id);
CREATE INDEX changes_pending_idx ON changes (txid) WHERE id IS NULL;

-- What retention removed, per workspace: a cursor below it can no longer be served.
CREATE TABLE changes_horizon (
  workspace  text PRIMARY KEY,
  pruned_to  bigint NOT NULL
);

-- The NOTIFY channel of this schema (channel names are at most 63 bytes).
CREATE FUNCTION changes_channel() RETURNS text
LANGUAGE sql STABLE SET search_path FROM CURRENT
RETURN left(current_schema(), 50) || '.changes';

CREATE FUNCTION record_change() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO changes (workspace, path, op, version, size)
    VALUES (OLD.workspace, OLD.path, 'delete', OLD.version, OLD.size);
  ELSE
    INSERT INTO changes (workspace, path, op, version, size)
    VALUES (NEW.workspace, NEW.path, CASE WHEN TG_OP = 'INSERT' THEN 'create' ELSE 'update' END, NEW.version, NEW.size);
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER files_record_change
AFTER INSERT OR UPDATE OR DELETE ON files
FOR EACH ROW EXECUTE FUNCTION record_change();

-- At commit: number this transaction's changes in order, then one small NOTIFY per workspace
-- carrying only the workspace and the highest id (never content; far below 8000 bytes). Fires
-- once per change row; the first firing does the work, the rest find nothing pending.
CREATE FUNCTION assign_change_ids() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  v_count bigint;
  v_base  bigint;
  v_note  record;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM changes WHERE txid = pg_current_xact_id() AND id IS NULL) THEN
    RETURN NULL;
  END IF;
  PERFORM pg_advisory_xact_lock(hashtext('deepagents-backends:changes:' || current_schema()));
  SELECT count(*) INTO v_count FROM changes WHERE txid = pg_current_xact_id() AND id IS NULL;
  -- Under the lock this transaction alone draws ids: take a block of v_count at once.
  v_base := nextval('changes_id_seq');
  IF v_count > 1 THEN
    PERFORM setval('changes_id_seq', v_base + v_count - 1);
  END IF;
  UPDATE changes c SET id = v_base + p.n - 1
  FROM (SELECT ctid, row_number() OVER (ORDER BY ord) AS n
        FROM changes WHERE txid = pg_current_xact_id() AND id IS NULL) p
  WHERE c.ctid = p.ctid;
  FOR v_note IN
    SELECT workspace, max(id) AS id FROM changes
    WHERE txid = pg_current_xact_id() AND id >= v_base GROUP BY workspace
  LOOP
    PERFORM pg_notify(changes_channel(), json_build_object('workspace', v_note.workspace, 'id', v_note.id)::text);
  END LOOP;
  RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER changes_assign_ids
AFTER INSERT ON changes DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION assign_change_ids();

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
    WHERE c.id IS NOT NULL AND (
      (p_older_than IS NOT NULL AND c.at < clock_timestamp() - p_older_than)
      OR (p_keep IS NOT NULL AND c.id <= (SELECT k.id FROM changes k
                                          WHERE k.workspace = c.workspace AND k.id IS NOT NULL
                                          ORDER BY k.id DESC OFFSET p_keep LIMIT 1)))
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
DROP TRIGGER changes_assign_ids ON changes;
DROP FUNCTION assign_change_ids();
DROP TRIGGER files_record_change ON files;
DROP FUNCTION record_change();
DROP FUNCTION changes_channel();
DROP TABLE changes_horizon;
DROP TABLE changes;
