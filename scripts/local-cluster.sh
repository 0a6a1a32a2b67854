#!/usr/bin/env bash
# The local container cluster (local-cluster/compose.yaml): up | down | status.
# `up` builds what is missing (base images, app image), writes fresh random secrets, starts
# the fleet and waits until the ingress serves and Redis has one master with two replicas.
set -euo pipefail
cd "$(dirname "$0")/.."
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-sessionfleet-local}
export SECRETS_DIR=${SECRETS_DIR:-$PWD/local-cluster/.secrets}
export INGRESS_PORT=${INGRESS_PORT:-8080}
compose=(docker-compose --file local-cluster/compose.yaml)

write_secrets() {
  mkdir -p "$SECRETS_DIR"
  for name in redis-password sentinel-password loadtest-password; do
    [ -s "$SECRETS_DIR/$name" ] || head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$SECRETS_DIR/$name"
  done
  # Read inside the containers by uids 999 (redis) and 10001 (app): a throwaway local secret.
  chmod 755 "$SECRETS_DIR"
  chmod 644 "$SECRETS_DIR"/*
}

master_role_count() {
  local count=0 node
  for node in 0 1 2; do
    if docker exec "${COMPOSE_PROJECT_NAME}_redis-${node}_1" sh -c \
        'REDISCLI_AUTH=$(cat /secrets/redis-password) redis-cli -p 6379 role' 2>/dev/null | head -n 1 | grep -qx master; then
      count=$((count + 1))
    fi
  done
  echo "$count"
}

wait_ready() {
  for _ in $(seq 1 120); do
    if curl -fsS "http://127.0.0.1:$INGRESS_PORT/readyz" >/dev/null 2>&1 && [ "$(master_role_count)" = 1 ]; then
      echo "local cluster ready: http://127.0.0.1:$INGRESS_PORT (users user-0001.., password in $SECRETS_DIR/loadtest-password)"
      return 0
    fi
    sleep 1
  done
  "${compose[@]}" ps
  echo "local cluster did not become ready" >&2
  return 1
}

case "${1:-}" in
  up)
    scripts/ensure-docker.sh --local-cluster
    scripts/images.sh base
    BASE_IMAGE=sessionfleet/python-base:bookworm scripts/images.sh app
    write_secrets
    "${compose[@]}" up --detach --remove-orphans
    wait_ready
    ;;
  down)
    "${compose[@]}" down --volumes --remove-orphans --timeout 5
    rm -rf "$SECRETS_DIR"
    ;;
  status)
    "${compose[@]}" ps
    ;;
  *)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
