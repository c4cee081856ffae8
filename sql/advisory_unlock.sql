-- Releases the session advisory lock :lockValue taken by sql/advisory_lock.sql.
SELECT pg_advisory_unlock(:lockValue)
