-- Up Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;
--
-- Version 11: the functions that read or write a few rows by key never plan a sequential scan of
-- a table, whatever the statistics say.
--
-- Why: PL/pgSQL (and, from PostgreSQL 18, SQL functions) keep a statement's plan for the rest of
-- the session, and a table growing does not invalidate it — only new statistics do. A session
-- that wrote the first files of a schema planned its probes on tables with zero rows and zero
-- pages (0010's migration ANALYZEs them, and autovacuum's ANALYZE of an emptied table does the
-- same), where a sequential scan costs nothing, and kept those plans: an upload of 500 files
-- beside a 50,000-file workspace spent 2 s reading the whole chunks table once per file
-- (chunks_insert's probe of a new set), fs_write and fs_edit read every file row, and version
-- reads, ls, glob and the search scope probe did the same, until an ANALYZE came — never, with
-- autovacuum off. test/plans.cold-cache.test.ts captures those plans.
--
-- The fix is the one 0005 made for files_first_version and changes_tree_check: these functions
-- run with enable_seqscan = off, so every probe is planned as an index probe (the plan a filled
-- table gets anyway) and the cached plan stays right as the table grows.
-- And with jit = off, they and the four that had enable_seqscan = off already: before PostgreSQL
-- 18 a disabled plan node costs 10^10, so a statement that must still scan a table whole (the
-- row-level security policy reads workspace_grants, which has no index the policy can use)
-- crossed jit_above_cost and was compiled by LLVM on every call: 200-300 ms per statement, an
-- edit by a restricted role took 0.8-1.3 s (test/reliability/row-level-security.test.ts, 40
-- concurrent edits, timed out). JIT never pays on statements that touch a few rows. Functions that read a
-- whole table or workspace by design (prune_*, set_history, history_collect_blobs, stats) and
-- the search functions (fs_search, fs_grep: their plans are chosen from the pattern's selectivity
-- on every call; test/plans.test.ts) are left as they are.
-- Released: never edit this file; add a new migration instead.

DO $$
DECLARE
  f text;
BEGIN
  FOREACH f IN ARRAY ARRAY[
    -- triggers of files (row and statement)
    'chunks_assign()', 'chunks_claim()', 'chunks_collect(bigint[])', 'chunks_delete()', 'chunks_insert()',
    'chunks_update()', 'tombstones_clear()', 'tombstones_record()', 'files_version_rises()',
    'history_record()', 'history_inserted()', 'history_deleted()', 'record_change()', 'notify_changes()',
    -- helpers they call
    'history_capture(files, text, bigint, timestamp with time zone)', 'blob_keep(bytea)',
    'checkpoint_position(text, bigint)', 'version_data(text, text, bigint)',
    'search_scope(text, text, boolean, text)',
    -- the API's point reads and writes
    'fs_write(text, text, text, bytea, text, bigint)',
    'fs_edit(text, text, text, text, boolean, bigint, bigint)',
    'fs_delete(text, text)', 'fs_read(text, text, integer, integer)', 'fs_read_raw(text, text)',
    'fs_stat(text, text)', 'fs_ls(text, text)', 'fs_glob(text, text, boolean, text, text, text)',
    'fs_download(text, text[])', 'fs_changes(text, bigint, integer)',
    'fs_history(text, text)', 'fs_read_version(text, text, bigint, integer, integer)',
    'fs_restore(text, text, bigint, bigint)', 'fs_checkpoint(text, text, text)', 'fs_checkpoints(text)',
    'fs_delete_checkpoint(text, bigint)', 'fs_diff(text, bigint, bigint, text[])',
    'history_compare(text, bigint, bigint, text[])'
  ] LOOP
    EXECUTE format('ALTER FUNCTION %s SET enable_seqscan = off SET jit = off', f);
  END LOOP;
  FOREACH f IN ARRAY ARRAY['files_first_version()', 'files_renamed_version()', 'changes_tree_check()',
                           'history_retire(files, files)'] LOOP
    EXECUTE format('ALTER FUNCTION %s SET jit = off', f);
  END LOOP;
END $$;

-- Down Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;

DO $$
DECLARE
  f text;
BEGIN
  FOREACH f IN ARRAY ARRAY[
    'chunks_assign()', 'chunks_claim()', 'chunks_collect(bigint[])', 'chunks_delete()', 'chunks_insert()',
    'chunks_update()', 'tombstones_clear()', 'tombstones_record()', 'files_version_rises()',
    'history_record()', 'history_inserted()', 'history_deleted()', 'record_change()', 'notify_changes()',
    'history_capture(files, text, bigint, timestamp with time zone)', 'blob_keep(bytea)',
    'checkpoint_position(text, bigint)', 'version_data(text, text, bigint)',
    'search_scope(text, text, boolean, text)',
    'fs_write(text, text, text, bytea, text, bigint)',
    'fs_edit(text, text, text, text, boolean, bigint, bigint)',
    'fs_delete(text, text)', 'fs_read(text, text, integer, integer)', 'fs_read_raw(text, text)',
    'fs_stat(text, text)', 'fs_ls(text, text)', 'fs_glob(text, text, boolean, text, text, text)',
    'fs_download(text, text[])', 'fs_changes(text, bigint, integer)',
    'fs_history(text, text)', 'fs_read_version(text, text, bigint, integer, integer)',
    'fs_restore(text, text, bigint, bigint)', 'fs_checkpoint(text, text, text)', 'fs_checkpoints(text)',
    'fs_delete_checkpoint(text, bigint)', 'fs_diff(text, bigint, bigint, text[])',
    'history_compare(text, bigint, bigint, text[])'
  ] LOOP
    EXECUTE format('ALTER FUNCTION %s RESET enable_seqscan RESET jit', f);
  END LOOP;
  FOREACH f IN ARRAY ARRAY['files_first_version()', 'files_renamed_version()', 'changes_tree_check()',
                           'history_retire(files, files)'] LOOP
    EXECUTE format('ALTER FUNCTION %s RESET jit', f);
  END LOOP;
END $$;
