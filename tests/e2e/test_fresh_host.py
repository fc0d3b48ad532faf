"""--check on a host fraudstream never ran on: an empty FRAUDSTREAM_HOME and download cache of its
own, so it runs beside the local platform's tests (its own pytest-xdist scope)."""
import pytest

from conftest import ROOT, site


@pytest.fixture(scope="module")
def fresh_home(tmp_path_factory):
    """A host fraudstream never ran on: empty home and download cache."""
    base = tmp_path_factory.mktemp("fresh")
    return {"FRAUDSTREAM_HOME": str(base / "home"), "FRAUDSTREAM_CACHE": str(base / "cache")}


def test_check_mode_on_a_fresh_host(fresh_home):
    """--check --diff predicts the install without making it, and fails nowhere."""
    _, tasks, stats = site("--check", "--diff", env=fresh_home)
    assert stats["localhost"]["changed"] > 0, "a fresh host needs changes; check mode must report them"
    assert not (ROOT / fresh_home["FRAUDSTREAM_HOME"]).exists(), "check mode wrote to the host"
