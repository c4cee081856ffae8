-- A checkpoint of :workspace now (a position in the change log: its newest change), with an
-- optional :label and :tag.
SELECT id, change_id, created_at FROM {{schema}}.fs_checkpoint(:workspace, :label, :tag)
