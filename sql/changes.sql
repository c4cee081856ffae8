-- Changes of :workspace with an id above :after, oldest first, at most :limit. SQLSTATE DA001 =
-- resync (the cursor is older than the retained log). moved: on a moved file's delete, where it
-- went; on its create, where it came from (0026).
SELECT id, path, op, version, size, at, moved FROM {{schema}}.fs_changes(:workspace, :after, :limit)
