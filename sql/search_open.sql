-- Opens the cursor :cursor over the lines search.sql would return uncapped (the same arguments
-- but :limit), in the same order; the caller FETCHes from it in the same transaction
-- (connection.ts: openCursor).
SELECT {{schema}}.fs_search_open(:cursor, :workspace, :path, :allowExact, :glob, :globRegex, :globBasename, :pattern, :regex, :ignoreCase, :chunkPattern) AS cursor
