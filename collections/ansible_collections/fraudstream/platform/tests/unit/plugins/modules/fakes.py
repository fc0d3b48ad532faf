# Copyright: fraudstream contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the collection's modules in-process against fakes: an in-memory Kafka cluster (as
kafka-python 3.0's KafkaAdminClient and KafkaConsumer show it) and a Prometheus/Alertmanager API."""
from __future__ import annotations

import contextlib
import importlib
import io
import json
import logging
import uuid
from unittest import mock

from ansible.module_utils.common import warnings as ansible_warnings
from ansible.module_utils.testing import patch_module_args
from kafka import errors as kafka_errors
from kafka.admin import AlterConfigOp

MODULES = "ansible_collections.fraudstream.platform.plugins.modules."
KAFKA_UTILS = "ansible_collections.fraudstream.platform.plugins.module_utils.kafka"
PROMETHEUS_UTILS = "ansible_collections.fraudstream.platform.plugins.module_utils.prometheus"

TOPIC_DEFAULTS = {"cleanup.policy": "delete", "retention.ms": "604800000", "segment.bytes": "1073741824",
                  "min.insync.replicas": "1", "retention.bytes": "-1"}
NO_TOPIC_ID = uuid.UUID(int=0)


class FakeTopic:
    def __init__(self, name, partitions, replication_factor, overrides=None, internal=False):
        self.name = name
        self.partitions = partitions
        self.replication_factor = replication_factor
        self.overrides = dict(overrides or {})
        self.internal = internal
        self.topic_id = uuid.uuid4()
        self.end_offsets = [0] * partitions


class FakeCluster:
    """Topics, groups and brokers; what each broker's own metadata still shows after a delete.

    linger: {broker id: polls} -- after a delete, a broker keeps listing the topic for that many
    metadata requests addressed to it (a broker whose metadata cache lags the controller).
    unreachable: broker ids whose per-broker requests fail; fenced: broker ids the controller fenced.
    create_answers_counts: whether a validate-only CreateTopics answers the counts (v5+).
    Security: refused_topics are topics the client's principal may not touch (error 29 where Kafka
    answers it, and no configs where kafka-python drops the refusal); fail_on {admin method: error}
    raises there; connect_error is raised by the clients' constructors after connect_logs
    [(logger, level, msg, args)] are logged, as kafka-python logs a failing bootstrap.
    client_configs: the settings each client was created with.
    """

    def __init__(self, brokers=(1,), num_partitions=3, default_replication_factor=1,
                 create_answers_counts=True):
        self.brokers = list(brokers)
        self.num_partitions = num_partitions
        self.default_replication_factor = default_replication_factor
        self.create_answers_counts = create_answers_counts
        self.topics = {}
        self.groups = {}  # group -> {"state", "members": [...], "committed": {(topic, partition): offset}}
        self.scram = {}  # user -> set of ScramMechanism
        self.acls = set()  # kafka.admin.ACL
        self.linger = {}
        self.unreachable = set()
        self.fenced = set()
        self.lingering = {}  # (broker, name) -> (polls left, FakeTopic)
        self.calls = []
        self.refused_topics = set()
        self.fail_on = {}
        self.connect_error = None
        self.connect_logs = []
        self.client_configs = []

    def connect(self, config):
        self.client_configs.append(config)
        for logger, level, msg, args in self.connect_logs:
            logging.getLogger(logger).log(level, msg, *args)
        if self.connect_error is not None:
            raise self.connect_error

    def maybe_fail(self, method):
        if method in self.fail_on:
            raise self.fail_on[method]

    def add_topic(self, name, partitions=3, replication_factor=1, overrides=None, internal=False):
        self.topics[name] = FakeTopic(name, partitions, replication_factor, overrides, internal)
        return self.topics[name]

    def metadata(self, topic, error_code=0):
        if topic.name in self.refused_topics:
            return dict(self.unknown(topic.name), error_code=29)
        return {
            "error_code": error_code, "name": topic.name, "topic_id": topic.topic_id, "is_internal": topic.internal,
            "partitions": [{"error_code": 0, "partition_index": i, "leader_id": self.brokers[0],
                            "leader_epoch": 0, "replica_nodes": self.brokers[:topic.replication_factor],
                            "isr_nodes": self.brokers[:topic.replication_factor], "offline_replicas": []}
                           for i in range(topic.partitions)],
            "authorized_operations": None}

    @staticmethod
    def unknown(name):
        return {"error_code": 3, "name": name, "topic_id": NO_TOPIC_ID, "is_internal": False, "partitions": [],
                "authorized_operations": None}

    def broker_metadata(self, broker, names):
        """What one broker's metadata cache answers."""
        if broker in self.unreachable:
            raise kafka_errors.NodeNotReadyError(broker)
        topics = []
        for name in names:
            if name in self.topics:
                topics.append(self.metadata(self.topics[name]))
            elif (broker, name) in self.lingering:
                left, topic = self.lingering.pop((broker, name))
                if left > 1:
                    self.lingering[(broker, name)] = (left - 1, topic)
                topics.append(self.metadata(topic))
            else:
                topics.append(self.unknown(name))
        return {"brokers": [], "topics": topics}


class FakeResponse:
    def __init__(self, data):
        self.data = data

    def to_dict(self):
        return self.data


class FakeManager:
    """The admin client's connection manager, as far as per-broker requests use it."""

    def __init__(self, cluster):
        self.cluster = cluster

    def run(self, coro, *args):
        # The modules' coroutines only await send(), which completes at once here.
        awaitable = coro(*args)
        try:
            awaitable.send(None)
        except StopIteration as done:
            return done.value
        raise AssertionError("coroutine did not finish")

    async def send(self, request, node_id=None):
        self.cluster.calls.append(("metadata", node_id))
        return FakeResponse(self.cluster.broker_metadata(node_id, [t.name for t in request.topics]))


class FakeAdmin:
    """KafkaAdminClient of kafka-python 3.0 over a FakeCluster (the calls the modules make)."""

    def __init__(self, cluster):
        self.cluster = cluster
        self._manager = FakeManager(cluster)

    def close(self):
        pass

    def list_topics(self):
        return list(self.cluster.topics)

    def describe_topics(self, topics=None):
        self.cluster.maybe_fail("describe_topics")
        names = list(self.cluster.topics) if topics is None else topics
        return [self.cluster.metadata(self.cluster.topics[n]) if n in self.cluster.topics
                else dict(self.cluster.unknown(n), error_code=29) if n in self.cluster.refused_topics
                else self.cluster.unknown(n) for n in names]

    def describe_cluster(self):
        return {"cluster_id": "fake", "controller_id": self.cluster.brokers[0],
                "brokers": [{"broker_id": b, "host": "kafka-%d" % b, "port": 9092, "rack": None,
                             "is_fenced": b in self.cluster.fenced}
                            for b in self.cluster.brokers]}

    def describe_configs(self, config_resources, include_synonyms=False, config_filter="modified"):
        self.cluster.maybe_fail("describe_configs")
        result = {}
        for resource in config_resources:
            if resource.name in self.cluster.refused_topics:  # kafka-python drops the refused resource
                result.setdefault(resource.resource_type.name.lower(), {})[resource.name] = {}
                continue
            kind = resource.resource_type.name.lower()
            if kind == "broker":
                entries = {"num.partitions": self.cluster.num_partitions,
                           "default.replication.factor": self.cluster.default_replication_factor,
                           "log.retention.hours": 168}
                entries = {k: {"value": str(v), "read_only": False, "config_source": "STATIC_BROKER_CONFIG"}
                           for k, v in entries.items()}
            else:
                topic = self.cluster.topics[resource.name]
                entries = {k: {"value": v, "read_only": False, "config_source": "DEFAULT_CONFIG"}
                           for k, v in TOPIC_DEFAULTS.items()}
                entries.update({k: {"value": v, "read_only": False, "config_source": "DYNAMIC_TOPIC_CONFIG"}
                                for k, v in topic.overrides.items()})
            if resource.configs:
                entries = {k: v for k, v in entries.items() if k in resource.configs}
            result.setdefault(kind, {})[resource.name] = entries
        return result

    def create_topics(self, new_topics, timeout_ms=None, validate_only=False, raise_errors=True,
                      wait_for_metadata=False):
        self.cluster.calls.append(("create_topics", validate_only))
        self.cluster.maybe_fail("create_topics")
        answers = []
        for name, spec in new_topics.items():
            unknown = sorted(set(spec.get("configs", {})) - set(TOPIC_DEFAULTS))
            partitions = spec["num_partitions"] if spec["num_partitions"] > 0 else self.cluster.num_partitions
            rf = (spec["replication_factor"] if spec["replication_factor"] > 0
                  else self.cluster.default_replication_factor)
            answer = {"name": name, "topic_id": NO_TOPIC_ID, "error_code": 0, "error_message": None,
                      "num_partitions": partitions if self.cluster.create_answers_counts else -1,
                      "replication_factor": rf if self.cluster.create_answers_counts else -1}
            if name in self.cluster.refused_topics:
                answer.update(error_code=29, error_message="Authorization failed.")
            elif name in self.cluster.topics:
                answer.update(error_code=36, error_message="Topic '%s' already exists." % name)
            elif unknown:
                answer.update(error_code=40, error_message="Unknown topic config name: %s" % unknown[0])
            elif not validate_only:
                self.cluster.add_topic(name, partitions, rf, spec.get("configs"))
            if answer["error_code"] and raise_errors:
                raise kafka_errors.for_code(answer["error_code"])(answer["error_message"])
            answers.append(answer)
        return {"topics": answers}

    def describe_user_scram_credentials(self, users=None):
        return {user: {"error": None if user in self.cluster.scram else "not found",
                       "credential_infos": [{"mechanism": m, "iterations": 8192}
                                            for m in self.cluster.scram.get(user, ())]} for user in users}

    def alter_user_scram_credentials(self, alterations):
        for alt in alterations:
            mechanisms = self.cluster.scram.setdefault(alt.user, set())
            if hasattr(alt, "salted_password"):
                mechanisms.add(alt.mechanism)
            else:
                mechanisms.discard(alt.mechanism)
        return {alt.user: None for alt in alterations}

    def describe_acls(self, acl_filter):
        return [a for a in self.cluster.acls if a.principal == acl_filter.principal], kafka_errors.NoError

    def create_acls(self, acls):
        self.cluster.acls |= set(acls)
        return {"succeeded": list(acls), "failed": []}

    def delete_acls(self, acl_filters):
        self.cluster.acls -= set(acl_filters)
        return [(f, [f], kafka_errors.NoError) for f in acl_filters]

    def wait_for_topics(self, topic_names, timeout_ms=10000):
        self.cluster.calls.append(("wait_for_topics", timeout_ms))

    def delete_topics(self, topics, timeout_ms=None, raise_errors=True):
        self.cluster.calls.append(("delete_topics", tuple(topics)))
        answers = []
        for name in topics:
            topic = self.cluster.topics.pop(name, None)
            if topic is None:
                answers.append({"name": name, "error_code": 3, "error_message": None})
                continue
            for broker in self.cluster.brokers:
                polls = self.cluster.linger.get(broker, 0)
                if polls:
                    self.cluster.lingering[(broker, name)] = (polls, topic)
            answers.append({"name": name, "topic_id": topic.topic_id, "error_code": 0, "error_message": None})
        return {"topics": answers}

    def create_partitions(self, topic_partitions, timeout_ms=None, validate_only=False, raise_errors=True):
        for name, new in topic_partitions.items():
            topic = self.cluster.topics[name]
            topic.end_offsets += [0] * (new.total_count - topic.partitions)
            topic.partitions = new.total_count
        return {}

    def alter_configs(self, config_resources, validate_only=False, raise_on_unknown=True, incremental=None):
        result = {}
        for resource in config_resources:
            topic = self.cluster.topics[resource.name]
            for key, (op, value) in resource.configs.items():
                if op == AlterConfigOp.DELETE:
                    topic.overrides.pop(key, None)
                else:
                    topic.overrides[key] = value
            result.setdefault("topic", {})[resource.name] = "OK"
        return result

    def describe_groups(self, group_ids, group_coordinator_id=None, include_authorized_operations=False):
        self.cluster.maybe_fail("describe_groups")
        result = {}
        for group in group_ids:
            known = self.cluster.groups.get(group)
            result[group] = {"group_id": group, "group_state": known["state"] if known else "Dead",
                             "members": list(known["members"]) if known else []}
        return result

    def list_group_offsets(self, group_specs):
        from kafka import OffsetAndMetadata, TopicPartition
        self.cluster.maybe_fail("list_group_offsets")
        known = self.cluster.groups.get(group_specs, {"committed": {}})
        return {group_specs: {TopicPartition(t, p): OffsetAndMetadata(o, "", -1)
                              for (t, p), o in known["committed"].items()}}


class FakeConsumer:
    def __init__(self, cluster):
        self.cluster = cluster

    def beginning_offsets(self, partitions):
        return {tp: 0 for tp in partitions}

    def end_offsets(self, partitions):
        return {tp: self.cluster.topics[tp.topic].end_offsets[tp.partition] for tp in partitions}

    def close(self):
        pass


class FakeApi:
    """Prometheus /api/v1/rules and Alertmanager /api/v2/alerts, answering open_url."""

    def __init__(self, rules=(), am_alerts=(), error=None):
        self.rules = list(rules)
        self.am_alerts = list(am_alerts)
        self.error = error  # raised by every request, as open_url raises it
        self.requests = []

    def open_url(self, url, **kwargs):
        self.requests.append((url, kwargs))
        if self.error is not None:
            raise self.error
        if "/api/v1/rules" in url:
            body = {"status": "success", "data": {"groups": [{"name": "g", "rules": self.rules}]}}
        elif "/api/v2/alerts" in url:
            body = self.am_alerts
        else:
            raise OSError("connection refused")
        return io.BytesIO(json.dumps(body).encode())


def run_module(name, args, check_mode=False, diff=False, cluster=None, api=None):
    """Run a module's main() in-process; return (result, exit code) as the controller would see them."""
    module = importlib.import_module(MODULES + name)
    module_args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
    out = io.StringIO()
    code = None
    with contextlib.ExitStack() as stack:
        stack.enter_context(patch_module_args(module_args))
        # Warnings and deprecations are process-wide; each run starts without the last one's.
        # pylint: disable-next=protected-access
        stack.enter_context(mock.patch.dict(ansible_warnings._global_warnings, clear=True))
        # pylint: disable-next=protected-access
        stack.enter_context(mock.patch.dict(ansible_warnings._global_deprecations, clear=True))
        if cluster is not None:
            stack.enter_context(mock.patch(KAFKA_UTILS + ".KafkaAdminClient",
                                           lambda **kw: cluster.connect(kw) or FakeAdmin(cluster)))
            stack.enter_context(mock.patch(KAFKA_UTILS + ".KafkaConsumer",
                                           lambda **kw: cluster.connect(kw) or FakeConsumer(cluster)))
        if api is not None:
            stack.enter_context(mock.patch(PROMETHEUS_UTILS + ".open_url", api.open_url))
        stack.enter_context(contextlib.redirect_stdout(out))
        try:
            module.main()
        except SystemExit as exc:
            code = exc.code
    if code is None:
        raise AssertionError("%s returned without exit_json or fail_json" % name)
    return json.loads(out.getvalue()), code


def warning_texts(result):
    """The warnings of a result as strings (ansible-core 2.19 returns them as structured events)."""
    return [w["event"]["msg"] if isinstance(w, dict) else w for w in result.get("warnings", [])]
