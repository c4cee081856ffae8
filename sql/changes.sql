-- Changes of :workspace with an id above :after, oldest first, at most :limit. SQLSTATE DA001 =
-- resync (the cursor is older than the retained log).
SELECT id, path, op, version, size, at FROM {{schema}}.fs_changes(:workspace, :after, :limit)
