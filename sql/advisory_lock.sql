-- The migration lock: waits for the session advisory lock :lockValue (the value node-pg-migrate is
-- given for this schema, see migrationLockValue()).
SELECT pg_advisory_lock(:lockValue)
