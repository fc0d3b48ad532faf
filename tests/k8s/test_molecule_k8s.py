"""molecule/k8s, its test sequence a step per call: the kubernetes target on a real API server.

destroy (teardown on an empty cluster), then syntax, create, check (site.yml --check on the fresh
cluster), converge = site.yml with inventories/k8s, idempotence (changed=0), verify (objects and
spec, Deployments Available, playbooks/verify.yml, then the FraudConsumerDown drill), check and
converge at -vvv; then, once the test has read the passwords converge generated, destroy
(teardown.yml, which fails if anything labelled fraudstream is left). For the drill this module runs
a real Prometheus that scrapes the harness's kube-state-metrics and loads the rules from the
cluster's PrometheusRules, and a real Alertmanager.
"""
import base64
import os
import re
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests
import yaml

from conftest import ROOT, free_port, recap, run, shutdown_supervisord

pytestmark = pytest.mark.e2e
ANSI = re.compile(r"\x1b\[[0-9;]*m|\x1b\]8;;[^\x1b]*\x1b\\")
# Shifted with the harness's ports (FRAUDSTREAM_K8S_PORT_OFFSET), so two runs can share the machine.
_OFFSET = int(os.environ.get("FRAUDSTREAM_K8S_PORT_OFFSET", "0"))
PROMETHEUS_PORT, ALERTMANAGER_PORT = 19190 + _OFFSET, 19193 + _OFFSET
CRDS = Path(os.environ.get("FRAUDSTREAM_CRDS") or ROOT.parent / "shared/crds")
# The namespaces the scenario deploys to (fraudstream_namespaces of inventories/k8s).
NAMESPACES = yaml.safe_load((ROOT / "inventories/k8s/group_vars/all.yml").read_text())["fraudstream_namespaces"]


@pytest.fixture(scope="module")
def standin_kafka(tmp_path_factory):
    """A broker of its own (own FRAUDSTREAM_HOME, free ports; tests/k8s/standin_kafka.yml) for the
    topics, in place of Strimzi's, which kwok cannot run. Not the platform's: this test runs beside it."""
    home = tmp_path_factory.mktemp("standin-kafka")
    port, controller, jmx = free_port(), free_port(), free_port()
    try:
        run(["ansible-playbook", "-i", "inventories/local", "tests/k8s/standin_kafka.yml", "-e", f"kafka_port={port}",
             "-e", f"kafka_controller_port={controller}", "-e", f"kafka_jmx_exporter_port={jmx}"],
            env_extra={"FRAUDSTREAM_HOME": str(home)}, timeout=900)
        yield f"127.0.0.1:{port}"
    finally:
        shutdown_supervisord(home)


def serve(argv, log: Path, health: str) -> subprocess.Popen:
    proc = subprocess.Popen(argv, stdout=log.open("w"), stderr=subprocess.STDOUT)
    for _ in range(120):
        try:
            if requests.get(health, timeout=1).ok:
                return proc
        except requests.RequestException:
            pass
        assert proc.poll() is None, f"{argv[0]} exited: {log.read_text()[-2000:]}"
        time.sleep(0.5)
    proc.terminate()
    pytest.fail(f"{argv[0]} not healthy in 60 s: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def drill_monitoring(k8s_cluster, tmp_path_factory):
    """Prometheus (kube-state-metrics of the harness, rules dropped in by molecule's verify) and
    Alertmanager on 127.0.0.1, as the operator would run them in the cluster."""
    if not k8s_cluster.ksm_url:
        pytest.skip("no kube-state-metrics URL for this cluster (set FRAUDSTREAM_KSM_URL)")
    base = tmp_path_factory.mktemp("drill")
    rules = base / "rules"
    rules.mkdir()
    (base / "alertmanager.yml").write_text("route: {receiver: hold, group_wait: 1s}\nreceivers: [{name: hold}]\n")
    ksm = urlparse(k8s_cluster.ksm_url)
    (base / "prometheus.yml").write_text(f"""
global: {{scrape_interval: 5s, evaluation_interval: 5s}}
rule_files: ["{rules}/*.yml"]
alerting: {{alertmanagers: [{{static_configs: [{{targets: ["127.0.0.1:{ALERTMANAGER_PORT}"]}}]}}]}}
scrape_configs:
  - job_name: kube-state-metrics
    metrics_path: {ksm.path or '/metrics'}
    static_configs: [{{targets: ["{ksm.netloc}"]}}]
""")
    am = serve(["prometheus-alertmanager", f"--config.file={base}/alertmanager.yml", f"--storage.path={base}/am",
                f"--web.listen-address=127.0.0.1:{ALERTMANAGER_PORT}", "--cluster.listen-address="],
               base / "alertmanager.log", f"http://127.0.0.1:{ALERTMANAGER_PORT}/-/healthy")
    prom = serve(["prometheus", f"--config.file={base}/prometheus.yml", f"--storage.tsdb.path={base}/tsdb",
                  f"--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}", "--web.enable-lifecycle"],
                 base / "prometheus.log", f"http://127.0.0.1:{PROMETHEUS_PORT}/-/healthy")
    yield {"FRAUDSTREAM_TEST_PROMETHEUS": f"http://127.0.0.1:{PROMETHEUS_PORT}",
           "FRAUDSTREAM_TEST_ALERTMANAGER": f"http://127.0.0.1:{ALERTMANAGER_PORT}",
           "FRAUDSTREAM_TEST_RULES_DIR": str(rules)}
    for proc in (prom, am):
        proc.terminate()
        proc.wait(timeout=30)


# The scenario's test sequence, a step per call: check mode and the first converge (where the
# passwords are generated and stored) at -vvv for the leak test; the rest, which prints far more at
# -vvv and handles the same secrets, at the default verbosity.
STEPS = [("syntax", 0), ("create", 0), ("check", 3), ("converge", 3), ("idempotence", 0), ("verify", 0)]


def molecule(command, env, *args, timeout=2400, check=True):
    """molecule <command> --scenario-name k8s; its output without colour. check: it passed."""
    proc = run(["molecule", command, "--scenario-name", "k8s", *args], timeout=timeout, check=False, env_extra=env)
    out = ANSI.sub("", proc.stdout + proc.stderr)
    if check:  # on failure, show the first failed task (rescued ones print "fatal:" too)
        failure = next((m.start() for m in re.finditer(r"fatal: |\[ERROR\]", out)), len(out))
        assert proc.returncode == 0, out[max(0, failure - 3000):failure + 5000]
    return out


def kafka_passwords(cluster):
    """The SCRAM passwords converge chose (generated here: the scenario sets none), from their Secrets."""
    found = {}
    for user in ("admin", "producer", "scorer"):
        secret = cluster.get("secret", "-n", NAMESPACES["kafka"], f"fraudstream-kafka-{user}")
        found[user] = base64.b64decode(secret["data"]["password"]).decode()
    return found


def everything_but_secrets(cluster):
    """Every object of the fraudstream namespaces but the Secrets, as JSON text."""
    kinds = cluster.kubectl("api-resources", "--namespaced=true", "--verbs=list", "-o", "name").stdout.split()
    kinds = ",".join(k for k in kinds if k != "secrets")
    return {ns: cluster.kubectl("get", kinds, "-n", ns, "-o", "json", "--ignore-not-found").stdout
            for ns in NAMESPACES.values()}


def test_molecule_k8s_scenario(standin_kafka, k8s_cluster, drill_monitoring):
    """Topics are made by kafka_topic against the stand-in broker (no Kafka pod runs on kwok).

    Check and converge run at -vvv, and the scenario is destroyed only after this test has read the
    passwords converge generated: they must appear neither in any step's output nor in any object
    of the cluster but their Secrets."""
    if not CRDS.is_dir():
        pytest.skip(f"no CRD schemas at {CRDS} (../shared/crds beside the clone, or FRAUDSTREAM_CRDS)")
    path = f"{k8s_cluster.bin_dir}{os.pathsep}{os.environ['PATH']}" if k8s_cluster.bin_dir else os.environ["PATH"]
    env = {"KUBECONFIG": str(k8s_cluster.kubeconfig), "FRAUDSTREAM_CRDS": str(CRDS.resolve()),
           "PATH": f"{ROOT / '.venv/bin'}{os.pathsep}{path}", "FRAUDSTREAM_STANDIN_KAFKA": standin_kafka,
           **drill_monitoring}
    empty = " ".join(molecule("destroy", env).split())
    assert "nothing labelled fraudstream" in empty, "teardown on a cluster without fraudstream passes"
    out = {}
    try:
        for step, verbosity in STEPS:
            out[step] = molecule(step, {**env, "ANSIBLE_VERBOSITY": str(verbosity)})
        passwords, objects = kafka_passwords(k8s_cluster), everything_but_secrets(k8s_cluster)
    finally:
        gone = molecule("destroy", env, check=False)
    assert all(host["changed"] == 0 for host in recap(out["idempotence"]).values()), out["idempotence"][-3000:]
    flat = " ".join(out["verify"].split())
    assert "FraudConsumerDown pending" in flat and "FraudConsumerDown firing (in Alertmanager)" in flat, \
        "the drill saw the alert go pending, then fire and reach Alertmanager"
    assert "nothing labelled fraudstream" in " ".join(gone.split()), f"teardown proved that nothing is left:\n{gone[-3000:]}"
    # The leak test of the kubernetes path (tests/e2e/test_security.py has the local one).
    loud = out["check"] + out["converge"]
    assert "AnsiballZ_k8s.py" in loud and "ESTABLISH LOCAL CONNECTION" in loud, "check and converge ran at -vvv"
    assert len(set(passwords.values())) == 3 and min(map(len, passwords.values())) >= 24, "generated passwords"
    secrets = {**passwords, "grafana": "molecule-k8s-only"}  # the scenario's vars/test.yml
    leaks = [f"{who} in {where}" for who, secret in secrets.items()
             for where, text in {**{f"molecule {k}": v for k, v in out.items()}, **objects}.items() if secret in text]
    assert not leaks, f"a password appears outside its Secret: {leaks}"
