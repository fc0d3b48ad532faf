"""Consumer lag seen from the broker: `fraudstream lag-exporter`.

Every few seconds it reads, with admin requests only (it never joins a group), each configured
group's committed offsets and the log start and end of the configured topics' partitions, and
serves them on /metrics under danielqsj/kafka_exporter's names and labels (Strimzi's Kafka
Exporter on Kubernetes), so that one alert expression serves both targets:

    kafka_consumergroup_current_offset{consumergroup,topic,partition}   committed offset, -1 if none
    kafka_consumergroup_lag{consumergroup,topic,partition}              see lag() below
    kafka_consumergroup_lag_sum{consumergroup,topic}
    kafka_topic_partition_current_offset{topic,partition}               log end
    kafka_topic_partition_oldest_offset{topic,partition}                log start

plus fraudstream_lag_exporter_up (1 when the last read of the broker succeeded) and
fraudstream_lag_exporter_last_success_timestamp_seconds. A scorer whose own metrics froze is
still seen stalling: its committed offsets stop while the log end moves on.

While the broker cannot be read, the exporter keeps serving: up is 0, and the offsets of the last
good read are served until they are older than STALE_AFTER, then left out.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily

from .config import KafkaConfig
from .http import Health, serve
from .sink import librdkafka_options

log = logging.getLogger("fraudstream.lag_exporter")


@dataclass(frozen=True)
class LagExporterConfig:
    groups: str = "fraud-consumer"  # comma-separated consumer groups
    topics: str = "fraud-transactions,fraud-labels"  # comma-separated topics of those groups
    interval_seconds: float = 5.0  # between reads of the broker
    timeout_seconds: float = 10.0  # of each admin request
    metrics_port: int = 8010
    metrics_host: str = "127.0.0.1"


def split(names: str) -> list[str]:
    return [n.strip() for n in names.split(",") if n.strip()]


def lag(committed: int | None, start: int, end: int) -> int:
    """Records of a partition that the group has not committed past.

    Without a committed offset the group would read from the log start (the scorer's
    auto.offset.reset is earliest), so the lag counts from there; kafka_exporter reports -1
    instead. A committed offset that retention has already passed counts from the log start too.
    Never negative (the end is read after the commits, but a partition may be truncated).
    """
    position = start if committed is None else max(committed, start)
    return max(end - position, 0)


@dataclass(frozen=True)
class Reading:
    """One read of the broker."""
    at: float  # time.time() when it was taken
    logs: dict[tuple[str, int], tuple[int, int]]  # (topic, partition) -> (log start, log end)
    committed: dict[tuple[str, str, int], int | None]  # (group, topic, partition) -> offset, None if none
    missing: tuple[str, ...] = ()  # configured topics the broker does not have


class BrokerReader:
    """Admin reads through librdkafka: metadata, list_offsets, list_consumer_group_offsets."""

    def __init__(self, kafka: KafkaConfig, groups: list[str], topics: list[str], timeout: float):
        self.groups, self.topics, self.timeout = groups, topics, timeout
        self.options = librdkafka_options(kafka) | {
            "client.id": "fraudstream-lag-exporter",
            # A broker outage is logged once by LagExporter.refresh(), not per connection attempt.
            "error_cb": lambda err: log.debug("kafka: %s", err),
            "log_level": 2, "reconnect.backoff.ms": 1000,
        }
        self.admin = AdminClient(self.options)

    def reset(self) -> None:
        """A new client after a failed read: seen here, an AdminClient whose requests timed out
        during a broker restart kept timing out after the broker was back (up=0 for good)."""
        self.admin = AdminClient(self.options)

    def __call__(self) -> Reading:
        metadata = self.admin.list_topics(timeout=self.timeout)
        partitions, missing = [], []
        for topic in self.topics:
            found = metadata.topics.get(topic)
            if found is None or found.error is not None:
                missing.append(topic)
                continue
            partitions += [TopicPartition(topic, p) for p in sorted(found.partitions)]
        committed = {}
        for group in self.groups if partitions else ():  # librdkafka takes one group per request
            committed |= {(group, *key): offset for key, offset in self._committed(group, partitions).items()}
        # Ends after commits: a commit read later than its end could exceed it.
        starts = self._offsets(partitions, OffsetSpec.earliest())
        ends = self._offsets(partitions, OffsetSpec.latest())
        return Reading(time.time(), {key: (starts[key], ends[key]) for key in ends}, committed, tuple(missing))

    def _committed(self, group: str, partitions: list[TopicPartition]) -> dict[tuple[str, int], int | None]:
        """The group's committed offsets (OffsetFetch: no join), None where it has none or does not exist yet."""
        future = self.admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group, partitions)], request_timeout=self.timeout)[group]
        try:
            found = future.result(timeout=self.timeout).topic_partitions
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.GROUP_ID_NOT_FOUND:
                raise
            found = partitions  # offsets unset (-1001)
        offsets = {}
        for tp in found:
            if tp.error is not None and tp.error.code() != KafkaError.GROUP_ID_NOT_FOUND:
                raise KafkaException(tp.error)
            offsets[(tp.topic, tp.partition)] = tp.offset if tp.error is None and tp.offset >= 0 else None
        return offsets

    def _offsets(self, partitions: list[TopicPartition], spec: OffsetSpec) -> dict[tuple[str, int], int]:
        if not partitions:
            return {}
        futures = self.admin.list_offsets({tp: spec for tp in partitions}, request_timeout=self.timeout)
        return {(tp.topic, tp.partition): f.result(timeout=self.timeout).offset for tp, f in futures.items()}


class LagExporter:
    """A Prometheus collector serving the latest Reading; refresh() takes a new one and never raises."""

    STALE_AFTER = 60.0  # seconds: offsets older than this are not served

    def __init__(self, read, health: Health | None = None, clock=time.time):
        self.read, self.health, self.clock = read, health or Health(), clock
        self.reading: Reading | None = None
        self.ok = False
        self.error: str | None = None  # of the last read, None if it succeeded (or none was made yet)

    def refresh(self) -> bool:
        try:
            reading = self.read()
        except Exception as exc:  # noqa: BLE001 (any failure is reported, none may stop the exporter)
            if self.error is None:  # logged once per outage, not every interval
                log.warning("cannot read the broker: %s", exc)
            getattr(self.read, "reset", lambda: None)()
            self.ok, self.error = False, f"{type(exc).__name__}: {exc}"
            self.health.set_ready(False, f"cannot read the broker: {self.error}")
            return False
        if not self.ok:
            log.info("read %d partitions and %d committed offsets from the broker",
                     len(reading.logs), sum(o is not None for o in reading.committed.values()))
        if reading.missing and (self.reading is None or reading.missing != self.reading.missing):
            log.warning("topics not on the broker (no lag reported for them): %s", ", ".join(reading.missing))
        self.reading, self.ok, self.error = reading, True, None
        self.health.set_ready(True)
        return True

    def collect(self):
        reading = self.reading
        fresh = reading is not None and self.clock() - reading.at <= self.STALE_AFTER
        up = GaugeMetricFamily("fraudstream_lag_exporter_up",
                               "1 when the last read of the broker succeeded (and is recent)")
        up.add_metric([], 1.0 if self.ok and fresh else 0.0)
        yield up
        last = GaugeMetricFamily("fraudstream_lag_exporter_last_success_timestamp_seconds",
                                 "Unix time of the last successful read of the broker")
        if reading is not None:
            last.add_metric([], reading.at)
        yield last
        if fresh:
            yield from families(reading)


def families(reading: Reading):
    """kafka_exporter's metric families for one Reading."""
    end = GaugeMetricFamily("kafka_topic_partition_current_offset",
                            "Current Offset of a Broker at Topic/Partition", labels=["topic", "partition"])
    oldest = GaugeMetricFamily("kafka_topic_partition_oldest_offset",
                               "Oldest Offset of a Broker at Topic/Partition", labels=["topic", "partition"])
    for (topic, partition), (first, last) in sorted(reading.logs.items()):
        end.add_metric([topic, str(partition)], last)
        oldest.add_metric([topic, str(partition)], first)
    labels = ["consumergroup", "topic", "partition"]
    current = GaugeMetricFamily("kafka_consumergroup_current_offset",
                                "Current Offset of a ConsumerGroup at Topic/Partition", labels=labels)
    lags = GaugeMetricFamily("kafka_consumergroup_lag",
                             "Current Approximate Lag of a ConsumerGroup at Topic/Partition", labels=labels)
    lag_sum = GaugeMetricFamily("kafka_consumergroup_lag_sum",
                                "Current Approximate Lag of a ConsumerGroup at Topic for all partitions",
                                labels=["consumergroup", "topic"])
    sums: dict[tuple[str, str], int] = {}
    for (group, topic, partition), committed in sorted(reading.committed.items()):
        if (topic, partition) not in reading.logs:
            continue
        behind = lag(committed, *reading.logs[(topic, partition)])
        current.add_metric([group, topic, str(partition)], -1 if committed is None else committed)
        lags.add_metric([group, topic, str(partition)], behind)
        sums[(group, topic)] = sums.get((group, topic), 0) + behind
    for (group, topic), total in sorted(sums.items()):
        lag_sum.add_metric([group, topic], total)
    return [end, oldest, current, lags, lag_sum]


def run(kafka: KafkaConfig, cfg: LagExporterConfig) -> int:
    groups, topics = split(cfg.groups), split(cfg.topics)
    if not groups or not topics:
        raise ValueError("--groups and --topics each need at least one name")
    health = Health()
    health.set_ready(False, "no read of the broker yet")
    exporter = LagExporter(BrokerReader(kafka, groups, topics, cfg.timeout_seconds), health)
    REGISTRY.register(exporter)
    server = serve(cfg.metrics_port, health, cfg.metrics_host)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    log.info("lag of %s on %s from %s, every %.0f s; /metrics on %s:%d", ",".join(groups), ",".join(topics),
             kafka.bootstrap_servers, cfg.interval_seconds, cfg.metrics_host, cfg.metrics_port)
    while not stop.is_set():
        exporter.refresh()
        stop.wait(cfg.interval_seconds)
    server.shutdown()
    return 0
