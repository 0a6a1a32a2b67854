#!/usr/bin/env bash
# Sourced: images made without pulling anything, for the kind nodes' containerd and the
# cluster's add-ons (scripts/kind-node-image.sh, scripts/cluster-images.sh).

# A static binary alone, as the official images ship it (distroless): $1 tag, $2 entrypoint
# (JSON), then the binaries (path, or path=name), put in /usr/local/bin.
scratch_image() {
  local tag=$1 entrypoint=$2 root binary
  shift 2
  root=$(mktemp -d)
  mkdir -p "$root/usr/local/bin" "$root/etc" "$root/tmp" "$root/var/run"
  chmod 1777 "$root/tmp"
  for binary in "$@"; do
    install -m 0755 "${binary%=*}" "$root/usr/local/bin/$(basename "${binary#*=}")"
  done
  echo 'nonroot:x:65532:65532::/home/nonroot:/sbin/nologin' >"$root/etc/passwd"
  tar -C "$root" -c . | docker import --change "ENTRYPOINT $entrypoint" \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' - "$tag" >/dev/null
  rm -rf "$root"
}

# A Debian minbase with packages, then the binaries in /usr/local/bin: $1 tag, $2 packages
# (comma-separated), $3 entrypoint (JSON), then the binaries.
debian_image() {
  local tag=$1 packages=$2 entrypoint=$3 hooks=() file
  shift 3
  for file in "$@"; do hooks+=(--customize-hook="copy-in $file /usr/local/bin"); done
  # shellcheck disable=SC2016 # $1 is mmdebstrap's: the root it builds
  mmdebstrap --quiet --variant=minbase --include="$packages" ${hooks[@]+"${hooks[@]}"} \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/usr/share/doc "$1"/usr/share/man' \
    bookworm - | docker import --change "ENTRYPOINT $entrypoint" - "$tag" >/dev/null
}
