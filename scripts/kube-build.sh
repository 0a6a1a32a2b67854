#!/usr/bin/env bash
# Sourced: kube_build prints the folder holding the Kubernetes programs of versions.env
# (kubeadm, kubelet, kubectl, the control plane, kube-proxy), built once from the
# k8s.io/kubernetes module with the version stamped as the release build stamps it.
# shellcheck source=../k8s/kind/node-image/versions.env
. "$(dirname "${BASH_SOURCE[0]}")/../k8s/kind/node-image/versions.env"

kube_build() {
  local ldflags="" pkg minor=${KUBERNETES_VERSION#v1.}
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1"
    ldflags+=" -X $pkg.gitMinor=${minor%%.*} -X $pkg.gitTreeState=clean"
  done
  STAGING_VERSION=$KUBERNETES_STAGING_VERSION GO_LDFLAGS=$ldflags \
    "$(dirname "${BASH_SOURCE[0]}")/go-build.sh" "k8s.io/kubernetes@$KUBERNETES_VERSION" \
    cmd/kubeadm cmd/kubelet cmd/kubectl cmd/kube-apiserver cmd/kube-controller-manager \
    cmd/kube-scheduler cmd/kube-proxy
}
