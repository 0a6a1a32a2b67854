#!/bin/sh
# preStop of a Redis pod: if this node is the master, hand the role over before stopping, so a
# rolling update or a drain costs a short planned switch instead of a detected failure.
# Writes are paused first (CLIENT PAUSE WRITE: they wait, they do not fail) so the replica
# Sentinel promotes has every acknowledged write; they stay paused until this node stops.
# The failover is asked of a Sentinel of another pod (this pod's own is stopping too; its
# pre-stop only keeps it up until the handover is done). Bounded by SF_PRESTOP_SECONDS [20];
# a handover that did not happen fails the hook (a FailedPreStopHook event) and says why.
set -eu
# shellcheck source=bootstrap-lib.sh
. "$(dirname "$0")/bootstrap-lib.sh"

me="$SF_ANNOUNCE_HOST:$SF_REDIS_PORT"
own_sentinel="$SF_ANNOUNCE_HOST:$SF_SENTINEL_PORT"
[ "$(actual_role "$me")" = "master" ] || exit 0
started=$(date +%s)
until_ts=$((started + ${SF_PRESTOP_SECONDS:-20}))

# Sentinel refuses (NOGOODSLAVE) until it has seen a replica fit to promote, e.g. one that
# restarted moments ago in the same rolling update: ask again until the deadline.
asked=""
refusals=""
while [ -z "$asked" ] && [ "$(date +%s)" -lt "$until_ts" ]; do
  for sentinel in $SF_SENTINELS; do
    [ "$sentinel" = "$own_sentinel" ] && continue
    # Pause just before asking: Sentinel promotes within a second or two of the request.
    cli "$me" "$REDIS_PASSWORD" CLIENT PAUSE "$(( ${SF_PRESTOP_SECONDS:-20} * 1000 ))" WRITE >/dev/null || true
    reply=$(cli "$sentinel" "$SENTINEL_PASSWORD" SENTINEL FAILOVER "$SF_MASTER_NAME" || true)
    if [ "$reply" = "OK" ]; then
      asked=$sentinel
      break
    fi
    cli "$me" "$REDIS_PASSWORD" CLIENT UNPAUSE >/dev/null || true
    case "$refusals" in
      *"${reply:-no answer}"*) ;;
      *) refusals="$refusals ${reply:-no answer};" ; log "sentinel $sentinel refused the failover: ${reply:-no answer}" ;;
    esac
  done
  [ -n "$asked" ] || sleep 1
done
if [ -z "$asked" ]; then
  log "HANDOVER FAILED: no other Sentinel accepted a failover within ${SF_PRESTOP_SECONDS:-20} s ($refusals); stopping as master (a detected failover follows)"
  exit 1
fi
log "master is stopping: failover asked of $asked"
# Done when the Sentinels name the new master. This node stays paused (Sentinel's REPLICAOF
# waits behind the pause too) until it is stopped: its clients' blocked writes then fail over.
while [ "$(date +%s)" -lt "$until_ts" ]; do
  named=$(sentinel_master)
  if [ -n "$named" ] && [ "$named" != "$me" ]; then
    # Drop the clients whose writes wait behind the pause: they retry on the new master now
    # instead of when their read timeout ends.
    cli "$me" "$REDIS_PASSWORD" CLIENT KILL TYPE normal >/dev/null || true
    log "handed over to $named in $(( $(date +%s) - started )) s"
    exit 0
  fi
  sleep 0.2
done
cli "$me" "$REDIS_PASSWORD" CLIENT UNPAUSE >/dev/null || true
log "HANDOVER FAILED: still master after ${SF_PRESTOP_SECONDS:-20} s; stopping anyway (a detected failover follows)"
exit 1
