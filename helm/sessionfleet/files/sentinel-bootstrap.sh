#!/bin/sh
# Writes this Sentinel's config (monitoring the current master) and runs redis-sentinel.
# The master comes from the other Sentinels, else from a peer that really is master, else
# SF_INITIAL_MASTER (fresh cluster). Settings: see bootstrap-lib.sh; plus
# SF_SENTINEL_EXTRA_CONFIG (extra lines, appended last: e.g. a longer down-after-milliseconds).
set -eu
# shellcheck source=bootstrap-lib.sh
. "$(dirname "$0")/bootstrap-lib.sh"

master=$(sentinel_master)
[ -n "$master" ] || master=$(peer_master)
[ -n "$master" ] || master=$SF_INITIAL_MASTER
# Sentinel refuses to start on a name it cannot resolve: wait (bounded) for the master's DNS
# record, which a headless Service publishes once that pod has an address.
host=${master%:*}
tries=0
while ! getent hosts "$host" >/dev/null 2>&1 && [ "$tries" -lt 60 ]; do
  tries=$((tries + 1))
  sleep 1
done
myid=$(printf '%s' "$SF_ANNOUNCE_HOST:$SF_SENTINEL_PORT" | sha1sum | cut -c1-40)

config="$SF_DATA_DIR/sentinel.conf"
sed -e "s|@SENTINEL_PORT@|$SF_SENTINEL_PORT|g" \
    -e "s|@BIND@|$SF_BIND|g" \
    -e "s|@DATA_DIR@|$SF_DATA_DIR|g" \
    -e "s|@MYID@|$myid|g" \
    -e "s|@ANNOUNCE_HOST@|$SF_ANNOUNCE_HOST|g" \
    -e "s|@MASTER_NAME@|$SF_MASTER_NAME|g" \
    -e "s|@MASTER_HOST@|${master%:*}|g" \
    -e "s|@MASTER_PORT@|${master##*:}|g" \
    -e "s|@QUORUM@|$SF_QUORUM|g" \
    "$SF_CONFIG_DIR/sentinel.conf" > "$config"
{
  if [ -n "$REDIS_PASSWORD" ]; then
    echo "sentinel auth-pass $SF_MASTER_NAME \"$REDIS_PASSWORD\""
  fi
  if [ -n "$SENTINEL_PASSWORD" ]; then
    echo "requirepass \"$SENTINEL_PASSWORD\""
    echo "sentinel sentinel-pass \"$SENTINEL_PASSWORD\""
  fi
  printf '%s\n' "${SF_SENTINEL_EXTRA_CONFIG:-}"
} >> "$config"
chmod 600 "$config"
log "sentinel monitoring $master"
exec redis-sentinel "$config"
