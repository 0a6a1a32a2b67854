#!/usr/bin/env bash
# Builds images.
#   scripts/images.sh app    the app image: wheelhouse built on the host, then docker build. Needs
#                            only Docker and a host Python with pip (macOS, Fedora, Debian...);
#                            BASE_IMAGE is pulled, or taken from the engine when present.
#   scripts/images.sh base   Debian bookworm base images from this machine's apt sources
#                            (mmdebstrap | docker import): python, redis, haproxy, dnsmasq. Only for
#                            machines that cannot pull (and the local container cluster): Debian.
# Env: IMAGE (sessionfleet:dev), BASE_IMAGE (python:3.11-slim-bookworm), PLATFORM (linux/amd64
#      or linux/arm64; default: the engine's), FORCE=1 rebuilds bases.
# Runs on bash 3.2 (macOS): no bash 4 features here.
set -euo pipefail
cd "$(dirname "$0")/.."

base_image() {
  local tag=$1 packages=$2
  if [ -z "${FORCE:-}" ] && docker image inspect "$tag" >/dev/null 2>&1; then
    echo "$tag: present"
    return
  fi
  command -v mmdebstrap >/dev/null 2>&1 || {
    echo "$tag: needs mmdebstrap (Debian). Where images can be pulled, use the official bases" \
      "instead: make image (BASE_IMAGE=python:3.11-slim-bookworm)" >&2
    return 1
  }
  echo "$tag: building from Debian packages ($packages)"
  # No mirror argument: mmdebstrap uses this machine's apt sources.
  mmdebstrap --quiet --variant=minbase --include="$packages" bookworm - | docker import - "$tag"
}

app_image() {
  local image=${IMAGE:-sessionfleet:dev} base=${BASE_IMAGE:-python:3.11-slim-bookworm}
  local build_args=(--build-arg "BASE_IMAGE=$base" --tag "$image")
  # Cross-building (PLATFORM differs from the engine's) needs the engine's emulation (binfmt).
  [ -z "${PLATFORM:-}" ] || build_args+=(--platform "$PLATFORM")
  scripts/build-wheelhouse.sh
  if docker buildx version >/dev/null 2>&1; then
    # BuildKit. --load: into the engine's image store whatever the builder's driver.
    # --provenance=false: a plain image, not an index with an attestation manifest (which
    # `kind load docker-image` fails to import).
    docker buildx build --quiet --load --provenance=false "${build_args[@]}" .
  else
    # The classic builder: it needs no buildx plugin, which Debian's docker.io lacks.
    DOCKER_BUILDKIT=0 docker build --quiet "${build_args[@]}" .
  fi
  echo "image: $image ($(docker image inspect --format '{{.Os}}/{{.Architecture}}' "$image"))"
}

case "${1:-}" in
  base)
    base_image sessionfleet/python-base:bookworm python3,python3-venv,ca-certificates
    base_image sessionfleet/redis:bookworm redis-server,redis-sentinel,redis-tools
    base_image sessionfleet/haproxy:bookworm haproxy
    base_image sessionfleet/dns:bookworm dnsmasq-base
    ;;
  app)
    app_image
    ;;
  *)
    echo "usage: $0 base|app" >&2
    exit 2
    ;;
esac
