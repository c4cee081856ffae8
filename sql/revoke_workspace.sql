-- Admin (schema owner): remove a role's ($1) grant of a workspace ($2; NULL = the all-workspaces grant).
SELECT {{schema}}.revoke_workspace($1, $2) AS revoked
