"""`molecule test` (molecule/default): destroy, syntax, create, converge = site.yml, idempotence,
verify (verify.yml + drill.yml), destroy. Molecule fails the scenario if any step fails, including
idempotence (a second converge with changed > 0)."""
import re

import pytest

from conftest import run

pytestmark = pytest.mark.e2e
ANSI = re.compile(r"\x1b\[[0-9;]*m|\x1b\]8;;[^\x1b]*\x1b\\")


def test_molecule_default_scenario(platform):
    try:
        proc = run(["molecule", "test", "--scenario-name", "default"], timeout=2400)
    finally:
        run(["make", "up"])  # molecule's destroy took the session's platform down: bring it back
    out = ANSI.sub("", proc.stdout + proc.stderr)
    assert re.search(r"default\s*: actions=7\s+successful=7\s+disabled=0\s+skipped=0\s+missing=0\s+failed=0", out), \
        out[-3000:]
    assert "FraudConsumerDown firing" in " ".join(out.split()), "the drill ran in verify and saw the alert fire"
