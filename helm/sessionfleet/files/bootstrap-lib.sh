#!/bin/sh
# Shared by redis-bootstrap.sh and sentinel-bootstrap.sh: settings and master discovery.
# POSIX sh (the Redis image has no bash). Sourced, not run.
#
# Environment (defaults in brackets):
#   SF_ANNOUNCE_HOST   name (or IP) peers reach this node by            [hostname]
#   SF_REDIS_PORT [6379]   SF_SENTINEL_PORT [26379]   SF_BIND [0.0.0.0]
#   SF_MASTER_NAME [sessionfleet]   SF_QUORUM [2]
#   SF_SENTINELS       space-separated host:port of every Sentinel
#   SF_REDIS_NODES     space-separated host:port of every Redis node
#   SF_INITIAL_MASTER  host:port that is master when nobody knows one yet (a fresh cluster)
#   SF_CONFIG_DIR      where redis.conf / sentinel.conf live              [this script's dir]
#   SF_DATA_DIR        writable directory for generated config and data   [/data]
#   SF_REDIS_PASSWORD_FILE, SF_SENTINEL_PASSWORD_FILE  optional secrets (mounted files)

SF_ANNOUNCE_HOST=${SF_ANNOUNCE_HOST:-$(hostname)}
SF_REDIS_PORT=${SF_REDIS_PORT:-6379}
SF_SENTINEL_PORT=${SF_SENTINEL_PORT:-26379}
SF_BIND=${SF_BIND:-0.0.0.0}
SF_MASTER_NAME=${SF_MASTER_NAME:-sessionfleet}
SF_QUORUM=${SF_QUORUM:-2}
SF_CONFIG_DIR=${SF_CONFIG_DIR:-$(dirname "$0")}
SF_DATA_DIR=${SF_DATA_DIR:-/data}
SF_PROBE_TIMEOUT=${SF_PROBE_TIMEOUT:-2}

REDIS_PASSWORD=""
SENTINEL_PASSWORD=""
[ -n "${SF_REDIS_PASSWORD_FILE:-}" ] && REDIS_PASSWORD=$(cat "$SF_REDIS_PASSWORD_FILE")
[ -n "${SF_SENTINEL_PASSWORD_FILE:-}" ] && SENTINEL_PASSWORD=$(cat "$SF_SENTINEL_PASSWORD_FILE")

# SF_LOG_FILE: where to log instead of stderr (a pre-stop hook's stderr is lost; the chart's
# hooks log to /proc/1/fd/2, the container's own log).
log() { echo "$(basename "$0" .sh)[$SF_ANNOUNCE_HOST]: $*" >> "${SF_LOG_FILE:-/dev/stderr}"; }

# cli HOST:PORT PASSWORD COMMAND... : one redis-cli call, bounded in time.
cli() {
  target=$1 password=$2
  shift 2
  host=${target%:*} port=${target##*:}
  if [ -n "$password" ]; then
    REDISCLI_AUTH=$password timeout "$SF_PROBE_TIMEOUT" redis-cli --raw -h "$host" -p "$port" "$@" 2>/dev/null
  else
    timeout "$SF_PROBE_TIMEOUT" redis-cli --raw -h "$host" -p "$port" "$@" 2>/dev/null
  fi
}

# The master most reachable Sentinels name, as host:port; empty when none answers.
sentinel_master() {
  answers=""
  for sentinel in $SF_SENTINELS; do
    reply=$(cli "$sentinel" "$SENTINEL_PASSWORD" SENTINEL get-master-addr-by-name "$SF_MASTER_NAME" | tr '\n' ':')
    case "$reply" in
      *:*[0-9]:) answers="$answers ${reply%:}" ;;
    esac
  done
  if [ -n "$answers" ]; then
    # shellcheck disable=SC2086
    printf '%s\n' $answers | sort | uniq -c | sort -rn | awk 'NR==1 {print $2}'
  fi
}

# The role a Redis node reports itself (master / slave), empty when unreachable.
actual_role() {
  cli "$1" "$REDIS_PASSWORD" ROLE | head -n 1
}

# A node that really is master (asked directly, not taken from a Sentinel), or empty.
peer_master() {
  for node in $SF_REDIS_NODES; do
    [ "$node" = "$SF_ANNOUNCE_HOST:$SF_REDIS_PORT" ] && continue
    if [ "$(actual_role "$node")" = "master" ]; then
      echo "$node"
      return
    fi
  done
}
