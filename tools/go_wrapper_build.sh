# shellcheck shell=bash
# The skeleton shared by the builds from a Go wrapper module (tests/aws/eksctl/build.sh,
# tests/k8s/controlplane/build.sh); source it, do not run it. A build script:
#   1. go_build_need_go "<what>"   (Go on PATH, or exit 1 naming what it builds)
#   2. sets CACHE (${FRAUDSTREAM_CACHE:-~/.cache/fraudstream}), OUT (a versioned folder under
#      CACHE), BIN ($OUT/bin) and stamp (a hash of everything the build depends on), and
#      defines is_built (true when $OUT/stamp holds $stamp and every output is present);
#   3. go_build_begin: prints $BIN and exits 0 when already built. Otherwise it takes
#      $OUT/.lock (waiting for a concurrent build, then exiting if that build finished the job),
#      points Go's module and build caches at $CACHE/go, empties $OUT/build.log, defines say
#      (to stderr and the log) and t0, and leaves an empty $BIN.new with no stamp;
#   4. go_build_download: go mod download, logged and timed;
#   5. builds into $BIN.new, then go_build_install: $BIN.new becomes $BIN and the stamp is
#      written last, so an interrupted build is never taken for a finished one.

go_build_need_go() {
    PATH="$PATH:/usr/local/go/bin"  # where Go is installed on these machines, if not on PATH
    command -v go >/dev/null || { echo "build.sh: no go on PATH; Go >= 1.26 builds $1" >&2; exit 1; }
}

go_build_begin() {
    if is_built; then
        echo "$BIN"
        exit 0
    fi

    mkdir -p "$OUT"
    exec 9>"$OUT/.lock"
    if ! flock -n 9; then
        echo "build.sh: another build holds $OUT/.lock; waiting" >&2
        flock 9
    fi
    if is_built; then # the other build finished it
        echo "$BIN"
        exit 0
    fi

    export GOMODCACHE=$CACHE/go/mod GOCACHE=$CACHE/go/build
    export GOFLAGS="-buildvcs=false -mod=readonly" GOTOOLCHAIN=local CGO_ENABLED=0
    log=$OUT/build.log
    : >"$log"
    t0=$(date +%s)
    rm -rf "$BIN.new" "$OUT/stamp"
    mkdir -p "$BIN.new"
}

say() { echo "build.sh: $*" | tee -a "$log" >&2; }

go_build_download() {
    local s
    s=$(date +%s)
    go mod download -x >>"$log" 2>&1 || { tail -n 20 "$log" >&2; say "go mod download failed, see $log"; exit 1; }
    say "modules downloaded in $(($(date +%s) - s)) s"
}

go_build_install() {
    rm -rf "$BIN"
    mv "$BIN.new" "$BIN"
    echo "$stamp" >"$OUT/stamp"
}
