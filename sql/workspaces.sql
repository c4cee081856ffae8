-- Workspaces of the schema with their file counts and bytes.
SELECT workspace, count(*)::bigint AS files, coalesce(sum(size), 0)::bigint AS bytes, max(modified_at) AS modified_at
FROM {{schema}}.files GROUP BY workspace ORDER BY workspace
