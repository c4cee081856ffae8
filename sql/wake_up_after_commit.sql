-- Not a statement of its own: the wrapper of every statement that changes files (`wakes` in
-- src/postgres/sql/queries.ts), put around it by statement.ts in place of the marker below. Its
-- transaction's commit then sends no NOTIFY: the backend wakes the watchers just after it
-- (sql/wake_up.sql, src/postgres/wake-ups.ts, migrations/0028). The setting is the transaction's
-- (set_config's third argument), so other statements on the same connection — raw SQL on
-- backend.pool, say — still notify from their commits. Should the setting not be read (a join
-- order that never needs its one row), the commit notifies and the wake-up after it is one more.
SELECT s.* FROM (SELECT pg_catalog.set_config('deepagents_backends.wake_up', 'after_commit', true)) AS w
CROSS JOIN LATERAL ({{statement}}) AS s
