-- workspace, path, old, new, replaceAll, ifVersion, max bytes.
SELECT status, occurrences, version FROM {{schema}}.fs_edit($1, $2, $3, $4, $5, $6, $7)
