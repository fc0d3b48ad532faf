"""Shared helpers: run the project's playbooks and read their recap."""
import json
import os
import re
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from kafka.admin import KafkaAdminClient

# Under pytest-xdist, each worker that starts a control plane shifts its ports (cluster.sh reads this).
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if _WORKER.startswith("gw"):
    os.environ["FRAUDSTREAM_K8S_PORT_OFFSET"] = str(
        int(os.environ.get("FRAUDSTREAM_K8S_PORT_OFFSET", "0")) + 300 * int(_WORKER[2:]))

# tests/k8s holds the Kubernetes control plane harness; its fixtures live here because a second
# conftest.py would shadow this one for the tests that `from conftest import ...`.
sys.path.insert(0, str(Path(__file__).resolve().parent / "k8s"))
from k8s_harness import Cluster, external_cluster, local_cluster  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# The download cache the roles share (Kafka, the supervisor venv): FRAUDSTREAM_CACHE, as in the inventory.
CACHE = Path(os.environ.get("FRAUDSTREAM_CACHE") or Path.home() / ".cache/fraudstream")
SUPERVISORCTL = str(CACHE / "supervisor-venv/bin/supervisorctl")
RECAP = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+"
    r"unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)", re.M)


def run(cmd, timeout=1800, check=True, env_extra=None, **kwargs):
    """Run a command from the project root; on failure show its tail in the assertion."""
    env = {**os.environ, "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1",
           "PATH": f"{ROOT / '.venv/bin'}{os.pathsep}{os.environ['PATH']}", **(env_extra or {})}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout, **kwargs)
    if check:
        assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    return proc


def playbook(name, *extra, check=True):
    return run(["ansible-playbook", name, *extra], check=check)


def site(*args, env=None, check=True):
    """site.yml with the JSON callback: (rc, {task name: [host results]}, stats)."""
    proc = run(["ansible-playbook", "site.yml", *args], check=False,
               env_extra={"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", **(env or {})})
    try:
        out = json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"no JSON from ansible-playbook {args}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    tasks = {}
    for play in out["plays"]:
        for task in play["tasks"]:
            tasks.setdefault(task["task"]["name"], []).extend(task["hosts"].values())
    if check:
        failed = {n: r for n, rs in tasks.items() for r in rs if r.get("failed")}
        assert proc.returncode == 0 and not failed, f"site.yml {args} rc={proc.returncode}: {json.dumps(failed)[:4000]}"
    return proc.returncode, tasks, out["stats"]


def recap(output):
    """Per-host counters of the last PLAY RECAP in an ansible-playbook output."""
    hosts = {m["host"]: {k: int(v) for k, v in m.groupdict().items() if k != "host"}
             for m in RECAP.finditer(output)}
    assert hosts, f"no PLAY RECAP in output:\n{output[-3000:]}"
    return hosts


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_block(size, start=31000):
    """A base port such that base..base+size-1 are all free on 127.0.0.1."""
    for base in range(start, 40000, size):
        socks = []
        try:
            for port in range(base, base + size):
                sock = socket.socket()
                sock.bind(("127.0.0.1", port))
                socks.append(sock)
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError(f"no block of {size} free ports on 127.0.0.1 from {start}")


def shutdown_supervisord(home):
    """Stop the supervisord a test started under a FRAUDSTREAM_HOME of its own, and all it runs."""
    conf = Path(home) / "supervisor/supervisord.conf"
    if conf.exists():
        subprocess.run([SUPERVISORCTL, "-c", str(conf), "shutdown"], capture_output=True, timeout=120)


def port_open(port, host="127.0.0.1"):
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


# -- parallel runs: `make test` is `pytest -n 2 --dist loadscope --no-loadscope-reorder` -------------
# Files that share a fixed resource form one scope, run by one worker in file order: the local
# platform's ports and home ("platform"), the Kubernetes control plane's ports ("k8s"; each worker
# shifts them, so two runs can share the machine). Every other file is a scope of its own, so its module
# fixtures are set up once. The queue starts with the platform (the longest scope), then the long
# independent files, then the rest to fill the tail.
# (xdist_group markers would say the same, but pytest 9 ignores the node ids xdist 3.8 rewrites
# for them: the scheduler below groups instead.)
PLATFORM_FILES = ("tests/apps/", "tests/e2e/test_local_platform.py",
                  "tests/e2e/test_targets.py", "tests/reliability/", "tests/images/",
                  "tests/collection/test_collection.py", "tests/awx/test_awx_runner.py")
# molecule/k8s (in "k8s", last there), molecule's default scenario and test_security run brokers
# of their own (own home and ports) beside it. They wait behind tests/aws and the control plane's
# tests, so that the platform's first `make up` has installed what they install too (apt, the
# Kafka jars) before they start.
QUEUE = ("platform", "tests/aws/", "k8s", "tests/e2e/test_molecule.py", "tests/e2e/test_security.py",
         "tests/e2e/test_fresh_host.py")


def scope_of(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0]
    if path.startswith(PLATFORM_FILES):
        return "platform"
    if path.startswith("tests/k8s/"):
        return "k8s"
    return path


@pytest.hookimpl(optionalhook=True)  # also runs without xdist (-p no:xdist)
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class SharedResourceScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return scope_of(nodeid)

    return SharedResourceScheduling(config, log)


def pytest_collection_modifyitems(config, items):
    def rank(item):
        scope = scope_of(item.nodeid)
        return next((i for i, q in enumerate(QUEUE) if scope.startswith(q)), len(QUEUE))
    items.sort(key=rank)  # stable: file order within a rank


@pytest.fixture(scope="session")
def platform():
    """The local platform, brought up once per session by `make up` and torn down at the end
    (kept when FRAUDSTREAM_KEEP_PLATFORM=1; FRAUDSTREAM_REUSE_PLATFORM=1 also skips `make up`:
    to iterate on one test against a platform that is already up)."""
    proc = None if os.environ.get("FRAUDSTREAM_REUSE_PLATFORM") == "1" else run(["make", "up"])
    yield proc
    if os.environ.get("FRAUDSTREAM_KEEP_PLATFORM") != "1":
        playbook("teardown.yml")


# -- fixtures for tests that run the apps against the broker of `platform` -------------------------
BOOTSTRAP = "127.0.0.1:9092"
FRAUDSTREAM = str(ROOT / ".venv/bin/fraudstream")


@pytest.fixture(scope="session")
def model(tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "artifact"
    subprocess.run([FRAUDSTREAM, "train", "--days", "21", "--out", str(out)], check=True, capture_output=True)
    return out


def create_topics(names: dict, partitions: int) -> None:
    """The changelog as the fraud_workloads role makes it: its records carry event time, so no age limit."""
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    admin.create_topics({n: {"num_partitions": partitions, "replication_factor": 1,
                             "configs": {"retention.ms": "-1"} if kind == "changelog" else {}}
                         for kind, n in names.items()}, wait_for_metadata=True)
    admin.close()


def delete_topics(names: dict) -> None:
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    admin.delete_topics(list(names.values()))
    admin.close()


def topic_names(*kinds) -> dict:
    prefix = f"t{uuid.uuid4().hex[:6]}"
    return {k: f"{prefix}-{k}" for k in kinds}


TOPIC_KINDS = ("transactions", "labels", "scores", "alerts", "dlq", "changelog")


@pytest.fixture
def topics(platform):
    """Fresh topics (3 partitions) for the apps, the scorers' changelog included; deleted afterwards."""
    names = topic_names(*TOPIC_KINDS)
    create_topics(names, 3)
    yield names
    delete_topics(names)


# -- a Kubernetes API server (tests/k8s) ------------------------------------------------------------
@pytest.fixture(scope="session")
def k8s_cluster(tmp_path_factory) -> Cluster:
    """A real Kubernetes API server: by default built from the Go module proxy (once; later
    sessions reuse ~/.cache/fraudstream) and started on 127.0.0.1 (tests/k8s/controlplane/cluster.sh).
    With FRAUDSTREAM_KUBECONFIG set, that cluster (kind, minikube, EKS), and nothing is built or started."""
    external = os.environ.get("FRAUDSTREAM_KUBECONFIG")
    if external:
        yield external_cluster(external)
        return
    with local_cluster(tmp_path_factory.mktemp("k8s") / "run") as cluster:
        yield cluster


@pytest.fixture
def namespace(k8s_cluster):
    """A namespace of its own for one test, deleted afterwards."""
    name = f"fraudstream-test-{uuid.uuid4().hex[:8]}"
    k8s_cluster.kubectl("create", "namespace", name)
    yield name
    k8s_cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
