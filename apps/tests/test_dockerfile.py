"""apps/Dockerfile as built by playbooks/build_images.yml (tests/images builds and runs it) and by
`docker build apps/`: one file, a base chosen by build argument, hardened run stage."""
import re
from pathlib import Path

DOCKERFILE = (Path(__file__).resolve().parents[1] / "Dockerfile").read_text()


def test_multi_stage_on_one_pinned_debian_base_chosen_by_build_argument():
    default = re.search(r"^ARG BASE=(\S+)$", DOCKERFILE, re.M)
    assert default and re.match(r"debian:12\.\d+-slim$", default[1]), "Docker's default base: a pinned Debian 12 slim"
    bases = re.findall(r"^FROM (\S+)", DOCKERFILE, re.M)
    assert len(bases) >= 2 and set(bases) == {"${BASE}"}, "build and run stages on the same base"


def test_no_compiler_or_pip_in_the_run_stage_and_only_binary_wheels():
    run_stage = DOCKERFILE.split("\nFROM ")[-1]
    assert "--only-binary=:all:" in DOCKERFILE and "--no-cache-dir" in DOCKERFILE
    assert "pip uninstall" in DOCKERFILE
    assert not re.search(r"\b(gcc|g\+\+|build-essential|python3-dev|python3-venv|pip install)\b", run_stage)


def test_model_baked_in_and_oci_labels():
    assert re.search(r"fraudstream train .*--out /model", DOCKERFILE, re.S)
    assert "COPY --from=build /model /model" in DOCKERFILE
    for key in ("version", "revision", "source", "title", "licenses"):
        assert f"org.opencontainers.image.{key}=" in DOCKERFILE


def test_runs_as_a_numeric_non_root_user_without_writing_to_the_root_filesystem():
    users = re.findall(r"^USER (\S+)", DOCKERFILE, re.M)
    assert users and re.match(r"^[1-9]\d*(:\d+)?$", users[-1]), "numeric and not root"
    assert "PYTHONDONTWRITEBYTECODE=1" in DOCKERFILE
    assert "FRAUDSTREAM_MODEL_DIR=/model" in DOCKERFILE
