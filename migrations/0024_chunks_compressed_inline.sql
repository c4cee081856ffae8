-- Up Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;
--
-- Version 24: search chunks compressed with lz4, still inline.
--
-- Why (issue 14, item 4): chunks were kept inline and uncompressed (toast_tuple_target 8160) so a
-- scan did no TOAST fetch and no pglz decompression. That made them the biggest thing stored: on
-- 100 MiB of C source (Debian's linux-source-6.1) the chunks table took 204 MiB with its indexes
-- and the whole schema 2.63x the corpus. lz4 decompresses at gigabytes a second, so compressing
-- the chunks inline keeps what the old choice was for (no TOAST fetch: the row stays on its heap
-- page) at a fraction of the size. Measured on that corpus, PostgreSQL 15, same run: chunks
-- 204 -> 132 MiB, the schema 2.63x -> 1.91x the corpus, import 2.73 -> 3.00 MiB/s; streamed
-- uncapped searches no slower (a common literal 1,157 -> 1,164 ms, a regex 1,557 -> 1,289 ms, a
-- case-insensitive literal 229 -> 230 ms).
--
-- What: content gets storage MAIN (compress, and move out of line only if a compressed row still
-- does not fit in a page) and compression lz4, and the table toast_tuple_target 128, the least
-- PostgreSQL allows, so every chunk is compressed when written. A server built without lz4
-- keeps the old layout: pglz decompresses several times slower and compresses slower still, and
-- the chunks exist to be scanned.
-- Rows written before this migration keep their layout until rewritten (an edit re-cuts its
-- file's changed chunks); `VACUUM FULL <schema>.chunks` compresses those over ~2 kB at once, but
-- holds an exclusive lock on the table while it runs, so it is left to the operator.
-- Released: never edit this file; add a new migration instead.

DO $$
BEGIN
  ALTER TABLE chunks ALTER COLUMN content SET COMPRESSION lz4;
  ALTER TABLE chunks ALTER COLUMN content SET STORAGE MAIN;
  ALTER TABLE chunks SET (toast_tuple_target = 128);
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
  NULL; -- built without lz4: chunks stay inline and uncompressed (see above)
END
$$;

-- Down Migration
DO $$ BEGIN EXECUTE format('SET LOCAL search_path = %I, pg_temp', current_schema()); END $$;

ALTER TABLE chunks ALTER COLUMN content SET COMPRESSION DEFAULT;
ALTER TABLE chunks ALTER COLUMN content SET STORAGE EXTENDED;
ALTER TABLE chunks SET (toast_tuple_target = 8160);
