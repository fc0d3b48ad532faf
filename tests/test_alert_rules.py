"""Every alert rule passes `promtool check rules` and its unit tests (firing and quiet cases)."""
import pytest
import yaml

from conftest import ROOT, run

RULES = ROOT / "roles/monitoring/files/rules"
RULE_FILES = sorted(RULES.glob("*.yml"))
TEST_FILES = sorted((RULES / "tests").glob("*_test.yml"))


def alert_names(path):
    return [r["alert"] for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"] if "alert" in r]


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_rules_are_valid(path):
    run(["promtool", "check", "rules", str(path)])


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_rule_unit_tests_pass(path):
    run(["promtool", "test", "rules", str(path)])


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_every_alert_has_annotations_and_tests(path):
    cases = [(case["alertname"], bool(case.get("exp_alerts")))
             for f in TEST_FILES for t in yaml.safe_load(f.read_text())["tests"]
             for case in t.get("alert_rule_test", [])]
    for group in yaml.safe_load(path.read_text())["groups"]:
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            assert {"summary", "description", "runbook_url"} <= set(rule["annotations"]), rule["alert"]
            assert "severity" in rule["labels"], rule["alert"]
            assert (rule["alert"], False) in cases, f"{rule['alert']} has no quiet case in rules/tests"
            assert (rule["alert"], True) in cases, f"{rule['alert']} has no firing case in rules/tests"


def test_runbook_has_a_section_per_alert():
    runbook = (ROOT / "docs/runbooks.md").read_text().lower()
    for path in RULE_FILES:
        for name in alert_names(path):
            assert f"## {name.lower()}" in runbook, f"docs/runbooks.md has no section for {name}"
