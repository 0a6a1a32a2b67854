#!/usr/bin/env bash
# Installs the Debian packages the project runs (only those missing). Needs root or sudo.
# Usage: scripts/install-system-deps.sh [package-group...]
#   groups: test (default), bench, docker (engine + local-cluster tools), docker-engine, kind
# Debian only (apt-get, bash 4): never on the path of `make image` where Docker already answers.
set -euo pipefail

declare -A binary_of=(
  [redis-server]=redis-server
  [redis-sentinel]=redis-sentinel
  [redis-tools]=redis-cli
  [haproxy]=haproxy
  [shellcheck]=shellcheck
  [yamllint]=yamllint
  [prometheus]=promtool
  [wrk]=wrk
  [docker.io]=dockerd
  [mmdebstrap]=mmdebstrap
  [docker-compose]=docker-compose
  [gcc]=gcc
  [libseccomp-dev]=/usr/include/seccomp.h
  [jq]=jq
)
groups=("${@:-test}")
wanted=()
for group in "${groups[@]}"; do
  case "$group" in
    # prometheus: only for promtool, which checks and unit-tests the chart's alert rules.
    # redis-tools: redis-cli, which makes the test Redis Clusters (redis-cli --cluster create).
    test) wanted+=(redis-server redis-sentinel redis-tools haproxy shellcheck yamllint prometheus) ;;
    bench) wanted+=(wrk) ;;
    docker) wanted+=(docker.io mmdebstrap docker-compose) ;;
    docker-engine) wanted+=(docker.io) ;;
    # The offline kind node image: runc is built with cgo against libseccomp; the pause
    # binary is compiled from C; scripts/runc-within-bounds edits OCI specs with jq.
    kind) wanted+=(docker.io mmdebstrap gcc libseccomp-dev jq) ;;
    *) echo "unknown group: $group" >&2; exit 2 ;;
  esac
done

missing=()
for package in "${wanted[@]}"; do
  probe=${binary_of[$package]}
  if [ "${probe#/}" != "$probe" ]; then
    [ -e "$probe" ] || missing+=("$package") # a file the package installs
  else
    command -v "$probe" >/dev/null 2>&1 || missing+=("$package")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts packaged daemons on install; the project runs its own instances.
for service in redis-server redis-sentinel haproxy prometheus; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$service" 2>/dev/null; then
    $sudo systemctl disable --now "$service" >/dev/null 2>&1 || true
  fi
done
