-- The schema being migrated (:schema) and the direction (:direction, "up" | "down"), for
-- sql/pg_trgm_home.sql (a DO block takes no parameters).
SELECT set_config('deepagents_backends.migrating_schema', :schema, true),
       set_config('deepagents_backends.migrating_direction', :direction, true)
