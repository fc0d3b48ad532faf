"""Reading as a consumer group: librdkafka (confluent-kafka).

Why: kafka-python 3.0.12's group consumer stalled now and then right after an assignment (no
fetch, or a rebalance that never completed, and nothing logged; README "Known problems"), and its
fetcher costs Python time per record. librdkafka runs the group protocol and the fetches in its
own threads. poll() returns {TopicPartition: [records]} (ledger.TopicPartition), records with
.topic .partition .offset .timestamp .key .value. Offsets are never committed automatically:
the scorer commits what Kafka acknowledged the outputs of.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from confluent_kafka import Consumer, KafkaError, KafkaException
from confluent_kafka import TopicPartition as RdPartition
from prometheus_client import Counter

from .config import KAFKA_TIMEOUT_MS, KafkaConfig
from .ledger import TopicPartition
from .sink import librdkafka_options

log = logging.getLogger("fraudstream.source")
TIMEOUT = KAFKA_TIMEOUT_MS / 1000
STALE = Counter("fraudstream_source_stale_records", "Records dropped because a rebalance ran inside the poll "
                "that fetched them (read again from the committed offsets)")


class Record(NamedTuple):
    topic: str
    partition: int
    offset: int
    timestamp: int  # milliseconds
    key: bytes | None
    value: bytes | None


class Source:
    """A consumer group member. on_assigned/on_revoked get sets of TopicPartition; they run inside
    poll(). A poll() inside which the group rebalanced returns nothing: librdkafka hands back, in
    the same batch, records fetched for the old assignment (of revoked partitions, and of kept ones
    that the new assignment reads again), so they are dropped and every owned partition starts
    again at the group's committed offset."""

    def __init__(self, kafka: KafkaConfig, group_id: str, client_id: str, max_records: int,
                 batch_wait_ms: float = 0, on_commit_failed: Callable | None = None):
        self.max_records, self.batch_wait = max_records, batch_wait_ms / 1000
        self.on_commit_failed = on_commit_failed
        self.rebalanced = False  # a rebalance callback ran inside the current consume() call
        self.consumer = Consumer(librdkafka_options(kafka) | {
            "group.id": group_id, "client.id": client_id,
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            # Range gives a member the same partition numbers of every topic (scorer.py says why).
            "partition.assignment.strategy": "range",
            "queued.max.messages.kbytes": 16384,  # prefetch per partition; the default is 64 MiB
            # A killed member's partitions move after 10 s (librdkafka's default is 45 s).
            "session.timeout.ms": 10_000,
            "error_cb": lambda err: log.warning("kafka: %s", err),
            "on_commit": self._committed,
        })

    def _committed(self, err, partitions) -> None:
        """Result of an asynchronous commit (served inside poll())."""
        failed = [p for p in partitions or () if p.error is not None]
        if err is not None or failed:
            log.warning("commit failed (%s); the next commit offers these offsets again", err or failed[0].error)
            if self.on_commit_failed:
                self.on_commit_failed({TopicPartition(p.topic, p.partition) for p in partitions or ()})

    def subscribe(self, topics: list[str], on_assigned: Callable, on_revoked: Callable) -> None:
        def revoked(_, partitions):
            self.rebalanced = True
            on_revoked({TopicPartition(p.topic, p.partition) for p in partitions})

        def assigned(_, partitions):
            self.rebalanced = True
            on_assigned({TopicPartition(p.topic, p.partition) for p in partitions})

        self.consumer.subscribe(topics, on_revoke=revoked, on_lost=revoked, on_assign=assigned)

    def poll(self, timeout_ms: int) -> dict[TopicPartition, list[Record]]:
        """What has arrived, up to max_records; waits up to timeout_ms only when nothing has, and
        then batch_wait_ms more for what follows the first record (librdkafka's consume(n,
        timeout) waits until n records or the timeout: at a few thousand records a second a long
        timeout alone added ~150 ms to every transaction's latency)."""
        self.rebalanced = False
        messages = self.consumer.consume(self.max_records, 0)
        if not messages and timeout_ms > 0:
            messages = self.consumer.consume(1, timeout_ms / 1000)
            if messages:
                messages += self.consumer.consume(self.max_records - 1, self.batch_wait)
        if self.rebalanced:
            self._restart(messages)
            return {}
        batch: dict[TopicPartition, list[Record]] = {}
        for m in messages:
            if m.error():
                if m.error().fatal():
                    raise KafkaException(m.error())
                log.warning("kafka: %s", m.error())
                continue
            topic, partition = m.topic(), m.partition()
            batch.setdefault(TopicPartition(topic, partition), []).append(
                Record(topic, partition, m.offset(), m.timestamp()[1], m.key(), m.value()))
        return batch

    def _restart(self, messages) -> None:
        """After a rebalance inside consume(): drop the batch (which records are the new
        assignment's is unknown) and read every owned partition again from its start offset."""
        dropped = sum(1 for m in messages if not m.error())
        if dropped:
            STALE.inc(dropped)
            log.info("a rebalance ran inside poll(): %d records dropped, read again from the committed offsets",
                     dropped)
        for tp in self.assignment():
            self.seek(tp, self.start_offset(tp))

    def partitions_for_topic(self, topic: str) -> set[int]:
        """Empty when the topic does not exist; raises while Kafka cannot say (topic_metadata)."""
        metadata = topic_metadata(self.consumer, topic)
        return set(metadata.partitions) if metadata else set()

    def committed(self, tp: TopicPartition) -> int | None:
        """The group's committed offset, None when it has none; raises when Kafka could not say
        (an error read as "none" would restart the partition from the beginning)."""
        [found] = self.consumer.committed([RdPartition(tp.topic, tp.partition)], timeout=TIMEOUT)
        if found.error is not None:
            raise KafkaException(found.error)
        return None if found.offset < 0 else found.offset

    def start_offset(self, tp: TopicPartition) -> int:
        """Where a partition is read from after an assignment: the group's committed offset, or
        the beginning (auto.offset.reset=earliest)."""
        committed = self.committed(tp)
        return self.beginning(tp) if committed is None else committed

    def beginning(self, tp: TopicPartition) -> int:
        return self.consumer.get_watermark_offsets(RdPartition(tp.topic, tp.partition), timeout=TIMEOUT)[0]

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Only for a partition being read (assigned and fetched); librdkafka starts a newly
        assigned one at its committed offset by itself."""
        self.consumer.seek(RdPartition(tp.topic, tp.partition, offset))

    def commit(self, offsets: dict[TopicPartition, int], asynchronous: bool = False) -> None:
        """Synchronous: returns once the coordinator has stored them, raises KafkaException if not.
        Asynchronous: returns at once; a failure reaches on_commit_failed inside a later poll()."""
        if not offsets:
            return
        rd = [RdPartition(tp.topic, tp.partition, o) for tp, o in offsets.items()]
        if asynchronous:
            self.consumer.commit(offsets=rd, asynchronous=True)
            return
        done = self.consumer.commit(offsets=rd, asynchronous=False)
        failed = [p for p in done or () if p.error is not None]
        if failed:
            raise KafkaException(failed[0].error)

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition(p.topic, p.partition) for p in self.consumer.assignment()}

    def highwater(self, tp: TopicPartition) -> int | None:
        """The log end as last seen by the fetcher (no request); None before the first fetch."""
        _, high = self.consumer.get_watermark_offsets(RdPartition(tp.topic, tp.partition), cached=True)
        return high if high >= 0 else None

    def close(self, timeout: float = 10.0) -> bool:
        """Leave the group; False when librdkafka did not finish within `timeout` (the coordinator
        is unreachable: its close waits for it without a bound)."""
        return close_within(self.consumer.close, timeout, "the group consumer")


def close_within(close: Callable[[], object], timeout: float, what: str) -> bool:
    """Run a librdkafka close in a daemon thread and wait at most `timeout` seconds for it."""
    thread = threading.Thread(target=close, name=f"close {what}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        log.warning("closing %s did not finish in %.0f s (broker unreachable?); leaving it", what, timeout)
        return False
    return True


class EndOffsets:
    """Log-end offsets of partitions owned or not, from their leaders, with a consumer that joins
    no group. (AdminClient.list_offsets asks many in one request, but librdkafka's admin path
    aborted a process on an assertion during a broker restart, and an AdminClient was seen to
    stay timed out after the broker came back.)"""

    def __init__(self, kafka: KafkaConfig, client_id: str):
        self.consumer = Consumer(librdkafka_options(kafka) | {"group.id": client_id, "client.id": client_id,
                                                              "enable.auto.commit": False})

    def __call__(self, partitions) -> dict[TopicPartition, int]:
        return {tp: self.consumer.get_watermark_offsets(RdPartition(tp.topic, tp.partition), timeout=2)[1]
                for tp in partitions}

    def close(self) -> bool:
        return close_within(self.consumer.close, 5, "the end-offsets reader")


# librdkafka's codes for "no broker answered (yet)": a broker that starts after us, or restarts.
UNREACHABLE = {KafkaError._TRANSPORT, KafkaError._TIMED_OUT, KafkaError._ALL_BROKERS_DOWN, KafkaError._RESOLVE,
               KafkaError._WAIT_COORD, KafkaError.REQUEST_TIMED_OUT, KafkaError.NETWORK_EXCEPTION}
# A broker's "not ready yet" answers: Kafka's RetriableException family. librdkafka marks them
# retriable() on some calls only (get_watermark_offsets raised NOT_LEADER_FOR_PARTITION unmarked
# while a restarted broker was taking its partitions back). UNKNOWN_TOPIC_OR_PART is left out:
# a missing topic is reported, not waited for.
NOT_READY = {KafkaError.LEADER_NOT_AVAILABLE, KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.FENCED_LEADER_EPOCH,
             KafkaError.UNKNOWN_LEADER_EPOCH, KafkaError.OFFSET_NOT_AVAILABLE, KafkaError.PREFERRED_LEADER_NOT_AVAILABLE,
             KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError.NOT_COORDINATOR,
             KafkaError.NOT_ENOUGH_REPLICAS, KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND, KafkaError.KAFKA_STORAGE_ERROR,
             KafkaError.NOT_CONTROLLER, KafkaError.REBALANCE_IN_PROGRESS, KafkaError.THROTTLING_QUOTA_EXCEEDED}


def transient(exc: Exception) -> bool:
    """A Kafka call that may succeed if tried again: the broker is unreachable or not ready yet."""
    if isinstance(exc, TimeoutError):
        return True
    err = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
    return isinstance(err, KafkaError) and (err.code() in UNREACHABLE | NOT_READY or err.retriable())


def topic_metadata(client, topic: str):
    """A topic's metadata from a Consumer or Producer, None when the topic does not exist; raises
    (transient) while its leader is not elected yet, which would otherwise read as "no partitions"."""
    found = client.list_topics(topic, timeout=TIMEOUT).topics.get(topic)
    if found is None or found.error is None or found.error.code() == KafkaError.NO_ERROR:
        return found
    if found.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
        return None
    if found.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
        raise SystemExit(f"not allowed to describe topic {topic!r}: grant this user Describe on it (kafka-acls)")
    raise KafkaException(found.error)


def patiently(call: Callable, what: str, on_wait: Callable[[str], None] = lambda _: None,
              patience: float = 300, sleep: Callable[[float], None] = time.sleep):
    """call(), tried again while Kafka cannot answer it, logged and reported to on_wait(reason)
    meanwhile; anything else is raised, and no answer after `patience` seconds exits (SystemExit)."""
    deadline, delay = time.monotonic() + patience, 1.0
    while True:
        try:
            return call()
        except (KafkaException, TimeoutError) as exc:
            if not transient(exc):
                raise
            if time.monotonic() + delay > deadline:
                raise SystemExit(f"gave up after {patience:.0f} s waiting for Kafka ({what}): {exc}; check that "
                                 "the brokers are up and --bootstrap-servers names them") from exc
            reason = f"waiting for Kafka ({what}): {exc}"
            on_wait(reason)
            log.warning("%s; trying again in %.0f s", reason, delay)
            sleep(delay)
            delay = min(delay * 2, 15)
