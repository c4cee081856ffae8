-- The checkpoints of :workspace, oldest first.
SELECT id, change_id, label, tag, created_at FROM {{schema}}.fs_checkpoints(:workspace)
