#!/bin/bash
# Build eksctl from the Go module proxy into a versioned cache outside the clone:
#   ${FRAUDSTREAM_CACHE:-~/.cache/fraudstream}/eksctl-<eksctl version>/bin/eksctl
# This folder is a wrapper module (go.mod, go.sum, tools.go): `go install pkg@version` refuses
# eksctl because its go.mod has replace directives, so go.mod here requires eksctl and carries
# those replace directives. The Go module and build caches live under the same cache folder
# as the control plane's (tests/k8s/controlplane/build.sh), so CI can keep them.
# A warm re-run (binary present, stamp matching go.mod, go.sum, tools.go, the flags and the Go
# version) builds nothing. A lock serialises concurrent runs. Prints the bin directory on
# stdout; progress and timings go to stderr and to <cache>/eksctl-<version>/build.log.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../../tools/go_wrapper_build.sh
. "$HERE/../../../tools/go_wrapper_build.sh"  # the stamp, lock, log and install skeleton
go_build_need_go eksctl
cd "$HERE"

# The version comes from go.mod, so the stamped version cannot drift from what is built.
EKSCTL=$(awk '$1 == "require" && $2 == "github.com/weaveworks/eksctl" { print $3; exit }' go.mod)
[ -n "$EKSCTL" ] || { echo "build.sh: no eksctl version in $HERE/go.mod" >&2; exit 1; }

CACHE=${FRAUDSTREAM_CACHE:-$HOME/.cache/fraudstream}
OUT=$CACHE/eksctl-$EKSCTL
BIN=$OUT/bin

# eksctl's version variables (pkg/version), set as its release build (.github/.goreleaser.yml)
# does: an empty PreReleaseID makes `eksctl version` print the bare release version. The commit
# and date come from the module proxy's record of the release tag, filled in after download.
VERSION_PKG=github.com/weaveworks/eksctl/pkg/version
LDFLAGS_TEMPLATE="-s -w -X $VERSION_PKG.PreReleaseID= -X $VERSION_PKG.gitCommit=@COMMIT@ -X $VERSION_PKG.buildDate=@DATE@"

stamp=$( (cat go.mod go.sum tools.go; echo "$LDFLAGS_TEMPLATE"; go env GOVERSION) | sha256sum | cut -c1-16)

is_built() {
    [ "$(cat "$OUT/stamp" 2>/dev/null)" = "$stamp" ] && [ -x "$BIN/eksctl" ]
}

go_build_begin
say "building eksctl $EKSCTL into $BIN"
go_build_download

# The release's commit and date, as the module proxy recorded them for the tag.
info=$(go mod download -json "github.com/weaveworks/eksctl@$EKSCTL" | sed -n 's/^[[:space:]]*"Info": "\(.*\)",*$/\1/p')
commit=$(sed -n 's/.*"Hash":"\([0-9a-f]\{7\}\).*/\1/p' "$info")
date=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$info")
LDFLAGS=${LDFLAGS_TEMPLATE/@COMMIT@/${commit:-unknown}}
LDFLAGS=${LDFLAGS/@DATE@/${date:-unknown}}

s=$(date +%s)
if ! go build -trimpath -ldflags "$LDFLAGS" -o "$BIN.new/eksctl" github.com/weaveworks/eksctl/cmd/eksctl >>"$log" 2>&1; then
    tail -n 30 "$log" >&2
    say "go build failed, see $log"
    exit 1
fi
say "compiled in $(($(date +%s) - s)) s"

"$BIN.new/eksctl" version >>"$log" 2>&1 || { say "the built eksctl does not run, see $log"; exit 1; }
go_build_install
say "done in $(($(date +%s) - t0)) s; eksctl $("$BIN/eksctl" version), $(du -sh "$BIN" | cut -f1) binary, module cache $(du -sh "$GOMODCACHE" | cut -f1), build cache $(du -sh "$GOCACHE" | cut -f1)"
echo "$BIN"
