-- Up Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;
--
-- Version 7: drop 0002's schema-wide NOTIFY channel name, changes_channel() without arguments.
-- Since 0005 every wake-up goes to the workspace's own channel, changes_channel(workspace), and
-- nothing calls the old one; keeping it only told readers of the schema that it might be used.
-- Released: never edit this file; add a new migration instead.

DROP FUNCTION changes_channel();

-- Down Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;

-- 0002's definition, pinned as 0005 pinned it.
CREATE FUNCTION changes_channel() RETURNS text
LANGUAGE sql STABLE SET search_path FROM CURRENT
RETURN left(current_schema(), 50) || '.changes';
