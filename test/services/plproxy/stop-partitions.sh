#!/usr/bin/env bash
# Stops the partitions' servers start-partitions.sh started (their data stays for the next run).
for name in shard1 shard2; do
  pg_ctlcluster --skip-systemctl-redirect 15 "$name" stop >/dev/null 2>&1 || true
done
