#!/usr/bin/env bash
# Builds Go programs from a module at a pinned version, with the ordinary `go` command and the
# Go module proxy (checksums verified by Go's checksum database), into a cache keyed by
# module, version and flags. Prints the directory that holds the binaries.
#   scripts/go-build.sh <module>@<version> <package>... [-- <go build flags>...]
# A package is a path inside the module (`cmd/kubelet`, `.` for the module root).
# Env: SESSIONFLEET_CACHE (~/.cache/sessionfleet), CGO_ENABLED (0), GO_TAGS, GO_LDFLAGS,
#      STAGING_VERSION: the version of the modules that the module's go.mod replaces with
#      folders of its own (k8s.io/kubernetes: its staging modules, served as v0.x.y; default:
#      the module's own version, as etcd and prometheus-operator publish theirs).
# Modules whose go.mod replaces nothing are built with `go install <package>@<version>`.
# `go install` refuses a go.mod with replace directives, so the others are built in a copy
# of the module (the replace directives apply there, as in the project's own builds). Those
# that replace modules with folders inside their repository (which a module download does
# not contain) have their go.mod take those modules from the proxy at STAGING_VERSION: the
# same sources, published separately.
set -euo pipefail

[ $# -ge 2 ] || { echo "usage: $0 <module>@<version> <package>... [-- <go build flags>]" >&2; exit 2; }
spec=$1
shift
module=${spec%@*}
version=${spec#*@}
packages=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  packages+=("$1")
  shift
done
[ "${1:-}" != "--" ] || shift
extra=("$@")

cache=${SESSIONFLEET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sessionfleet}
cgo=${CGO_ENABLED:-0}
key=$(printf '%s\n' "$spec" "${packages[@]}" "${extra[@]+"${extra[@]}"}" "$cgo" "${GO_TAGS:-}" \
  "${GO_LDFLAGS:-}" "${STAGING_VERSION:-}" "$(go env GOVERSION GOARCH)" | sha256sum | cut -c1-12)
out="$cache/go-bin/${module//\//_}@$version-$key"
if [ -f "$out/.complete" ]; then
  echo "$out"
  exit 0
fi
rm -rf "$out"
mkdir -p "$out"

flags=(-trimpath)
[ -z "${GO_TAGS:-}" ] || flags+=(-tags "$GO_TAGS")
flags+=(-ldflags "-s -w ${GO_LDFLAGS:-}")
flags+=(${extra[@]+"${extra[@]}"})

source_dir=$(go mod download -json "$spec" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
[ -n "$source_dir" ] || { echo "go mod download $spec: no source directory" >&2; exit 1; }
# Replaced modules whose replacement is a folder (./x or ../x), one module path a line.
local_replaces=$(sed -n 's#^[[:space:]]*\(replace[[:space:]]\{1,\}\)\{0,1\}\([^[:space:]]\{1,\}\)\( v[^[:space:]]*\)\{0,1\}[[:space:]]*=>[[:space:]]*\.\{1,2\}/.*#\2#p' \
  "$source_dir/go.mod")

started=$(date +%s)
if ! grep -qE '=>' "$source_dir/go.mod"; then
  for package in "${packages[@]}"; do
    path=$module
    [ "$package" = "." ] || path="$module/$package"
    echo "go install $path@$version" >&2
    GOBIN="$out" CGO_ENABLED=$cgo GOFLAGS=-buildvcs=false go install "${flags[@]}" "$path@$version"
  done
else
  staging=${STAGING_VERSION:-$version}
  work="$cache/go-src/${module//\//_}@$version"
  rm -rf "$work"
  mkdir -p "$(dirname "$work")"
  cp -r "$source_dir" "$work"
  chmod -R u+w "$work"
  # The module download has no vendor tree worth keeping nor the workspace's folders.
  rm -rf "$work/vendor" "$work/go.work" "$work/go.work.sum"
  edits=()
  while read -r replaced; do
    [ -n "$replaced" ] || continue
    edits+=("-dropreplace=$replaced")
    # Some are examples never imported and never published (k8s.io/sample-controller).
    if GOFLAGS=-mod=mod go mod download "$replaced@$staging" >/dev/null 2>&1; then
      edits+=("-require=$replaced@$staging")
    else
      edits+=("-droprequire=$replaced")
    fi
  done <<<"$local_replaces"
  [ ${#edits[@]} -eq 0 ] || (cd "$work" && go mod edit "${edits[@]}")
  targets=()
  for package in "${packages[@]}"; do targets+=("./$package"); done
  echo "go build ${targets[*]} in a copy of $spec (replaced modules at $staging)" >&2
  (cd "$work" && CGO_ENABLED=$cgo GOFLAGS="-mod=mod -buildvcs=false" \
    go build "${flags[@]}" -o "$out/" "${targets[@]}")
  rm -rf "$work"
fi
echo "built $spec (${packages[*]}) in $(($(date +%s) - started)) s" >&2
touch "$out/.complete"
echo "$out"
