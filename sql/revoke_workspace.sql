-- Admin (schema owner): remove role :role's grant of :workspace (NULL = the all-workspaces grant).
SELECT {{schema}}.revoke_workspace(:role, :workspace) AS revoked
