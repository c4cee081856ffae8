-- The kept versions of :path in :workspace, oldest first; a deletion is a row of its own (op
-- 'delete', version: the version deleted). change_id NULL: written before history was kept.
-- moved: on a moved file's deletion, where it went; on its first version at a path, where it came
-- from (0026).
SELECT version, op, nullif(change_id, 0) AS change_id, size, mime_type, at, tag, moved
FROM {{schema}}.fs_history(:workspace, :path)
