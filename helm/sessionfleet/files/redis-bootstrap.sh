#!/bin/sh
# Decides this Redis node's role, writes its config, then runs redis-server.
#
# The rule: never become a second master. Ask the Sentinels who the master is (and check that
# node's actual role); with no Sentinel answering, follow any peer that really is master; only
# on a fresh cluster does SF_INITIAL_MASTER start as master. A node that restarts while the
# Sentinels still name it master never comes back as master while a peer holds data (its
# replicas would resync from it: every session newer than its files, or all of them, wiped):
# it waits, however long, for the Sentinels to fail over to a replica with the data. Only when
# no peer holds any (a fresh or wholly restarted cluster) does it start as master: at once
# with its own persisted data, else after SF_MASTER_WAIT_SECONDS [30].
# Passwords: SF_REDIS_PASSWORD_FILE is what this node uses and accepts; a non-empty
# SF_REDIS_PASSWORD_ACCEPTED_FILE is a second one it accepts, for a rotation
# (docs/operations.md).
# Settings: see bootstrap-lib.sh; plus SF_PERSISTENCE (yes|no), SF_MAXMEMORY (e.g. 200mb),
# SF_REDIS_EXTRA_CONFIG (extra lines, appended last).
set -eu
# shellcheck source=bootstrap-lib.sh
. "$(dirname "$0")/bootstrap-lib.sh"

me="$SF_ANNOUNCE_HOST:$SF_REDIS_PORT"
wait_until=$(( $(date +%s) + ${SF_MASTER_WAIT_SECONDS:-30} ))
# Without persistence a dump.rdb can only be the leftover of a replica's full sync (replicas
# that hold data load a sync from disk), as old as that sync: never data to serve.
[ "${SF_PERSISTENCE:-no}" = "yes" ] || rm -f "$SF_DATA_DIR/dump.rdb"
has_data() { [ -s "$SF_DATA_DIR/dump.rdb" ] || [ -n "$(ls -A "$SF_DATA_DIR/appendonlydir" 2>/dev/null)" ]; }

# A peer (not this node) that holds keys, or empty.
peer_with_data() {
  for node in $SF_REDIS_NODES; do
    [ "$node" = "$me" ] && continue
    keys=$(cli "$node" "$REDIS_PASSWORD" DBSIZE)
    case "$keys" in
      ''|*[!0-9]*|0) ;;
      *) echo "$node"; return ;;
    esac
  done
}

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
    else
      holder=$(peer_with_data)
      if [ -z "$holder" ] && { has_data || [ "$(date +%s)" -ge "$wait_until" ]; }; then
        log "sentinels name me master and no peer holds data: starting as master"
        echo "$me"
        return
      fi
      log "sentinels still name me master but I restarted (${holder:-no peer answered: none} holds data); waiting for a failover"
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
    accepted=""
    [ -n "${SF_REDIS_PASSWORD_ACCEPTED_FILE:-}" ] && accepted=$(cat "$SF_REDIS_PASSWORD_ACCEPTED_FILE" 2>/dev/null || true)
    if [ -n "$accepted" ]; then
      echo "user default on resetpass >$REDIS_PASSWORD >$accepted ~* &* +@all"
    else
      echo "requirepass \"$REDIS_PASSWORD\""
    fi
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
