#!/bin/sh
# Readiness of a Redis node: a master, or a replica that is in sync with its master AND known
# to this pod's Sentinel as a healthy replica. Sentinel learns of a replica from the master's
# INFO, every 10 s: a rolling update that moved on before that would stop the master while no
# Sentinel would promote the replica that just came back (NOGOODSLAVE), so the handover would
# fail. (The StatefulSet also waits minReadySeconds after this says ready.)
set -eu
# shellcheck source=bootstrap-lib.sh
. "$(dirname "$0")/bootstrap-lib.sh"

me="$SF_ANNOUNCE_HOST:$SF_REDIS_PORT"
info=$(cli "$me" "$REDIS_PASSWORD" INFO replication | tr -d '\r')
case "$info" in
  *role:master*) exit 0 ;;
esac
echo "$info" | grep -q '^master_link_status:up' || { echo "not linked to its master"; exit 1; }
echo "$info" | grep -q '^master_sync_in_progress:0' || { echo "still syncing"; exit 1; }
# SENTINEL REPLICAS: one field name, then its value, per line; "name" starts each replica.
cli "$SF_ANNOUNCE_HOST:$SF_SENTINEL_PORT" "$SENTINEL_PASSWORD" SENTINEL REPLICAS "$SF_MASTER_NAME" |
  awk -v me="$SF_ANNOUNCE_HOST" -v port="$SF_REDIS_PORT" '
    prev == "ip" { ip = $0 } prev == "port" { p = $0 }
    prev == "flags" { if (ip == me && p == port && $0 !~ /s_down|o_down|disconnected/) ok = 1 }
    { prev = $0 }
    END { exit ok ? 0 : 1 }' || { echo "not yet a healthy replica to this pod's Sentinel"; exit 1; }
