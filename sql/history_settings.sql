-- The history settings in force for :workspace (its own over the schema's default).
SELECT enabled, keep_versions, keep_days FROM {{schema}}.history_policy(:workspace)
