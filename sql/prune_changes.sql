-- older than (interval, NULL = no age limit), keep newest N per workspace (NULL = no count limit).
SELECT {{schema}}.prune_changes($1::interval, $2) AS pruned
