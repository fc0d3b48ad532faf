"""The fraudstream.platform collection: docs render, sanity is clean, integration targets pass."""
import json

import pytest

from conftest import ROOT, recap, run

COLLECTION = ROOT / "collections/ansible_collections/fraudstream/platform"
MODULES = sorted(p.stem for p in (COLLECTION / "plugins/modules").glob("*.py"))


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_renders(module):
    doc = json.loads(run(["ansible-doc", "--json", f"fraudstream.platform.{module}"]).stdout)
    entry = doc[f"fraudstream.platform.{module}"]
    assert {"check_mode", "diff_mode"} <= set(entry["doc"]["attributes"])
    assert "fraudstream.platform." in entry["examples"]
    for name, ret in (entry["return"] or {}).items():
        assert {"returned", "type", "sample"} <= set(ret), f"RETURN {name} lacks returned/type/sample"


def test_ansible_test_sanity():
    run(["make", "sanity"], timeout=3000)


@pytest.mark.e2e
def test_integration_targets(platform):
    proc = run(["make", "integration"], timeout=1800)
    for target in ("kafka_topic", "kafka_consumer_group_info", "prometheus_alert"):
        assert f"Running {target} integration test role" in proc.stdout


@pytest.mark.e2e
def test_readme_example_runs_as_written(platform, tmp_path):
    """The collection README's playbook, verbatim, against the live platform. Its topic matches
    what the fraud_workloads role made, so it changes nothing."""
    text = (COLLECTION / "README.md").read_text()
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    book = tmp_path / "readme_example.yml"
    book.write_text(example)
    proc = run(["ansible-playbook", str(book)], timeout=600)
    assert recap(proc.stdout)["localhost"] | {"ok": 0} == {"ok": 0, "changed": 0, "unreachable": 0, "failed": 0}
