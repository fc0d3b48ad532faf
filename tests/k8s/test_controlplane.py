"""The test control plane behaves like a cluster: it schedules and scales Deployments onto kwok's
fake node, kube-state-metrics follows them, the API server validates Strimzi and
prometheus-operator objects against their CRD schemas, helm installs and uninstalls a chart, the
binaries are the versions go.mod names, and stopping it leaves no process behind."""
import copy
import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import urllib.request

import pytest
from k8s_harness import CRDS, HERE, module_versions, port_offset_from_env, process_alive, wait_until

VERSIONS = module_versions()
K8S_VERSION = VERSIONS["k8s.io/kubernetes"]
IMAGE = os.environ.get("FRAUDSTREAM_K8S_TEST_IMAGE", "registry.k8s.io/pause:3.10")  # never pulled on kwok
TOLERATION = {"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}


def local_only(cluster):
    if not cluster.local:
        pytest.skip("needs the locally built control plane (FRAUDSTREAM_KUBECONFIG points elsewhere)")


def deployment(name: str, replicas: int) -> dict:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {
                "tolerations": [TOLERATION],
                "containers": [{"name": "main", "image": IMAGE,
                                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}},
        },
    }


def available(cluster, ns: str, name: str) -> tuple[int, int, int]:
    """(spec replicas, available replicas, pods) once the controller has seen the latest spec."""
    dep = cluster.get("deployment", name, "-n", ns)
    status = dep.get("status", {})
    if status.get("observedGeneration", 0) < dep["metadata"]["generation"]:
        return None
    pods = cluster.get("pods", "-n", ns, "-l", f"app={name}")["items"]
    return dep["spec"]["replicas"], status.get("availableReplicas", 0), len(pods)


def ksm_value(url: str, metric: str, ns: str, name: str) -> float | None:
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    for line in text.splitlines():
        if line.startswith(metric + "{") and f'namespace="{ns}"' in line and f'deployment="{name}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def scale_and_wait(cluster, ns: str, name: str, replicas: int):
    cluster.kubectl("scale", "-n", ns, f"deployment/{name}", f"--replicas={replicas}")
    wait_until(lambda: available(cluster, ns, name) == (replicas, replicas, replicas), timeout=60,
               what=f"{name} with {replicas} available replicas and pods")


# -- Deployments on the fake node ------------------------------------------------------------------
def test_deployment_scales_2_0_2(k8s_cluster, namespace):
    k8s_cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(deployment("fraud-consumer", 2)))
    for replicas in (2, 0, 2):
        scale_and_wait(k8s_cluster, namespace, "fraud-consumer", replicas)
    pods = k8s_cluster.get("pods", "-n", namespace, "-l", "app=fraud-consumer")["items"]
    assert all(p["status"]["phase"] == "Running" for p in pods), [p["status"] for p in pods]
    if k8s_cluster.local:
        assert {p["spec"]["nodeName"] for p in pods} == {"kwok-node-0"}


def test_kube_state_metrics_follows_scaling(k8s_cluster, namespace):
    if not k8s_cluster.ksm_url:
        pytest.skip("kube-state-metrics address unknown: set FRAUDSTREAM_KSM_URL for an external cluster")
    name = "fraud-producer"
    k8s_cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(deployment(name, 2)))
    for replicas in (2, 0, 2):
        scale_and_wait(k8s_cluster, namespace, name, replicas)
        for metric in ("kube_deployment_spec_replicas", "kube_deployment_status_replicas_available"):
            wait_until(lambda m=metric, r=replicas: ksm_value(k8s_cluster.ksm_url, m, namespace, name) == r,
                       timeout=30, what=f"{metric} == {replicas}")


def test_pod_without_toleration_is_not_scheduled(k8s_cluster, namespace):
    """The only node is tainted: without the toleration a pod stays Pending, and the scheduler says why."""
    local_only(k8s_cluster)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "untolerated"},
           "spec": {"containers": [{"name": "main", "image": IMAGE}]}}
    k8s_cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(pod))

    def unschedulable():
        conds = k8s_cluster.get("pod", "untolerated", "-n", namespace).get("status", {}).get("conditions", [])
        return next((c for c in conds if c["type"] == "PodScheduled" and c.get("reason") == "Unschedulable"), None)

    cond = wait_until(unschedulable, timeout=30, what="PodScheduled=False/Unschedulable")
    assert "untolerated taint" in cond["message"], cond


# -- CRD schemas: valid objects are accepted, invalid ones rejected with the field named ------------
KAFKA = {
    "apiVersion": "kafka.strimzi.io/v1", "kind": "Kafka", "metadata": {"name": "fraud-kafka"},
    "spec": {"kafka": {"listeners": [{"name": "plain", "port": 9092, "type": "internal", "tls": False}]}},
}
NODE_POOL = {
    "apiVersion": "kafka.strimzi.io/v1", "kind": "KafkaNodePool",
    "metadata": {"name": "dual-role", "labels": {"strimzi.io/cluster": "fraud-kafka"}},
    "spec": {"replicas": 3, "roles": ["controller", "broker"], "storage": {"type": "ephemeral"}},
}
RULE = {
    "apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
    "metadata": {"name": "fraudstream", "labels": {"release": "kube-prometheus-stack"}},
    "spec": {"groups": [{"name": "fraud-consumer", "rules": [{
        "alert": "FraudConsumerDown", "expr": 'up{job="fraud-consumer"} == 0', "for": "5m",
        "labels": {"severity": "critical"}}]}]},
}
CRD_OF = {"Kafka": "kafkas.kafka.strimzi.io", "KafkaNodePool": "kafkanodepools.kafka.strimzi.io",
          "PrometheusRule": "prometheusrules.monitoring.coreos.com"}


def changed(obj: dict, path: str, value) -> dict:
    """A copy of obj with the value at a dotted path (list indexes as numbers) replaced."""
    obj = copy.deepcopy(obj)
    *parents, last = [int(k) if k.isdigit() else k for k in path.split(".")]
    node = obj
    for key in parents:
        node = node[key]
    node[last] = value
    return obj


def need_crd(cluster, kind: str):
    proc = cluster.kubectl("get", "crd", CRD_OF[kind], check=False)
    if proc.returncode != 0:
        pytest.skip(f"CRD {CRD_OF[kind]} not installed (the local cluster installs it from {CRDS}): {proc.stderr.strip()}")


@pytest.mark.parametrize("obj", [KAFKA, NODE_POOL, RULE], ids=lambda o: o["kind"])
def test_valid_objects_are_accepted(k8s_cluster, namespace, obj):
    need_crd(k8s_cluster, obj["kind"])
    k8s_cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(obj))
    stored = k8s_cluster.get(CRD_OF[obj["kind"]], obj["metadata"]["name"], "-n", namespace)
    assert stored["spec"] == obj["spec"]


INVALID = [
    # (object, path to change, bad value, field the API server must name, words of its message)
    (KAFKA, "spec.kafka.listeners.0.type", "bogus", "spec.kafka.listeners[0].type", 'Unsupported value: "bogus"'),
    (KAFKA, "spec.kafka.listeners.0.name", "Plain-Listener", "spec.kafka.listeners[0].name", "should match"),
    (KAFKA, "spec.kafka.metricsConfig", {"type": "jmxPrometheusExporter"}, "spec.kafka.metricsConfig",
     "valueFrom property is required"),  # a CEL rule (x-kubernetes-validations)
    (NODE_POOL, "spec.roles", ["gateway"], "spec.roles[0]", 'Unsupported value: "gateway"'),
    (NODE_POOL, "spec.replicas", -1, "spec.replicas", "greater than or equal to 0"),
    (RULE, "spec.groups.0.rules.0.for", "5 minutes", "spec.groups[0].rules[0].for", "should match"),
    (RULE, "spec.groups.0.name", "", "spec.groups[0].name", "at least 1 chars long"),
]


@pytest.mark.parametrize("obj,path,value,field,message", INVALID, ids=[f"{c[0]['kind']}-{c[1]}" for c in INVALID])
def test_invalid_objects_are_rejected_naming_the_field(k8s_cluster, namespace, obj, path, value, field, message):
    need_crd(k8s_cluster, obj["kind"])
    proc = k8s_cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(changed(obj, path, value)),
                               check=False)
    assert proc.returncode != 0, f"the API server accepted an invalid {obj['kind']}: {proc.stdout}"
    assert "is invalid" in proc.stderr and field in proc.stderr and message in proc.stderr, proc.stderr
    gone = k8s_cluster.kubectl("get", CRD_OF[obj["kind"]], obj["metadata"]["name"], "-n", namespace, check=False)
    assert "NotFound" in gone.stderr, gone.stdout


# -- helm --------------------------------------------------------------------------------------------
def test_helm_installs_and_uninstalls_a_local_chart(k8s_cluster, namespace, tmp_path):
    chart = tmp_path / "probe-chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: probe-chart\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("greeting: hello\nreplicas: 2\n")
    (chart / "templates" / "configmap.yaml").write_text(textwrap.dedent("""\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: {{ .Release.Name }}-config
        data:
          greeting: {{ .Values.greeting | quote }}
        """))
    dep = deployment("{{ .Release.Name }}-app", 0)
    dep["spec"]["replicas"] = "{{ .Values.replicas }}"
    (chart / "templates" / "deployment.yaml").write_text(json.dumps(dep).replace('"{{ .Values.replicas }}"',
                                                                                  "{{ .Values.replicas }}"))
    helm_env = {f"HELM_{k}_HOME": str(tmp_path / f"helm-{k.lower()}") for k in ("CACHE", "CONFIG", "DATA")}

    def helm(*args, check=True):
        return k8s_cluster.run("helm", *args, "-n", namespace, env=helm_env, check=check, timeout=180)

    helm("install", "probe", str(chart), "--set", "greeting=from-the-test", "--wait", "--timeout", "90s")
    releases = json.loads(helm("list", "-o", "json").stdout)
    assert [(r["name"], r["status"]) for r in releases] == [("probe", "deployed")]
    config = k8s_cluster.get("configmap", "probe-config", "-n", namespace)
    assert config["data"] == {"greeting": "from-the-test"}
    status = k8s_cluster.get("deployment", "probe-app", "-n", namespace)["status"]
    assert status.get("availableReplicas") == 2, status  # --wait waited for it

    helm("uninstall", "probe", "--wait", "--timeout", "90s")
    assert json.loads(helm("list", "-o", "json").stdout) == []
    for kind, name in (("configmap", "probe-config"), ("deployment", "probe-app")):
        wait_until(lambda k=kind, n=name: "NotFound" in k8s_cluster.kubectl("get", k, n, "-n", namespace,
                                                                            check=False).stderr,
                   timeout=30, what=f"{kind}/{name} deleted")


# -- versions ----------------------------------------------------------------------------------------
VERSION_CHECKS = [
    ("etcd", ["--version"], rf"^etcd Version: {re.escape(VERSIONS['go.etcd.io/etcd/server/v3'][1:])}$"),
    ("kube-apiserver", ["--version"], rf"^Kubernetes {re.escape(K8S_VERSION)}$"),
    ("kube-controller-manager", ["--version"], rf"^Kubernetes {re.escape(K8S_VERSION)}$"),
    ("kube-scheduler", ["--version"], rf"^Kubernetes {re.escape(K8S_VERSION)}$"),
    ("kubectl", ["version", "--client"], rf"^Client Version: {re.escape(K8S_VERSION)}$"),
    ("kwok", ["--version"], rf"\b{re.escape(VERSIONS['sigs.k8s.io/kwok'])}\b"),
    ("kube-state-metrics", ["version"], rf"version {re.escape(VERSIONS['k8s.io/kube-state-metrics/v2'])}\b"),
    ("helm", ["version", "--template", "{{.Version}}"], rf"^{re.escape(VERSIONS['helm.sh/helm/v3'])}$"),
]


@pytest.mark.parametrize("binary,args,pattern", VERSION_CHECKS, ids=[c[0] for c in VERSION_CHECKS])
def test_binary_reports_its_real_version(k8s_cluster, binary, args, pattern):
    local_only(k8s_cluster)
    proc = subprocess.run([k8s_cluster.bin_dir / binary, *args], capture_output=True, text=True, timeout=30)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and re.search(pattern, out, re.M), f"{binary} {' '.join(args)}: {out}"


def test_api_server_reports_its_version(k8s_cluster):
    local_only(k8s_cluster)
    server = json.loads(k8s_cluster.kubectl("version", "-o", "json").stdout)["serverVersion"]
    assert (server["gitVersion"], server["major"], server["minor"]) == (K8S_VERSION, "1", K8S_VERSION.split(".")[1])


# -- start-up and stop -------------------------------------------------------------------------------
def test_ready_in_under_a_minute(k8s_cluster):
    local_only(k8s_cluster)
    assert k8s_cluster.startup_s < 60


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


INNER_TEST = """
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, {here!r})
from k8s_harness import local_cluster  # noqa: E402


@pytest.fixture
def cluster():
    with local_cluster(Path({run_dir!r}), port_offset={offset}) as c:
        yield c


def test_fails_on_purpose(cluster):
    nodes = [n["metadata"]["name"] for n in cluster.get("nodes")["items"]]
    Path({report!r}).write_text(json.dumps({{"nodes": nodes, "pids": cluster.pids(), "startup_s": cluster.startup_s}}))
    assert False, "this test fails on purpose"
"""


def test_stop_leaves_no_process_even_when_a_test_fails(k8s_cluster, tmp_path):
    """A second cluster (ports shifted by 5) under a pytest run whose one test fails: its fixture
    must still stop every process it started, and free every port."""
    local_only(k8s_cluster)
    offset = port_offset_from_env() + 5
    run_dir, report = tmp_path / "run", tmp_path / "report.json"
    (tmp_path / "test_inner.py").write_text(INNER_TEST.format(here=str(HERE), run_dir=str(run_dir), offset=offset,
                                                              report=str(report)))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", "pytest.ini",
                           "--rootdir", str(tmp_path), "test_inner.py"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 1 and "1 failed" in proc.stdout, proc.stdout[-4000:] + proc.stderr[-2000:]
    seen = json.loads(report.read_text())
    assert seen["nodes"] == ["kwok-node-0"] and seen["startup_s"] < 60, seen
    started = {name: tuple(p) for name, p in seen["pids"].items()}
    assert set(started) == {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok",
                            "kube-state-metrics"}, started
    assert [name for name, (pid, st) in started.items() if process_alive(pid, st)] == []
    ports = [23790, 23800, 16443, 20257, 20259, 18080, 18081, 18082]
    assert [p + offset for p in ports if not port_free(p + offset)] == []
    # the session's cluster, on the unshifted ports, was left alone
    assert all(process_alive(pid, st) for pid, st in k8s_cluster.pids().values())
