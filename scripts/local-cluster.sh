#!/usr/bin/env bash
# The local container cluster (local-cluster/compose.yaml): up | down | status.
# `up` builds what is missing (base images, app image), writes fresh random secrets, starts
# the fleet and waits until the ingress serves and Redis is whole: in Sentinel mode one master
# with two replicas; in cluster mode the bootstrap container made the Redis Cluster and every
# node says cluster_state:ok.
# REDIS_MODE: sentinel (default: compose.yaml) | cluster (compose.yaml + compose.cluster.yaml:
# 3 shards x 1 replica, no Sentinel). `down` removes either mode's containers and volumes.
set -euo pipefail

REDIS_MODE=${REDIS_MODE:-sentinel}
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-sessionfleet-local}
export INGRESS_PORT=${INGRESS_PORT:-8080}
# The cluster-mode Redis pods, as compose.cluster.yaml names them.
CLUSTER_NODES="redis-0-0 redis-0-1 redis-1-0 redis-1-1 redis-2-0 redis-2-1"

# compose_files MODE: the --file arguments of a mode (nothing and status 2 for an unknown one).
compose_files() {
  case "$1" in
    sentinel) echo "--file local-cluster/compose.yaml" ;;
    cluster) echo "--file local-cluster/compose.yaml --file local-cluster/compose.cluster.yaml" ;;
    *) return 2 ;;
  esac
}

# running_mode: the mode of the project's running fleet (cluster-mode pods carry a shard
# label), or nothing when none runs.
running_mode() {
  local project="label=com.docker.compose.project=$COMPOSE_PROJECT_NAME"
  if [ -n "$(docker ps --quiet --filter "$project" --filter label=sessionfleet.shard)" ]; then
    echo cluster
  elif [ -n "$(docker ps --quiet --filter "$project" --filter label=sessionfleet.role=sentinel)" ]; then
    echo sentinel
  fi
}

write_secrets() {
  mkdir -p "$SECRETS_DIR"
  for name in redis-password sentinel-password loadtest-password; do
    [ -s "$SECRETS_DIR/$name" ] || head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$SECRETS_DIR/$name"
  done
  # Read inside the containers by uids 999 (redis), 100 (the image's redis user, cluster mode)
  # and 10001 (app): a throwaway local secret.
  chmod 755 "$SECRETS_DIR"
  chmod 644 "$SECRETS_DIR"/*
}

# redis_cli SERVICE ARGS...: redis-cli in that Redis container, against its own server.
redis_cli() {
  local service=$1
  shift
  docker exec "${COMPOSE_PROJECT_NAME}_${service}_1" sh -c \
    'REDISCLI_AUTH=$(cat /secrets/redis-password) exec redis-cli -p 6379 "$@"' redis-cli "$@" 2>/dev/null
}

master_role_count() {
  local count=0 node
  for node in 0 1 2; do
    if redis_cli "redis-${node}" role | head -n 1 | grep -qx master; then
      count=$((count + 1))
    fi
  done
  echo "$count"
}

# Sentinel mode: one master, two replicas.
redis_ready_sentinel() {
  [ "$(master_role_count)" = 1 ]
}

# Cluster mode: the bootstrap container exited 0 (it ends only once the cluster is healthy),
# and every node says so too. A failed bootstrap fails `up` at once.
redis_ready_cluster() {
  local bootstrap="${COMPOSE_PROJECT_NAME}_cluster-bootstrap_1" state node
  state=$(docker inspect --format '{{.State.Status}} {{.State.ExitCode}}' "$bootstrap" 2>/dev/null) || return 1
  case "$state" in
    "exited 0") ;;
    exited*)
      docker logs --tail 30 "$bootstrap" >&2 || true
      echo "the cluster bootstrap failed ($state)" >&2
      exit 1
      ;;
    *) return 1 ;;
  esac
  for node in $CLUSTER_NODES; do
    redis_cli "$node" cluster info | tr -d '\r' | grep -qx 'cluster_state:ok' || return 1
  done
}

wait_ready() {
  for _ in $(seq 1 180); do
    if curl -fsS "http://127.0.0.1:$INGRESS_PORT/readyz" >/dev/null 2>&1 && "redis_ready_$REDIS_MODE"; then
      echo "local cluster ready ($REDIS_MODE mode): http://127.0.0.1:$INGRESS_PORT (users user-0001.., password in $SECRETS_DIR/loadtest-password)"
      return 0
    fi
    sleep 1
  done
  "${compose[@]}" ps
  echo "local cluster did not become ready" >&2
  return 1
}

main() {
  cd "$(dirname "$0")/.."
  export SECRETS_DIR=${SECRETS_DIR:-$PWD/local-cluster/.secrets}
  local files running
  files=$(compose_files "$REDIS_MODE") || {
    echo "REDIS_MODE must be sentinel or cluster, not '$REDIS_MODE'" >&2
    exit 2
  }
  # shellcheck disable=SC2206 # two or four words, no globs
  compose=(docker-compose $files)
  case "${1:-}" in
    up)
      running=$(running_mode)
      if [ -n "$running" ] && [ "$running" != "$REDIS_MODE" ]; then
        echo "the local cluster ($COMPOSE_PROJECT_NAME) runs in $running mode: make local-down first" >&2
        exit 1
      fi
      scripts/ensure-docker.sh --local-cluster
      scripts/images.sh base
      BASE_IMAGE=sessionfleet/python-base:bookworm scripts/images.sh app
      write_secrets
      # Cluster mode: compose.cluster.yaml sets the apps' Sentinel variables to null, which
      # passes them through from here: make sure there is nothing to pass.
      unset SESSIONFLEET_REDIS_SENTINELS SESSIONFLEET_REDIS_MASTER_NAME SESSIONFLEET_SENTINEL_PASSWORD_FILE
      "${compose[@]}" up --detach --remove-orphans
      wait_ready
      ;;
    down)
      # Both files whatever the mode: every container and volume of either mode goes.
      # shellcheck disable=SC2046 # two --file arguments
      docker-compose $(compose_files cluster) down --volumes --remove-orphans --timeout 5
      rm -rf "$SECRETS_DIR"
      ;;
    status)
      "${compose[@]}" ps
      ;;
    *)
      echo "usage: [REDIS_MODE=sentinel|cluster] $0 up|down|status" >&2
      exit 2
      ;;
  esac
}

# Sourcing this file (the unit tests do) defines the functions and runs nothing.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
