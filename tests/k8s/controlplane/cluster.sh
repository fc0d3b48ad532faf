#!/bin/bash
# A Kubernetes control plane on 127.0.0.1, for tests (pytest's k8s_cluster fixture) and by hand.
#
#   cluster.sh up     build if needed (build.sh), then start a fresh cluster; prints the kubeconfig
#   cluster.sh down   stop every process `up` started, by PID (process group); idempotent
#   cluster.sh env    print `export KUBECONFIG=... PATH=...` for a shell
#
# etcd, kube-apiserver (TLS, RBAC), kube-controller-manager, kube-scheduler, kwok (one tainted
# fake node, its node and pod stages), kube-state-metrics; the CRDs from <repo>/../shared/crds.
# Every `up` starts from an empty state directory:
#   FRAUDSTREAM_K8S_RUN          state dir (pki, etcd data, logs, pids, kubeconfig);
#                                default ${TMPDIR:-/tmp}/fraudstream-k8s
#   FRAUDSTREAM_K8S_PORT_OFFSET  added to every port below, to run a second cluster (default 0)
#   FRAUDSTREAM_CRDS             CRD folder (default <repo>/../shared/crds; skipped if absent)
# Ports (offset 0) stay clear of the local target (9090-9100, 7071, 8000-8010) and of the
# Kubernetes defaults: etcd 23790/23800, apiserver 16443, controller-manager 20257,
# scheduler 20259, kube-state-metrics 18080 (metrics) and 18081 (telemetry), kwok 18082.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
RUN=${FRAUDSTREAM_K8S_RUN:-${TMPDIR:-/tmp}/fraudstream-k8s}
CRDS=${FRAUDSTREAM_CRDS:-$ROOT/../shared/crds}
off=${FRAUDSTREAM_K8S_PORT_OFFSET:-0}
ETCD_PORT=$((23790 + off))
ETCD_PEER_PORT=$((23800 + off))
API_PORT=$((16443 + off))
KCM_PORT=$((20257 + off))
SCHED_PORT=$((20259 + off))
KSM_PORT=$((18080 + off))
KSM_TELEMETRY_PORT=$((18081 + off))
KWOK_PORT=$((18082 + off))
STOP_GRACE=${FRAUDSTREAM_K8S_STOP_GRACE:-10}
READY_TIMEOUT=${FRAUDSTREAM_K8S_READY_TIMEOUT:-90}

log() { echo "cluster.sh: $*" >&2; }
elapsed() { echo "$(($(date +%s%N) / 1000000 - t0)) ms"; }

# -- processes: each in its own session, so its PID is its process group -------------------------
# A process is "alive" while /proc shows it with the start time recorded at launch (so a reused
# PID is not mistaken for it) and it is not a zombie.
starttime() { awk '$3 != "Z" { print $22 }' "/proc/$1/stat" 2>/dev/null; }

start() { # start <name> <command...>: run in the background, record "name pid starttime"
    local name=$1
    shift
    setsid "$@" </dev/null >"$RUN/logs/$name.log" 2>&1 &
    local pid=$!
    echo "$name $pid $(starttime "$pid")" >>"$RUN/pids"
}

alive() { # alive <pid> <starttime>: the same process (not a reused PID) still exists
    [ -n "$2" ] && [ "$(starttime "$1")" = "$2" ]
}

group_alive() { # the leader, or any live process left in its group
    alive "$1" "$2" && return 0
    local p
    for p in $(pgrep -g "$1" 2>/dev/null); do
        [ -n "$(starttime "$p")" ] && return 0
    done
    return 1
}

down() {
    [ -f "$RUN/pids" ] || return 0
    local name pid st left=0
    # reverse start order: clients first, etcd last
    while read -r name pid st; do
        # Only a group whose leader is still the process we started is ours to signal: once the
        # leader is gone, its PID (and so the group id) may belong to someone else.
        alive "$pid" "$st" || continue
        kill -TERM -- "-$pid" 2>/dev/null || true
        local i
        for ((i = 0; i < STOP_GRACE * 10; i++)); do
            group_alive "$pid" "$st" || break
            sleep 0.1
        done
        if group_alive "$pid" "$st"; then
            log "$name ($pid) ignored SIGTERM for ${STOP_GRACE}s; SIGKILL"
            kill -KILL -- "-$pid" 2>/dev/null || true
            sleep 0.2
        fi
        if group_alive "$pid" "$st"; then
            log "$name ($pid) is still running"
            left=1
        fi
    done < <(tac "$RUN/pids")
    [ "$left" = 0 ] || return 1
    mv "$RUN/pids" "$RUN/pids.stopped"
}

wait_for() { # wait_for <what> <command...>: poll until the command succeeds or the deadline
    local what=$1
    shift
    until "$@" >/dev/null 2>&1; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            log "$what not ready after ${READY_TIMEOUT}s; logs in $RUN/logs"
            tail -n 20 "$RUN"/logs/*.log >&2 || true
            return 1
        fi
        # a process that died will not become ready: fail now, naming it
        local name pid st
        while read -r name pid st; do
            alive "$pid" "$st" || { log "$name exited; its log:"; tail -n 30 "$RUN/logs/$name.log" >&2; return 1; }
        done <"$RUN/pids"
        sleep 0.2
    done
    log "$what ready after $(elapsed)"
}

# -- PKI: a CA, the API server's serving cert, client certs, the service-account key pair ---------
# ECDSA P-256 throughout: as good as RSA here, and generated in milliseconds, not seconds.
pki() {
    local p=$RUN/pki
    mkdir -p "$p"
    (
        cd "$p"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.crt -days 365 \
            -subj "/CN=fraudstream-test-ca" 2>/dev/null
        cat >serving.cnf <<'EOF'
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, IP:10.96.0.1, DNS:localhost, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local
EOF
        cat >client.cnf <<'EOF'
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
EOF
        cert() { # cert <name> <subject> <extfile>
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
            openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 \
                -extfile "$3" -out "$1.crt" 2>/dev/null
        }
        cert apiserver "/CN=kube-apiserver" serving.cnf
        cert admin "/O=system:masters/CN=fraudstream-admin" client.cnf
        cert controller-manager "/CN=system:kube-controller-manager" client.cnf
        cert scheduler "/CN=system:kube-scheduler" client.cnf
        openssl ecparam -name prime256v1 -genkey -noout -out sa.key
        openssl ec -in sa.key -pubout -out sa.pub 2>/dev/null
    )
}

crds_established() { # crds_established <kubectl...>: every CRD has condition Established=True
    local states
    states=$("$@" get crd -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Established")].status}{"\n"}{end}') || return 1
    [ -n "$states" ] && ! grep -qvx True <<<"$states"
}

kubeconfig() { # kubeconfig <file> <client cert name>
    cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: fraudstream-test
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $(base64 -w0 "$RUN/pki/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $(base64 -w0 "$RUN/pki/$2.crt")
    client-key-data: $(base64 -w0 "$RUN/pki/$2.key")
contexts:
- name: fraudstream-test
  context:
    cluster: fraudstream-test
    user: $2
current-context: fraudstream-test
EOF
}

up() {
    t0=$(($(date +%s%N) / 1000000))
    if [ -f "$RUN/pids" ]; then
        log "stopping the cluster left in $RUN"
        down
    fi
    local port
    for port in $ETCD_PORT $ETCD_PEER_PORT $API_PORT $KCM_PORT $SCHED_PORT $KSM_PORT $KSM_TELEMETRY_PORT $KWOK_PORT; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            log "port $port is in use (another cluster?); set FRAUDSTREAM_K8S_PORT_OFFSET to shift every port"
            exit 1
        fi
    done
    BIN=$("$HERE/build.sh")
    local cache
    cache=$(dirname "$BIN")
    t0=$(($(date +%s%N) / 1000000)) # start-up time counts from here, after the build
    deadline=$(($(date +%s) + READY_TIMEOUT))
    # a fresh state dir; wipe only one this script made (or an empty one)
    if [ -d "$RUN" ] && [ -n "$(ls -A "$RUN")" ] && [ ! -f "$RUN/.fraudstream-k8s" ]; then
        log "$RUN exists and was not made by this script; refusing to wipe it"
        exit 1
    fi
    rm -rf "$RUN"
    mkdir -p "$RUN/logs" "$RUN/kubeconfigs"
    touch "$RUN/.fraudstream-k8s"
    : >"$RUN/pids"
    echo "$BIN" >"$RUN/bin"
    # If anything below fails, stop what was started.
    trap 'rc=$?; [ $rc = 0 ] || { log "start failed; stopping"; down || true; }' EXIT

    pki
    local kc=$RUN/kubeconfigs
    kubeconfig "$RUN/kubeconfig" admin
    kubeconfig "$kc/controller-manager" controller-manager
    kubeconfig "$kc/scheduler" scheduler
    local p=$RUN/pki
    local kubectl=("$BIN/kubectl" --kubeconfig "$RUN/kubeconfig" --cache-dir "$RUN/kube-cache")

    start etcd "$BIN/etcd" --name fraudstream-test --data-dir "$RUN/etcd" \
        --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-cluster "fraudstream-test=http://127.0.0.1:$ETCD_PEER_PORT" \
        --unsafe-no-fsync --log-level warn
    wait_for etcd curl -sf "http://127.0.0.1:$ETCD_PORT/health"

    start kube-apiserver "$BIN/kube-apiserver" --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
        --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" \
        --cert-dir "$RUN/apiserver-certs" \
        --tls-cert-file "$p/apiserver.crt" --tls-private-key-file "$p/apiserver.key" \
        --client-ca-file "$p/ca.crt" --authorization-mode Node,RBAC \
        --service-cluster-ip-range 10.96.0.0/16 --endpoint-reconciler-type none \
        --service-account-issuer https://kubernetes.default.svc.cluster.local \
        --service-account-key-file "$p/sa.pub" --service-account-signing-key-file "$p/sa.key" \
        --allow-privileged=true --profiling=false
    wait_for kube-apiserver curl -sf --cacert "$p/ca.crt" --cert "$p/admin.crt" --key "$p/admin.key" \
        "https://127.0.0.1:$API_PORT/readyz"

    start kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig "$kc/controller-manager" \
        --authentication-kubeconfig "$kc/controller-manager" --authorization-kubeconfig "$kc/controller-manager" \
        --bind-address 127.0.0.1 --secure-port "$KCM_PORT" --cert-dir "$RUN/kcm-certs" \
        --leader-elect=false --use-service-account-credentials=true \
        --service-account-private-key-file "$p/sa.key" --root-ca-file "$p/ca.crt" \
        --cluster-signing-cert-file "$p/ca.crt" --cluster-signing-key-file "$p/ca.key" --profiling=false
    start kube-scheduler "$BIN/kube-scheduler" --kubeconfig "$kc/scheduler" \
        --authentication-kubeconfig "$kc/scheduler" --authorization-kubeconfig "$kc/scheduler" \
        --bind-address 127.0.0.1 --secure-port "$SCHED_PORT" --cert-dir "$RUN/scheduler-certs" \
        --leader-elect=false --profiling=false
    start kwok "$BIN/kwok" --kubeconfig "$RUN/kubeconfig" --config "$cache/kwok-stages.yaml" \
        --manage-all-nodes=true --node-lease-duration-seconds 40 \
        --server-address "127.0.0.1:$KWOK_PORT"
    start kube-state-metrics "$BIN/kube-state-metrics" --kubeconfig "$RUN/kubeconfig" \
        --host 127.0.0.1 --port "$KSM_PORT" --telemetry-host 127.0.0.1 --telemetry-port "$KSM_TELEMETRY_PORT" \
        --resources deployments,replicasets,pods,nodes,namespaces

    "${kubectl[@]}" apply -f "$HERE/node.yaml" >/dev/null
    if [ -d "$CRDS" ]; then
        # create, not apply: the state is fresh, and the larger CRDs exceed client-side apply's annotation
        "${kubectl[@]}" create -f "$CRDS" --recursive >/dev/null
        log "CRDs from $CRDS created after $(elapsed)"
    else
        log "no CRDs: $CRDS is absent"
    fi

    wait_for kube-controller-manager curl -sfk "https://127.0.0.1:$KCM_PORT/healthz"
    wait_for kube-scheduler curl -sfk "https://127.0.0.1:$SCHED_PORT/healthz"
    wait_for kube-state-metrics curl -sf "http://127.0.0.1:$KSM_PORT/livez"
    wait_for "node kwok-node-0" "${kubectl[@]}" wait --for condition=Ready node/kwok-node-0 --timeout 1s
    wait_for "default service account" "${kubectl[@]}" get serviceaccount default
    if [ -d "$CRDS" ]; then
        wait_for CRDs crds_established "${kubectl[@]}"
    fi
    trap - EXIT
    elapsed >"$RUN/startup"
    log "cluster up in $(elapsed): KUBECONFIG=$RUN/kubeconfig (stop with: $0 down)"
    echo "$RUN/kubeconfig"
}

case ${1:-} in
    up) up ;;
    down) down ;;
    env)
        echo "export KUBECONFIG=$RUN/kubeconfig"
        [ -f "$RUN/bin" ] && echo "export PATH=$(cat "$RUN/bin"):\$PATH"
        ;;
    *)
        echo "usage: $0 up|down|env" >&2
        exit 2
        ;;
esac
