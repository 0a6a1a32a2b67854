#!/usr/bin/env bash
# `make demo`: build and start the local container cluster, run ~3 minutes of Locust with chaos,
# print the verdict and the report, tear down.
# REDIS_MODE=sentinel (default): a pod kill, a Redis master failover and a node loss (plan
# `standard`). REDIS_MODE=cluster: a pod kill, shard-master kills and resharding under load
# (plan `cluster`). PLAN, DURATION, USERS, REPORT override.
set -euo pipefail
cd "$(dirname "$0")/.."
export REDIS_MODE=${REDIS_MODE:-sentinel}
case "$REDIS_MODE" in
  sentinel) plan=${PLAN:-standard} ;;
  cluster) plan=${PLAN:-cluster} ;;
  *) echo "REDIS_MODE must be sentinel or cluster, not '$REDIS_MODE'" >&2; exit 2 ;;
esac
trap 'scripts/local-cluster.sh down >/dev/null 2>&1 || true' EXIT
scripts/local-cluster.sh up
report=${REPORT:-reports/demo-$(date +%Y%m%d-%H%M%S)}
status=0
TARGET=http://127.0.0.1:${INGRESS_PORT:-8080} CHAOS=local DURATION=${DURATION:-180} PLAN=$plan \
  REPORT=$report scripts/loadtest.sh || status=$?
# The per-event recovery table again, last, as on the page (Locust prints its own stats after
# the verdict).
if [ -s "$report/summary.json" ]; then
  echo
  .venv/bin/python -m loadtest.report --table "$report" || true
fi
echo "report: $report/index.html (summary.json, run.json.gz: every request; Locust: $report/locust.html)"
exit "$status"
