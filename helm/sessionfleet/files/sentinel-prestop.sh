#!/bin/sh
# preStop of the Sentinel container: stay up while this pod's Redis is still master, bounded by
# SF_PRESTOP_SECONDS [20]. Kubernetes stops every container of the pod at once; without this
# the pod's own Sentinel would leave before the Redis pre-stop's handover is done, one voter
# short when the majority is counted.
set -eu
# shellcheck source=bootstrap-lib.sh
. "$(dirname "$0")/bootstrap-lib.sh"

me="$SF_ANNOUNCE_HOST:$SF_REDIS_PORT"
until_ts=$(( $(date +%s) + ${SF_PRESTOP_SECONDS:-20} ))
while [ "$(date +%s)" -lt "$until_ts" ] && [ "$(actual_role "$me")" = "master" ]; do
  sleep 0.5
done
