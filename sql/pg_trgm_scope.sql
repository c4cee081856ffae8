-- The schema being migrated and the direction ("up" | "down"), for sql/pg_trgm_home.sql (a DO
-- block takes no parameters).
SELECT set_config('deepagents_backends.migrating_schema', $1, true),
       set_config('deepagents_backends.migrating_direction', $2, true)
