-- Up Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;
--
-- Version 12: a version recorded after its change is still stamped with the change's id.
--
-- record_change writes the change log from a constraint trigger deferred to commit, and stamps
-- each history row (file_versions.change_id) as it goes. Any role may run SET CONSTRAINTS ALL
-- IMMEDIATE; the change log then fires at the end of each row's statement, before the statement
-- triggers that record the history of INSERTs and DELETEs (0009's history_inserted and
-- history_deleted) have written the rows to stamp. Those versions kept change_id NULL: invisible
-- to diff and rewind, which place versions by change id (a rewind to a checkpoint before such a
-- raw INSERT left the file in place). UPDATEs were not affected: their history is a row trigger,
-- queued before record_change's.
--
-- history_stamp_early runs after those two (triggers fire in name order), and only when this
-- transaction has already written the change log (record_change's first_change setting names
-- it): it stamps each new version row with the change of the same path and version. A version
-- number is never reused for a path, so that change is the one; a forged setting only makes the
-- forger's own statement look for it.
-- Released: never edit this file; add a new migration instead.

CREATE FUNCTION history_stamp_early() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT SET enable_seqscan = off SET jit = off AS $$
DECLARE
  v_first text := coalesce(current_setting('deepagents_backends.first_change', true), '');
  v_deleted boolean := TG_OP = 'DELETE';
BEGIN
  IF split_part(v_first, '/', 1) IS DISTINCT FROM pg_current_xact_id()::text THEN
    RETURN NULL; -- the usual case: record_change runs at commit and stamps them itself
  END IF;
  UPDATE file_versions v SET change_id = c.id
  FROM changed_rows r
  JOIN changes c ON c.workspace = r.workspace AND c.id >= split_part(v_first, '/', 2)::bigint
                AND c.path = r.path AND c.version = r.version AND (c.op = 'delete') = v_deleted
  WHERE v.workspace = r.workspace AND v.path = r.path AND v.version = r.version AND v.deleted = v_deleted
    AND v.change_id IS NULL;
  RETURN NULL;
END
$$;
REVOKE EXECUTE ON FUNCTION history_stamp_early() FROM PUBLIC;

CREATE TRIGGER files_history_stamp_inserted AFTER INSERT ON files
REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION history_stamp_early();
CREATE TRIGGER files_history_stamp_deleted AFTER DELETE ON files
REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION history_stamp_early();

-- Down Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;

DROP TRIGGER files_history_stamp_inserted ON files;
DROP TRIGGER files_history_stamp_deleted ON files;
DROP FUNCTION history_stamp_early();
