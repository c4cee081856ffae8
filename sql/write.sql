-- workspace, path, content (text) or bytes (bytea), mime type, ifVersion (NULL | 0 | N).
SELECT status, version FROM {{schema}}.fs_write($1, $2, $3, $4, $5, $6)
