"""The Dockerfile is written and linted (hadolint in `make lint`), not built: there is no Docker engine here."""
import re
from pathlib import Path

DOCKERFILE = (Path(__file__).resolve().parents[1] / "Dockerfile").read_text()


def test_multi_stage_with_pinned_base_images():
    bases = re.findall(r"^FROM (\S+)", DOCKERFILE, re.M)
    assert len(bases) >= 2, "build and run stages"
    for base in bases:
        assert re.match(r"python:\d+\.\d+\.\d+-slim-\w+$", base), f"{base} is not pinned to a patch release"


def test_runs_as_a_non_root_user_without_writing_to_the_root_filesystem():
    users = re.findall(r"^USER (\S+)", DOCKERFILE, re.M)
    assert users and users[-1] not in ("root", "0")
    assert "PYTHONDONTWRITEBYTECODE=1" in DOCKERFILE
    assert "FRAUDSTREAM_MODEL_DIR=/model" in DOCKERFILE
