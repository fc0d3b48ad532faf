"""`fraudstream lag-exporter` on the real broker: kafka_exporter's lag metrics for a fresh group and
topic, from "nothing committed" (lag counted from the log start) to "all committed" (lag 0), without
ever joining the group it measures."""
import subprocess
import time

import pytest
import requests
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from conftest import BOOTSTRAP, FRAUDSTREAM, create_topics, delete_topics, free_port, topic_names

PARTITIONS, PER_PARTITION = 3, 10


def scrape(url):
    """{(metric name, frozenset of labels): value} of one /metrics page."""
    text = requests.get(f"{url}/metrics", timeout=5).text
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def wait_for(url, check, what, timeout=60):
    """Scrape until check(metrics) is true; fail with the last scrape."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            last = scrape(url)
            if check(last):
                return last
        except requests.RequestException as exc:
            last = exc
        time.sleep(0.5)
    pytest.fail(f"{what} within {timeout}s; last scrape: {last}")


@pytest.fixture
def lag_topic(platform):
    names = topic_names("lag")
    create_topics(names, PARTITIONS)
    yield names["lag"]
    delete_topics(names)


@pytest.fixture
def exporter(lag_topic):
    group, port = f"g-{lag_topic}", free_port()
    proc = subprocess.Popen([FRAUDSTREAM, "lag-exporter", "--bootstrap-servers", BOOTSTRAP, "--groups", group,
                             "--topics", lag_topic, "--interval-seconds", "1", "--metrics-port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        yield group, f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        print(out)
        assert proc.returncode == 0, f"lag-exporter exited {proc.returncode} on SIGTERM:\n{out[-3000:]}"
        try:  # best effort: the group was only ever committed to
            AdminClient({"bootstrap.servers": BOOTSTRAP}).delete_consumer_groups([group])[group].result(timeout=30)
        except Exception as exc:  # noqa: BLE001
            print(f"could not delete group {group}: {exc}")


def test_lag_from_the_log_start_then_down_to_zero_after_commits(lag_topic, exporter):
    group, url = exporter
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})

    def per_partition(metrics, name, partition):
        labels = {"topic": lag_topic, "partition": str(partition)}
        if name.startswith("kafka_consumergroup"):
            labels["consumergroup"] = group
        return metrics.get((name, frozenset(labels.items())))

    def lags(metrics):
        return [per_partition(metrics, "kafka_consumergroup_lag", p) for p in range(PARTITIONS)]

    wait_for(url, lambda m: m.get(("fraudstream_lag_exporter_up", frozenset())) == 1, "exporter up")
    assert requests.get(f"{url}/healthz", timeout=5).status_code == 200
    assert requests.get(f"{url}/readyz", timeout=5).status_code == 200

    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
    for i in range(PARTITIONS * PER_PARTITION):
        producer.send(lag_topic, f"r{i}".encode(), partition=i % PARTITIONS)
    producer.flush()
    producer.close()

    # Nothing committed: the whole partition is lag (from its log start), the committed offset -1.
    metrics = wait_for(url, lambda m: lags(m) == [PER_PARTITION] * PARTITIONS, "lag = records produced")
    for p in range(PARTITIONS):
        assert per_partition(metrics, "kafka_consumergroup_current_offset", p) == -1
        assert per_partition(metrics, "kafka_topic_partition_current_offset", p) == PER_PARTITION
        assert per_partition(metrics, "kafka_topic_partition_oldest_offset", p) == 0
    assert metrics[("kafka_consumergroup_lag_sum", frozenset({"consumergroup": group, "topic": lag_topic}.items()))] \
        == PARTITIONS * PER_PARTITION

    def commit(offsets):
        request = ConsumerGroupTopicPartitions(group, [TopicPartition(lag_topic, p, o) for p, o in offsets.items()])
        admin.alter_consumer_group_offsets([request])[group].result(timeout=30)

    commit({0: 4})
    metrics = wait_for(url, lambda m: lags(m) == [PER_PARTITION - 4, PER_PARTITION, PER_PARTITION], "partial commit")
    assert per_partition(metrics, "kafka_consumergroup_current_offset", 0) == 4

    commit({p: PER_PARTITION for p in range(PARTITIONS)})
    metrics = wait_for(url, lambda m: lags(m) == [0] * PARTITIONS, "lag 0 after committing everything")
    assert [per_partition(metrics, "kafka_consumergroup_current_offset", p) for p in range(PARTITIONS)] \
        == [PER_PARTITION] * PARTITIONS

    # The exporter reads with admin requests only: the group it measures has no member.
    members = admin.describe_consumer_groups([group])[group].result(timeout=30).members
    assert members == [], f"something joined {group}: {members}"
