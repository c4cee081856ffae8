-- Opens the cursor :cursor over the lines search.sql would return uncapped (the same arguments
-- but :limit), in the same order, of the part [:from, :to) of the scope (NULL: the scope's own
-- end); the caller FETCHes from it in the same transaction (connection.ts: ReadSession.cursor).
-- pathOrder: the cursor reads the scope in path order (false: the trigram query).
SELECT o_cursor AS cursor, o_path_order AS "pathOrder"
FROM {{schema}}.fs_search_open(:cursor, :workspace, :path, :allowExact, :glob, :globRegex, :globBasename, :pattern, :regex, :ignoreCase, :chunkPattern, :from, :to)
