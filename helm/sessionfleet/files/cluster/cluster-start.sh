#!/bin/sh
# Starts one Redis Cluster node (redis.mode: cluster): mends nodes.conf after a restart,
# writes the node's config, then runs redis-server. The cluster itself is made and grown by
# cluster-bootstrap.sh (the chart's bootstrap Jobs); a fresh node just waits to be met.
#
# nodes.conf (cluster-config-file, on the pod's volume) is the node's identity: with it a
# restarted pod keeps its node ID, its slots or its master, and rejoins by itself. Before
# starting, two mends:
#  1. Addresses. A rescheduled pod comes back with a new IP, and so may its peers. Its own
#     line (flag myself) gets SF_POD_IP; every peer line whose announced hostname resolves
#     gets that address (after a restart of every pod, no old address would reach anyone).
#     Peers learn this node's new address from its first ping (Redis takes a known node's
#     address from the connection it arrives on).
#  2. No empty master. A node that was master of slots must not come back as master while a
#     replica of its shard is in the cluster with the data: that replica would resync from it
#     (an empty or older data set) and wipe every session acknowledged since. So it first
#     promotes its best replica (CLUSTER FAILOVER FORCE: no handshake with this absent master,
#     but the votes of a majority of the other masters), waits up to SF_HANDOVER_SECONDS for
#     it, then starts and Redis turns it into that replica's replica. When no majority of
#     masters can vote (a lost node held several masters, all restarting now), the replica
#     takes over without votes (CLUSTER FAILOVER TAKEOVER): safe here, because the master
#     whose slots it claims is this node, which is not running, so no second master answers
#     for them; starting empty instead lost every session of those shards (seen on a real
#     cluster: a node holding two masters lost and restored). When no replica answers, it
#     starts as it was.
# Settings (see cluster-lib.sh) and: SF_POD_IP (this pod's address), SF_PERSISTENCE (yes: AOF),
# SF_MAXMEMORY, SF_CLUSTER_NODE_TIMEOUT [5000], SF_HANDOVER_SECONDS [20],
# SF_REDIS_PASSWORD_ACCEPTED_FILE (a second password accepted during a rotation),
# SF_REDIS_EXTRA_CONFIG (extra lines, appended last).
set -eu
# shellcheck source=cluster-lib.sh
. "$(dirname "$0")/cluster-lib.sh"

nodes_conf="$SF_DATA_DIR/nodes.conf"
# Without persistence a dump.rdb can only be the leftover of a replica's full sync, as old as
# that sync: never data to serve (Redis would load it at start).
[ "${SF_PERSISTENCE:-no}" = "yes" ] || rm -f "$SF_DATA_DIR/dump.rdb"

# Rewrites the IP of every line of nodes.conf whose node has a known current address.
mend_addresses() {
  mended="$nodes_conf.mended"
  : > "$mended"
  set -f  # the fields of a line are not glob patterns
  while IFS= read -r line; do
    # shellcheck disable=SC2086
    set -- $line
    if [ "$#" -lt 8 ] || [ "$1" = vars ]; then
      printf '%s\n' "$line" >> "$mended"
      continue
    fi
    id=$1 address=$2 flags=$3
    hostport=${address%%@*}
    tail=${address#"$hostport"}
    ip=${hostport%:*} port=${hostport##*:}
    host=""
    case "$tail" in
      *,*) host=${tail#*,} host=${host%%,*} ;;
    esac
    case "$flags" in
      *myself*) now=${SF_POD_IP:-} ;;
      *) now=""; [ -n "$host" ] && now=$(resolve "$host") ;;
    esac
    # (port 0: a node Redis lists without an address; nothing to mend)
    if [ -n "$now" ] && [ "$now" != "$ip" ] && [ "$port" != 0 ]; then
      log "nodes.conf: node $id ($host) moved from ${ip:-no address} to $now"
      line="$id $now:$port$tail ${line#"$id $address "}"
    fi
    printf '%s\n' "$line" >> "$mended"
  done < "$nodes_conf"
  set +f
  mv "$mended" "$nodes_conf"
}

# Echoes the best replica of mine to promote and how ("host:port FORCE|TAKEOVER"), or
# nothing. Only a replica that still follows me and is not in the middle of a full sync
# qualifies; the one with the most replication data wins. FORCE when it sees a majority of
# the other masters (they must vote for it), else TAKEOVER (see the top).
replica_to_promote() {
  my_id=$1
  best="" best_offset=-1
  for replica in $(parse_nodes < "$nodes_conf" | awk -v me="$my_id" '$4 == me && $3 ~ /slave/ && $7 != "-" { split($2, hp, ":"); print $7 ":" hp[length(hp)] }'); do
    [ "$(cli "$replica" ROLE | head -n 1)" = "slave" ] || continue
    [ "$(info_field "$replica" replication master_sync_in_progress)" = "0" ] || continue
    offset=$(info_field "$replica" replication slave_repl_offset)
    case "$offset" in ''|*[!0-9]*) continue ;; esac
    if [ "$offset" -gt "$best_offset" ]; then
      best=$replica best_offset=$offset
    fi
  done
  [ -n "$best" ] || return 0
  masters=$(nodes_table "$best" | awk -v me="$my_id" '
    $3 ~ /master/ && $3 !~ /fail/ && $5 > 0 { total++; if ($1 != me && $6 == "connected") up++ }
    END { print (up + 0) " " (total + 0) }')
  up=${masters% *} total=${masters#* }
  if [ "$up" -lt $(( total / 2 + 1 )) ]; then
    log "replica $best sees $up of $total masters: no majority to vote for it"
    echo "$best TAKEOVER"
  else
    echo "$best FORCE"
  fi
}

hand_over() {
  myself=$(parse_nodes < "$nodes_conf" | awk '$3 ~ /myself/')
  [ -n "$myself" ] || return 0
  # shellcheck disable=SC2086
  set -- $myself
  case "$3" in *master*) ;; *) return 0 ;; esac
  [ "$5" -gt 0 ] || return 0
  promotion=$(replica_to_promote "$1")
  if [ -z "$promotion" ]; then
    log "master of $5 slots; no replica can take them over: starting as master"
    return 0
  fi
  candidate=${promotion% *} how=${promotion#* }
  log "master of $5 slots, restarting: promoting my replica $candidate first ($how)"
  if take_over "$candidate" "$how"; then
    log "$candidate took over; I rejoin as its replica"
    return 0
  fi
  log "$candidate did not take over within ${SF_HANDOVER_SECONDS:-20}s: starting as master"
}

if [ -s "$nodes_conf" ]; then
  mend_addresses
  hand_over
else
  log "no nodes.conf: a new node, waiting for the bootstrap Job to add it to the cluster"
fi

config="$SF_DATA_DIR/redis-node.conf"
{
  echo "include $SF_CONFIG_DIR/redis.conf"
  echo "include $SF_CONFIG_DIR/cluster.conf"
  echo "port $SF_REDIS_PORT"
  echo "bind $SF_BIND"
  echo "dir $SF_DATA_DIR"
  echo "cluster-config-file $nodes_conf"
  echo "cluster-node-timeout ${SF_CLUSTER_NODE_TIMEOUT:-5000}"
  echo "cluster-announce-hostname $SF_ANNOUNCE_HOST"
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
  printf '%s\n' "${SF_REDIS_EXTRA_CONFIG:-}"
} > "$config"
chmod 600 "$config"
exec redis-server "$config"
