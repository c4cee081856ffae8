-- rowLevelSecurity: is row-level security in force for this role on our tables, and may it use
-- :workspace? (The grants table shows a restricted role only its own grants.)
SELECT current_user AS role,
       row_security_active('{{schema}}.files') AS active,
       EXISTS (SELECT 1 FROM {{schema}}.workspace_grants g WHERE g.workspace = :workspace OR g.workspace IS NULL) AS granted
