-- Cancels the statement backend :pid runs (read-session.ts: only the session's own backend, while
-- it still holds it); false when there is no such backend or the caller may not signal it.
SELECT pg_catalog.pg_cancel_backend(:pid) AS cancelled
