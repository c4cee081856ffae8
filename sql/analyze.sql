-- Fresh planner statistics after a bulk import, so searches pick the trigram index at once rather
-- than after autovacuum's next visit. Tables the role does not own are skipped with a warning.
ANALYZE {{schema}}.files, {{schema}}.chunks
