#!/usr/bin/env bash
# The kind path: up | load | deploy | observability | undeploy | e2e | down. Needs docker, kind, kubectl and helm
# (the Makefile's targets install kind/helm/kubectl when missing: scripts/kube-tools.sh).
# Runs on bash 3.2 (macOS): no bash 4 features.
# Settings (env):
#   KIND_CLUSTER     cluster name (sessionfleet); kubectl context kind-$KIND_CLUSTER
#   KIND_OFFLINE=1   `up` builds the node image and the add-on images from the Go module
#                    proxy and Debian packages instead of pulling kindest/node and the
#                    official images (the route for machines and sites that cannot pull);
#                    `load` and `deploy` notice an offline cluster by its node image
#   KIND_NODE_IMAGE  a node image of your own (default: k8s/kind/cluster.yaml's kindest/node,
#                    or with KIND_OFFLINE=1 the one scripts/kind-node-image.sh builds)
#   KIND_HTTP_PORT   host port of the Gateway (8090), on 127.0.0.1
#   KIND_METRICS_SERVER=0  `up` leaves metrics-server out (no HPA metrics; CI's job needs none)
#   NAMESPACE, RELEASE, IMAGE, OTEL=1   where and what `deploy` installs
set -euo pipefail

KIND_CLUSTER=${KIND_CLUSTER:-sessionfleet}
NAMESPACE=${NAMESPACE:-sessionfleet}
RELEASE=${RELEASE:-sf}
IMAGE=${IMAGE:-sessionfleet:dev}
KIND_HTTP_PORT=${KIND_HTTP_PORT:-8090}
KIND_MIN_VERSION=0.33.0
# The Redis image the offline route runs (scripts/images.sh base: Debian's redis-server).
OFFLINE_REDIS_IMAGE=sessionfleet/redis:bookworm
CONTEXT=kind-${KIND_CLUSTER}

need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || { echo "missing '$tool': see docs/kind.md" >&2; exit 1; }
  done
}

# True when version $1 (x.y.z, a leading v and a -suffix ignored) is at least $2.
version_at_least() {
  local have=${1#v} want=${2#v} i h w
  have=${have%%-*}
  want=${want%%-*}
  for i in 1 2 3; do
    h=$(echo "$have" | cut -d. -f"$i")
    w=$(echo "$want" | cut -d. -f"$i")
    h=${h//[^0-9]/}
    w=${w//[^0-9]/}
    h=${h:-0}
    w=${w:-0}
    [ "$h" -gt "$w" ] && return 0
    [ "$h" -lt "$w" ] && return 1
  done
  return 0
}

check_kind_version() {
  local version
  # `kind version` prints "kind v0.33.0 go1.26.8 linux/amd64".
  version=$(kind version 2>/dev/null | awk '{print $2}')
  if ! version_at_least "${version:-0}" "$KIND_MIN_VERSION"; then
    echo "kind ${version:-(unknown version)} is too old: the pinned node image kindest/node:v1.37.0" \
      "needs kind >= $KIND_MIN_VERSION (docs/kind.md)" >&2
    exit 1
  fi
}

# grep without -q: under pipefail, a grep leaving early would fail kind with SIGPIPE.
cluster_exists() { kind get clusters 2>/dev/null | grep -x "$KIND_CLUSTER" >/dev/null; }

# An offline cluster runs the node image scripts/kind-node-image.sh labels.
offline() {
  [ "${KIND_OFFLINE:-}" = 1 ] && return 0
  local image
  image=$(docker inspect --format '{{.Config.Image}}' "$KIND_CLUSTER-control-plane" 2>/dev/null) || return 1
  [ -n "$(docker image inspect --format '{{index .Config.Labels "io.sessionfleet.inputs"}}' "$image" 2>/dev/null)" ]
}

# k8s/kind/cluster.yaml plus what depends on this machine: the Gateway's host port, and on a
# cgroup v1 host (Kubernetes >= 1.35 refuses it unless told) the kubelet's failCgroupV1.
cluster_config() {
  sed "s/hostPort: 8090,/hostPort: $KIND_HTTP_PORT,/" k8s/kind/cluster.yaml
  if [ "$(docker info --format '{{.CgroupVersion}}' 2>/dev/null)" = 1 ]; then
    cat <<'EOF'
kubeadmConfigPatches:
  - |
    kind: KubeletConfiguration
    failCgroupV1: false
EOF
  fi
}

module_dir() { go mod download -json "$1" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p'; }

# Gateway API CRDs and Traefik (k8s/kind/addons): the cluster's Gateway controller.
install_gateway() {
  local image crds
  # shellcheck source=../k8s/kind/addons/versions.env
  . k8s/kind/addons/versions.env
  need go
  crds="$(module_dir "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION")/config/crd/standard"
  kubectl --context "$CONTEXT" apply --server-side -f "$crds" >/dev/null
  image=$TRAEFIK_IMAGE
  if offline; then
    image=$(scripts/cluster-images.sh traefik)
    kind load docker-image "$image" --name "$KIND_CLUSTER" >/dev/null
  fi
  sed "s#TRAEFIK_IMAGE#$image#" k8s/kind/addons/gateway-traefik.yaml |
    kubectl --context "$CONTEXT" apply -f - >/dev/null
  kubectl --context "$CONTEXT" -n traefik rollout status deploy/traefik --timeout 180s
  kubectl --context "$CONTEXT" wait --for=condition=Accepted gatewayclass/traefik --timeout 60s
}

# metrics-server (k8s/kind/addons/versions.env): what the chart's HPA scales on.
install_metrics_server() {
  local image dir
  # shellcheck source=../k8s/kind/addons/versions.env
  . k8s/kind/addons/versions.env
  dir="$(module_dir "sigs.k8s.io/metrics-server@$METRICS_SERVER_VERSION")/manifests/base"
  image=$METRICS_SERVER_IMAGE
  if offline; then
    image=$(scripts/cluster-images.sh metrics-server)
    kind load docker-image "$image" --name "$KIND_CLUSTER" >/dev/null
  fi
  kubectl --context "$CONTEXT" kustomize "$dir" 2>/dev/null |
    sed -e "s#image: gcr.io/k8s-staging-metrics-server/metrics-server:master#image: $image#" \
      -e 's#^\( *\)- --metric-resolution=15s#&\n\1- --kubelet-insecure-tls#' |
    kubectl --context "$CONTEXT" apply -f - >/dev/null
  kubectl --context "$CONTEXT" -n kube-system rollout status deploy/metrics-server --timeout 180s
}

# Loads the image as a single-platform archive: `kind load docker-image` saves every platform
# an image index names, which fails with Docker's containerd image store ("content digest ...
# not found") when only one platform is present (kind issue 3795).
load_image_archive() {
  local image=$1 platform
  archive=$(mktemp "${TMPDIR:-/tmp}/sessionfleet-image.XXXXXX")
  trap 'rm -f "$archive"' EXIT
  platform=$(docker image inspect --format '{{.Os}}/{{.Architecture}}' "$image")
  if docker image save --help 2>/dev/null | grep -q -- '--platform'; then
    docker image save --platform "$platform" --output "$archive" "$image"
  else
    docker image save --output "$archive" "$image" # Docker < 28: no --platform, no such index
  fi
  kind load image-archive "$archive" --name "$KIND_CLUSTER"
}

load_image() {
  docker image inspect "$1" >/dev/null 2>&1 || { echo "no image $1: $2" >&2; exit 1; }
  if ! kind load docker-image "$1" --name "$KIND_CLUSTER"; then
    echo "kind load docker-image failed (a known failure with Docker's containerd image" \
      "store); loading a single-platform image archive instead"
    load_image_archive "$1"
  fi
}

# Values `deploy` adds to k8s/kind/values-kind.yaml on an offline cluster: the Redis image
# built here (nothing can be pulled).
offline_values() {
  cat <<EOF
redis:
  image: {repository: ${OFFLINE_REDIS_IMAGE%:*}, tag: ${OFFLINE_REDIS_IMAGE##*:}, pullPolicy: Never}
EOF
}

main() {
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  case "${1:-}" in
    up)
      need docker kind kubectl
      check_kind_version
      if cluster_exists; then
        echo "kind cluster $KIND_CLUSTER exists (context $CONTEXT)"
      else
        local image_args=() node_image=${KIND_NODE_IMAGE:-}
        if [ -z "$node_image" ] && [ "${KIND_OFFLINE:-}" = 1 ]; then
          node_image=$(scripts/kind-node-image.sh)
        fi
        [ -z "$node_image" ] || image_args=(--image "$node_image")
        cluster_config | kind create cluster --name "$KIND_CLUSTER" --config - \
          ${image_args[@]+"${image_args[@]}"} --wait 240s
      fi
      install_gateway
      [ "${KIND_METRICS_SERVER:-1}" = 0 ] || install_metrics_server
      echo "Gateway controller ready; the app's Gateway will answer on http://127.0.0.1:$KIND_HTTP_PORT"
      ;;
    load)
      need docker kind
      load_image "$IMAGE" "run make image first"
      if offline; then
        load_image "$OFFLINE_REDIS_IMAGE" "run make base-images first"
      fi
      ;;
    deploy)
      need kubectl helm
      local values=(-f k8s/kind/values-kind.yaml)
      if offline; then
        overrides=$(mktemp "${TMPDIR:-/tmp}/sessionfleet-kind-values.XXXXXX")
        trap 'rm -f "$overrides"' EXIT # global: the trap runs after main has returned
        offline_values >"$overrides"
        values+=(-f "$overrides")
      fi
      # OTEL=1: traces to the collector of `make observability-up`.
      [ -z "${OTEL:-}" ] || values+=(-f k8s/observability/values-otel.yaml)
      helm upgrade --install "$RELEASE" helm/sessionfleet --kube-context "$CONTEXT" \
        --namespace "$NAMESPACE" --create-namespace "${values[@]}" \
        --set "image.repository=${IMAGE%:*}" --set "image.tag=${IMAGE##*:}" \
        --wait --timeout 10m
      helm test "$RELEASE" --kube-context "$CONTEXT" --namespace "$NAMESPACE" --logs
      kubectl --context "$CONTEXT" -n "$NAMESPACE" wait --for=condition=Programmed \
        gateway -l "app.kubernetes.io/instance=$RELEASE" --timeout 2m >/dev/null
      echo "gateway: http://127.0.0.1:$KIND_HTTP_PORT (Traefik, through the Gateway's HTTPRoute)"
      echo "then: make loadtest TARGET=http://127.0.0.1:$KIND_HTTP_PORT CHAOS=kubernetes KUBE_CONTEXT=$CONTEXT"
      ;;
    observability)
      # Pulls its images (Collector, Jaeger, Prometheus, Grafana): not on an offline cluster yet.
      need kubectl
      kubectl --context "$CONTEXT" create namespace observability --dry-run=client -o yaml |
        kubectl --context "$CONTEXT" apply -f -
      # Grafana's admin password: random, once; kept across re-runs.
      if ! kubectl --context "$CONTEXT" -n observability get secret grafana-admin >/dev/null 2>&1; then
        kubectl --context "$CONTEXT" -n observability create secret generic grafana-admin \
          --from-literal=password="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
      fi
      kubectl --context "$CONTEXT" apply -k k8s/observability
      local deployment
      for deployment in jaeger otel-collector prometheus grafana; do
        kubectl --context "$CONTEXT" -n observability rollout status "deploy/$deployment" --timeout 5m
      done
      echo "Jaeger UI:  kubectl --context $CONTEXT -n observability port-forward svc/jaeger 16686"
      echo "Grafana:    kubectl --context $CONTEXT -n observability port-forward svc/grafana 3000"
      echo "            (dashboard sessionfleet; admin password: kubectl -n observability get secret"
      echo "             grafana-admin -o jsonpath='{.data.password}' | base64 -d)"
      echo "Prometheus: kubectl --context $CONTEXT -n observability port-forward svc/prometheus 9090"
      ;;
    undeploy)
      need helm kubectl
      helm uninstall "$RELEASE" --kube-context "$CONTEXT" --namespace "$NAMESPACE" --wait || true
      # Secrets are kept on uninstall (resource-policy: keep); the namespace takes them along.
      kubectl --context "$CONTEXT" delete namespace "$NAMESPACE" --ignore-not-found --wait=false
      ;;
    e2e)
      # tests/e2e on this cluster, through its Gateway (Traefik), with the helm CLI on the
      # PATH (HELM_BIN=helm3: Helm 3's). Extra arguments go to pytest (e.g. -k, or plans).
      need docker kind kubectl helm
      shift
      local redis_image=${E2E_REDIS_IMAGE:-}
      if [ -z "$redis_image" ] && offline; then
        redis_image=$OFFLINE_REDIS_IMAGE
        load_image "$redis_image" "run make base-images first"
      fi
      KUBE_CONTEXT=$CONTEXT E2E_TARGET="http://127.0.0.1:$KIND_HTTP_PORT" \
        E2E_VALUES=${E2E_VALUES:-k8s/kind/values-kind.yaml} \
        E2E_REDIS_IMAGE=${redis_image:-redis:7.2.7-bookworm} \
        E2E_LOAD_IMAGE="docker tag {image} {target} && kind load docker-image {target} --name $KIND_CLUSTER" \
        E2E_REDIS_MODE=${E2E_REDIS_MODE:-sentinel} \
        "${PYTHON:-.venv/bin/python}" -m pytest tests/e2e -m e2e -v -s -p no:cacheprovider "$@"
      ;;
    down)
      need kind
      kind delete cluster --name "$KIND_CLUSTER"
      ;;
    *)
      echo "usage: $0 up|load|deploy|observability|undeploy|e2e|down" >&2
      exit 2
      ;;
  esac
}

# Sourcing this file (the unit tests do) defines the functions and runs nothing.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
