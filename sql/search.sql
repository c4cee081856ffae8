-- Lines of files of :workspace under :path (itself too when :allowExact), filtered by :glob
-- (:globRegex its compiled form, :globBasename: matched against the file name only), that match
-- :pattern: a literal, or the line's ARE when :regex; :ignoreCase for a literal. At most :limit
-- rows (NULL = all); :chunkPattern is the chunk prefilter's ARE (NULL: the pattern). Run inside
-- a transaction with SET LOCAL statement_timeout.
SELECT path, line, text FROM {{schema}}.fs_search(:workspace, :path, :allowExact, :glob, :globRegex, :globBasename, :pattern, :regex, :ignoreCase, :limit, :chunkPattern)
