-- Wakes the watchers of :workspaces after the commits that changed them, in a transaction of its
-- own that does not wait for its WAL flush (migrations/0028; wake-ups.ts): woken = how many had a
-- change the caller can read. (The array's type is qualified: a role may plant pg_temp.text.)
SELECT {{schema}}.fs_wake_up(:workspaces::pg_catalog.text[]) AS woken
