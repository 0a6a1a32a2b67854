#!/usr/bin/env bash
# The kind path: up | load | deploy | observability | undeploy | down. Needs docker, kind >= 0.30,
# kubectl and helm on the PATH (see docs/kind.md). Runs on bash 3.2 (macOS): no bash 4 features.
# Verified on the machine this project is developed on only by shellcheck, reading, and the unit
# tests of its helper functions (tests/unit/test_kind_script.py): kind cannot run there.
# Settings (env):
#   KIND_CLUSTER      cluster name (sessionfleet); kubectl context kind-$KIND_CLUSTER
#   NAMESPACE, RELEASE, IMAGE, OTEL=1   where and what `deploy` installs
#   CPK_IMAGE         cloud-provider-kind's image
#   CPK_CONTAINER     the name of the cloud-provider-kind container `up` starts
#   CPK_PORT_MAPPING  auto (default: on unless Linux with a native engine) | 1 | 0
#   CPK_STOP_TIMEOUT  seconds `down` gives cloud-provider-kind to remove its proxies (30)
set -euo pipefail

KIND_CLUSTER=${KIND_CLUSTER:-sessionfleet}
NAMESPACE=${NAMESPACE:-sessionfleet}
RELEASE=${RELEASE:-sf}
IMAGE=${IMAGE:-sessionfleet:dev}
KIND_MIN_VERSION=0.30.0
POD_SUBNET=10.244.0.0/16 # networking.podSubnet of k8s/kind/cluster.yaml
# cloud-provider-kind: LoadBalancer Services and a Gateway API implementation for kind
# (GatewayClass "cloud-provider-kind"). One instance serves every kind cluster of the host.
CPK_IMAGE=${CPK_IMAGE:-registry.k8s.io/cloud-provider-kind/cloud-controller-manager:v0.11.1}
CPK_CONTAINER=${CPK_CONTAINER:-sessionfleet-cloud-provider-kind}
CPK_STOP_TIMEOUT=${CPK_STOP_TIMEOUT:-30}
# Labels cloud-provider-kind puts on the Envoy containers it starts (its pkg/constants).
CPK_CLUSTER_LABEL=io.x-k8s.cloud-provider-kind.cluster
CPK_GATEWAY_LABEL=io.x-k8s.cloud-provider-kind.gateway.name
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
  # `kind version` prints "kind v0.30.0 go1.24.6 linux/amd64".
  version=$(kind version 2>/dev/null | awk '{print $2}')
  if ! version_at_least "${version:-0}" "$KIND_MIN_VERSION"; then
    echo "kind ${version:-(unknown version)} is too old: the pinned node image kindest/node:v1.34.0" \
      "needs kind >= $KIND_MIN_VERSION (docs/kind.md)" >&2
    exit 1
  fi
}

cluster_exists() { kind get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER"; }

kind_subnet() {
  # IPv4 subnet of kind's docker network: where cloud-provider-kind's gateway proxies live.
  docker network inspect kind --format '{{range .IPAM.Config}}{{println .Subnet}}{{end}}' | grep -m1 -v ':'
}

# Running cloud-provider-kind containers (its image, or its binary as the command), one name a
# line. Its Envoy proxies run another image and are not listed.
cpk_containers() {
  docker ps --no-trunc --format '{{.Names}}\t{{.Image}}\t{{.Command}}' |
    awk 'BEGIN { FS = "\t" }
      $2 ~ /cloud-provider-kind/ || $3 ~ /^"?([^ "]*\/)?cloud-provider-kind( |"|$)/ { print $1 }'
}

# PIDs of cloud-provider-kind processes on this host (a binary run by hand, `go run`, ...).
# pgrep -f: Linux truncates process names to 15 characters, so -x could never match.
cpk_processes() {
  command -v pgrep >/dev/null 2>&1 || return 0
  pgrep -f '(^|/)cloud-provider-kind( |$)' || true
}

container_running() {
  [ "$(docker inspect --format '{{.State.Running}}' "$1" 2>/dev/null || true)" = "true" ]
}

# Docker Desktop (macOS, Windows, and on Linux too) runs the engine in a VM: container IPs are
# not routable from the host, so LoadBalancer and Gateway ports must be mapped to the host.
wants_port_mapping() {
  case "${CPK_PORT_MAPPING:-auto}" in
    1 | true | yes) return 0 ;;
    0 | false | no) return 1 ;;
  esac
  [ "$(uname -s)" = "Linux" ] || return 0
  case "$(docker info --format '{{.OperatingSystem}}' 2>/dev/null || true)" in
    *"Docker Desktop"*) return 0 ;;
  esac
  return 1
}

# Makes sure one cloud-provider-kind serves this host: ours, or one that already runs (a
# container or a process from another setup). A second instance would fight the first over the
# same proxy containers, so an existing one is reused, never doubled.
ensure_cloud_provider() {
  local others pids
  if container_running "$CPK_CONTAINER"; then
    echo "cloud-provider-kind: container $CPK_CONTAINER already runs"
    return
  fi
  others=$(cpk_containers | grep -vx "$CPK_CONTAINER" || true)
  # On Linux a container's process shows up in pgrep too: look for processes only without one.
  pids=""
  [ -n "$others" ] || pids=$(cpk_processes)
  if [ -n "$others" ] || [ -n "$pids" ]; then
    echo "cloud-provider-kind already serves this host ($(describe_instances "$others" "$pids"));" \
      "using it instead of starting a second one. \`make kind-down\` leaves it running."
    if wants_port_mapping; then
      echo "  note: from this host the Gateway is reachable only if that instance maps ports" \
        "(--enable-lb-port-mapping, or a host binary on macOS); \`make deploy\` tells." >&2
    fi
    return
  fi
  # A stopped leftover of ours (e.g. after a failed start): replace it, flags may have changed.
  docker rm "$CPK_CONTAINER" >/dev/null 2>&1 || true
  local args=()
  wants_port_mapping && args+=(--enable-lb-port-mapping)
  echo "starting cloud-provider-kind: container $CPK_CONTAINER ($CPK_IMAGE${args[*]+ ${args[*]}})"
  docker run -d --name "$CPK_CONTAINER" --restart unless-stopped --network kind \
    -v /var/run/docker.sock:/var/run/docker.sock "$CPK_IMAGE" ${args[@]+"${args[@]}"} >/dev/null
}

describe_instances() {
  local containers=$1 pids=$2 text=""
  [ -z "$containers" ] || text="container $(echo "$containers" | paste -sd, -)"
  if [ -n "$pids" ]; then
    [ -z "$text" ] || text="$text; "
    text="${text}process $(echo "$pids" | paste -sd, -)"
  fi
  echo "$text"
}

wait_for_gateway_class() {
  echo "waiting for the cloud-provider-kind GatewayClass"
  local _
  for _ in $(seq 1 60); do
    kubectl --context "$CONTEXT" get gatewayclass cloud-provider-kind >/dev/null 2>&1 && {
      kubectl --context "$CONTEXT" get gatewayclass cloud-provider-kind
      return
    }
    sleep 2
  done
  echo "no GatewayClass 'cloud-provider-kind' after 2 minutes. If another cloud-provider-kind" \
    "serves this host, it may run with --gateway-channel disabled: stop it, then run" \
    "make kind-up again (logs: docker logs $CPK_CONTAINER)" >&2
  exit 1
}

# The host address of a port published by a container, from `docker port` output on stdin
# ("0.0.0.0:55001", "[::]:55001", "127.0.0.1:55001"): the first IPv4 binding, as host:port.
host_address() {
  awk '
    /^\[/ { next }
    { n = split($0, part, ":"); host = part[1]; port = part[n]
      if (host == "" || host == "0.0.0.0") host = "127.0.0.1"
      print host ":" port; exit }'
}

# The localhost address of the Gateway's listener when cloud-provider-kind mapped it to the host
# (port mapping, or a tunnel on macOS); nothing otherwise.
gateway_host_address() {
  local gateway=$1 port=$2 proxy
  proxy=$(docker ps --filter "label=$CPK_GATEWAY_LABEL=$KIND_CLUSTER/$NAMESPACE/$gateway" \
    --format '{{.Names}}' | head -n 1)
  [ -n "$proxy" ] || return 0
  { docker port "$proxy" "$port/tcp" 2>/dev/null || true; } | host_address
}

# Values `deploy` adds to k8s/kind/values-kind.yaml: the gateway proxies run outside the
# cluster, on kind's docker network ($1): let them in, and trust their X-Forwarded-For.
kind_values() {
  local subnet=$1
  cat <<EOF
networkPolicy:
  appIngressFrom:
    - ipBlock: {cidr: "$subnet"}
app:
  trustedProxies: "$subnet,$POD_SUBNET"
EOF
}

# Loads the image as a single-platform archive: `kind load docker-image` saves every platform
# an image index names, which fails with Docker's containerd image store ("content digest ...
# not found") when only one platform is present (kind issue 3795).
load_image_archive() {
  local platform
  archive=$(mktemp "${TMPDIR:-/tmp}/sessionfleet-image.XXXXXX")
  trap 'rm -f "$archive"' EXIT
  platform=$(docker image inspect --format '{{.Os}}/{{.Architecture}}' "$IMAGE")
  if docker image save --help 2>/dev/null | grep -q -- '--platform'; then
    docker image save --platform "$platform" --output "$archive" "$IMAGE"
  else
    docker image save --output "$archive" "$IMAGE" # Docker < 28: no --platform, no such index
  fi
  kind load image-archive "$archive" --name "$KIND_CLUSTER"
}

# Stops our cloud-provider-kind with SIGTERM so that it removes the proxy containers it made
# (SIGKILL, as `docker rm -f` sends, leaves them running), unless it still serves other clusters.
stop_cloud_provider() {
  local name others
  others=$(kind get clusters 2>/dev/null | grep -vx "$KIND_CLUSTER" || true)
  # The second name is what earlier versions of this script called the container.
  for name in "$CPK_CONTAINER" "${KIND_CLUSTER}-cloud-provider-kind"; do
    docker inspect "$name" >/dev/null 2>&1 || continue
    if [ -n "$others" ] && container_running "$name"; then
      echo "cloud-provider-kind ($name) keeps running: it also serves kind cluster(s)" \
        "$(echo "$others" | paste -sd, -)"
      continue
    fi
    echo "stopping cloud-provider-kind ($name; up to ${CPK_STOP_TIMEOUT}s to remove its proxies)"
    docker stop --time "$CPK_STOP_TIMEOUT" "$name" >/dev/null || true
    docker rm "$name" >/dev/null || true
  done
}

# Proxy containers cloud-provider-kind left for this cluster (it was killed, or another
# instance has not noticed the deletion yet). They are stateless Envoys: removed at once.
remove_leftover_proxies() {
  local leftovers
  leftovers=$(docker ps -aq --filter "label=$CPK_CLUSTER_LABEL=$KIND_CLUSTER")
  [ -z "$leftovers" ] && return 0
  echo "removing cloud-provider-kind proxies left for $KIND_CLUSTER"
  # shellcheck disable=SC2086 # one container ID per word
  docker rm -f $leftovers >/dev/null
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
        kind create cluster --name "$KIND_CLUSTER" --config k8s/kind/cluster.yaml --wait 120s
      fi
      ensure_cloud_provider
      wait_for_gateway_class
      ;;
    load)
      need docker kind
      docker image inspect "$IMAGE" >/dev/null 2>&1 || {
        echo "no image $IMAGE: run make image first" >&2
        exit 1
      }
      if ! kind load docker-image "$IMAGE" --name "$KIND_CLUSTER"; then
        echo "kind load docker-image failed (a known failure with Docker's containerd image" \
          "store); loading a single-platform image archive instead"
        load_image_archive
      fi
      ;;
    deploy)
      need docker kubectl helm
      kubectl --context "$CONTEXT" create namespace "$NAMESPACE" --dry-run=client -o yaml |
        kubectl --context "$CONTEXT" apply -f -
      local subnet values gateway port address local_address
      subnet=$(kind_subnet || true)
      [ -n "$subnet" ] || { echo "no IPv4 docker network 'kind': run make kind-up first" >&2; exit 1; }
      # Global, not local: the EXIT trap runs after main has returned.
      overrides=$(mktemp "${TMPDIR:-/tmp}/sessionfleet-kind-values.XXXXXX")
      trap 'rm -f "$overrides"' EXIT
      kind_values "$subnet" >"$overrides"
      values=(-f k8s/kind/values-kind.yaml -f "$overrides")
      # OTEL=1: traces to the collector of `make observability-up`.
      [ -z "${OTEL:-}" ] || values+=(-f k8s/observability/values-otel.yaml)
      helm upgrade --install "$RELEASE" helm/sessionfleet --kube-context "$CONTEXT" \
        --namespace "$NAMESPACE" "${values[@]}" \
        --set "image.repository=${IMAGE%:*}" --set "image.tag=${IMAGE##*:}" \
        --wait --timeout 10m
      helm test "$RELEASE" --kube-context "$CONTEXT" --namespace "$NAMESPACE" --logs
      gateway=$(kubectl --context "$CONTEXT" -n "$NAMESPACE" get gateway \
        -l "app.kubernetes.io/instance=$RELEASE,app.kubernetes.io/component=gateway" \
        -o jsonpath='{.items[0].metadata.name}')
      kubectl --context "$CONTEXT" -n "$NAMESPACE" wait --for=condition=Programmed \
        "gateway/$gateway" --timeout 2m >/dev/null || true
      port=$(kubectl --context "$CONTEXT" -n "$NAMESPACE" get gateway "$gateway" \
        -o jsonpath='{.spec.listeners[0].port}')
      address=$(kubectl --context "$CONTEXT" -n "$NAMESPACE" get gateway "$gateway" \
        -o jsonpath='{.status.addresses[0].value}' 2>/dev/null || true)
      [ -z "$address" ] || [ "$port" = 80 ] || address="$address:$port"
      local_address=$(gateway_host_address "$gateway" "$port")
      echo "gateway address: http://${address:-<pending>} (on kind's docker network)"
      if [ -n "$local_address" ]; then
        echo "gateway from this host: http://$local_address (port mapped by cloud-provider-kind)"
        address=$local_address
      fi
      echo "then: make loadtest TARGET=http://${address:-<address>} CHAOS=kubernetes KUBE_CONTEXT=$CONTEXT"
      ;;
    observability)
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
    down)
      need docker kind
      stop_cloud_provider
      kind delete cluster --name "$KIND_CLUSTER"
      remove_leftover_proxies
      ;;
    *)
      echo "usage: $0 up|load|deploy|observability|undeploy|down" >&2
      exit 2
      ;;
  esac
}

# Sourcing this file (the unit tests do) defines the functions and runs nothing.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
