-- Replace :oldString by :newString (every occurrence when :replaceAll) in :path of :workspace,
-- unless the file is not at :ifVersion (NULL = any version) or would grow beyond :maxBytes.
SELECT status, occurrences, version FROM {{schema}}.fs_edit(:workspace, :path, :oldString, :newString, :replaceAll, :ifVersion, :maxBytes)
