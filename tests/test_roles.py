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


def default_values(role):
    folder = ROOT / f"roles/{role}/defaults"
    values = {}
    for path in sorted(folder.glob("main.yml")) + sorted(folder.glob("main/*.yml")):
        values.update(yaml.safe_load(path.read_text()) or {})
    return values


def inventory_names(target):
    names = set()
    for path in (ROOT / f"inventories/{target}").rglob("*.yml"):
        data = yaml.safe_load(path.read_text()) or {}
        names |= set(data) if "group_vars" in path.parts else set()
    return names


LOCAL_ONLY = inventory_names("local") - inventory_names("k8s") - inventory_names("eks")


@pytest.mark.parametrize("role", [r for r in ROLES if (ROOT / f"roles/{r}/tasks/kubernetes.yml").exists()])
def test_main_spec_needs_nothing_only_the_local_inventory_defines(role):
    """Argument validation templates every option of the 'main' spec on every target, so an option
    whose default leads, through other defaults, to fraudstream_home fails on Kubernetes with
    "'fraudstream_home' is undefined". Such options belong in the 'local' spec."""
    import re

    values = default_values(role)
    specs = yaml.safe_load((ROOT / f"roles/{role}/meta/argument_specs.yml").read_text())["argument_specs"]
    main = set(specs.get("main", {}).get("options") or {})

    def reaches(name, seen=()):
        value = values.get(name, "")
        text = " ".join(re.findall(r"{{(.*?)}}", value if isinstance(value, str) else yaml.safe_dump(value), re.S))
        if "fraudstream_target ==" in text:  # only the branch of the running target is evaluated
            return set()
        # A name followed by "| default(...)" may be undefined.
        guarded = set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[[^\]]*\])*\s*\|\s*default\b", text))
        found = set()
        for ref in set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text)) - guarded:
            if ref in LOCAL_ONLY:
                found.add(ref)
            elif ref in values and ref not in seen:
                found |= {f"{ref} -> {r}" for r in reaches(ref, seen + (name,))}
        return found

    assert "fraudstream_home" in LOCAL_ONLY
    offenders = {name: sorted(reaches(name)) for name in main if reaches(name)}
    assert not offenders, f"move these options to the 'local' entry point of {role}'s argument_specs: {offenders}"
