"""The fraudstream.platform collection: docs render, sanity is clean, integration targets pass."""
import json
import uuid

import pytest
from kafka.admin import KafkaAdminClient

from conftest import BOOTSTRAP, ROOT, recap, run

COLLECTION = ROOT / "collections/ansible_collections/fraudstream/platform"
MODULES = sorted(p.stem for p in (COLLECTION / "plugins/modules").glob("*.py"))


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_renders(module):
    doc = json.loads(run(["ansible-doc", "--json", f"fraudstream.platform.{module}"]).stdout)
    entry = doc[f"fraudstream.platform.{module}"]
    assert {"check_mode", "diff_mode"} <= set(entry["doc"]["attributes"])
    assert "fraudstream.platform." in entry["examples"]
    for name, ret in returns_of(entry["return"] or {}):
        assert {"returned", "type", "sample"} <= set(ret), f"RETURN {name} lacks returned/type/sample"


def returns_of(returns, prefix=""):
    """(dotted name, spec) of every RETURN entry, those under `contains` included."""
    for name, ret in returns.items():
        yield prefix + name, ret
        yield from returns_of(ret.get("contains") or {}, f"{prefix}{name}.")


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


TOPIC_PLAY = """
- name: kafka_topic against the live broker
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/fraudstream.platform.kafka:
      bootstrap_servers: [%(bootstrap)s]
  tasks:
    - name: Predict creating the topic with the broker's defaults
      fraudstream.platform.kafka_topic:
        name: %(topic)s
      check_mode: true
      register: predicted
    - name: Create it with 3 partitions
      fraudstream.platform.kafka_topic:
        name: %(topic)s
        partitions: 3
    - name: Grow it to 6
      fraudstream.platform.kafka_topic:
        name: %(topic)s
        partitions: 6
      register: grown
    - name: Delete it
      fraudstream.platform.kafka_topic:
        name: %(topic)s
        state: absent
      register: deleted
    - name: Keep the results for the test
      ansible.builtin.copy:
        dest: %(results)s
        mode: "0600"
        content: "{{ {'predicted': predicted.topic, 'warnings': grown.warnings | default([]),
                      'deleted': deleted.changed} | to_json }}"
"""


@pytest.mark.e2e
def test_kafka_topic_types_warning_and_finished_delete(platform, tmp_path):
    """Check mode predicts integer counts; growing warns the operator that keys move; the delete
    has finished on the broker by the time the module returns."""
    topic = f"it-kt-{uuid.uuid4().hex[:8]}"
    book, results = tmp_path / "kafka_topic.yml", tmp_path / "results.json"
    book.write_text(TOPIC_PLAY % {"bootstrap": BOOTSTRAP, "topic": topic, "results": results})
    proc = run(["ansible-playbook", str(book)], timeout=600)
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    try:  # right after the playbook: the broker no longer knows the topic
        described, listed = admin.describe_topics([topic]), admin.list_topics()
    finally:
        admin.close()
    assert topic not in listed and [t["error_code"] for t in described] == [3], described
    got = json.loads(results.read_text())
    assert got["deleted"] is True
    assert type(got["predicted"]["partitions"]) is int and type(got["predicted"]["replication_factor"]) is int
    [warning] = got["warnings"]
    assert warning.startswith(f"topic '{topic}' grows from 3 to 6 partitions.")
    assert "Records with the same key will map to different partitions from now on" in warning
    assert "ordering per key breaks across the change" in warning and "'<group>-changelog'" in warning
    assert f"[WARNING]: topic '{topic}' grows from 3 to 6 partitions" in proc.stdout + proc.stderr
    assert recap(proc.stdout)["localhost"]["failed"] == 0
