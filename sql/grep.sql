-- workspace, path, allow exact file, glob, glob regex, glob on basename, literal pattern, limit.
SELECT path, line, text FROM {{schema}}.fs_grep($1, $2, $3, $4, $5, $6, $7, $8)
