"""Role hygiene: defaults and argument_specs describe the same variables, all prefixed by the role."""
import pytest
import yaml

from conftest import ROOT

ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "defaults/main.yml").exists())


@pytest.mark.parametrize("role", ROLES)
def test_defaults_match_argument_specs(role):
    defaults = set(yaml.safe_load((ROOT / f"roles/{role}/defaults/main.yml").read_text()))
    specs = yaml.safe_load((ROOT / f"roles/{role}/meta/argument_specs.yml").read_text())["argument_specs"]
    assert set(specs["main"]["options"]) == defaults
    assert all(name.startswith(f"{role}_") for name in defaults), "role variables carry the role's name"
