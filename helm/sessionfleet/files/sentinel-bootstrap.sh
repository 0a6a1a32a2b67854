#!/bin/sh
# Writes this Sentinel's config (monitoring the current master) and runs redis-sentinel.
# The master comes from the other Sentinels, else from a peer that really is master, else
# SF_INITIAL_MASTER (fresh cluster). With SF_SENTINEL_KEEP_STATE=yes (its directory is on a
# volume) a config Sentinel rewrote before is kept: it knows the last master and epoch, so
# after a full restart the Sentinels agree on the newest master rather than SF_INITIAL_MASTER.
# Settings: see bootstrap-lib.sh; plus SF_SENTINEL_EXTRA_CONFIG (extra lines, appended last:
# e.g. a longer down-after-milliseconds).
set -eu
# shellcheck source=bootstrap-lib.sh
. "$(dirname "$0")/bootstrap-lib.sh"

config="$SF_DATA_DIR/sentinel.conf"
if [ "${SF_SENTINEL_KEEP_STATE:-no}" = "yes" ] && grep -q '^sentinel monitor ' "$config" 2>/dev/null; then
  # Sentinel's own state stays; the lines this script owns are written afresh below.
  grep -v -e '^sentinel auth-pass ' -e '^requirepass ' -e '^sentinel sentinel-pass ' \
    -e '^user default ' "$config" > "$config.new"
  mv "$config.new" "$config"
  log "sentinel keeps its saved state: $(grep '^sentinel monitor ' "$config")"
else
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
  log "sentinel monitoring $master"
fi
# Appended lines must start on a line of their own, whatever the file ended with.
[ -z "$(tail -c 1 "$config")" ] || echo >> "$config"
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
exec redis-sentinel "$config"
