#!/bin/bash
# Build the test control plane from the Go module proxy into a versioned cache outside the clone:
#   ${FRAUDSTREAM_CACHE:-~/.cache/fraudstream}/k8s-<kubernetes version>/bin/
#     etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok kube-state-metrics helm
#   .../kwok-stages.yaml   kwok's node and pod stages, from its module
# The Go module and build caches live under the same cache folder, so CI can keep them.
# A warm re-run (all binaries present, stamp matching go.mod, go.sum and the flags) builds
# nothing. A lock serialises concurrent runs. Prints the bin directory on stdout; progress and
# timings go to stderr and to <cache>/k8s-<version>/build.log.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../../tools/go_wrapper_build.sh
. "$HERE/../../../tools/go_wrapper_build.sh"  # the stamp, lock, log and install skeleton
go_build_need_go "the control plane"
cd "$HERE"

# Versions come from go.mod, so the stamped versions cannot drift from what is built.
modver() { awk -v m="$1" '$1 == m && $2 ~ /^v/ { print $2; exit }' go.mod; }
K8S=$(modver k8s.io/kubernetes)
HELM=$(modver helm.sh/helm/v3)
KSM=$(modver k8s.io/kube-state-metrics/v2)
ETCD=$(modver go.etcd.io/etcd/server/v3)
KWOK=$(modver sigs.k8s.io/kwok)
minor=${K8S#v1.}
minor=${minor%%.*}

CACHE=${FRAUDSTREAM_CACHE:-$HOME/.cache/fraudstream}
OUT=$CACHE/k8s-$K8S
BIN=$OUT/bin
BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok kube-state-metrics helm)

LDFLAGS="-s -w
 -X k8s.io/component-base/version.gitVersion=$K8S
 -X k8s.io/component-base/version.gitMajor=1
 -X k8s.io/component-base/version.gitMinor=$minor
 -X k8s.io/component-base/version.gitTreeState=clean
 -X k8s.io/client-go/pkg/version.gitVersion=$K8S
 -X k8s.io/client-go/pkg/version.gitMajor=1
 -X k8s.io/client-go/pkg/version.gitMinor=$minor
 -X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD
 -X helm.sh/helm/v3/internal/version.version=$HELM
 -X helm.sh/helm/v3/internal/version.gitTreeState=clean
 -X github.com/prometheus/common/version.Version=$KSM
 -X github.com/prometheus/common/version.Revision=$KSM
 -X github.com/prometheus/common/version.Branch=release"
LDFLAGS=$(tr '\n' ' ' <<<"$LDFLAGS")

stamp=$( (cat go.mod go.sum tools.go cmd/etcd/main.go; echo "$LDFLAGS"; go env GOVERSION) | sha256sum | cut -c1-16)

is_built() {
    [ "$(cat "$OUT/stamp" 2>/dev/null)" = "$stamp" ] || return 1
    [ -s "$OUT/kwok-stages.yaml" ] || return 1
    local b
    for b in "${BINARIES[@]}"; do [ -x "$BIN/$b" ] || return 1; done
}

go_build_begin
say "building kubernetes $K8S, etcd $ETCD, kwok $KWOK, kube-state-metrics $KSM, helm $HELM into $BIN"
go_build_download

# One go build for every command: shared packages compile once and both cores stay busy.
s=$(date +%s)
if ! go build -trimpath -ldflags "$LDFLAGS" -o "$BIN.new/" \
    ./cmd/etcd \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kubectl \
    sigs.k8s.io/kwok/cmd/kwok \
    k8s.io/kube-state-metrics/v2 \
    helm.sh/helm/v3/cmd/helm >>"$log" 2>&1; then
    tail -n 30 "$log" >&2
    say "go build failed, see $log"
    exit 1
fi
say "compiled in $(($(date +%s) - s)) s"

# kwok ships no default stages: take node and pod stages ("fast" set) from its module.
stages=$(go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)/kustomize/stage
{
    for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
        pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
        echo "---"
        grep -v '^---$' "$stages/$f"
    done
} >"$OUT/kwok-stages.yaml.new"
mv "$OUT/kwok-stages.yaml.new" "$OUT/kwok-stages.yaml"

for b in "${BINARIES[@]}"; do
    [ -x "$BIN.new/$b" ] || { say "missing $b after the build"; exit 1; }
done
go_build_install
say "done in $(($(date +%s) - t0)) s; $(du -sh "$BIN" | cut -f1) of binaries, module cache $(du -sh "$GOMODCACHE" | cut -f1), build cache $(du -sh "$GOCACHE" | cut -f1)"
echo "$BIN"
