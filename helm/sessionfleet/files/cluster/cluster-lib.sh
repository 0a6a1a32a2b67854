#!/bin/sh
# Shared by the cluster-mode scripts (cluster-start.sh, cluster-bootstrap.sh, cluster-ready.sh,
# cluster-prestop.sh): settings, redis-cli calls, reading CLUSTER NODES. POSIX sh (the Redis
# image has no bash). Sourced, not run. In the chart these files sit flat in /config.
#
# Environment (defaults in brackets):
#   SF_ANNOUNCE_HOST  the name peers and clients reach this node by (the pod's DNS name;
#                     cluster-announce-hostname)                          [hostname]
#   SF_REDIS_PORT [6379] (the cluster bus is this + 10000)   SF_BIND [0.0.0.0]
#   SF_CONFIG_DIR     where redis.conf / cluster.conf live                [this script's dir]
#   SF_DATA_DIR       the node's volume: nodes.conf, data, generated config [/data]
#   SF_REDIS_PASSWORD_FILE  optional secret (a mounted file)
#   SF_PROBE_TIMEOUT  seconds one redis-cli call may take                 [2]

SF_ANNOUNCE_HOST=${SF_ANNOUNCE_HOST:-$(hostname)}
SF_REDIS_PORT=${SF_REDIS_PORT:-6379}
SF_BIND=${SF_BIND:-0.0.0.0}
SF_CONFIG_DIR=${SF_CONFIG_DIR:-$(dirname "$0")}
SF_DATA_DIR=${SF_DATA_DIR:-/data}
SF_PROBE_TIMEOUT=${SF_PROBE_TIMEOUT:-2}

REDIS_PASSWORD=""
[ -n "${SF_REDIS_PASSWORD_FILE:-}" ] && REDIS_PASSWORD=$(cat "$SF_REDIS_PASSWORD_FILE")
# This node, as its own scripts reach it (used by the scripts that source this file).
# shellcheck disable=SC2034
LOCAL_NODE="127.0.0.1:$SF_REDIS_PORT"

# SF_LOG_FILE: where to log instead of stderr (the pre-stop hook logs to /proc/1/fd/2).
log() { echo "$(basename "$0" .sh)[$SF_ANNOUNCE_HOST:$SF_REDIS_PORT]: $*" >> "${SF_LOG_FILE:-/dev/stderr}"; }

# with_auth COMMAND...: runs COMMAND with REDISCLI_AUTH set when there is a password (an
# empty REDISCLI_AUTH would make redis-cli send an AUTH the server refuses).
with_auth() {
  if [ -n "$REDIS_PASSWORD" ]; then
    REDISCLI_AUTH=$REDIS_PASSWORD "$@"
  else
    "$@"
  fi
}

# cli HOST:PORT COMMAND... : one redis-cli call, bounded in time; errors print nothing.
cli() {
  target=$1
  shift
  with_auth timeout "$SF_PROBE_TIMEOUT" redis-cli --raw -h "${target%:*}" -p "${target##*:}" "$@" 2>/dev/null
}

# info_field HOST:PORT SECTION FIELD : one field of INFO (empty when unreachable).
info_field() {
  cli "$1" INFO "$2" | tr -d '\r' | awk -F: -v f="$3" '$1 == f { print $2; exit }'
}

# wait_role HOST:PORT ROLE : until the node's ROLE is ROLE (master or slave), at most
# SF_HANDOVER_SECONDS [20]; fails when it never is (a handover that did not happen).
wait_role() {
  until_role "$1" "$2" $(( $(date +%s) + ${SF_HANDOVER_SECONDS:-20} ))
}

# take_over REPLICA [FORCE|TAKEOVER] : has REPLICA take its master's slots (CLUSTER FAILOVER),
# until it is master or SF_HANDOVER_SECONDS [20] pass; fails when it never is. Redis drops a
# manual failover whose election was lost (a vote refused, or late) after 5 s, and lets that
# replica stand again only 4 x node-timeout after it last stood (2 s at least per half). So
# one lost election is asked again at that moment, not sooner: each attempt pauses the
# master's clients while it lasts, and one sent earlier could not win.
take_over() {
  until_s=$(( $(date +%s) + ${SF_HANDOVER_SECONDS:-20} ))
  auth_ms=$(( ${SF_CLUSTER_NODE_TIMEOUT:-5000} * 2 ))
  [ "$auth_ms" -ge 2000 ] || auth_ms=2000
  attempt=1
  while :; do
    # shellcheck disable=SC2086
    answer=$(cli "$1" CLUSTER FAILOVER ${2:-}) || true
    [ "$answer" = "OK" ] || log "CLUSTER FAILOVER ${2:-}on $1: ${answer:-no answer}"
    again_s=$(( $(date +%s) + (auth_ms * 2 + 999) / 1000 + 1 ))
    if [ "$again_s" -ge "$until_s" ]; then
      until_role "$1" master "$until_s"
      return
    fi
    until_role "$1" master "$again_s" && return 0
    attempt=$((attempt + 1))
    log "$1 did not take over (an election lost?): CLUSTER FAILOVER again (attempt $attempt)"
  done
}

# until_role HOST:PORT ROLE UNTIL_S : polls the node's ROLE until it is ROLE (master or slave)
# or the clock reaches UNTIL_S (seconds since the epoch); fails when it never is.
until_role() {
  while [ "$(date +%s)" -lt "$3" ]; do
    [ "$(cli "$1" ROLE | head -n 1)" = "$2" ] && return 0
    sleep 0.2
  done
  return 1
}

# An IP address for HOST: HOST itself when it is one, else what the resolver answers
# (CLUSTER MEET takes addresses only). Empty when the name does not resolve.
resolve() {
  case "$1" in
    *:*) echo "$1" ;;
    *[!0-9.]*) timeout "$SF_PROBE_TIMEOUT" getent hosts "$1" 2>/dev/null | awk 'NR == 1 { print $1 }' ;;
    *) echo "$1" ;;
  esac
}

# nodes_table HOST:PORT : that node's CLUSTER NODES, one line per node:
#   <id> <name>:<port> <flags> <master id or -> <slots owned> <link state> <ip>
# <name> is the announced hostname (the ip when none is announced), so a node is matched by
# the same host:port the chart lists it under, whatever its current IP.
nodes_table() {
  cli "$1" CLUSTER NODES | tr -d '\r' | parse_nodes
}

# parse_nodes: the same, from CLUSTER NODES or nodes.conf text on stdin (the "vars" line of
# nodes.conf is dropped). Address field: ip:port@cport[,hostname[,aux...]].
parse_nodes() {
  awk '
    NF >= 8 && $1 != "vars" {
      at = index($2, "@"); hostport = substr($2, 1, at - 1); tail = substr($2, at + 1)
      n = split(hostport, parts, ":"); port = parts[n]
      ip = substr(hostport, 1, length(hostport) - length(port) - 1)
      host = ""
      comma = index(tail, ",")
      if (comma) { host = substr(tail, comma + 1); comma = index(host, ","); if (comma) host = substr(host, 1, comma - 1) }
      if (host == "") host = ip
      slots = 0
      for (i = 9; i <= NF; i++) {
        if ($i ~ /^\[/) continue   # a slot being imported or migrated
        if (split($i, range, "-") == 2) slots += range[2] - range[1] + 1; else slots += 1
      }
      print $1, host ":" port, $3, $4, slots, $8, (ip == "" ? "-" : ip)
    }'
}
