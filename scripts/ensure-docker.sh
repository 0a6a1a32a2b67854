#!/usr/bin/env bash
# Makes sure a Docker engine answers: installs Debian's docker.io, mmdebstrap and
# docker-compose when missing, and starts dockerd in the background when none runs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-system-deps.sh docker
docker info >/dev/null 2>&1 && exit 0
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
