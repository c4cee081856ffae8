SELECT {{schema}}.fs_changes_head() AS head, {{schema}}.changes_channel() AS channel
