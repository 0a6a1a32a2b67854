#!/bin/sh
# Decides this Redis node's role, writes its config, then runs redis-server.
#
# The rule: never become a second master. Ask the Sentinels who the master is (and check that
# node's actual role); with no Sentinel answering, follow any peer that really is master; only
# on a fresh cluster does SF_INITIAL_MASTER start as master. A node that restarts empty while
# the Sentinels still name it master waits for them to fail over to a replica that holds the
# data, instead of coming back as an empty master (that would wipe every session).
# Settings: see bootstrap-lib.sh; plus SF_PERSISTENCE (yes|no), SF_MAXMEMORY (e.g. 200mb),
# SF_MASTER_WAIT_SECONDS [30], SF_REDIS_EXTRA_CONFIG (extra lines, appended last).
set -eu
# shellcheck source=bootstrap-lib.sh
. "$(dirname "$0")/bootstrap-lib.sh"

me="$SF_ANNOUNCE_HOST:$SF_REDIS_PORT"
wait_until=$(( $(date +%s) + ${SF_MASTER_WAIT_SECONDS:-30} ))
has_data() { [ -s "$SF_DATA_DIR/dump.rdb" ] || [ -n "$(ls -A "$SF_DATA_DIR/appendonlydir" 2>/dev/null)" ]; }

choose_master() {
  while :; do
    named=$(sentinel_master)
    if [ -z "$named" ]; then
      real=$(peer_master)
      echo "${real:-$SF_INITIAL_MASTER}"
      return
    fi
    if [ "$named" != "$me" ]; then
      if [ "$(actual_role "$named")" = "master" ] || [ "$(date +%s)" -ge "$wait_until" ]; then
        echo "$named"
        return
      fi
      log "sentinels name $named, which is not (yet) a master; waiting"
    elif has_data || [ "$(date +%s)" -ge "$wait_until" ]; then
      echo "$me"
      return
    else
      log "sentinels still name me master but I restarted empty; waiting for a failover"
    fi
    sleep 1
  done
}

master=$(choose_master)
config="$SF_DATA_DIR/redis-node.conf"
{
  echo "include $SF_CONFIG_DIR/redis.conf"
  echo "port $SF_REDIS_PORT"
  echo "bind $SF_BIND"
  echo "dir $SF_DATA_DIR"
  echo "replica-announce-ip $SF_ANNOUNCE_HOST"
  echo "replica-announce-port $SF_REDIS_PORT"
  if [ -n "$REDIS_PASSWORD" ]; then
    echo "requirepass \"$REDIS_PASSWORD\""
    echo "masterauth \"$REDIS_PASSWORD\""
  fi
  [ "${SF_PERSISTENCE:-no}" = "yes" ] && echo "appendonly yes"
  [ -n "${SF_MAXMEMORY:-}" ] && echo "maxmemory $SF_MAXMEMORY"
  [ "$master" != "$me" ] && echo "replicaof ${master%:*} ${master##*:}"
  printf '%s\n' "${SF_REDIS_EXTRA_CONFIG:-}"
} > "$config"
chmod 600 "$config"
if [ "$master" = "$me" ]; then log "starting as master"; else log "starting as replica of $master"; fi
exec redis-server "$config"
