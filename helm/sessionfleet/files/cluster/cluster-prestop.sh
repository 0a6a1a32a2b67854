#!/bin/sh
# Pre-stop of a Redis Cluster node: a master of slots hands them to its most up-to-date
# in-sync replica first (CLUSTER FAILOVER: the master pauses its clients, the replica catches
# up to the last write, then takes over with the other masters' votes), so a rolling update
# or a drain loses no acknowledged write and has no failure-detection gap. Asks again when an
# election is lost, for up to SF_HANDOVER_SECONDS [20] (below the pod's grace period).
# A replica, or a master without an in-sync replica, just stops.
set -eu
# shellcheck source=cluster-lib.sh
. "$(dirname "$0")/cluster-lib.sh"

[ "$(cli "$LOCAL_NODE" ROLE | head -n 1)" = "master" ] || exit 0
slots=$(nodes_table "$LOCAL_NODE" | awk '$3 ~ /myself/ { print $5 }')
[ "${slots:-0}" -gt 0 ] || exit 0
# slaveN:ip=...,port=...,state=online,offset=...,lag=... : the online one furthest along.
replica=$(cli "$LOCAL_NODE" INFO replication | tr -d '\r' | awk -F'[:,=]' '
  /^slave[0-9]+:/ {
    for (i = 2; i < NF; i += 2) f[$i] = $(i + 1)
    if (f["state"] == "online" && f["offset"] + 0 > best) { best = f["offset"] + 0; who = f["ip"] ":" f["port"] }
  }
  END { print who }')
if [ -z "$replica" ]; then
  log "master of $slots slots with no replica in sync: stopping without a handover"
  exit 0
fi
log "master of $slots slots: handing over to $replica"
if take_over "$replica" && wait_role "$LOCAL_NODE" slave; then
  log "handed over to $replica; now its replica"
  exit 0
fi
log "no handover within ${SF_HANDOVER_SECONDS:-20}s: stopping anyway (the cluster fails over)"
