#!/bin/bash
# Throwaway single-node Ceph (mon + 1 memstore OSD, no mgr) + RADOS Gateway (beast)
# for automated S3 tests. Everything lives under $RGW_BASE (default /tmp/rgw).
# Usage: start-rgw.sh            -> prints endpoint/keys, writes PIDs to $RGW_BASE/pids
#        RGW_PORT=8123 MON_PORT=40123 start-rgw.sh   (optional fixed ports)
# Stop with stop-rgw.sh (kills only the PIDs recorded in $RGW_BASE/pids).
set -euo pipefail

T0=$(date +%s.%N)
BASE=${RGW_BASE:-${TMPDIR:-/tmp}/rgw}
RUN=$BASE/cluster              # wiped on every start (throwaway)
CONF=$RUN/ceph.conf
PIDS=$BASE/pids
ACCESS_KEY=${RGW_ACCESS_KEY:-TESTACCESSKEY0000001}
SECRET_KEY=${RGW_SECRET_KEY:-testsecretkey0000000000000000000000000001}
S3_USER=${RGW_USER:-tester}

log() { printf '[%6.2fs] %s\n' "$(echo "$(date +%s.%N) - $T0" | bc)" "$*" >&2; }

port_free() { ! (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; }
pick_port() {
  local p
  for _ in $(seq 1 50); do
    p=$(shuf -i 20000-60000 -n 1)
    if port_free "$p"; then echo "$p"; return 0; fi
  done
  echo "no free port" >&2; return 1
}

if [ -s "$PIDS" ]; then
  for p in $(cut -d' ' -f2 "$PIDS"); do
    if kill -0 "$p" 2>/dev/null; then
      echo "A cluster from $PIDS seems to be running (pid $p); run stop-rgw.sh first" >&2
      exit 1
    fi
  done
fi
mkdir -p "$BASE"
: > "$PIDS"
# on any failure: stop whatever this script already started (by recorded PID only)
fail() {
  echo "start-rgw.sh: FAILED (see logs in $RUN/log); stopping started daemons" >&2
  KEEP_DATA=1 "$(dirname "$0")/stop-rgw.sh" >&2 || true
  exit 1
}
trap fail ERR

MON_PORT=${MON_PORT:-$(pick_port)}
RGW_PORT=${RGW_PORT:-$(pick_port)}
while [ "$RGW_PORT" = "$MON_PORT" ]; do RGW_PORT=$(pick_port); done
for p in "$MON_PORT" "$RGW_PORT"; do port_free "$p" || { echo "port $p is already in use" >&2; exit 1; }; done
FSID=$(uuidgen)
OSD_UUID=$(uuidgen)

rm -rf "$RUN"
mkdir -p "$RUN"/{mon/ceph-a,osd/ceph-0,rgw,log,run,tmp}

cat > "$CONF" <<EOF
[global]
fsid = $FSID
mon initial members = a
mon host = [v2:127.0.0.1:$MON_PORT]
public network = 127.0.0.0/8
ms bind msgr1 = false
ms bind ipv4 = true
ms bind ipv6 = false

auth cluster required = none
auth service required = none
auth client required = none

run dir = $RUN/run
admin socket = $RUN/run/\$cluster-\$name.asok
log file = $RUN/log/\$cluster-\$name.log
pid file = $RUN/run/\$cluster-\$name.pid
keyring = $RUN/keyring.\$name
log to stderr = false
err to stderr = true
debug ms = 0
mon cluster log file = $RUN/log/cluster.log
crash dir = $RUN/tmp

osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
mon data avail warn = 1
mon data avail crit = 0
# speed: commit mon map changes immediately instead of batching for 1s
paxos propose interval = 0.01
paxos min wait = 0.001
mon osd report timeout = 900
osd heartbeat grace = 60

[mon]
mon data = $RUN/mon/\$cluster-\$id

[osd]
osd data = $RUN/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = ${MEMSTORE_BYTES:-2147483648}
osd op num shards = 2
osd op num threads per shard = 1
# Ceph's default (the 460 in older recipes is an ext4 limit; memstore has none): S3 keys up to
# 1,024 bytes plus the bucket marker must fit, or RGW answers 500 to long paths.
osd max object name len = 2048
osd max object namespace len = 64

[client.rgw.a]
# radosgw's built-in defaults ask for a 'secure' mon connection, impossible with auth=none
ms mon client mode = crc
ms client mode = crc
rgw data = $RUN/rgw
# tcp_nodelay: without it small responses wait ~40 ms on delayed ACKs (Nagle)
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
rgw dns name = 127.0.0.1
rgw enable usage log = false
rgw thread pool size = 64
rgw init timeout = 120
EOF

log "conf written (fsid $FSID, mon port $MON_PORT, rgw port $RGW_PORT)"

# ---- monitor ----
monmaptool --create --clobber --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_PORT]" "$RUN/monmap" >/dev/null
ceph-mon -c "$CONF" --mkfs -i a --monmap "$RUN/monmap" >"$RUN/log/mkfs-mon.out" 2>&1
setsid ceph-mon -c "$CONF" -i a -f </dev/null >"$RUN/log/mon.out" 2>&1 &
echo "mon $!" >> "$PIDS"
log "mon started (pid $!)"

C="ceph -c $CONF --connect-timeout 30"
# ---- OSD ----
OSD_ID=$($C osd new "$OSD_UUID" 2>"$RUN/log/osd-new.err")
[ "$OSD_ID" = 0 ] || { echo "unexpected osd id '$OSD_ID'" >&2; cat "$RUN/log/osd-new.err" >&2; fail; }
log "osd.$OSD_ID registered"
ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$OSD_UUID" >"$RUN/log/mkfs-osd.out" 2>&1
setsid ceph-osd -c "$CONF" -i 0 -f </dev/null >"$RUN/log/osd.out" 2>&1 &
echo "osd $!" >> "$PIDS"
log "osd started (pid $!)"

for _ in $(seq 1 300); do
  if $C osd dump 2>/dev/null | grep '^osd.0 up' >/dev/null; then break; fi
  sleep 0.2
done
$C osd dump 2>/dev/null | grep '^osd.0 up' >/dev/null || { echo "osd.0 did not come up" >&2; fail; }
log "osd.0 up"

# ---- RADOS gateway ----
setsid radosgw -c "$CONF" -n client.rgw.a -f </dev/null >"$RUN/log/rgw.out" 2>&1 &
echo "rgw $!" >> "$PIDS"
log "radosgw started (pid $!)"

RGW_PID=$(tail -1 "$PIDS" | cut -d' ' -f2)
rgw_ok() { curl -s --max-time 2 "http://127.0.0.1:$RGW_PORT/" 2>/dev/null | grep -q ListAllMyBucketsResult; }
for _ in $(seq 1 600); do
  rgw_ok && break
  kill -0 "$RGW_PID" 2>/dev/null || { echo "radosgw exited:" >&2; tail -20 "$RUN/log/ceph-client.rgw.a.log" >&2; fail; }
  sleep 0.1
done
rgw_ok || { echo "radosgw not answering on $RGW_PORT" >&2; fail; }
log "radosgw answering on http://127.0.0.1:$RGW_PORT"

radosgw-admin -c "$CONF" user create --uid="$S3_USER" --display-name="$S3_USER" \
  --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >"$RUN/log/user-create.json" 2>"$RUN/log/user-create.err"
log "S3 user '$S3_USER' created"

# sanity: recorded PIDs are the daemons themselves (compare with the daemons' own pid files)
trap - ERR
for n in mon.a osd.0 client.rgw.a; do
  f="$RUN/run/ceph-$n.pid"
  if [ -s "$f" ] && ! grep -qw "$(cat "$f")" "$PIDS"; then echo "WARNING: pid file $f ($(cat "$f")) not in $PIDS" >&2; fi
done

cat > "$BASE/env" <<EOF
S3_ENDPOINT=http://127.0.0.1:$RGW_PORT
AWS_ACCESS_KEY_ID=$ACCESS_KEY
AWS_SECRET_ACCESS_KEY=$SECRET_KEY
AWS_REGION=us-east-1
CEPH_CONF=$CONF
EOF

echo "S3_ENDPOINT=http://127.0.0.1:$RGW_PORT"
echo "AWS_ACCESS_KEY_ID=$ACCESS_KEY"
echo "AWS_SECRET_ACCESS_KEY=$SECRET_KEY"
echo "AWS_REGION=us-east-1"
echo "PIDS_FILE=$PIDS"
log "ready"
