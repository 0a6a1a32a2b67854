#!/bin/sh
# Readiness of a Redis Cluster node: it answers, and is a master or a replica in sync with its
# master. About this pod only, not the cluster (whose state the bootstrap Job and the app
# see): a fresh pod is ready before the Job has made the cluster, so `helm install --wait`
# reaches the post-install hook. A rolling update waits for a restarted replica to be in sync
# before it stops the next pod (its master, which then hands over to it).
set -eu
# shellcheck source=cluster-lib.sh
. "$(dirname "$0")/cluster-lib.sh"

[ "$(cli "$LOCAL_NODE" PING)" = "PONG" ] || { echo "not answering PING"; exit 1; }
info=$(cli "$LOCAL_NODE" INFO replication | tr -d '\r')
case "$info" in
  *role:master*) exit 0 ;;
esac
echo "$info" | grep -q '^master_link_status:up' || { echo "not linked to its master"; exit 1; }
echo "$info" | grep -q '^master_sync_in_progress:0' || { echo "still syncing"; exit 1; }
