-- workspace, path, content (text) or bytes (bytea), mime type, ifVersion (NULL | 0 | N).
-- status 'parent_is_file' / 'is_directory' (conflict: the path in the way) writes nothing.
SELECT status, version, conflict FROM {{schema}}.fs_write($1, $2, $3, $4, $5, $6)
