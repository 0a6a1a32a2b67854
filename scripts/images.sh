#!/usr/bin/env bash
# Builds images without pulling from any registry.
#   scripts/images.sh base   Debian bookworm base images from this machine's apt sources
#                            (mmdebstrap | docker import): python, redis, haproxy, dnsmasq
#   scripts/images.sh app    the app image (wheelhouse built on the host, then docker build)
# Env: IMAGE (sessionfleet:dev), BASE_IMAGE (python:3.11-slim-bookworm), FORCE=1 rebuilds bases.
set -euo pipefail
cd "$(dirname "$0")/.."

base_image() {
  local tag=$1 packages=$2
  if [ -z "${FORCE:-}" ] && docker image inspect "$tag" >/dev/null 2>&1; then
    echo "$tag: present"
    return
  fi
  echo "$tag: building from Debian packages ($packages)"
  # No mirror argument: mmdebstrap uses this machine's apt sources.
  mmdebstrap --quiet --variant=minbase --include="$packages" bookworm - | docker import - "$tag"
}

case "${1:-}" in
  base)
    base_image sessionfleet/python-base:bookworm python3,python3-venv,ca-certificates
    base_image sessionfleet/redis:bookworm redis-server,redis-sentinel,redis-tools
    base_image sessionfleet/haproxy:bookworm haproxy
    base_image sessionfleet/dns:bookworm dnsmasq-base
    ;;
  app)
    scripts/build-wheelhouse.sh
    # The classic builder: it needs no buildx plugin, which Debian's docker.io lacks.
    DOCKER_BUILDKIT=0 docker build --quiet \
      --build-arg "BASE_IMAGE=${BASE_IMAGE:-python:3.11-slim-bookworm}" \
      --tag "${IMAGE:-sessionfleet:dev}" .
    ;;
  *)
    echo "usage: $0 base|app" >&2
    exit 2
    ;;
esac
