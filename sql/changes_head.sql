-- The newest change id (where a watch without `since` starts) and the NOTIFY channel of :workspace.
SELECT {{schema}}.fs_changes_head() AS head, {{schema}}.changes_channel(:workspace) AS channel
