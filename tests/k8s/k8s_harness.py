"""The test control plane (controlplane/cluster.sh) from Python, or an external cluster.

`local_cluster()` builds the binaries if needed, starts a fresh cluster and stops it on the way
out, whatever happened in between (and at interpreter exit, should the `with` never unwind).
"""
import atexit
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONTROLPLANE = HERE / "controlplane"
BUILD_SH = CONTROLPLANE / "build.sh"
CLUSTER_SH = CONTROLPLANE / "cluster.sh"
ROOT = HERE.parents[1]
CRDS = Path(os.environ.get("FRAUDSTREAM_CRDS", ROOT.parent / "shared" / "crds"))
BUILD_TIMEOUT = 3600  # cold: about 10 min on 2 cores; leave room for a slow proxy


def module_versions() -> dict[str, str]:
    """Required module versions from the wrapper module's go.mod: what the binaries must report."""
    versions = {}
    for line in (CONTROLPLANE / "go.mod").read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].startswith("v"):
            versions.setdefault(parts[0], parts[1])
    return versions


def port_offset_from_env() -> int:
    return int(os.environ.get("FRAUDSTREAM_K8S_PORT_OFFSET", "0"))


def build() -> Path:
    """Build (or reuse) the binaries; returns their directory."""
    proc = subprocess.run([BUILD_SH], capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    if proc.returncode != 0:
        raise RuntimeError(f"{BUILD_SH} exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    return Path(proc.stdout.split()[-1])


@dataclass
class Cluster:
    kubeconfig: Path
    bin_dir: Path | None = None  # the built binaries; None when the cluster is external
    run_dir: Path | None = None  # state dir of a local cluster (logs, pids)
    ksm_url: str | None = None  # kube-state-metrics /metrics, when known
    startup_s: float | None = None
    env: dict = field(default_factory=dict)

    @property
    def local(self) -> bool:
        return self.run_dir is not None

    def tool(self, name: str) -> str:
        """A built binary, else one on PATH (FRAUDSTREAM_KUBECTL / FRAUDSTREAM_HELM override)."""
        override = os.environ.get(f"FRAUDSTREAM_{name.upper()}")
        if override:
            return override
        if self.bin_dir and (self.bin_dir / name).exists():
            return str(self.bin_dir / name)
        found = shutil.which(name)
        if not found:
            raise FileNotFoundError(f"{name} is neither built ({self.bin_dir}) nor on PATH")
        return found

    def run(self, tool: str, *args: str, check: bool = True, input: str | None = None,
            timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
        cmd = [self.tool(tool), *args]
        proc = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "KUBECONFIG": str(self.kubeconfig), **(env or {})})
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return proc

    def kubectl(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run("kubectl", *args, **kwargs)

    def get(self, *args: str) -> dict:
        return json.loads(self.kubectl("get", "-o", "json", *args).stdout)

    def pids(self) -> dict[str, tuple[int, str]]:
        """name -> (pid, start time) of the processes a local cluster started, running or stopped."""
        for name in ("pids", "pids.stopped"):
            path = self.run_dir / name if self.run_dir else None
            if path and path.exists():
                rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
                return {r[0]: (int(r[1]), r[2] if len(r) > 2 else "") for r in rows}
        return {}


def process_alive(pid: int, starttime: str) -> bool:
    """True while that process (not a later one that reused its PID) exists, zombies excepted."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[1].split()
    return fields[19] == starttime and fields[0] != "Z"  # field 22 (starttime), field 3 (state)


def wait_until(predicate, timeout: float, interval: float = 0.2, what: str = "condition"):
    """Poll predicate() until it returns a truthy value; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what} not reached in {timeout:.0f} s (last: {last!r})")


@contextmanager
def local_cluster(run_dir: Path, port_offset: int | None = None) -> Iterator[Cluster]:
    """Ports are cluster.sh's, shifted by port_offset (default: $FRAUDSTREAM_K8S_PORT_OFFSET or 0)."""
    if port_offset is None:
        port_offset = port_offset_from_env()
    bin_dir = build()
    env = {**os.environ, "FRAUDSTREAM_K8S_RUN": str(run_dir),
           "FRAUDSTREAM_K8S_PORT_OFFSET": str(port_offset), "FRAUDSTREAM_CRDS": str(CRDS)}

    def stop():
        return subprocess.run([CLUSTER_SH, "down"], env=env, capture_output=True, text=True, timeout=120)

    # Stop on interpreter exit too, and turn SIGTERM into an orderly unwind (pytest's finalizers).
    atexit.register(stop)
    previous = None
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        proc = subprocess.run([CLUSTER_SH, "up"], env=env, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"{CLUSTER_SH} up exited {proc.returncode}:\n{proc.stderr[-6000:]}")
        startup_ms = int((run_dir / "startup").read_text().split()[0])
        yield Cluster(kubeconfig=Path(proc.stdout.split()[-1]), bin_dir=bin_dir, run_dir=run_dir,
                      ksm_url=f"http://127.0.0.1:{18080 + port_offset}/metrics", startup_s=startup_ms / 1000,
                      env=env)
    finally:
        result = stop()
        atexit.unregister(stop)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if result.returncode != 0:
            raise RuntimeError(f"{CLUSTER_SH} down exited {result.returncode}:\n{result.stderr[-3000:]}")


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def external_cluster(kubeconfig: str) -> Cluster:
    """A cluster someone else runs (kind, minikube, EKS): nothing is built or started."""
    cache = Path(os.environ.get("FRAUDSTREAM_CACHE", Path.home() / ".cache" / "fraudstream"))
    built = cache / f"k8s-{module_versions()['k8s.io/kubernetes']}" / "bin"
    return Cluster(kubeconfig=Path(kubeconfig), bin_dir=built if built.is_dir() else None,
                   ksm_url=os.environ.get("FRAUDSTREAM_KSM_URL"))
