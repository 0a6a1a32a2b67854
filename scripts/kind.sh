#!/usr/bin/env bash
# The kind path: up | load | deploy | observability | undeploy | down. Needs docker, kind, kubectl and helm on
# the PATH (see docs/kind.md). Verified here only by shellcheck and reading: kind cannot run
# on the machine this project is developed on.
set -euo pipefail
cd "$(dirname "$0")/.."

KIND_CLUSTER=${KIND_CLUSTER:-sessionfleet}
NAMESPACE=${NAMESPACE:-sessionfleet}
RELEASE=${RELEASE:-sf}
IMAGE=${IMAGE:-sessionfleet:dev}
# cloud-provider-kind: LoadBalancer Services and a Gateway API implementation for kind
# (GatewayClass "cloud-provider-kind"); runs as a container next to the cluster.
CPK_IMAGE=${CPK_IMAGE:-registry.k8s.io/cloud-provider-kind/cloud-controller-manager:v0.12.0}
CPK_CONTAINER=${KIND_CLUSTER}-cloud-provider-kind
CONTEXT=kind-${KIND_CLUSTER}

need() {
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || { echo "missing '$tool': see docs/kind.md" >&2; exit 1; }
  done
}

kind_subnet() {
  # IPv4 subnet of kind's docker network: where cloud-provider-kind's gateway proxies live.
  docker network inspect kind --format '{{range .IPAM.Config}}{{println .Subnet}}{{end}}' | grep -m1 -v ':'
}

case "${1:-}" in
  up)
    need docker kind kubectl
    kind get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER" ||
      kind create cluster --config k8s/kind/cluster.yaml --wait 120s
    if ! docker ps --format '{{.Names}}' | grep -qx "$CPK_CONTAINER"; then
      port_mapping=()
      # Docker Desktop (macOS, Windows) cannot route to container IPs: map LB ports to the host.
      [ "$(uname -s)" = "Linux" ] || port_mapping=(--enable-lb-port-mapping)
      docker run -d --name "$CPK_CONTAINER" --restart unless-stopped --network kind \
        -v /var/run/docker.sock:/var/run/docker.sock "$CPK_IMAGE" "${port_mapping[@]}"
    fi
    echo "waiting for the cloud-provider-kind GatewayClass"
    for _ in $(seq 1 60); do
      kubectl --context "$CONTEXT" get gatewayclass cloud-provider-kind >/dev/null 2>&1 && break
      sleep 2
    done
    kubectl --context "$CONTEXT" get gatewayclass cloud-provider-kind
    ;;
  load)
    need kind
    kind load docker-image "$IMAGE" --name "$KIND_CLUSTER"
    ;;
  deploy)
    need docker kubectl helm
    kubectl --context "$CONTEXT" create namespace "$NAMESPACE" --dry-run=client -o yaml |
      kubectl --context "$CONTEXT" apply -f -
    values=(-f k8s/kind/values-kind.yaml)
    # OTEL=1: traces to the collector of `make observability-up`.
    [ -z "${OTEL:-}" ] || values+=(-f k8s/observability/values-otel.yaml)
    # The gateway proxies run outside the cluster, on kind's docker network: let them in.
    helm upgrade --install "$RELEASE" helm/sessionfleet --kube-context "$CONTEXT" \
      --namespace "$NAMESPACE" "${values[@]}" \
      --set "image.repository=${IMAGE%:*}" --set "image.tag=${IMAGE##*:}" \
      --set "networkPolicy.appIngressFrom[0].ipBlock.cidr=$(kind_subnet)" \
      --wait --timeout 10m
    helm test "$RELEASE" --kube-context "$CONTEXT" --namespace "$NAMESPACE" --logs
    address=$(kubectl --context "$CONTEXT" -n "$NAMESPACE" get gateway "$RELEASE-sessionfleet" \
      -o jsonpath='{.status.addresses[0].value}' 2>/dev/null || true)
    echo "gateway address: ${address:-pending} (make loadtest TARGET=http://${address:-<address>} CHAOS=kubernetes)"
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
    docker rm -f "$CPK_CONTAINER" >/dev/null 2>&1 || true
    kind delete cluster --name "$KIND_CLUSTER"
    ;;
  *)
    echo "usage: $0 up|load|deploy|observability|undeploy|down" >&2
    exit 2
    ;;
esac
