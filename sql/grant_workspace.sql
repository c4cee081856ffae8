-- Admin (schema owner): let a database role ($1) use a workspace ($2; NULL = every workspace).
SELECT {{schema}}.grant_workspace($1, $2) AS granted
