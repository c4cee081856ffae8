-- The id of this REPEATABLE READ transaction's snapshot, for another session to import (SET
-- TRANSACTION SNAPSHOT); NULL on a standby, which cannot export one.
SELECT CASE WHEN pg_catalog.pg_is_in_recovery() THEN NULL ELSE pg_catalog.pg_export_snapshot() END AS id
