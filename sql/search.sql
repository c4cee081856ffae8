-- workspace, path, allow exact file, glob, glob regex, glob on basename, pattern (literal or the
-- line's ARE), regex?, ignore case?, limit, the chunk prefilter's ARE (NULL: the pattern). Run
-- inside a transaction with SET LOCAL statement_timeout.
SELECT path, line, text FROM {{schema}}.fs_search($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
