"""The lag exporter without a broker: the lag arithmetic, the metrics it serves, a broker that is down,
and its reads driven through a stand-in for librdkafka's AdminClient."""
from concurrent.futures import Future
from types import SimpleNamespace

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import OffsetSpec
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fraudstream.cli import parser
from fraudstream.config import KafkaConfig, build
from fraudstream.http import Health
from fraudstream.lag_exporter import BrokerReader, LagExporter, LagExporterConfig, Reading, lag, split


@pytest.mark.parametrize("committed, start, end, expected", [
    (40, 0, 100, 60),  # behind by end - committed
    (100, 0, 100, 0),  # caught up
    (None, 0, 100, 100),  # no commit: counted from the log start
    (None, 30, 100, 70),  # ... which retention may have moved
    (10, 30, 100, 70),  # a commit that retention passed resumes at the log start
    (None, 0, 0, 0),  # empty partition
    (120, 0, 100, 0),  # never negative
])
def test_lag(committed, start, end, expected):
    assert lag(committed, start, end) == expected


def samples(exporter):
    registry = CollectorRegistry()
    registry.register(exporter)
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def reading(at=1000.0):
    return Reading(at=at,
                   logs={("fraud-transactions", 0): (0, 100), ("fraud-transactions", 1): (5, 50)},
                   committed={("fraud-consumer", "fraud-transactions", 0): 70,
                              ("fraud-consumer", "fraud-transactions", 1): None})


def test_serves_kafka_exporter_names_and_labels():
    exporter = LagExporter(lambda: reading(), clock=lambda: 1001.0)
    assert exporter.refresh()
    got = samples(exporter)
    group = (("consumergroup", "fraud-consumer"), ("partition", "{}"), ("topic", "fraud-transactions"))
    at = [tuple((k, v.format(p)) for k, v in group) for p in (0, 1)]
    assert got[("kafka_consumergroup_current_offset", at[0])] == 70
    assert got[("kafka_consumergroup_current_offset", at[1])] == -1  # kafka_exporter's value for "none"
    assert got[("kafka_consumergroup_lag", at[0])] == 30
    assert got[("kafka_consumergroup_lag", at[1])] == 45  # from the log start
    assert got[("kafka_consumergroup_lag_sum", (("consumergroup", "fraud-consumer"), ("topic", "fraud-transactions")))] == 75
    assert got[("kafka_topic_partition_current_offset", (("partition", "0"), ("topic", "fraud-transactions")))] == 100
    assert got[("kafka_topic_partition_oldest_offset", (("partition", "1"), ("topic", "fraud-transactions")))] == 5
    assert got[("fraudstream_lag_exporter_up", ())] == 1
    assert got[("fraudstream_lag_exporter_last_success_timestamp_seconds", ())] == 1000.0


def test_broker_down_keeps_serving_with_up_0_then_drops_stale_offsets():
    now, down = [1001.0], [False]

    def read():
        if down[0]:
            raise OSError("broker transport failure")
        return reading(at=now[0])

    health = Health()
    exporter = LagExporter(read, health, clock=lambda: now[0])
    assert exporter.refresh() and health.ready
    down[0] = True
    now[0] += 5
    assert exporter.refresh() is False  # no exception escapes
    assert not health.ready and "broker transport failure" in health.reason
    got = samples(exporter)
    assert got[("fraudstream_lag_exporter_up", ())] == 0
    assert got[("fraudstream_lag_exporter_last_success_timestamp_seconds", ())] == 1001.0
    assert any(name == "kafka_consumergroup_lag" for name, _ in got), "a recent reading is still served"
    now[0] += LagExporter.STALE_AFTER
    got = samples(exporter)
    assert not any(name.startswith("kafka_") for name, _ in got), "offsets older than STALE_AFTER are dropped"
    down[0] = False
    assert exporter.refresh() and health.ready
    assert samples(exporter)[("fraudstream_lag_exporter_up", ())] == 1


def test_never_read_serves_up_0():
    exporter = LagExporter(lambda: (_ for _ in ()).throw(RuntimeError("no broker")))
    exporter.refresh()
    got = samples(exporter)
    assert got == {("fraudstream_lag_exporter_up", ()): 0}


def test_unreachable_broker_is_a_failed_read_not_a_crash():
    reader = BrokerReader(KafkaConfig(bootstrap_servers="127.0.0.1:1"), ["g"], ["t"], timeout=1.0)
    exporter = LagExporter(reader)
    assert exporter.refresh() is False
    assert samples(exporter)[("fraudstream_lag_exporter_up", ())] == 0


def test_cli_flags_and_defaults():
    args = parser().parse_args(["lag-exporter", "--groups", "a, b", "--metrics-port", "9999"])
    conf = build(LagExporterConfig, args)
    assert split(conf.groups) == ["a", "b"] and conf.metrics_port == 9999
    assert split(LagExporterConfig().topics) == ["fraud-transactions", "fraud-labels"]
    assert LagExporterConfig().metrics_port == 8010


def done(result=None, error=None):
    future = Future()
    if error:
        future.set_exception(error)
    else:
        future.set_result(result)
    return future


class FakeAdmin:
    """The AdminClient calls BrokerReader makes, answered from dicts; records the groups asked for."""

    def __init__(self, partitions, logs, committed, missing_groups=()):
        self.partitions, self.logs, self.committed, self.missing_groups = partitions, logs, committed, missing_groups
        self.asked = []

    def list_topics(self, timeout):
        return SimpleNamespace(topics={t: SimpleNamespace(error=None, partitions=dict.fromkeys(range(n)))
                                       for t, n in self.partitions.items()})

    def list_consumer_group_offsets(self, requests, request_timeout):
        [request] = requests
        group = request.group_id
        self.asked.append((group, [(tp.topic, tp.partition) for tp in request.topic_partitions]))
        if group in self.missing_groups:
            return {group: done(error=KafkaException(KafkaError(KafkaError.GROUP_ID_NOT_FOUND)))}
        return {group: done(ConsumerGroupTopicPartitions(group, [
            TopicPartition(tp.topic, tp.partition, self.committed.get((group, tp.topic, tp.partition), -1001))
            for tp in request.topic_partitions]))}

    def list_offsets(self, specs, request_timeout):
        side = 0 if all(type(s) is type(OffsetSpec.earliest()) for s in specs.values()) else 1
        return {tp: done(SimpleNamespace(offset=self.logs[(tp.topic, tp.partition)][side])) for tp in specs}


def test_broker_reader_reads_commits_and_log_bounds_of_existing_topics():
    admin = FakeAdmin(partitions={"fraud-transactions": 2, "other": 1},
                      logs={("fraud-transactions", 0): (0, 100), ("fraud-transactions", 1): (10, 20)},
                      committed={("fraud-consumer", "fraud-transactions", 0): 90}, missing_groups={"new-group"})
    reader = BrokerReader(KafkaConfig(), ["fraud-consumer", "new-group"], ["fraud-transactions", "absent"], timeout=1.0)
    reader.admin = admin
    got = reader()
    assert admin.asked == [(g, [("fraud-transactions", 0), ("fraud-transactions", 1)]) for g in ("fraud-consumer", "new-group")]
    assert got.logs == {("fraud-transactions", 0): (0, 100), ("fraud-transactions", 1): (10, 20)}
    assert got.committed == {("fraud-consumer", "fraud-transactions", 0): 90, ("fraud-consumer", "fraud-transactions", 1): None,
                             ("new-group", "fraud-transactions", 0): None, ("new-group", "fraud-transactions", 1): None}
    assert got.missing == ("absent",)
    exporter = LagExporter(lambda: got, clock=lambda: got.at)
    assert exporter.refresh()
    lags = {labels: v for (name, labels), v in samples(exporter).items() if name == "kafka_consumergroup_lag"}
    assert sorted(lags.values()) == [10, 10, 10, 100]  # 100 - 90; 20 - 10 (from the log start) three times
