-- Forget checkpoint :id of :workspace (the history it kept from pruning may then be pruned).
SELECT {{schema}}.fs_delete_checkpoint(:workspace, :id) AS deleted
