#!/usr/bin/env bash
# Builds build/wheelhouse: the project's wheel plus every dependency as a binary wheel for the
# image (CPython 3.11 on glibc Linux), downloaded here on the host so `docker build` never
# reaches a package registry.
# Env: PLATFORM   the image's platform, linux/amd64 or linux/arm64 (default: the Docker
#                 engine's architecture, else this machine's)
#      PYTHON     the host Python that runs pip (default: .venv/bin/python, else python3; any
#                 version with pip: the wheels are chosen for the image's Python, not this one)
#      IMAGE_PYTHON  the image's Python version (default 3.11.0: the lowest 3.11, so the
#                 wheelhouse is a superset for any 3.11 image)
# pip evaluates dependency markers (`python_full_version < "3.11.3"` for async-timeout) with the
# interpreter that runs it, even with --python-version: scripts/pip_for_image.py makes them see
# the image's Python on Linux instead. Runs on bash 3.2 (macOS): no bash 4 features here.
set -euo pipefail

# The manylinux tag's name for the image's architecture: x86_64 or aarch64, never the host's
# spelling (macOS on Apple silicon says arm64, Docker says amd64 or arm64).
image_arch() {
  local arch
  if [ -n "${PLATFORM:-}" ]; then
    case "$PLATFORM" in
      linux/*) arch=${PLATFORM#linux/}; arch=${arch%%/*} ;;
      *) echo "PLATFORM=$PLATFORM: the image is Linux (linux/amd64 or linux/arm64)" >&2; return 1 ;;
    esac
  else
    arch=$(docker info --format '{{.Architecture}}' 2>/dev/null || true)
    [ -n "$arch" ] || arch=$(uname -m)
  fi
  case "$arch" in
    x86_64 | amd64) echo x86_64 ;;
    aarch64 | arm64) echo aarch64 ;;
    *) echo "unsupported image architecture '$arch': set PLATFORM=linux/amd64 or linux/arm64" >&2; return 1 ;;
  esac
}

# cp311 for 3.11.x: the ABI tag of the image's CPython.
abi_tag() {
  local major_minor
  major_minor=$(echo "$1" | cut -d. -f1,2)
  echo "cp$(echo "$major_minor" | tr -d .)"
}

main() {
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  local python=${PYTHON:-} out=build/wheelhouse arch image_python abi wheel glibc
  if [ -z "$python" ]; then
    if [ -x .venv/bin/python ]; then python=.venv/bin/python; else python=python3; fi
  fi
  arch=$(image_arch)
  image_python=${IMAGE_PYTHON:-3.11.0}
  abi=$(abi_tag "$image_python")
  rm -rf "$out"
  mkdir -p "$out"

  "$python" -m pip wheel --quiet --no-deps --wheel-dir "$out" .
  wheel=$(find "$out" -name 'sessionfleet-*.whl' | head -n 1)
  [ -n "$wheel" ] || { echo "no sessionfleet wheel in $out" >&2; return 1; }
  local platforms=()
  for glibc in 2_36 2_35 2_34 2_31 2_28 2_24 2_17 2_12 2_5; do
    platforms+=(--platform "manylinux_${glibc}_${arch}")
  done
  # The project's own wheel as the requirement: pip resolves its dependencies from its metadata.
  "$python" scripts/pip_for_image.py "$image_python" "$arch" download --quiet --dest "$out" \
    --only-binary=:all: --implementation cp --python-version "$image_python" \
    --abi "$abi" --abi abi3 --abi none \
    "${platforms[@]}" --platform "manylinux2014_${arch}" --platform any \
    "$wheel"
  echo "wheelhouse: $(find "$out" -name '*.whl' | wc -l | tr -d ' ') wheels for linux/$arch, Python $image_python, in $out"
}

# Sourcing this file (the unit tests do) defines the functions and runs nothing.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
