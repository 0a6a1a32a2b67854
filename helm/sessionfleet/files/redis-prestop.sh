#!/bin/sh
# preStop of a Redis pod: if this node is the master, hand the role over before stopping, so a
# rolling update or a drain costs a ~1 s planned switch instead of a ~2 s detected failure.
# Bounded: gives up after SF_PRESTOP_SECONDS [20] and lets the normal failover happen.
set -eu
# shellcheck source=bootstrap-lib.sh
. "$(dirname "$0")/bootstrap-lib.sh"

me="$SF_ANNOUNCE_HOST:$SF_REDIS_PORT"
[ "$(actual_role "$me")" = "master" ] || exit 0
sentinel=$(echo "$SF_SENTINELS" | tr ' ' '\n' | head -n 1)
log "master is stopping: asking Sentinel for a failover"
cli "$sentinel" "$SENTINEL_PASSWORD" SENTINEL FAILOVER "$SF_MASTER_NAME" >/dev/null || true
until_ts=$(( $(date +%s) + ${SF_PRESTOP_SECONDS:-20} ))
while [ "$(date +%s)" -lt "$until_ts" ]; do
  [ "$(actual_role "$me")" = "master" ] || { log "handed over"; exit 0; }
  sleep 1
done
log "no handover within ${SF_PRESTOP_SECONDS:-20}s; stopping anyway"
