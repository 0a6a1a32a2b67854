#!/usr/bin/env bash
# Runs the Locust scenarios against TARGET with a chaos backend, writes a report directory.
# Env: TARGET (required), CHAOS=none|local|kubernetes, DURATION (seconds, 180), USERS (24),
#      PLAN (standard; scale: a ramp for the HPA, k8s/kind/values-scale.yaml), REPORT (reports/<timestamp>), MAX_ERROR_RATE (0.05),
#      kubernetes: KUBE_CONTEXT (required: the backend never acts on the current context),
#        NAMESPACE/RELEASE, NODE_LOSS_COMMAND/NODE_RESTORE_COMMAND (shell, with {node}),
#        UPGRADE_IMAGE_TAG (the `upgrade` plan), SPARE_NODES (never lost); local:
#        COMPOSE_PROJECT_NAME.
# The load-test users' password follows the backend: the local cluster's secrets (local), the
# release's Secret read through KUBE_CONTEXT (kubernetes); SESSIONFLEET_LOADTEST_PASSWORD(_FILE)
# overrides either and is required with CHAOS=none.
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

KUBE_CONTEXT=${KUBE_CONTEXT:-}
if [ "$CHAOS" = "kubernetes" ] && [ -z "$KUBE_CONTEXT" ]; then
  echo "CHAOS=kubernetes needs KUBE_CONTEXT=<context>: it never acts on the current one" >&2
  exit 2
fi
if [ -z "${SESSIONFLEET_LOADTEST_PASSWORD:-}${SESSIONFLEET_LOADTEST_PASSWORD_FILE:-}" ]; then
  case "$CHAOS" in
    local)
      export SESSIONFLEET_LOADTEST_PASSWORD_FILE=${SECRETS_DIR:-$PWD/local-cluster/.secrets}/loadtest-password
      ;;
    kubernetes)
      SESSIONFLEET_LOADTEST_PASSWORD=$(kubectl --context "$KUBE_CONTEXT" -n "$NAMESPACE" \
        get secret "$RELEASE-sessionfleet-loadtest" -o jsonpath='{.data.password}' | base64 -d)
      export SESSIONFLEET_LOADTEST_PASSWORD
      ;;
    *)
      echo "CHAOS=none: set SESSIONFLEET_LOADTEST_PASSWORD (or _FILE) for the load-test users" >&2
      exit 2
      ;;
  esac
fi

mkdir -p "$REPORT"
locustfiles=loadtest/locustfile.py
# The scale plan's load ramps up and down (a Locust shape class, in a file of its own).
[ "$PLAN" != scale ] || locustfiles+=,loadtest/scale_shape.py
exec .venv/bin/locust -f "$locustfiles" --headless --only-summary \
  --host "$TARGET" --users "$USERS" --spawn-rate "$USERS" --run-time "${DURATION}s" --stop-timeout 10 \
  --chaos "$CHAOS" --chaos-plan "$PLAN" --chaos-namespace "$NAMESPACE" --chaos-release "$RELEASE" \
  --chaos-project "$PROJECT" --chaos-context "$KUBE_CONTEXT" \
  --node-loss-command "${NODE_LOSS_COMMAND:-}" --node-restore-command "${NODE_RESTORE_COMMAND:-}" \
  --upgrade-image-tag "${UPGRADE_IMAGE_TAG:-}" --spare-nodes "${SPARE_NODES:-}" \
  --max-error-rate "${MAX_ERROR_RATE:-0.05}" \
  --report-dir "$REPORT" --html "$REPORT/locust.html" --csv "$REPORT/locust"
