-- Admin (schema owner): let database role :role use :workspace (NULL = every workspace).
SELECT {{schema}}.grant_workspace(:role, :workspace) AS granted
