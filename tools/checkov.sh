#!/usr/bin/env bash
# checkov in a venv of its own (it pins many libraries that must not meet the project's .venv):
# created once under ${FRAUDSTREAM_CACHE:-~/.cache/fraudstream}/checkov-venv, then reused.
# Usage: tools/checkov.sh [checkov arguments...]   (tools/checkov.sh --install only creates the venv)
set -euo pipefail

CHECKOV_VERSION=3.3.30
CACHE="${FRAUDSTREAM_CACHE:-$HOME/.cache/fraudstream}"
VENV="$CACHE/checkov-venv"
PYTHON="${CHECKOV_PYTHON:-python3}"
STAMP="$VENV/.installed-$CHECKOV_VERSION"

if [[ ! -e "$STAMP" ]]; then
    mkdir -p "$CACHE"
    # One installer at a time (parallel test runs); the second waits and then finds the stamp.
    exec 9>"$CACHE/checkov-venv.lock"
    flock 9
    if [[ ! -e "$STAMP" ]]; then
        rm -rf "$VENV"
        "$PYTHON" -m venv "$VENV"
        "$VENV/bin/pip" install -q --disable-pip-version-check "checkov==$CHECKOV_VERSION" >&2
        touch "$STAMP"
    fi
    flock -u 9
fi

if [[ "${1:-}" == "--install" ]]; then
    exit 0
fi
# No version check or telemetry calls to the vendor's platform: nothing here may need the network.
export BC_SKIP_MAPPING=TRUE CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false
exec "$VENV/bin/checkov" "$@"
