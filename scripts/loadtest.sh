#!/usr/bin/env bash
# Runs the Locust scenarios against TARGET with a chaos backend, writes a report directory.
# Env: TARGET (required), CHAOS=none|local|kubernetes, DURATION (seconds, 180), USERS (24),
#      PLAN (standard), REPORT (reports/<timestamp>), MAX_ERROR_RATE (0.05),
#      NAMESPACE/RELEASE (kubernetes), COMPOSE_PROJECT_NAME (local).
# The password of the load-test users comes from SESSIONFLEET_LOADTEST_PASSWORD(_FILE), else
# from the local cluster's secrets or the release's Secret.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${TARGET:?set TARGET, e.g. http://127.0.0.1:8080}"
CHAOS=${CHAOS:-none}
DURATION=${DURATION:-180}
USERS=${USERS:-24}
PLAN=${PLAN:-standard}
REPORT=${REPORT:-reports/$(date +%Y%m%d-%H%M%S)}
NAMESPACE=${NAMESPACE:-sessionfleet}
RELEASE=${RELEASE:-sf}
PROJECT=${COMPOSE_PROJECT_NAME:-sessionfleet-local}

if [ -z "${SESSIONFLEET_LOADTEST_PASSWORD:-}${SESSIONFLEET_LOADTEST_PASSWORD_FILE:-}" ]; then
  if [ "$CHAOS" = "local" ] || [ -s local-cluster/.secrets/loadtest-password ]; then
    export SESSIONFLEET_LOADTEST_PASSWORD_FILE=${SECRETS_DIR:-$PWD/local-cluster/.secrets}/loadtest-password
  else
    SESSIONFLEET_LOADTEST_PASSWORD=$(kubectl -n "$NAMESPACE" get secret "$RELEASE-sessionfleet-loadtest" \
      -o jsonpath='{.data.password}' | base64 -d)
    export SESSIONFLEET_LOADTEST_PASSWORD
  fi
fi

mkdir -p "$REPORT"
exec .venv/bin/locust -f loadtest/locustfile.py --headless --only-summary \
  --host "$TARGET" --users "$USERS" --spawn-rate "$USERS" --run-time "${DURATION}s" --stop-timeout 10 \
  --chaos "$CHAOS" --chaos-plan "$PLAN" --chaos-namespace "$NAMESPACE" --chaos-release "$RELEASE" \
  --chaos-project "$PROJECT" --max-error-rate "${MAX_ERROR_RATE:-0.05}" \
  --report-dir "$REPORT" --html "$REPORT/locust.html" --csv "$REPORT/locust"
