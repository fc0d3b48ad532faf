"""Role hygiene: defaults and argument_specs describe the same variables, all prefixed by the role."""
import pytest
import yaml

from conftest import ROOT

ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "meta/argument_specs.yml").exists())


def role_defaults(role):
    """Every variable of defaults/main.yml or of the files in defaults/main/."""
    folder = ROOT / f"roles/{role}/defaults"
    names = set()
    for path in sorted(folder.glob("main.yml")) + sorted(folder.glob("main/*.yml")):
        names |= set(yaml.safe_load(path.read_text()) or {})
    return names


def test_every_role_is_checked():
    assert {"kafka", "monitoring", "fraud_workloads", "local_services"} <= set(ROLES)


@pytest.mark.parametrize("role", ROLES)
def test_defaults_match_argument_specs(role):
    defaults = role_defaults(role)
    specs = yaml.safe_load((ROOT / f"roles/{role}/meta/argument_specs.yml").read_text())["argument_specs"]
    # main: every target; local: options only the local target reads (its paths and addresses).
    documented = set().union(*(set(entry.get("options") or {}) for entry in specs.values()))
    assert documented == defaults
    assert all(name.startswith(f"{role}_") for name in defaults), "role variables carry the role's name"
