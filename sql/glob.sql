-- workspace, path, allow exact file, glob's literal base, glob, glob regex.
SELECT path, size, modified_at FROM {{schema}}.fs_glob($1, $2, $3, $4, $5, $6)
