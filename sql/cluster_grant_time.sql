-- On a split's new partition (src/postgres/cluster/split.ts), after grant_workspace() made a
-- moving grant again: its time of grant, as the old partition recorded it, not the split's.
UPDATE {{schema}}.workspace_grants t SET granted_at = :grantedAt::pg_catalog.timestamptz
WHERE t.role_name = :role AND t.workspace IS NOT DISTINCT FROM :workspace
