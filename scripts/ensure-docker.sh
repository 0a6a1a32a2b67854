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

# True when root's capability bounding set lacks a capability the kernel knows (Linux only).
bounding_set_is_short() {
  local last bounding
  last=$(cat /proc/sys/kernel/cap_last_cap 2>/dev/null) || return 1
  bounding=$(awk '/^CapBnd:/ { print $2 }' /proc/self/status)
  [ "$(printf '%d' "0x$bounding")" -ne $(((1 << (last + 1)) - 1)) ]
}

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
  flags=""
  if bounding_set_is_short; then
    # Docker < 23 gives --privileged containers (kind's nodes) capabilities root lacks here.
    $sudo install -D -m 0755 scripts/runc-within-bounds /usr/local/libexec/sessionfleet/runc-within-bounds
    flags="--add-runtime within-bounds=/usr/local/libexec/sessionfleet/runc-within-bounds"
    flags="$flags --default-runtime within-bounds"
    echo "root lacks capabilities the kernel has: containers run through scripts/runc-within-bounds"
  fi
  echo "starting dockerd (log: /tmp/sessionfleet-dockerd.log)"
  $sudo sh -c "nohup dockerd $flags >/tmp/sessionfleet-dockerd.log 2>&1 &"
fi
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 0.5
done
echo "dockerd did not come up; see /tmp/sessionfleet-dockerd.log" >&2
exit 1
