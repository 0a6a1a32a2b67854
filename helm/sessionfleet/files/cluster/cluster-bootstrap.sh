#!/bin/sh
# Makes, completes or grows the Redis Cluster of the chart's cluster mode. The chart runs it
# in a Job after an install, in a post-upgrade hook Job, and (check only) in a pre-rollback
# hook Job (templates/redis-cluster-bootstrap-job.yaml). Idempotent: on a healthy cluster of
# the wanted shape it only reads. Steps:
#  1. Wait until every node answers PING.
#  2. No node in a cluster yet (each knows only itself, no slot assigned): create one of the
#     shards' pod 0s (redis-cli --cluster create, no replicas; slots split evenly).
#  3. Refuse to go on if a node outside SF_SHARDS owns slots: fewer shards than the cluster
#     has. Shrinking is not supported; its slots, and their sessions, would be lost.
#  4. Each shard: its master is the node of the shard the cluster knows as a master (after a
#     failover, not necessarily pod 0). A shard new to the cluster gets its first pod added
#     as an empty master (redis-cli --cluster add-node). Every other pod of the shard that is
#     not yet that master's replica meets the cluster (CLUSTER MEET) and replicates it
#     (CLUSTER REPLICATE): a new pod, or one that came back without its volume. Nodes the
#     cluster still lists but that no pod is any more (failed, no slots) are forgotten.
#  5. Once every replica is in sync (the app's writes to a shard wait for its replicas), empty
#     masters get their share of the slots, keys and all (redis-cli --cluster rebalance
#     --cluster-use-empty-masters).
#  6. Wait until redis-cli --cluster check passes and every node says cluster_state:ok.
# SF_CHECK_ONLY=yes stops after step 3, changing nothing (the pre-rollback hook: a rollback
# to fewer shards is refused before Helm deletes any).
# Every wait is bounded by one deadline, SF_BOOTSTRAP_TIMEOUT [300] seconds from the start;
# on any failure the script says why and exits 1, which fails the Job and the helm command.
#
# Environment (and cluster-lib.sh's SF_REDIS_PASSWORD_FILE):
#   SF_SHARDS  the shards, space-separated; each a comma-separated list of host:port, pod 0
#              first, e.g. "a-0.x:6379,a-1.x:6379 b-0.x:6379,b-1.x:6379 c-0.x:6379,c-1.x:6379".
#              Hosts are the names the nodes announce (SF_ANNOUNCE_HOST of cluster-start.sh).
set -eu
# Lists below are split on purpose (unquoted); none of their words is a glob pattern.
set -f
# shellcheck source=cluster-lib.sh
. "$(dirname "$0")/cluster-lib.sh"

: "${SF_SHARDS:?SF_SHARDS must list the shards (host:port,host:port host:port,...)}"
SF_BOOTSTRAP_TIMEOUT=${SF_BOOTSTRAP_TIMEOUT:-300}
deadline=$(( $(date +%s) + SF_BOOTSTRAP_TIMEOUT ))
why=""

log() { echo "cluster-bootstrap: $*" >&2; }
fail() {
  log "FAILED: $*"
  exit 1
}

# wait_for WHAT COMMAND... : runs COMMAND each second until it succeeds, or fails the Job at
# the deadline (with $why, which COMMAND may set, in the message).
wait_for() {
  what=$1
  shift
  why=""
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] ||
      fail "gave up after ${SF_BOOTSTRAP_TIMEOUT}s waiting for $what${why:+ ($why)}"
    sleep 1
  done
}

# shellcheck disable=SC2086
all_nodes() { printf '%s\n' $SF_SHARDS | tr ',' '\n'; }
# shellcheck disable=SC2086
count() { set -- $1; echo "$#"; }
shard_nodes() { printf '%s\n' "$1" | tr ',' '\n'; }
is_listed() { all_nodes | grep -qxF "$1"; }

# host:port -> ip:port (redis-cli --cluster and CLUSTER MEET want addresses).
address_of() {
  ip=$(resolve "${1%:*}")
  [ -n "$ip" ] || fail "cannot resolve ${1%:*}"
  echo "$ip:${1##*:}"
}

esc=$(printf '\033')
# cluster_tool ARGS... : redis-cli --cluster ARGS (colours stripped, logged); its output is
# left in $tool_output. Bounded by the deadline.
cluster_tool() {
  remaining=$(( deadline - $(date +%s) ))
  [ "$remaining" -gt 0 ] || fail "no time left for redis-cli --cluster $1"
  status=0
  tool_output=$(with_auth timeout "$remaining" redis-cli --cluster "$@" < /dev/null 2>&1) || status=$?
  tool_output=$(printf '%s\n' "$tool_output" | sed "s/$esc\[[0-9;]*m//g")
  printf '%s\n' "$tool_output" | sed 's/^/  | /' >&2
  return "$status"
}

# own NODE: the node's own line of its CLUSTER NODES (see nodes_table) into own_id,
# own_flags, own_master (its master's ID, "-" for a master), own_slots; empty if it is silent.
own() {
  own_id="" own_flags="" own_master="" own_slots=0
  row=$(nodes_table "$1" | awk '$3 ~ /myself/')
  [ -n "$row" ] || return 0
  read -r own_id _ own_flags own_master own_slots _ <<EOF
$row
EOF
}

# A node that knows another node or has slots assigned takes part in a cluster.
in_a_cluster() {
  info=$(cli "$1" CLUSTER INFO | tr -d '\r')
  known=$(printf '%s\n' "$info" | awk -F: '$1 == "cluster_known_nodes" { print $2 }')
  assigned=$(printf '%s\n' "$info" | awk -F: '$1 == "cluster_slots_assigned" { print $2 }')
  [ "${known:-1}" -gt 1 ] || [ "${assigned:-0}" -gt 0 ]
}

every_node_answers() {
  silent=""
  for node in $(all_nodes); do
    [ "$(cli "$node" PING)" = "PONG" ] || silent="$silent $node"
  done
  why="no answer from:$silent"
  [ -z "$silent" ]
}

knows() { cli "$1" CLUSTER NODES | grep -q "^$2 "; }

every_node_knows_all() {
  for node in $(all_nodes); do
    seen=$(nodes_table "$node" | awk '$3 !~ /handshake/ { print $1 }')
    for id in $current_ids; do
      if ! printf '%s\n' "$seen" | grep -qxF "$id"; then
        why="$node does not know $id yet"
        return 1
      fi
    done
  done
}

in_sync() {
  [ "$(info_field "$1" replication master_link_status)" = "up" ] &&
    [ "$(info_field "$1" replication master_sync_in_progress)" = "0" ]
}

check_passes() {
  if cluster_tool check "$(address_of "$entry")" > /dev/null 2>&1 &&
    ! printf '%s\n' "$tool_output" | grep -q -e '^\[ERR\]' -e '^\[WARNING\]'; then
    return 0
  fi
  why=$(printf '%s\n' "$tool_output" | grep -e '^\[ERR\]' -e '^\[WARNING\]' | head -n 3 | tr '\n' ' ')
  return 1
}

every_node_ok() {
  for node in $(all_nodes); do
    state=$(info_field_cluster "$node")
    if [ "$state" != "ok" ]; then
      why="$node says cluster_state:${state:-nothing}"
      return 1
    fi
  done
}
info_field_cluster() { cli "$1" CLUSTER INFO | tr -d '\r' | awk -F: '$1 == "cluster_state" { print $2 }'; }

# Every master lists its shard's replicas as its own ($pairs: "master master-id replica-id").
masters_see_their_replicas() {
  while read -r master master_id replica_id; do
    [ -n "$master" ] || continue
    if ! nodes_table "$master" | awk -v r="$replica_id" -v m="$master_id" '$1 == r && $4 == m { found = 1 } END { exit !found }'; then
      why="$master does not list $replica_id as its replica yet"
      return 1
    fi
  done <<EOF
$pairs
EOF
}

# Nodes the cluster still lists that no pod is any more: failed (or found at an address that
# answers with another ID), slotless, and not the ID of any node of SF_SHARDS (all of which
# answered), e.g. a pod's old ID from before it lost its volume. CLUSTER FORGET must reach
# every node within 60 s, or gossip brings the ghost back.
forget_ghosts() {
  ghosts=$(nodes_table "$entry" | awk '$3 ~ /fail|noaddr/ && $5 == 0 { print $1 }' | grep -vxF "$current_ids" || true)
  for ghost in $ghosts; do
    log "forgetting $ghost, a failed node no pod is any more"
    for node in $(all_nodes); do cli "$node" CLUSTER FORGET "$ghost" > /dev/null || true; done
  done
}

healthy() { forget_ghosts; check_passes && every_node_ok && masters_see_their_replicas; }

# --- 1. every node answers ----------------------------------------------------------------
if [ "${SF_CHECK_ONLY:-no}" = "yes" ]; then
  # A rollback often comes when something is down: one node that is in the cluster is enough
  # to read who owns the slots. (`helm rollback --no-hooks` skips this check.)
  some_member_answers() {
    for node in $(all_nodes); do
      if in_a_cluster "$node"; then members=$node; return 0; fi
    done
    why="none of the $(all_nodes | wc -l) nodes answers as a cluster member"
    return 1
  }
  wait_for "a node of the cluster to answer" some_member_answers
else
  wait_for "every node to answer PING" every_node_answers
  log "all $(all_nodes | wc -l) nodes answer"
  members=""
  for node in $(all_nodes); do
    if in_a_cluster "$node"; then members="$members $node"; fi
  done
fi

# --- 2. a cluster -------------------------------------------------------------------------
if [ -z "$members" ]; then
  firsts=""
  for shard in $SF_SHARDS; do firsts="$firsts $(address_of "${shard%%,*}")"; done
  log "no cluster yet: creating one of $(count "$firsts") masters:$firsts"
  # shellcheck disable=SC2086
  cluster_tool create $firsts --cluster-replicas 0 --cluster-yes || fail "redis-cli --cluster create failed"
  entry=${SF_SHARDS%%,*}
else
  # shellcheck disable=SC2086
  entry=$(printf '%s\n' $members | head -n 1)
  log "a cluster exists (entry node $entry)"
fi

# --- 3. no shrinking ----------------------------------------------------------------------
owners=$(nodes_table "$entry" | awk '$3 ~ /master/ && $3 !~ /fail/ && $5 > 0 { print $2 }')
[ -n "$owners" ] || fail "$entry lists no master that owns slots"
strays=""
for owner in $owners; do
  is_listed "$owner" || strays="$strays $owner"
done
if [ -n "$strays" ]; then
  fail "nodes outside this release's $(count "$SF_SHARDS") shards own slots:$strays." \
    "Shrinking redis.cluster.shards is not supported (their slots and sessions would be lost):" \
    "set it back to the number of shards the cluster has."
fi
if [ "${SF_CHECK_ONLY:-no}" = "yes" ]; then
  log "check only: every slot owner is one of the $(count "$SF_SHARDS") shards"
  exit 0
fi
# A creation cut short can leave members the entry node has not met yet.
for node in $members; do
  id=$(cli "$node" CLUSTER MYID)
  if ! knows "$entry" "$id"; then
    log "$node is in a cluster but unknown to $entry: meeting it"
    cli "$entry" CLUSTER MEET "$(resolve "${node%:*}")" "${node##*:}" > /dev/null
  fi
done

# --- 4. each shard: one master, the rest its replicas -------------------------------------
masters=""
replicas=""
pairs=""
index=0
for shard in $SF_SHARDS; do
  master="" master_slots=-1
  for node in $(shard_nodes "$shard"); do
    in_a_cluster "$node" || continue
    own "$node"
    case "$own_flags" in *master*) ;; *) continue ;; esac
    if [ "$own_slots" -gt 0 ] && [ "$master_slots" -gt 0 ]; then
      fail "shard $index has two masters with slots, $master and $node: mend it by hand" \
        "(docs/redis-cluster.md), then run the Job again (helm upgrade)"
    fi
    if [ "$own_slots" -gt "$master_slots" ]; then master=$node master_slots=$own_slots; fi
  done
  if [ -z "$master" ]; then
    for node in $(shard_nodes "$shard"); do
      in_a_cluster "$node" || { master=$node; break; }
    done
    [ -n "$master" ] || fail "shard $index has no master and no free node to make one of"
    log "shard $index is new: adding $master as an empty master"
    cluster_tool add-node "$(address_of "$master")" "$(address_of "$entry")" ||
      fail "redis-cli --cluster add-node $master failed"
  fi
  master_id=$(cli "$master" CLUSTER MYID)
  [ -n "$master_id" ] || fail "no node ID from $master"
  wait_for "$entry to know the master of shard $index ($master)" knows "$entry" "$master_id"
  masters="$masters $master"
  for node in $(shard_nodes "$shard"); do
    [ "$node" = "$master" ] && continue
    replicas="$replicas $node"
    own "$node"
    pairs="$pairs
$master $master_id $own_id"
    [ "$own_master" = "$master_id" ] && continue
    if ! in_a_cluster "$node"; then
      log "$node is new: meeting the cluster"
      cli "$node" CLUSTER MEET "$(resolve "${master%:*}")" "${master##*:}" > /dev/null
    fi
    wait_for "$node to learn of $master" knows "$node" "$master_id"
    log "$node becomes a replica of $master ($master_id), shard $index"
    answer=$(cli "$node" CLUSTER REPLICATE "$master_id")
    [ "$answer" = "OK" ] || fail "CLUSTER REPLICATE on $node: ${answer:-no answer}"
  done
  index=$((index + 1))
done

current_ids=$(for node in $(all_nodes); do cli "$node" CLUSTER MYID; done)

# --- 5. replicas in sync, then slots for empty masters -------------------------------------
for node in $replicas; do
  wait_for "$node to be in sync with its master" in_sync "$node"
done
# Slot moves need every node to know every other (a node told to hand a slot to an ID it has
# not heard of yet refuses); --cluster check only compares the slot tables.
wait_for "every node to know every other" every_node_knows_all
wait_for "the nodes to agree (redis-cli --cluster check)" check_passes
empty=""
for master in $masters; do
  own "$master"
  if [ "$own_slots" -eq 0 ]; then empty="$empty $master"; fi
done
if [ -n "$empty" ]; then
  # A node just added says cluster_state:fail until it has heard from the others: a slot
  # moved to it then fails (CLUSTERDOWN, seen on a real cluster under load).
  wait_for "every node to say cluster_state:ok" every_node_ok
  log "moving slots onto the empty masters:$empty"
  attempt=1
  until cluster_tool rebalance "$(address_of "$entry")" --cluster-use-empty-masters; do
    [ "$attempt" -lt 3 ] || fail "redis-cli --cluster rebalance failed $attempt times"
    # A move cut short leaves its slot open (migrating/importing): --cluster fix finishes it
    # (the keys go where the slot's owner is), then the rebalance goes on.
    log "rebalance attempt $attempt failed: closing open slots (redis-cli --cluster fix)"
    cluster_tool fix "$(address_of "$entry")" --cluster-yes || true
    wait_for "every node to say cluster_state:ok" every_node_ok
    attempt=$((attempt + 1))
  done
fi

# --- 6. healthy -----------------------------------------------------------------------------
wait_for "a healthy cluster (redis-cli --cluster check, cluster_state:ok everywhere)" healthy
for master in $masters; do
  own "$master"
  log "master $master: $own_slots slots; replicas:$(nodes_table "$master" | awk -v id="$own_id" '$4 == id { printf " %s", $2 }')"
done
log "cluster healthy"
