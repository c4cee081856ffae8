-- The newest change id (where a watch without `since` starts) and the workspace's NOTIFY channel.
-- $1: the workspace.
SELECT {{schema}}.fs_changes_head() AS head, {{schema}}.changes_channel($1) AS channel
