#!/usr/bin/env bash
# Builds the kind cluster's add-on images from the Go module proxy (KIND_OFFLINE=1: nothing
# can be pulled), at the versions of k8s/kind/addons/versions.env, as static binaries alone
# (the official images are distroless too). Prints each image's name; skips those present.
#   scripts/cluster-images.sh traefik metrics-server ...
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=../k8s/kind/addons/versions.env
. k8s/kind/addons/versions.env
# shellcheck source=image-lib.sh
. scripts/image-lib.sh
LOCAL=localhost/sessionfleet-kind

for name in "$@"; do
  case "$name" in
    traefik)
      image=$LOCAL/traefik:$TRAEFIK_VERSION
      if ! docker image inspect "$image" >/dev/null 2>&1; then
        built=$(GO_LDFLAGS="-X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION" \
          scripts/go-build.sh "github.com/traefik/traefik/v3@$TRAEFIK_VERSION" cmd/traefik)
        scratch_image "$image" '["/usr/local/bin/traefik"]' "$built/traefik"
      fi
      ;;
    metrics-server)
      image=$LOCAL/metrics-server:$METRICS_SERVER_VERSION
      if ! docker image inspect "$image" >/dev/null 2>&1; then
        built=$(scripts/go-build.sh "sigs.k8s.io/metrics-server@$METRICS_SERVER_VERSION" cmd/metrics-server)
        scratch_image "$image" '["/usr/local/bin/metrics-server"]' "$built/metrics-server"
      fi
      ;;
    *)
      echo "unknown add-on image: $name" >&2
      exit 2
      ;;
  esac
  echo "$image"
done
