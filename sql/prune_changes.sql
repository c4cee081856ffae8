-- Drop changes older than :olderThan (an interval, NULL = no age limit) and all but the newest
-- :keepPerWorkspace of each workspace (NULL = no count limit); pruned = how many went.
SELECT {{schema}}.prune_changes(:olderThan::interval, :keepPerWorkspace) AS pruned
