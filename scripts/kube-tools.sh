#!/usr/bin/env bash
# Makes sure the kind path's tools are there: a user's own kind/helm/kubectl on the PATH are
# kept when recent enough; a missing (or too old) one is built with the ordinary `go` command
# from the Go module proxy at the pinned version below, once per machine (kept in
# $SESSIONFLEET_CACHE/tools by version), and copied into build/tools/bin, which the Makefile
# puts first on the PATH (so it is used only when it had to be installed).
#   scripts/kube-tools.sh [kind] [helm] [helm3] [kubectl]   (default: kind helm kubectl)
# helm3 is Helm 3 beside Helm 4, as build/tools/bin/helm3 (for the Helm 3 checks).
# Runs on bash 3.2 (macOS): no bash 4 features here.
set -euo pipefail
cd "$(dirname "$0")/.."

KIND_VERSION=v0.33.0 # its default node image: kindest/node v1.37.0 (k8s/kind/cluster.yaml)
HELM_VERSION=v4.3.2
HELM3_VERSION=v3.21.4
KIND_MIN=0.33.0 # the oldest kind the pinned node image is published for
HELM_MIN=3.14.0
TOOLS=$PWD/build/tools/bin
CACHE=${SESSIONFLEET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sessionfleet}/tools

# shellcheck source=kind.sh
. scripts/kind.sh # version_at_least

have() {
  # $1 tool, $2 minimum version, $3 command printing a line with the version (vX.Y.Z) in it.
  local version
  command -v "$1" >/dev/null 2>&1 || return 1
  version=$(sh -c "$3" 2>/dev/null | grep -o 'v[0-9][0-9.]*' | head -n 1 || true)
  version_at_least "${version:-v0}" "$2"
}

go_install() {
  # $1 package@version, $2 the name to install it as.
  command -v go >/dev/null 2>&1 || {
    echo "missing '$2' and no Go to build it with: install $2 (docs/kind.md) or Go" >&2
    exit 1
  }
  local dir cached="$CACHE/$2-${1##*@}"
  if [ ! -x "$cached" ]; then
    dir=$(mktemp -d)
    echo "building $2 ($1)" >&2
    GOBIN=$dir GOFLAGS=-buildvcs=false go install -trimpath -ldflags "-s -w" "$1"
    mkdir -p "$CACHE"
    mv "$dir/$(basename "${1%@*}")" "$cached.part"
    mv "$cached.part" "$cached"
    rm -rf "$dir"
  fi
  echo "installing $2 ${1##*@} into build/tools/bin" >&2
  mkdir -p "$TOOLS"
  cp "$cached" "$TOOLS/$2"
}

[ $# -gt 0 ] || set -- kind helm kubectl
for tool in "$@"; do
    case "$tool" in
      kind)
        have kind "$KIND_MIN" "kind version" ||
          go_install "sigs.k8s.io/kind@$KIND_VERSION" kind
        ;;
      helm)
        have helm "$HELM_MIN" "helm version --short" ||
          go_install "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" helm
        ;;
      helm3)
        [ -x "$TOOLS/helm3" ] || go_install "helm.sh/helm/v3/cmd/helm@$HELM3_VERSION" helm3
        ;;
      kubectl)
        if ! command -v kubectl >/dev/null 2>&1; then
          # The node image's Kubernetes build (shared cache): its module cannot be
          # `go install`ed (it replaces its staging modules with folders of its own).
          # shellcheck source=kube-build.sh
          . scripts/kube-build.sh
          mkdir -p "$TOOLS"
          cp "$(kube_build)/kubectl" "$TOOLS/kubectl"
        fi
        ;;
      *)
        echo "unknown tool: $tool (kind, helm, helm3, kubectl)" >&2
        exit 2
        ;;
    esac
done
