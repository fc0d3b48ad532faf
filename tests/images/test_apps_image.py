"""The apps image (apps/Dockerfile, roles/apps_image), built and run here without a Docker engine.

Built once per session through playbooks/build_images.yml in a clean clone (the base tarball in
~/.cache/fraudstream/images is reused: a warm base; bench/README.md has cold and warm times), then
run with podman and runc exactly as the k8s Deployments run it: UID 65534, read-only root
filesystem without any writable mount, every capability dropped, no privilege escalation, the
ConfigMaps' environment and the same args. Host networking reaches the local platform's Kafka.
"""
import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests
import yaml
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka_helpers import read_all

from conftest import BOOTSTRAP, ROOT, TOPIC_KINDS, create_topics, delete_topics, free_port, recap, topic_names

HOME = Path(os.environ.get("FRAUDSTREAM_HOME", Path.home() / ".local/share/fraudstream"))
DIGEST_FILE = HOME / "images/apps-image.yml"
IMAGE = "localhost/fraudstream/apps"
SIZE_TARGET_MB = 500  # README, "The apps image": Debian + Python ~175 MB, numpy/scipy/scikit-learn/xgboost ~260 MB
# As the k8s Deployments (roles/fraud_workloads/templates/k8s/deployments.yml.j2) and the ulimits
# runc needs on this machine. Host networking stands in for the pod's network namespace; images
# are run by their registry digest (pulled from the local plain-HTTP registry when absent).
PODMAN_RUN = ["podman", "run", "--tls-verify=false", "--runtime", "runc", "--network", "host",
              "--user", "65534:65534", "--read-only", "--read-only-tmpfs=false",
              "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
              "--ulimit", "nofile=16384:16384", "--ulimit", "nproc=4096:4096"]


def sh(*cmd, check=True, timeout=600, **kwargs):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check:
        assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Build through the playbook in a clean clone of HEAD, twice: the second run changes nothing."""
    if not (shutil.which("buildah") or shutil.which("apt-get")):
        pytest.skip("neither buildah nor apt-get: the playbook cannot install the Debian build tools here")
    clone = tmp_path_factory.mktemp("clone") / "fraudstream"
    sh("git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone))
    env = {**os.environ, "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1",
           "PATH": f"{ROOT / '.venv/bin'}{os.pathsep}{os.environ['PATH']}"}
    runs = []
    for _ in range(2):
        proc = sh(str(ROOT / ".venv/bin/ansible-playbook"), "playbooks/build_images.yml",
                  "-e", "apps_image_registry_start=true", cwd=clone, env=env, timeout=1800)
        runs.append(recap(proc.stdout)["localhost"])
    commit = sh("git", "-C", str(clone), "rev-parse", "HEAD").stdout.strip()
    return {"runs": runs, "commit": commit, "clone": clone,
            "ref": yaml.safe_load(DIGEST_FILE.read_text())["fraudstream_apps_image"]}


def inspect(ref):
    return json.loads(sh("podman", "image", "inspect", ref).stdout)[0]


def test_second_build_is_a_cache_hit(built):
    first, second = built["runs"]
    assert first["failed"] == 0 and second["failed"] == 0
    assert second["changed"] == 0, "the second run with the same inputs rebuilt, retagged or pushed"


def test_image_is_small_labelled_and_runs_as_a_numeric_user(built):
    image = inspect(f"{IMAGE}:{built['commit'][:7]}")
    assert image["Id"] == inspect(f"{IMAGE}:0.1.0")["Id"]
    labels = image["Config"]["Labels"]
    assert labels["org.opencontainers.image.version"] == "0.1.0"
    assert labels["org.opencontainers.image.revision"] == built["commit"]
    for key in ("source", "title", "licenses"):
        assert labels[f"org.opencontainers.image.{key}"]
    assert image["Config"]["User"].split(":")[0].isdigit() and image["Config"]["User"] != "0"
    assert image["Size"] < SIZE_TARGET_MB * 10**6, f"{image['Size'] / 1e6:.0f} MB, target {SIZE_TARGET_MB} MB"
    # No compiler, no pip, no pip cache; the model world-readable at /model, loadable as UID 65534.
    check = ("for t in gcc cc c++ make pip pip3; do command -v $t && exit 1; done;"
             " ls -d /root/.cache /opt/fraudstream/bin/pip* 2>/dev/null && exit 1;"
             " test -r /model/model.json && test -r /model/artifact.json"
             " && python3 -c 'from fraudstream.model import Artifact; Artifact.load(\"/model\")'")
    proc = sh(*PODMAN_RUN, "--rm", "--entrypoint", "sh", built["ref"], "-c", check, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_pull_back_by_digest(built):
    ref = built["ref"]
    repo, digest = ref.split("@")
    assert repo.startswith("127.0.0.1:") and len(digest) == len("sha256:") + 64
    proc = sh("podman", "pull", "--tls-verify=false", ref)
    assert proc.stdout.strip().splitlines()[-1] == inspect(f"{IMAGE}:0.1.0")["Id"]
    manifest = sh("skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{ref}").stdout
    assert "sha256:" + __import__("hashlib").sha256(manifest.encode()).hexdigest() == digest


def container(name, args, env, ref):
    flags = [f"--env={k}={v}" for k, v in env.items()]
    sh(*PODMAN_RUN, "--detach", "--name", name, *flags, ref, *args)


def committed_and_ends(group, topic):
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    committed = {tp.partition: meta.offset for tp, meta in admin.list_group_offsets(group)[group].items()
                 if tp.topic == topic}
    admin.close()
    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP)
    tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    ends = {tp.partition: off for tp, off in consumer.end_offsets(tps).items()}
    consumer.close()
    return committed, ends


def wait_http(port, path, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code == 200:
                return True
        except requests.ConnectionError:
            pass
        time.sleep(1)
    return False


def test_producer_and_scorer_as_the_deployments_run_them(built, platform):
    """fraud-producer produces, fraud-consumer scores; probes answer; SIGTERM commits the last batch."""
    names = topic_names(*TOPIC_KINDS)
    create_topics(names, 3)
    group, tag, n = f"{names['transactions']}-group", uuid.uuid4().hex[:6], 3000
    producer, scorer = f"fs-test-producer-{tag}", f"fs-test-consumer-{tag}"
    topics_env = {f"FRAUDSTREAM_{k.upper()}": v for k, v in names.items()}
    # The ConfigMaps' settings (tasks/kubernetes/manifests.yml); the listen address is 127.0.0.1
    # instead of the pod's 0.0.0.0 because the container shares the host's network.
    common = {"FRAUDSTREAM_BOOTSTRAP_SERVERS": BOOTSTRAP, "FRAUDSTREAM_LABEL_DELAY_DAYS": "7",
              "FRAUDSTREAM_METRICS_HOST": "127.0.0.1", **topics_env}
    p_port, s_port = free_port(), free_port()
    scorer_env = {**common, "FRAUDSTREAM_MODEL_DIR": "/model", "FRAUDSTREAM_GROUP_ID": group,
                  "FRAUDSTREAM_METRICS_PORT": str(s_port)}
    try:
        container(scorer, ["score"], scorer_env, built["ref"])
        assert wait_http(s_port, "/healthz"), logs(scorer)
        assert wait_http(s_port, "/readyz"), logs(scorer)
        container(producer, ["produce"], {**common, "FRAUDSTREAM_RATE": "300", "FRAUDSTREAM_MAX_MESSAGES": str(n),
                                          "FRAUDSTREAM_METRICS_PORT": str(p_port)}, built["ref"])
        assert wait_http(p_port, "/metrics", timeout=60), logs(producer)
        # SIGTERM mid-stream: a clean exit, and no committed offset past a transaction not scored.
        assert len(read_all(names["scores"], expect=500, timeout=120)) >= 500
        sh("podman", "stop", "--time", "60", scorer)
        assert inspect_container(scorer)["ExitCode"] == 0, logs(scorer)
        committed, _ = committed_and_ends(group, names["transactions"])
        scored = {json.loads(r.value)["tx_id"] for r in read_all(names["scores"], timeout=10)}
        unscored = [(r.partition, r.offset) for r in read_all(names["transactions"], timeout=10)
                    if r.offset < committed.get(r.partition, 0) and json.loads(r.value)["tx_id"] not in scored]
        assert sum(committed.values()) > 0 and not unscored, f"committed past unscored transactions: {unscored[:5]}"
        # The same container again (as a restarted pod) resumes from the commits and scores the rest.
        sh("podman", "start", scorer)
        assert wait_http(s_port, "/readyz"), logs(scorer)
        sh("podman", "wait", producer, timeout=120)
        assert inspect_container(producer)["ExitCode"] == 0, logs(producer)
        assert len({json.loads(r.value)["tx_id"] for r in read_all(names["scores"], expect=n, timeout=180)}) == n
        # Everything scored, then SIGTERM: the last batch is committed, up to the log end.
        sh("podman", "stop", "--time", "60", scorer)
        assert inspect_container(scorer)["ExitCode"] == 0, logs(scorer)
        committed, ends = committed_and_ends(group, names["transactions"])
        assert sum(ends.values()) == n and committed == ends
    finally:
        for name in (producer, scorer):
            sh("podman", "rm", "--force", "--time", "10", name, check=False)
        delete_topics(names)


def logs(name):
    proc = sh("podman", "logs", name, check=False)
    return (proc.stdout + proc.stderr)[-3000:]


def inspect_container(name):
    return json.loads(sh("podman", "container", "inspect", name).stdout)[0]["State"]


def test_the_built_containerfile_passes_hadolint(built):
    hadolint = ROOT / ".venv/bin/hadolint"
    if not hadolint.exists():
        pytest.skip("hadolint is not in .venv (make venv installs it)")
    sh(str(hadolint), str(built["clone"] / "apps/Dockerfile"))
