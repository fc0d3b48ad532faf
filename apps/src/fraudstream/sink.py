"""Writing to Kafka: librdkafka (confluent-kafka) behind kafka-python's send()/flush() shape.

Why: kafka-python's send() costs ~100 µs of pure Python per record, and the scorer sends at
least one record (its score) per transaction; librdkafka's costs a few µs (bench/README.md,
"What the profile says"). Only the apps write through this class (the scorer's group reads go
through source.py). Records are keyed with murmur2, as kafka-python and the Java client do, so
a card's transactions and labels land on the same partition whoever wrote them.
"""

from __future__ import annotations

import logging
import time
from typing import NamedTuple

from confluent_kafka import KafkaError, KafkaException, Producer

from .config import KafkaConfig

log = logging.getLogger("fraudstream.sink")


def librdkafka_options(kafka: KafkaConfig) -> dict:
    """Our Kafka settings as librdkafka configuration (empty settings left out)."""
    return {"bootstrap.servers": kafka.bootstrap_servers, "security.protocol": kafka.security_protocol,
            **kafka.renamed({"sasl_mechanism": "sasl.mechanisms", "sasl_username": "sasl.username",
                             "sasl_password": "sasl.password", "ssl_cafile": "ssl.ca.location",
                             "ssl_certfile": "ssl.certificate.location", "ssl_keyfile": "ssl.key.location"})}


# Errors that refuse one record for good: sending it again unchanged fails again.
REFUSED = frozenset({KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.INVALID_TIMESTAMP, KafkaError.INVALID_RECORD,
                     KafkaError.RECORD_LIST_TOO_LARGE, KafkaError.INVALID_MSG_SIZE, KafkaError.POLICY_VIOLATION})


class DeliveryFailed(RuntimeError):
    """Kafka did not acknowledge one or more records since the last flush() (a transient error)."""


class Refused(NamedTuple):
    """A record that Kafka refused for good, with what is needed to send something else instead."""
    topic: str
    partition: int
    value: bytes | None
    key: bytes | None
    headers: list | None
    error: str  # librdkafka's error name, e.g. INVALID_TIMESTAMP


class Sink:
    """An idempotent producer (acks=all). send() queues; flush() waits for every acknowledgement,
    raises DeliveryFailed if a record since the previous flush() was not acknowledged for a
    transient reason, and returns the records that Kafka refused for good (REFUSED): the caller
    decides what replaces them, so one bad record never blocks the ones after it.
    `on_delivery(topic, error)` is called for every record (error None when acknowledged)."""

    def __init__(self, kafka: KafkaConfig, client_id: str, linger_ms: int = 2, on_delivery=None,
                 delivery_timeout_ms: int = 120_000):
        self.on_delivery = on_delivery
        self.failures: list[str] = []
        self.refused: list[Refused] = []
        options = librdkafka_options(kafka) | {
            "client.id": client_id, "enable.idempotence": True, "acks": "all", "linger.ms": linger_ms,
            "partitioner": "murmur2_random", "delivery.timeout.ms": delivery_timeout_ms,
            "on_delivery": self._delivered,
            # Without a per-record callback, only failures need reporting.
            "delivery.report.only.error": on_delivery is None,
            "error_cb": lambda err: log.warning("kafka: %s", err),
        }
        self.producer = Producer(options)

    def warm(self, topics, timeout: float = 10.0) -> None:
        """Fetch the topics' metadata now, so that the first records sent do not wait for it."""
        for topic in topics:
            try:
                self.producer.list_topics(topic, timeout=timeout)
            except KafkaException as exc:
                log.warning("no metadata for %s yet (%s); the first send will ask again", topic, exc)

    def _delivered(self, err, msg, headers=None) -> None:
        if err is not None and err.code() in REFUSED:  # a delivery report carries no headers: keep ours
            self.refused.append(Refused(msg.topic(), msg.partition(), msg.value(), msg.key(), headers, err.name()))
        elif err is not None:
            self.failures.append(f"{msg.topic()}: {err.str()}")
        if self.on_delivery is not None:
            self.on_delivery(msg.topic(), err)

    def send(self, topic: str, value: bytes, key: bytes | None = None, partition: int | None = None,
             headers=None, timestamp_ms: int | None = None) -> None:
        kwargs = {"key": key, "timestamp": timestamp_ms or 0}
        if partition is not None:
            kwargs["partition"] = partition
        if headers:
            kwargs["headers"] = headers
            kwargs["on_delivery"] = lambda err, msg: self._delivered(err, msg, headers)
        while True:
            try:
                self.producer.produce(topic, value, **kwargs)
                return
            except BufferError:  # librdkafka's queue is full: let it drain
                self.producer.poll(0.05)
            except KafkaException as exc:  # refused before sending (larger than message.max.bytes)
                if exc.args[0].code() not in REFUSED:
                    raise
                self.refused.append(Refused(topic, -1 if partition is None else partition, value, key, headers,
                                            exc.args[0].name()))
                return

    def poll(self) -> None:
        """Serve delivery callbacks without waiting (call it now and then between flushes)."""
        self.producer.poll(0)

    def flush(self, timeout: float = 130.0, should_stop=None, on_slow=None, slow_after: float = 5.0) -> list[Refused]:
        """Wait for every acknowledgement (in 1 s steps, so that should_stop() can end the wait:
        a SIGTERM during a broker outage need not wait for the delivery timeout); on_slow(n) is
        called once when n records are still waiting after slow_after seconds."""
        start = time.monotonic()
        deadline, slow = start + timeout, on_slow
        remaining = self.producer.flush(0)
        while remaining and time.monotonic() < deadline and not (should_stop and should_stop()):
            remaining = self.producer.flush(min(1.0, max(deadline - time.monotonic(), 0)))
            if remaining and slow and time.monotonic() - start > slow_after:
                slow, _ = None, slow(remaining)
        if remaining:
            self.refused.clear()
            raise TimeoutError(f"{remaining} records not acknowledged" +
                               (" when asked to stop" if should_stop and should_stop() else f" within {timeout:.0f}s"))
        if self.failures:
            failures, self.failures = self.failures, []
            self.refused.clear()  # sent again after the rewind
            raise DeliveryFailed(f"{len(failures)} records not acknowledged ({failures[0]})")
        refused, self.refused = self.refused, []
        return refused

    def close(self, timeout: float = 30.0) -> None:
        try:
            remaining = self.producer.flush(timeout)
        except KafkaException as exc:
            log.warning("close: %s", exc)
            return
        if remaining:
            log.error("closing with %d records not acknowledged after %.0fs", remaining, timeout)
