-- History on or off and its retention for :scope ('' = the schema's default, else a workspace;
-- NULLs take the default's). Turning it off drops that history: counts of what went.
SELECT versions, checkpoints, blobs FROM {{schema}}.set_history(:scope, :enabled, :keepVersions, :keepDays)
