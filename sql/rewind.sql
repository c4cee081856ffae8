-- Put the files of :workspace under :scope (NULL = all) back as they were at checkpoint :id, or
-- with :dryRun only say what that would do. One row per path changed; undo_checkpoint: the
-- checkpoint taken just before (NULL on a dry run).
SELECT path, op, version_before, size_before, restored_version, size_after, version, undo_checkpoint FROM {{schema}}.fs_rewind(:workspace, :id, :scope, :dryRun)
