"""`molecule test` (molecule/default): destroy, converge = site.yml, idempotence, verify + drill, destroy."""
import re

import pytest

from conftest import run

pytestmark = pytest.mark.e2e
ANSI = re.compile(r"\x1b\[[0-9;]*m|\x1b\]8;;[^\x1b]*\x1b\\")


def test_molecule_default_scenario(platform):
    proc = run(["molecule", "test", "--scenario-name", "default"], timeout=2400)
    out = ANSI.sub("", proc.stdout + proc.stderr)
    for step in ("destroy", "syntax", "create", "converge", "idempotence", "verify"):
        assert f"default ➜ {step}: Executed: Successful" in out, f"molecule step {step} did not succeed"
    assert re.search(r"default\s*: actions=7\s+successful=7\s+disabled=0\s+skipped=0\s+missing=0\s+failed=0", out)
