-- Lines containing the literal :pattern in files of :workspace under :path (itself too when
-- :allowExact), filtered by :glob (:globRegex its compiled form, :globBasename: matched against
-- the file name only); at most :limit rows (NULL = all).
SELECT path, line, text FROM {{schema}}.fs_grep(:workspace, :path, :allowExact, :glob, :globRegex, :globBasename, :pattern, :limit)
