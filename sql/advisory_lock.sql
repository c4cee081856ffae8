-- The migration lock (the lock value node-pg-migrate is given for this schema).
SELECT pg_advisory_lock($1)
