"""`fraudstream produce`: simulated transactions to Kafka, and their labels after a delay.

Transactions are JSON (apps/schema/transaction.schema.json) keyed by customer id, so a card's
history stays on one partition. Labels go to fraud-labels once the simulated clock has passed
tx time + label delay, as chargebacks would arrive. Idempotent producer, acks=all.
"""

from __future__ import annotations

import json
import logging
import signal
import time
from collections import deque

from kafka import KafkaConsumer, TopicPartition
from prometheus_client import Counter, Gauge

from .config import KafkaConfig, ProducerConfig, Topics
from .features import DAY
from .http import Health, serve
from .schema import InvalidRecord, decode, encode, iso
from .simulator import Simulator, SimulatorParams
from .sink import Sink

log = logging.getLogger("fraudstream.produce")

PRODUCED = Counter("fraudstream_producer_transactions", "Transactions sent to Kafka (acknowledged)")
LABELS = Counter("fraudstream_producer_labels", "Labels sent to fraud-labels (acknowledged)")
ERRORS = Counter("fraudstream_producer_send_errors", "Sends that Kafka did not acknowledge", ["topic"])
SIM_TIME = Gauge("fraudstream_producer_simulated_time_seconds", "Simulated clock (seconds since 2018-04-01)")
LAST_SEND = Gauge("fraudstream_producer_last_send_timestamp_seconds", "Wall time of the last acknowledged send")


def label_value(tx) -> bytes:
    return json.dumps({"tx_id": int(tx["tx_id"]), "tx_datetime": iso(int(tx["tx_time"])),
                       "customer_id": int(tx["customer_id"]), "terminal_id": int(tx["terminal_id"]),
                       "fraud": int(tx["fraud"]), "scenario": int(tx["scenario"])},
                      separators=(",", ":")).encode()


class Pacer:
    """Waits so that sends follow a fixed rate, or the simulated clock sped up; never if flat out."""

    def __init__(self, rate: float, speedup: float):
        self.rate, self.speedup = rate, speedup
        self.start = time.monotonic()
        self.first_sim = None
        self.count = 0

    def wait(self, sim_time: int) -> None:
        if self.speedup > 0:
            if self.first_sim is None:
                self.first_sim = sim_time
            due = self.start + (sim_time - self.first_sim) / self.speedup
        elif self.rate > 0:
            due = self.start + self.count / self.rate
        else:
            return
        self.count += 1
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def resume_day(kafka: KafkaConfig, topic: str) -> int | None:
    """The simulated day after the newest transaction already in the topic, or None if it is empty."""
    consumer = KafkaConsumer(**kafka.client_options(), enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        ends = consumer.end_offsets(partitions, timeout_ms=30_000)
        last = None
        for tp in partitions:
            if ends[tp] == 0:
                continue
            consumer.seek(tp, ends[tp] - 1)
            for record in consumer.poll(timeout_ms=5000).get(tp, []):
                try:
                    day = decode(record.value).tx_time // DAY
                except InvalidRecord:
                    continue
                last = day if last is None else max(last, day)
        return None if last is None else last + 1
    finally:
        consumer.close()


def run(kafka: KafkaConfig, topics: Topics, cfg: ProducerConfig) -> int:
    health = Health()
    serve(cfg.metrics_port, health, cfg.metrics_host)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    signal.signal(signal.SIGINT, lambda *_: stop.append(True))

    acknowledged = {topics.transactions: PRODUCED, topics.labels: LABELS}

    def delivered(topic, error):
        if error is None:
            acknowledged[topic].inc()
            LAST_SEND.set_to_current_time()
        else:
            ERRORS.labels(topic).inc()
            log.error("send to %s failed: %s", topic, error)

    # Retried by librdkafka until delivered: the producer never drops a transaction.
    sink = Sink(kafka, client_id="fraud-producer", linger_ms=5, on_delivery=delivered,
                delivery_timeout_ms=2_147_483_647)
    health.set_ready(True)

    pending_labels: deque = deque()
    label_delay = int(cfg.label_delay_days * DAY)
    pacer = Pacer(cfg.rate, cfg.speedup)
    simulator = Simulator(SimulatorParams(seed=cfg.seed))
    count = 0
    start_day = cfg.start_day
    if cfg.resume:
        start_day = max(start_day, resume_day(kafka, topics.transactions) or 0)
    log.info("producing to %s from simulated day %d (rate %s/s, speedup %s)",
             topics.transactions, start_day, cfg.rate or "max", cfg.speedup or "off")
    for _, day_tx in simulator.days(start_day):
        for tx in day_tx:
            if stop or (cfg.max_messages and count >= cfg.max_messages):
                break
            now = int(tx["tx_time"])
            pacer.wait(now)
            while pending_labels and pending_labels[0]["tx_time"] + label_delay <= now:
                due = pending_labels.popleft()
                sink.send(topics.labels, label_value(due), key=str(due["customer_id"]).encode())
            sink.send(topics.transactions,
                      encode(int(tx["tx_id"]), now, int(tx["customer_id"]), int(tx["terminal_id"]), float(tx["amount"])),
                      key=str(tx["customer_id"]).encode())
            sink.poll()
            pending_labels.append(tx)
            SIM_TIME.set(now)
            count += 1
        else:
            continue
        break
    log.info("stopping after %d transactions; flushing", count)
    sink.close(timeout=60)
    return 0
