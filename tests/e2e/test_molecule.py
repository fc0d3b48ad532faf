"""`molecule test` (molecule/default): destroy, syntax, create, converge = site.yml, idempotence,
verify (verify.yml + drill.yml), destroy. Molecule fails the scenario if any step fails, including
idempotence (a second converge with changed > 0).

It runs beside the local platform's tests (on another pytest-xdist worker): a FRAUDSTREAM_HOME of
its own and every port the platform listens on moved (FRAUDSTREAM_MOLECULE_EXTRA_VARS, which
molecule.yml passes to each playbook), so its supervisord, broker, Prometheus, Alertmanager and
workloads never meet the platform's."""
import re
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml

from conftest import free_block, run

pytestmark = pytest.mark.e2e
ANSI = re.compile(r"\x1b\[[0-9;]*m|\x1b\]8;;[^\x1b]*\x1b\\")
# Every listener of the local target, as an offset in a block of free ports (scorers use port + i).
PORTS = {"kafka_port": 0, "kafka_controller_port": 1, "kafka_jmx_exporter_port": 2,
         "monitoring_prometheus_port": 3, "monitoring_alertmanager_port": 4,
         "fraud_workloads_producer_port": 5, "fraud_workloads_lag_exporter_port": 6,
         "fraud_workloads_scorer_port": 10}
BLOCK = 20


@pytest.fixture
def short_tmp():
    """A short directory: pytest's tmp_path under xdist is long, and supervisord's socket path in the
    home must fit a Unix socket's 107 bytes (local_services' preflight says so)."""
    path = Path(tempfile.mkdtemp(prefix="fs-molecule-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_molecule_default_scenario(short_tmp):
    base = free_block(BLOCK)
    extra = short_tmp / "ports.yml"
    extra.write_text(yaml.safe_dump({name: base + offset for name, offset in PORTS.items()}))
    env = {"FRAUDSTREAM_HOME": str(short_tmp / "home"), "FRAUDSTREAM_MOLECULE_EXTRA_VARS": f"@{extra}"}
    proc = run(["molecule", "test", "--scenario-name", "default"], timeout=2400, env_extra=env, check=False)
    out = ANSI.sub("", proc.stdout + proc.stderr)
    # On failure, show the first failed task (rescued or ignored ones print "fatal:" too).
    failure = next((m.start() for m in re.finditer(r"fatal: |\[ERROR\]", out)), len(out) - 3000)
    assert re.search(r"default\s*: actions=7\s+successful=7\s+disabled=0\s+skipped=0\s+missing=0\s+failed=0", out), \
        out[max(0, failure - 3000):failure + 5000] + "\n...\n" + out[-1500:]
    assert "FraudConsumerDown firing" in " ".join(out.split()), "the drill ran in verify and saw the alert fire"
    prometheus = f"127.0.0.1:{base + PORTS['monitoring_prometheus_port']}"
    assert prometheus in out, f"verify checked the scenario's own Prometheus at {prometheus}"
    leftovers = [p for p in (short_tmp / "home").rglob("*") if p.is_file()] if (short_tmp / "home").exists() else []
    assert not leftovers, f"destroy left files in the scenario's home: {leftovers[:10]}"
