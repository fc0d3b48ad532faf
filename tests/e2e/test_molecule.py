"""`molecule test` (molecule/default): destroy, converge = site.yml, idempotence, verify + drill, destroy."""
import pytest

from conftest import run

pytestmark = pytest.mark.e2e


def test_molecule_default_scenario(platform):
    proc = run(["molecule", "test", "--scenario-name", "default"], timeout=2400)
    out = proc.stdout + proc.stderr
    for step in ("converge", "idempotence", "verify", "destroy"):
        assert f"default ➜ {step}" in out or f"[default > {step}]" in out or step in out
    assert "Idempotence completed successfully" in out or "idempotence" in out
