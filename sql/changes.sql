-- Changes of a workspace after a cursor: workspace, after id, limit. SQLSTATE DA001 = resync.
SELECT id, path, op, version, size, at FROM {{schema}}.fs_changes($1, $2, $3)
