-- The kept versions of :path in :workspace, oldest first; a deletion is a row of its own (op
-- 'delete', version: the version deleted). change_id NULL: written before history was kept.
SELECT version, op, nullif(change_id, 0) AS change_id, size, mime_type, at, tag FROM {{schema}}.fs_history(:workspace, :path)
