#!/bin/sh
# Sidecar next to each Redis node: every SF_WATCH_SECONDS [10], make the node follow the master
# the Sentinels agree on, checked against that node's actual role. It mends what Sentinel does
# not: a replica that failed over while the Sentinels had not yet discovered it keeps following
# the old master (now itself a replica: a chain Sentinel never sees), and an old master that
# comes back before being reconfigured (a second master).
# It never races Sentinel: nothing is done while a Sentinel reports a failover in progress, and
# only a mismatch seen SF_WATCH_CONFIRM [3] times in a row is mended (a promotion or a
# reconfiguration under way looks like a mismatch for a moment). It never acts without a
# Sentinel majority naming a node that really is master.
set -eu
# shellcheck source=bootstrap-lib.sh
. "$(dirname "$0")/bootstrap-lib.sh"

me="$SF_ANNOUNCE_HOST:$SF_REDIS_PORT"
confirm=${SF_WATCH_CONFIRM:-3}
seen=0
# PID 1 of its container: without a handler SIGTERM is ignored and the pod waits out its whole
# grace period. The sleep runs in the background so the signal is acted on at once.
trap 'exit 0' TERM INT

failover_in_progress() {
  for sentinel in $SF_SENTINELS; do
    flags=$(cli "$sentinel" "$SENTINEL_PASSWORD" SENTINEL MASTER "$SF_MASTER_NAME" |
      awk 'prev == "flags" {print; exit} {prev = $0}')
    case "$flags" in
      *failover*|*promoted*|*reconf*) return 0 ;;
    esac
  done
  return 1
}

while :; do
  sleep "${SF_WATCH_SECONDS:-10}" &
  wait $!
  master=$(sentinel_master)
  if [ -z "$master" ] || [ "$master" = "$me" ] || [ "$(actual_role "$master")" != "master" ]; then
    seen=0
    continue
  fi
  info=$(cli "$me" "$REDIS_PASSWORD" INFO replication | tr -d '\r')
  role=$(echo "$info" | sed -n 's/^role://p')
  following="$(echo "$info" | sed -n 's/^master_host://p'):$(echo "$info" | sed -n 's/^master_port://p')"
  if [ "$role" != "master" ] && { [ "$role" != "slave" ] || [ "$following" = "$master" ]; }; then
    seen=0
    continue
  fi
  if failover_in_progress; then
    seen=0
    continue
  fi
  seen=$((seen + 1))
  if [ "$seen" -ge "$confirm" ]; then
    log "role $role following '$following', Sentinels say $master (seen $seen times): REPLICAOF $master"
    cli "$me" "$REDIS_PASSWORD" REPLICAOF "${master%:*}" "${master##*:}" >/dev/null || true
    seen=0
  fi
done
