#!/usr/bin/env bash
# The sharded suites' servers (test/cluster.*.test.ts): two more PostgreSQL 15 clusters on this
# machine, on ports 5433 and 5434, trust auth on 127.0.0.1 only, and Debian's PL/Proxy for the
# proxy database on the main server (5432). Idempotent: clusters left by an earlier run are
# reused and started. Prints the environment the suites read (CLUSTER_SERVERS, CLUSTER_CONTROL) on its last line.
set -euo pipefail
VERSION=15
PORTS=(5433 5434)

if [[ ! -f /usr/share/postgresql/$VERSION/extension/plproxy.control ]]; then
  (apt-get update -qq && apt-get install -y -qq --no-install-recommends "postgresql-$VERSION-plproxy") >/tmp/plproxy-install.log 2>&1 \
    || { tail -20 /tmp/plproxy-install.log >&2; echo "could not install postgresql-$VERSION-plproxy" >&2; exit 1; }
fi

servers=()
control=()
for i in "${!PORTS[@]}"; do
  port=${PORTS[$i]}
  name=shard$((i + 1))
  if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$VERSION $name"; then
    pg_createcluster "$VERSION" "$name" -p "$port" >/dev/null
    conf=/etc/postgresql/$VERSION/$name
    # Local test servers: the suites connect as postgres over TCP without a password, as they
    # do to the main server.
    printf 'local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n' >"$conf/pg_hba.conf"
  fi
  # Small (two of these share the machine with the main server and the suites), and durable as
  # the main server is: bench:cluster compares them.
  printf "listen_addresses = '127.0.0.1'\nshared_buffers = 64MB\nmax_connections = 100\n" \
    >"/etc/postgresql/$VERSION/$name/conf.d/deepagents-tests.conf"
  pg_ctlcluster --skip-systemctl-redirect "$VERSION" "$name" start >/dev/null 2>&1 \
    || pg_ctlcluster --skip-systemctl-redirect "$VERSION" "$name" reload >/dev/null 2>&1 || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p "$port" && break; sleep 1; done
  pg_isready -q -h 127.0.0.1 -p "$port" || { echo "the cluster $name on port $port did not start" >&2; exit 1; }
  servers+=("postgres://postgres@127.0.0.1:$port/postgres")
  control+=("$port=$VERSION/$name")
done
# (CLUSTER_CONTROL: which Debian cluster serves which port, for the test that restarts one)
echo "CLUSTER_SERVERS=$(IFS=,; echo "${servers[*]}") CLUSTER_CONTROL=$(IFS=,; echo "${control[*]}")"
