"""`molecule test` (molecule/default): destroy, syntax, create, converge = site.yml, idempotence,
verify (verify.yml + drill.yml), destroy. Molecule fails the scenario if any step fails, including
idempotence (a second converge with changed > 0). It runs first among the platform's tests
(tests/conftest.py orders them): its destroy leaves nothing, and the `platform` fixture's `make up`
comes after it."""
import os
import re

import pytest

from conftest import run

pytestmark = pytest.mark.e2e
ANSI = re.compile(r"\x1b\[[0-9;]*m|\x1b\]8;;[^\x1b]*\x1b\\")


def test_molecule_default_scenario():
    try:
        proc = run(["molecule", "test", "--scenario-name", "default"], timeout=2400)
    finally:
        if os.environ.get("FRAUDSTREAM_REUSE_PLATFORM") == "1":
            run(["make", "up"])  # destroy took down the platform the other tests reuse: bring it back
    out = ANSI.sub("", proc.stdout + proc.stderr)
    assert re.search(r"default\s*: actions=7\s+successful=7\s+disabled=0\s+skipped=0\s+missing=0\s+failed=0", out), \
        out[-3000:]
    assert "FraudConsumerDown firing" in " ".join(out.split()), "the drill ran in verify and saw the alert fire"
