# Copyright: fraudstream contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every key a module returns is documented in its RETURN, with the documented type.

Each module runs in-process (fakes.run_module) through its success and failure paths, check and
diff mode included; the results are compared with the module's parsed DOCUMENTATION and RETURN:
  - every returned key (except Ansible's common ones) is in RETURN; under a documented `contains`,
    every nested key is documented too, and so is every key of a dict of dicts that RETURN shows
    by its sample (kafka_topic_info's topics);
  - every value has the documented type (null only where the description says null);
  - every key documented `returned: always` is in every successful result;
  - a module documenting diff_mode support returns a diff in diff mode.
"""
from __future__ import annotations

import importlib
import types
from pathlib import Path

import pytest
import yaml

from ansible_collections.fraudstream.platform.tests.unit.plugins.modules.fakes import (
    MODULES,
    FakeApi,
    FakeCluster,
    run_module,
)
from ansible_collections.fraudstream.platform.tests.unit.plugins.modules.test_aws_modules import (
    aws_leftovers_runs,
    eks_cluster_info_runs,
)

# Return values every module may carry without documenting them (Ansible's common return values).
COMMON = {"changed", "failed", "msg", "invocation", "warnings", "deprecations", "exception", "skipped"}
TYPES = {"str": str, "int": int, "bool": bool, "dict": dict, "list": list, "float": (float, int)}


def parsed(name):
    module = importlib.import_module(MODULES + name)
    return yaml.safe_load(module.DOCUMENTATION), yaml.safe_load(module.RETURN)


def text(spec):
    description = spec.get("description", "")
    return " ".join(description) if isinstance(description, list) else description


def type_problem(path, spec, value):
    if value is None:
        return None if "null" in text(spec) else "%s is null, which RETURN does not say it can be" % path
    wanted = spec.get("type")
    if wanted not in TYPES or (isinstance(value, bool) and wanted != "bool"):
        ok = wanted == "raw"
    else:
        ok = isinstance(value, TYPES[wanted])
    return None if ok else "%s is %s %r, documented as %s" % (path, type(value).__name__, value, wanted)


def value_problems(path, spec, value):
    """Type and nested-key problems of one returned value against its RETURN entry."""
    problem = type_problem(path, spec, value)
    if problem or value is None:
        return [problem] if problem else []
    problems = []
    contains = spec.get("contains")
    if isinstance(value, dict) and contains:
        problems += keys_problems(path, contains, value)
    elif isinstance(value, dict) and isinstance(spec.get("sample"), dict) and spec["sample"] and all(
            isinstance(v, dict) for v in spec["sample"].values()):
        # A dict of dicts keyed by name: the sample's entries show the keys of every entry.
        shown = set().union(*(set(v) for v in spec["sample"].values()))
        for name, entry in value.items():
            if isinstance(entry, dict):
                problems += ["%s.%s returns %r, which RETURN's sample does not show" % (path, name, key)
                             for key in sorted(set(entry) - shown)]
    elif isinstance(value, list):
        elements = spec.get("elements")
        for index, item in enumerate(value):
            item_path = "%s[%d]" % (path, index)
            if elements and type_problem(item_path, {"type": elements}, item):
                problems.append(type_problem(item_path, {"type": elements}, item))
            elif elements == "dict" and contains:
                problems += keys_problems(item_path, contains, item)
    return problems


def keys_problems(path, contains, value):
    problems = []
    for key, item in value.items():
        if key not in contains:
            problems.append("%s.%s is returned but not documented under contains" % (path, key))
        else:
            problems += value_problems("%s.%s" % (path, key), contains[key], item)
    return problems


def result_problems(returns, result, failed):
    """What in one module result disagrees with RETURN."""
    problems = []
    for key, value in sorted(result.items()):
        if key in COMMON:
            continue
        if key not in returns:
            problems.append("returns %r, which RETURN does not document" % key)
            continue
        problems += value_problems(key, returns[key], value)
    if not failed:
        problems += ["RETURN says %r is returned always, but it is missing" % key
                     for key, spec in sorted(returns.items()) if spec.get("returned") == "always" and key not in result]
    return problems


# -- the paths each module is run through ---------------------------------------------------------------
def kafka_topic_runs():
    cluster = FakeCluster(brokers=(1, 2, 3))
    cluster.add_topic("grow", partitions=3)

    def run(args, **kw):
        return run_module("kafka_topic", args, cluster=cluster, **kw)

    runs = [
        run({"name": "t", "partitions": 2, "replication_factor": 1, "config": {"retention.ms": 3600000}}, diff=True),
        run({"name": "t", "partitions": 2, "config": {"retention.ms": 3600000}}, diff=True),
        run({"name": "predicted"}, check_mode=True, diff=True),
        run({"name": "predicted-rf", "partitions": 4}, check_mode=True),
        run({"name": "grow", "partitions": 6}, check_mode=True, diff=True),
        run({"name": "grow", "partitions": 6}),
        run({"name": "t", "config": {"segment.bytes": 1048576}, "config_mode": "replace"}, diff=True),
        run({"name": "t", "partitions": 1}),
        run({"name": "t", "config": {"no.such.key": 1}}),
        run({"name": "unknown-key", "config": {"no.such.key": 1}}),
        run({"name": "bad name!"}),
        run({"name": "t", "state": "absent"}, check_mode=True, diff=True),
        run({"name": "t", "state": "absent"}, diff=True),
        run({"name": "t", "state": "absent"}),
    ]
    cluster.linger = {2: 10 ** 6}
    runs.append(run({"name": "grow", "state": "absent", "timeout": 1}))
    return runs


def kafka_topic_info_runs():
    cluster = FakeCluster()
    cluster.add_topic("fraud-transactions", partitions=2, overrides={"retention.ms": "1000"}).end_offsets = [5, 7]
    cluster.add_topic("fraud-alerts", partitions=1)
    cluster.add_topic("__consumer_offsets", partitions=1, internal=True)
    return [run_module("kafka_topic_info", args, cluster=cluster) for args in (
        {}, {"pattern": "^fraud-"}, {"name": ["fraud-alerts"], "offsets": False}, {"include_internal": True},
        {"pattern": "("}, {"name": ["a"], "pattern": "a"})]


def kafka_consumer_group_info_runs():
    cluster = FakeCluster()
    cluster.add_topic("tx", partitions=3).end_offsets = [10, 20, 30]
    member = {"member_id": "c-1-abc", "client_id": "c-1", "client_host": "/127.0.0.1",
              "member_assignment": types.SimpleNamespace(assignment=[("tx", [2, 0, 1])])}
    cluster.groups["g"] = {"state": "Stable", "members": [member], "committed": {("tx", 0): 4, ("tx", 1): 20}}
    return [run_module("kafka_consumer_group_info", args, cluster=cluster) for args in (
        {"group": "g"}, {"group": "never", "topics": ["tx"]}, {"group": "g", "topics": ["missing"]}, {"group": " "})]


def prometheus_alert_runs():
    firing = {"state": "firing", "labels": {"alertname": "Up", "job": "kafka"}, "annotations": {"summary": "s"},
              "activeAt": "2026-01-01T00:00:00Z", "value": "1e+00"}
    rules = [{"type": "alerting", "name": "Up", "annotations": {"summary": "s"}, "alerts": [firing]},
             {"type": "alerting", "name": "Quiet", "annotations": {"summary": "q"}, "alerts": []}]
    api = FakeApi(rules, am_alerts=[{"labels": firing["labels"]}])
    return [run_module("prometheus_alert", args, api=api) for args in (
        {"name": "Up", "alertmanager_url": "http://am:9093"},
        {"name": "Quiet", "state": "inactive"},
        {"name": "Quiet", "state": "firing"},
        {"name": "Qiet"},
        {"name": "Up", "url": "prometheus:9090"},
        {"name": "Up", "url": "http://down:1"})]


def kafka_user_runs():
    cluster = FakeCluster()
    acls = [{"resource_type": "topic", "resource_name": "tx", "operations": ["Write", "Describe"]},
            {"resource_type": "group", "resource_name": "g", "pattern_type": "prefixed", "operations": ["Read"]}]
    user = {"name": "producer", "password": "pw-123456789", "acls": acls}
    return [run_module("kafka_user", args, check_mode=check, diff=True, cluster=cluster) for args, check in (
        (user, True), (user, False), (user, False), (dict(user, acls=acls[:1]), False),
        ({"name": "producer", "state": "absent"}, False), (dict(user, name="User:producer"), False),
        (dict(user, acls=[{"resource_type": "topic", "resource_name": "tx", "operations": ["Wrte"]}]), False))]


RUNS = {"kafka_topic": kafka_topic_runs, "kafka_user": kafka_user_runs, "kafka_topic_info": kafka_topic_info_runs,
        "kafka_consumer_group_info": kafka_consumer_group_info_runs, "prometheus_alert": prometheus_alert_runs,
        "eks_cluster_info": eks_cluster_info_runs, "aws_leftovers": aws_leftovers_runs}


def test_every_module_is_run():
    folder = Path(importlib.import_module(MODULES + "kafka_topic").__file__).parent
    assert {p.stem for p in folder.glob("*.py") if p.stem != "__init__"} == set(RUNS)


@pytest.mark.parametrize("name", sorted(RUNS))
def test_returned_keys_are_documented(name):
    documentation, returns = parsed(name)
    runs = RUNS[name]()
    codes = [code for result, code in runs if isinstance(result, dict)]
    assert 0 in codes and any(codes), "run both the success and the failure paths"
    problems = []
    for result, code in runs:
        problems += ["%s (%s): %s" % (name, result.get("msg", "ok")[:60], p)
                     for p in result_problems(returns, result, failed=code != 0)]
    assert not problems, "\n".join(problems)
    diff_support = documentation.get("attributes", {}).get("diff_mode", {}).get("support")
    if diff_support in ("full", "partial"):
        assert "diff" in returns
        assert any(isinstance(r.get("diff"), dict) and {"before", "after"} <= set(r["diff"]) for r, code in runs if code == 0)


# -- the checks themselves catch what they are for -----------------------------------------------------
RETURN_EXAMPLE = yaml.safe_load("""
topic:
  description: A topic.
  returned: always
  type: dict
  contains:
    partitions: {description: Count., returned: always, type: int, sample: 3}
  sample: {partitions: 3}
topics:
  description: By name.
  returned: always
  type: dict
  sample: {a: {name: a, partitions: 1}}
rows:
  description: Rows; committed is null if none.
  returned: always
  type: list
  elements: dict
  contains:
    committed: {description: "Offset, null if none.", returned: always, type: int, sample: 1}
  sample: [{committed: 1}]
""")
GOOD = {"topic": {"partitions": 3}, "topics": {"a": {"name": "a", "partitions": 1}},
        "rows": [{"committed": None}], "changed": False, "invocation": {}}


def test_a_result_as_documented_passes():
    assert result_problems(RETURN_EXAMPLE, GOOD, failed=False) == []


@pytest.mark.parametrize("change, problem", [
    ({"group": "g"}, "returns 'group', which RETURN does not document"),
    ({"topic": {"partitions": "broker default"}}, "topic.partitions is str 'broker default', documented as int"),
    ({"topic": {"partitions": 3, "name": "t"}}, "topic.name is returned but not documented under contains"),
    ({"topic": {"partitions": True}}, "topic.partitions is bool True, documented as int"),
    ({"topic": {"partitions": None}}, "topic.partitions is null"),
    ({"topics": {"a": {"name": "a", "topic_id": "x"}}}, "topics.a returns 'topic_id', which RETURN's sample"),
    ({"rows": [{"committed": 1, "lag": 2}]}, "rows[0].lag is returned but not documented"),
    ({"rows": ["x"]}, "rows[0] is str 'x', documented as dict"),
])
def test_the_check_catches(change, problem):
    problems = result_problems(RETURN_EXAMPLE, dict(GOOD, **change), failed=False)
    assert any(problem in p for p in problems), problems


def test_a_missing_always_key_is_caught_unless_the_module_failed():
    result = {k: v for k, v in GOOD.items() if k != "rows"}
    assert result_problems(RETURN_EXAMPLE, result, failed=False) == [
        "RETURN says 'rows' is returned always, but it is missing"]
    assert result_problems(RETURN_EXAMPLE, result, failed=True) == []
