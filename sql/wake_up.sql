-- Wakes the watchers of :workspaces after the commits that changed them (migrations/0028;
-- wake-ups.ts): woken = how many had a change the caller can read. Sent alone, in a transaction of
-- its own, which commits without waiting for its WAL flush: a wake-up is not data, and the changes
-- it announces were flushed by their own commits. (The array's type is qualified: a role may
-- plant pg_temp.text.)
SELECT {{schema}}.fs_wake_up(:workspaces::pg_catalog.text[]) AS woken
FROM (SELECT pg_catalog.set_config('synchronous_commit', 'off', true)) AS async_commit
