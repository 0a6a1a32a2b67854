#!/usr/bin/env bash
# Makes sure a Docker engine answers (`docker info`).
#   scripts/ensure-docker.sh                  the engine only (what `make image` needs): when it
#                                             answers, nothing is installed or started, on any
#                                             OS. Otherwise, on Linux, installs Debian's docker.io
#                                             when no docker is installed and apt-get is there,
#                                             and starts dockerd.
#   scripts/ensure-docker.sh --local-cluster  also mmdebstrap and docker-compose (Debian: the
#                                             no-registry base images and the container cluster)
# Runs on bash 3.2 (macOS): no bash 4 features here.
set -euo pipefail
cd "$(dirname "$0")/.."

debian() { command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1; }

case "${1:-}" in
  "") ;;
  --local-cluster)
    if debian; then
      scripts/install-system-deps.sh docker
    else
      for tool in mmdebstrap docker-compose; do
        command -v "$tool" >/dev/null 2>&1 || {
          echo "missing '$tool': the local container cluster builds its images from Debian" \
            "packages and is made for a Debian machine (docs/kind.md covers other machines)" >&2
          exit 1
        }
      done
    fi
    ;;
  *)
    echo "usage: $0 [--local-cluster]" >&2
    exit 2
    ;;
esac

docker info >/dev/null 2>&1 && exit 0

if [ "$(uname -s)" != "Linux" ]; then
  echo "the Docker engine does not answer (docker info): start Docker Desktop (or colima," \
    "OrbStack, ...) and try again" >&2
  exit 1
fi
if ! command -v dockerd >/dev/null 2>&1; then
  if debian; then
    scripts/install-system-deps.sh docker-engine
  else
    echo "no Docker engine: install Docker Engine (or Docker Desktop) and start it" >&2
    exit 1
  fi
fi
if command -v systemctl >/dev/null 2>&1 && systemctl start docker 2>/dev/null; then
  :
else
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "starting dockerd (log: /tmp/sessionfleet-dockerd.log)"
  $sudo sh -c 'nohup dockerd >/tmp/sessionfleet-dockerd.log 2>&1 &'
fi
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 0.5
done
echo "dockerd did not come up; see /tmp/sessionfleet-dockerd.log" >&2
exit 1
