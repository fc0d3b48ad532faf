"""Scale-out state: the features changelog, and the replica of it that every scorer keeps.

Each scorer owns some partitions of fraud-transactions (and the same partitions of fraud-labels).
After each batch it appends what it learnt to partition p of the changelog topic, where p is the
source partition: one record per source partition and batch, holding packed events:

  tx events     (offset, tx_id, time, customer, terminal, cents, outlier decision)
  label events  (offset, tx_id, time, customer, terminal, fraud)

Every scorer reads every changelog partition into a History (features.History), so terminal
windows and known frauds cover all partitions. A query at t needs only what is older than
t - delay, so a scorer waits until every source partition is known past t - delay (its
watermark), or has nothing left unprocessed, and then the features are the same whatever
the number of scorers. Customer windows stay with the partition's owner; when a partition is
assigned, they are rebuilt from the partition's tx events before its committed offset. Events
are deduplicated by source offset, so a batch published twice (crash before commit) counts once.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException
from confluent_kafka import TopicPartition as RdPartition
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType
from prometheus_client import Counter

from .config import KAFKA_TIMEOUT_MS, KafkaConfig
from .features import DAY, WINDOWS, History
from .schema import EPOCH
from .sink import librdkafka_options
from .source import close_within, patiently, topic_metadata

log = logging.getLogger("fraudstream.state")
INVALID = Counter("fraudstream_scorer_changelog_invalid", "Changelog records skipped: not written by a scorer")
TIMEOUT = KAFKA_TIMEOUT_MS / 1000

EVENT = np.dtype([("offset", "<i8"), ("tx_id", "<i8"), ("tx_time", "<i8"), ("customer_id", "<i8"),
                  ("terminal_id", "<i8"), ("cents", "<i8"), ("flag", "i1")])
TX, LABEL = "tx", "label"


def changelog_record(kind: str, through: int, events: np.ndarray, fallback_time: float,
                     now: float | None = None) -> dict:
    """Sink.send() arguments for one batch of one source partition.

    `through` is the last source offset the batch covered (bad records included), so that
    progress shows even when a batch held nothing but poison. The timestamp is the batch's
    newest event time, which lets a restore start at "delay + 30 days ago" with
    offsets_for_times; it never lies ahead of the wall clock, where the broker would refuse it
    (log.message.timestamp.after.max.ms, one hour by default).
    """
    newest = int(events["tx_time"].max()) if events.size else (fallback_time if math.isfinite(fallback_time) else 0)
    stamp = min((EPOCH + int(newest)) * 1000, int((time.time() if now is None else now) * 1000))
    return {"value": events.tobytes(), "headers": [("kind", kind.encode()), ("through", str(through).encode())],
            "timestamp_ms": max(stamp, 1)}


def apply_events(history: History, kind: str, events: np.ndarray) -> None:
    """Add one batch of changelog events to a History: transactions, or the frauds among labels."""
    if kind == TX:
        add = history.add_transaction
        for terminal, t in zip(events["terminal_id"].tolist(), events["tx_time"].tolist(), strict=True):
            add(terminal, t)
        return
    frauds = events[events["flag"] == 1]
    for terminal, customer, t in zip(frauds["terminal_id"].tolist(), frauds["customer_id"].tolist(),
                                     frauds["tx_time"].tolist(), strict=True):
        history.add_fraud(terminal, customer, t)


def unseen(events: np.ndarray, done: int) -> np.ndarray:
    """The events not applied yet: source offsets above `done` (a batch published twice, after a
    crash before its commit, counts once), each offset once even within one record."""
    events = events[events["offset"] > done]
    if events.size > 1 and not (np.diff(events["offset"]) > 0).all():
        _, first = np.unique(events["offset"], return_index=True)
        events = events[np.sort(first)]
    return events


def check_retention(kafka: KafkaConfig, topic: str, patient=patiently) -> None:
    """Event-time records under an age limit would be deleted at once (simulated time is 2018)."""
    admin = AdminClient(librdkafka_options(kafka))
    resource = ConfigResource(ResourceType.TOPIC, topic)
    try:
        entries = patient(
            lambda: admin.describe_configs([resource], request_timeout=TIMEOUT)[resource].result(timeout=TIMEOUT),
            f"configuration of {topic}")
    except KafkaException as exc:
        if exc.args[0].code() in (KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.CLUSTER_AUTHORIZATION_FAILED):
            raise SystemExit(f"user {kafka.sasl_username or 'ANONYMOUS'} may not read the configuration of the "
                             f"changelog topic {topic!r}: grant it DescribeConfigs there (kafka-acls --add "
                             f"--allow-principal User:{kafka.sasl_username or 'NAME'} --operation DescribeConfigs "
                             f"--topic {topic})") from None
        raise
    retention = entries["retention.ms"].value if "retention.ms" in entries else None
    if retention is not None and retention != "-1":
        raise SystemExit(f"changelog topic {topic!r} has retention.ms={retention}: its records carry event time "
                         "and would be deleted; set retention.ms=-1 and bound it with retention.bytes")


class Replica:
    """History of every partition, fed from the changelog; watermarks and customer events per partition.

    Reads with librdkafka, assigned partitions and no group (nothing is committed).
    """

    def __init__(self, kafka: KafkaConfig, topic: str, history: History, patient=patiently):
        """patient(call, what): how start-up calls wait for Kafka (source.patiently)."""
        self.history, self.topic = history, topic
        self.keep = history.delay + (WINDOWS[-1] + 1) * DAY  # event time a restore must cover
        self.consumer = Consumer(librdkafka_options(kafka) | {
            "group.id": "fraudstream-state-replica", "client.id": "fraudstream-state-replica",
            "enable.auto.commit": False, "enable.auto.offset.store": False, "auto.offset.reset": "earliest",
            "max.partition.fetch.bytes": 8 << 20,
            # A quiet changelog is fetched ten times a second, not once per record: the state it
            # carries is needed a label delay (7 days of event time) later.
            "fetch.min.bytes": 64 << 10, "fetch.wait.max.ms": 100, "error_cb": lambda err: log.warning("kafka: %s", err)})
        found = patient(lambda: topic_metadata(self.consumer, topic), f"metadata of {topic}")
        if found is None or not found.partitions:
            raise SystemExit(f"changelog topic {topic!r} does not exist: create it with as many partitions as "
                             "the transactions topic (fraud_workloads_topics), or set --changelog '' for one "
                             "in-memory scorer")
        check_retention(kafka, topic, patient)
        self.partitions = sorted(found.partitions)
        keys = [(kind, p) for kind in (TX, LABEL) for p in self.partitions]
        self.done = dict.fromkeys(keys, -1)  # highest source offset applied
        self.watermark = dict.fromkeys(keys, -math.inf)  # newest event time applied
        self.buffers: dict[int, list[np.ndarray]] = {p: [] for p in self.partitions}
        self.next: dict[int, int] = {}  # next changelog offset to read, per partition
        self.applied = 0
        self._evicted = -math.inf

    # -- reading ------------------------------------------------------------------------------
    def ends(self) -> dict[int, int]:
        return {p: self.consumer.get_watermark_offsets(RdPartition(self.topic, p), timeout=TIMEOUT)[1]
                for p in self.partitions}

    def assign(self, offsets: dict[int, int]) -> None:
        self.consumer.assign([RdPartition(self.topic, p, o) for p, o in offsets.items()])
        self.next = {p: (o if o >= 0 else 0) for p, o in offsets.items()}

    def restore(self) -> tuple[int, float]:
        """Read the changelog from `delay + 31 days` of event time ago to its end; (events, seconds)."""
        start, before = time.monotonic(), self.applied
        ends = self.ends()
        newest = self._newest_times(ends)
        offsets = dict.fromkeys(self.partitions, OFFSET_BEGINNING)
        if newest:
            since = max((EPOCH + min(newest) - self.keep) * 1000, 0)
            found = self.consumer.offsets_for_times([RdPartition(self.topic, p, since) for p in self.partitions],
                                                    timeout=TIMEOUT)
            offsets = {rd.partition: rd.offset if rd.offset >= 0 else ends[rd.partition] for rd in found}
        self.assign(offsets)
        self.catch_up(ends)
        return self.applied - before, time.monotonic() - start

    def _newest_times(self, ends) -> list[int]:
        """The newest event time in the last record of every non-empty partition (simulated
        seconds; the record timestamp when the record holds no event)."""
        wanted = {p for p in self.partitions if ends[p] > 0}
        self.assign({p: ends[p] - 1 for p in wanted})
        newest: dict[int, int] = {}
        deadline = time.monotonic() + 30
        while wanted - newest.keys() and time.monotonic() < deadline:
            for m in self.consumer.consume(500, 0.5):
                if m.error() is None:
                    size = len(m.value() or b"")
                    events = np.frombuffer(m.value(), EVENT) if size and size % EVENT.itemsize == 0 else ()
                    newest[m.partition()] = (int(events["tx_time"].max()) if len(events)
                                             else m.timestamp()[1] // 1000 - EPOCH)
        return list(newest.values())

    def catch_up(self, ends=None, timeout: float = 300) -> None:
        """Apply everything up to the changelog's end offsets (as of now)."""
        ends = ends or self.ends()
        deadline = time.monotonic() + timeout
        while any(self._position(p) < ends[p] for p in self.partitions):
            if time.monotonic() > deadline:
                raise TimeoutError("the changelog did not catch up in time")
            self.poll(200)

    def _position(self, p: int) -> int:
        """Next offset to read: what was consumed, or librdkafka's position (past control records)."""
        [rd] = self.consumer.position([RdPartition(self.topic, p)])
        return max(self.next.get(p, 0), rd.offset)

    def poll(self, timeout_ms: int = 0) -> None:
        for m in self.consumer.consume(500, timeout_ms / 1000):
            if m.error() is not None:
                if m.error().fatal():
                    raise KafkaException(m.error())
                log.warning("changelog: %s", m.error())
                continue
            self.next[m.partition()] = m.offset() + 1
            self.apply(m.partition(), m.headers(), m.value())
        self._evict()

    def apply(self, partition: int, headers, value: bytes) -> None:
        headers = dict(headers or ())
        try:
            kind, through = headers["kind"].decode(), int(headers["through"])
            key = (kind, partition)
            events = np.frombuffer(value or b"", EVENT)
            self.done[key]  # noqa: B018 (a known kind)
        except (KeyError, ValueError, UnicodeDecodeError) as exc:  # not written by a scorer: skip it, loudly
            INVALID.inc()
            log.error("changelog %s[%d]: skipping a record that is not a scorer's (%r)", self.topic, partition, exc)
            return
        events = unseen(events, self.done[key])
        self.done[key] = max(self.done[key], through)
        if not events.size:
            return
        self.watermark[key] = max(self.watermark[key], int(events["tx_time"].max()))
        self.applied += events.size
        apply_events(self.history, kind, events)
        if kind == TX:
            self.buffers[partition].append(events)

    # -- questions ----------------------------------------------------------------------------
    def complete_until(self, horizon: int, source_ends) -> float:
        """Every source partition is known up to (at least) the returned event time.

        A partition counts as known to its watermark, or to infinity when nothing of it is left
        unprocessed. source_ends() -> {(kind, partition): end offset of the source topic partition}
        is asked only when the watermarks alone do not reach `horizon`.
        """
        low = min(self.watermark.values())
        if low > horizon:
            return low
        ends = source_ends()
        return min((mark if self.done[key] + 1 < ends.get(key, math.inf) else math.inf)
                   for key, mark in self.watermark.items())

    def behind(self, horizon: int, source_ends) -> list:
        """The (kind, partition) that keep `complete` False, with their watermark, progress and end."""
        ends, out = None, []
        for key, done in self.done.items():
            if self.watermark[key] > horizon:
                continue
            ends = ends or source_ends()
            if done + 1 < ends.get(key, math.inf):
                out.append((*key, self.watermark[key], done, ends[key]))
        return out

    def low_watermark(self) -> float:
        """The oldest tx watermark over all partitions (-inf while one has none yet)."""
        return min(self.watermark[(TX, p)] for p in self.partitions)

    def customer_events(self, partition: int, before: int) -> np.ndarray:
        """The partition's tx events with source offset < before, in order (for a customer restore)."""
        chunks = self.buffers[partition]
        if not chunks:
            return np.empty(0, EVENT)
        events = np.concatenate(chunks)
        return events[events["offset"] < before]

    def _evict(self) -> None:
        low = self.low_watermark()
        if not math.isfinite(low) or low - self._evicted < DAY:
            return
        self._evicted = low
        cut = int(low) - self.keep
        self.history.evict(cut)
        for p, chunks in self.buffers.items():
            self.buffers[p] = [c for c in chunks if c["tx_time"].max() > cut]

    def close(self) -> bool:
        """False when librdkafka's close did not finish in 5 s (a broker that does not answer)."""
        return close_within(self.consumer.close, 5, "the changelog replica")
