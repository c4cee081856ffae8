-- Write version :version of :path in :workspace (deleted or not) as its newest version, if the
-- file is at :ifVersion (NULL = any, 0 = must not exist). Statuses as write.sql's, and
-- 'no_version' when that version is not kept.
SELECT status, version, conflict FROM {{schema}}.fs_restore(:workspace, :path, :version, :ifVersion)
