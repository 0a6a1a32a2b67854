#!/usr/bin/env bash
# Builds a kind node image offline: the route for machines (and air-gapped sites) that cannot
# pull kindest/node. Everything comes from the Go module proxy (Kubernetes, containerd, runc,
# crictl, CNI plugins, etcd, CoreDNS, kube-router, local-path-provisioner, kind's own node
# files) and Debian's packages (the node's userspace, systemd); the pause binary is compiled
# from the C source in the Kubernetes module. Versions: k8s/kind/node-image/versions.env.
#   scripts/kind-node-image.sh         prints the image's name once it exists (built if missing)
# Env: NODE_IMAGE (sessionfleet/kind-node:<Kubernetes version>), SESSIONFLEET_CACHE, FORCE=1.
# Cached: Go builds by version (scripts/go-build.sh); the image by a digest of its inputs
# (versions, this script, the manifests), kept as the label io.sessionfleet.inputs.
# Needs Linux with Docker, mmdebstrap, Go, gcc and libseccomp-dev (Debian: make kind-node-image
# installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=kube-build.sh
. scripts/kube-build.sh # versions.env, kube_build
# shellcheck source=image-lib.sh
. scripts/image-lib.sh # scratch_image, debian_image
NODE_IMAGE=${NODE_IMAGE:-sessionfleet/kind-node:$KUBERNETES_VERSION}
LOCAL=localhost/sessionfleet-kind # the images this script makes for the node's containerd
cache=${SESSIONFLEET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sessionfleet}
inputs=$(cat k8s/kind/node-image/* scripts/kind-node-image.sh scripts/kube-build.sh scripts/go-build.sh \
  scripts/runc-within-bounds scripts/image-lib.sh | sha256sum | cut -c1-16)

log() { echo "kind-node-image: $*" >&2; }

if [ -z "${FORCE:-}" ] &&
  [ "$(docker image inspect --format '{{index .Config.Labels "io.sessionfleet.inputs"}}' "$NODE_IMAGE" 2>/dev/null)" = "$inputs" ]; then
  echo "$NODE_IMAGE"
  exit 0
fi

module_dir() { go mod download -json "$1" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p'; }

# --- programs ------------------------------------------------------------------------------
build_programs() {
  kube=$(kube_build)
  containerd=$(scripts/go-build.sh "github.com/containerd/containerd/v2@$CONTAINERD_VERSION" \
    cmd/containerd cmd/ctr cmd/containerd-shim-runc-v2)
  runc=$(CGO_ENABLED=1 GO_TAGS=seccomp scripts/go-build.sh "github.com/opencontainers/runc@$RUNC_VERSION" .)
  crictl=$(scripts/go-build.sh "sigs.k8s.io/cri-tools@$CRICTL_VERSION" cmd/crictl)
  cni=$(scripts/go-build.sh "github.com/containernetworking/plugins@$CNI_PLUGINS_VERSION" \
    plugins/ipam/host-local plugins/main/loopback plugins/main/ptp plugins/main/bridge \
    plugins/meta/portmap)
  etcd=$(scripts/go-build.sh "go.etcd.io/etcd/server/v3@$ETCD_VERSION" .)
  coredns=$(scripts/go-build.sh "github.com/coredns/coredns@$COREDNS_VERSION" .)
  kube_router=$(scripts/go-build.sh "github.com/cloudnativelabs/kube-router/v2@$KUBE_ROUTER_VERSION" cmd/kube-router)
  local_path=$(scripts/go-build.sh "github.com/rancher/local-path-provisioner@$LOCAL_PATH_PROVISIONER_VERSION" .)
  pause="$cache/pause-$PAUSE_VERSION"
  if [ ! -x "$pause/pause" ]; then
    mkdir -p "$pause"
    gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_VERSION" \
      -o "$pause/pause" "$(module_dir "k8s.io/kubernetes@$KUBERNETES_VERSION")/build/pause/linux/pause.c"
    strip "$pause/pause"
  fi
  kind_files="$(module_dir "sigs.k8s.io/kind@$KIND_VERSION")/images/base/files"
}

# --- images for the node's containerd --------------------------------------------------------
# Every image the node needs before it can pull anything: kubeadm's (checked against
# `kubeadm config images list` below), the CNI's and the storage's. One archive, for ctr.
build_images() {
  local v=$KUBERNETES_VERSION component
  # Keyed by the versions and the recipes below, not by the rest of this script.
  images="$cache/node-images-$({ cat k8s/kind/node-image/versions.env
    declare -f build_images scratch_image debian_image; } | sha256sum | cut -c1-16).tar"
  [ -f "$images" ] && return
  log "images for the node's containerd"
  for component in kube-apiserver kube-controller-manager kube-scheduler; do
    scratch_image "$LOCAL/$component:$v" "[\"/usr/local/bin/$component\"]" "$kube/$component"
  done
  debian_image "$LOCAL/kube-proxy:$v" iptables,nftables,conntrack,kmod '["/usr/local/bin/kube-proxy"]' \
    "$kube/kube-proxy"
  # The etcd module's program is its root package, which Go names after the module (server).
  scratch_image "$LOCAL/etcd:${ETCD_VERSION#v}-0" '["/usr/local/bin/etcd"]' "$etcd/server=etcd"
  scratch_image "$LOCAL/coredns:$COREDNS_VERSION" '["/usr/local/bin/coredns"]' "$coredns/coredns"
  scratch_image "$LOCAL/pause:$PAUSE_VERSION" '["/usr/local/bin/pause"]' "$pause/pause"
  debian_image "$LOCAL/kube-router:$KUBE_ROUTER_VERSION" iptables,ipset,iproute2,conntrack,kmod \
    '["/usr/local/bin/kube-router"]' "$kube_router/kube-router"
  scratch_image "$LOCAL/local-path-provisioner:$LOCAL_PATH_PROVISIONER_VERSION" \
    '["/usr/local/bin/local-path-provisioner"]' "$local_path/local-path-provisioner"
  debian_image "$LOCAL/debian:bookworm" ca-certificates '["/bin/sh"]'
  docker image save --output "$images.part" \
    "$LOCAL/kube-apiserver:$v" "$LOCAL/kube-controller-manager:$v" "$LOCAL/kube-scheduler:$v" \
    "$LOCAL/kube-proxy:$v" "$LOCAL/etcd:${ETCD_VERSION#v}-0" "$LOCAL/coredns:$COREDNS_VERSION" \
    "$LOCAL/pause:$PAUSE_VERSION" "$LOCAL/kube-router:$KUBE_ROUTER_VERSION" \
    "$LOCAL/local-path-provisioner:$LOCAL_PATH_PROVISIONER_VERSION" "$LOCAL/debian:bookworm"
  mv "$images.part" "$images"
}

# --- the node --------------------------------------------------------------------------------
# kind v0.33.0's base image (images/base/Dockerfile) on bookworm: its packages, its files and
# units, the runtime built above.
base_rootfs() {
  local packages=systemd,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod
  packages+=,libseccomp2,pigz,e2fsprogs,bash,ca-certificates,curl,jq,procps
  local f=$kind_files setup
  setup=$(mktemp)
  node_setup >"$setup"
  # shellcheck disable=SC2016 # $1 is mmdebstrap's: the root it builds
  mmdebstrap --quiet --variant=minbase --include="$packages" \
    --customize-hook="copy-in $f/usr/local/bin/entrypoint $f/usr/local/bin/clean-install /usr/local/bin" \
    --customize-hook="mkdir -p \"\$1/kind/bin\" \"\$1/etc/containerd\" \"\$1/etc/systemd/system/kubelet.service.d\" \"\$1/etc/kubernetes/manifests\" \"\$1/opt/cni/bin\" \"\$1/kind/manifests\"" \
    --customize-hook="copy-in $f/kind/README.txt /kind" \
    --customize-hook="copy-in $f/kind/bin/mount-product-files.sh $f/kind/bin/undo-mount-hacks.sh $f/kind/bin/create-kubelet-cgroup-v2.sh /kind/bin" \
    --customize-hook="copy-in $f/etc/crictl.yaml /etc" \
    --customize-hook="copy-in $f/etc/containerd/config.toml /etc/containerd" \
    --customize-hook="copy-in $f/etc/default/kubelet /etc/default" \
    --customize-hook="copy-in $f/etc/sysctl.d/10-network-security.conf $f/etc/sysctl.d/10-network-magic.conf /etc/sysctl.d" \
    --customize-hook="copy-in $f/etc/systemd/system/containerd.service $f/etc/systemd/system/kubelet.service $f/etc/systemd/system/kubelet.slice $f/etc/systemd/system/undo-mount-hacks.service /etc/systemd/system" \
    --customize-hook="copy-in $f/etc/systemd/system/kubelet.service.d/10-kubeadm.conf $f/etc/systemd/system/kubelet.service.d/11-kind.conf /etc/systemd/system/kubelet.service.d" \
    --customize-hook="copy-in $containerd/containerd $containerd/ctr $containerd/containerd-shim-runc-v2 $crictl/crictl /usr/local/bin" \
    --customize-hook="copy-in $runc/runc scripts/runc-within-bounds /usr/local/sbin" \
    --customize-hook="copy-in $cni/host-local $cni/loopback $cni/ptp $cni/bridge $cni/portmap /opt/cni/bin" \
    --customize-hook="copy-in $kube/kubeadm $kube/kubelet $kube/kubectl /usr/bin" \
    --customize-hook="copy-in k8s/kind/node-image/default-cni.yaml k8s/kind/node-image/default-storage.yaml /kind/manifests" \
    --customize-hook="upload $setup /tmp/node-setup.sh" \
    --customize-hook='chroot "$1" sh -e /tmp/node-setup.sh' \
    bookworm -
  rm -f "$setup"
}

# What the base image's RUN steps do, in the node's root.
node_setup() {
  cat <<EOF
chmod 0755 /kind /kind/bin /kind/bin/* /usr/local/bin/* /usr/local/sbin/* /opt/cni/bin/* /usr/bin/kube*
chmod 0644 /etc/systemd/system/*.service /etc/systemd/system/*.slice /etc/systemd/system/kubelet.service.d/*
echo $KUBERNETES_VERSION > /kind/version
sed -i -e 's/KUBE_ROUTER_VERSION/$KUBE_ROUTER_VERSION/' /kind/manifests/default-cni.yaml
sed -i -e 's/LOCAL_PATH_PROVISIONER_VERSION/$LOCAL_PATH_PROVISIONER_VERSION/' /kind/manifests/default-storage.yaml
sed -i -e 's#sandbox_image = .*#sandbox_image = "registry.k8s.io/pause:$PAUSE_VERSION"#' /etc/containerd/config.toml
# runc through scripts/runc-within-bounds: a no-op where root holds every capability.
sed -i -e 's#^\( *\)SystemdCgroup = true#&\n\1BinaryName = "/usr/local/sbin/runc-within-bounds"#' /etc/containerd/config.toml
find /lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete
rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \
  /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \
  /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*
echo ReadKMsg=no >> /etc/systemd/journald.conf
ln -sf /usr/lib/systemd/systemd /sbin/init
systemctl enable kubelet.service containerd.service undo-mount-hacks.service
systemctl mask systemd-binfmt.service
ctr oci spec | jq '.hooks.createContainer[.hooks.createContainer | length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' | jq 'del(.process.rlimits)' > /etc/containerd/cri-base.json
rm -rf /var/lib/apt/lists/* /usr/share/doc /usr/share/man /tmp/node-setup.sh
EOF
}

# As kind's node-image build does: the images go into the node's containerd (pinned, not
# unpacked), under the names kubeadm asks for.
import_images() {
  local base=$1 id
  id=$(docker run -d --entrypoint sleep --security-opt seccomp=unconfined "$base" infinity)
  # shellcheck disable=SC2064 # the ID is known now
  trap "docker rm -f -v $id >/dev/null" EXIT
  docker exec "$id" bash -c 'nohup containerd >/tmp/containerd.log 2>&1 &'
  docker exec "$id" bash -c 'for i in $(seq 1 50); do ctr version >/dev/null 2>&1 && exit 0; sleep 0.2; done; cat /tmp/containerd.log; exit 1'
  docker exec -i "$id" ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned \
    --all-platforms --no-unpack --digests - <"$images" >/dev/null
  local v=$KUBERNETES_VERSION pair
  for pair in "kube-apiserver:$v" "kube-controller-manager:$v" "kube-scheduler:$v" \
    "kube-proxy:$v" "etcd:${ETCD_VERSION#v}-0" "coredns/coredns:$COREDNS_VERSION=coredns:$COREDNS_VERSION" \
    "pause:$PAUSE_VERSION"; do
    docker exec "$id" ctr --namespace=k8s.io images tag --force \
      "$LOCAL/${pair#*=}" "registry.k8s.io/${pair%=*}" >/dev/null
  done
  # Each name kubeadm will ask for must be there (nothing can be pulled).
  local wanted present missing="" image
  wanted=$(docker exec "$id" kubeadm config images list --kubernetes-version "$v" 2>/dev/null)
  present=$(docker exec "$id" ctr --namespace=k8s.io images list -q)
  for image in $wanted; do
    echo "$present" | grep -qx "$image" || missing+=" $image"
  done
  [ -z "$missing" ] || { log "kubeadm wants images not built:$missing"; exit 1; }
  docker exec "$id" pkill containerd
  # Stopped (its database closed) once it is a zombie: nothing in this container reaps it.
  docker exec "$id" bash -c 'for i in $(seq 1 50); do pgrep -r R,S,D -x containerd >/dev/null || exit 0; sleep 0.2; done; exit 1'
  docker commit --change 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]' \
    --change 'ENV container=docker' "$id" "$NODE_IMAGE-unlabelled" >/dev/null
  docker rm -f -v "$id" >/dev/null
  trap - EXIT
  # systemd stops on SIGRTMIN+3 (SIGTERM re-executes it); `docker commit` (before Docker 25)
  # cannot set a stop signal, a build step can (from the local image: nothing is pulled).
  printf 'FROM %s\nSTOPSIGNAL SIGRTMIN+3\nLABEL io.sessionfleet.inputs=%s\n' \
    "$NODE_IMAGE-unlabelled" "$inputs" | DOCKER_BUILDKIT=0 docker build --quiet --tag "$NODE_IMAGE" - >/dev/null
  docker rmi "$NODE_IMAGE-unlabelled" >/dev/null
}

trap 'log "failed at line $LINENO"' ERR

main() {
  local base=sessionfleet/kind-base:$inputs started=$SECONDS
  build_programs
  build_images
  if ! docker image inspect "$base" >/dev/null 2>&1; then
    log "the node's root file system (Debian bookworm + kind $KIND_VERSION's node files)"
    base_rootfs | docker import - "$base" >/dev/null
  fi
  log "importing the images into the node's containerd"
  import_images "$base"
  docker rmi "$base" >/dev/null
  log "$NODE_IMAGE ($KUBERNETES_VERSION) built in $((SECONDS - started)) s"
  echo "$NODE_IMAGE"
}

main
