-- The paths of :workspace (under :scope, NULL = all) whose content differs between checkpoint
-- :from and checkpoint :to (NULL = now): op created / updated / deleted, both sides' versions and
-- sizes, binary_change when either side is binary.
SELECT path, op, from_version, from_size, to_version, to_size, binary_change FROM {{schema}}.fs_diff(:workspace, :from, :to, :scope)
