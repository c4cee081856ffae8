-- Where a watch of :workspace without `since` starts (the newest change id, or the workspace's
-- horizon when a fork started its log there: migration 0017), and its NOTIFY channel.
SELECT {{schema}}.fs_changes_head(:workspace) AS head, {{schema}}.changes_channel(:workspace) AS channel
