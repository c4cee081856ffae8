-- Wakes the watchers of :workspaces (text[]) after the commits that changed them, in a
-- transaction of its own that does not wait for its WAL flush (migrations/0028; wake-ups.ts):
-- woken = how many had a change the caller can read.
SELECT {{schema}}.fs_wake_up(:workspaces::text[]) AS woken
