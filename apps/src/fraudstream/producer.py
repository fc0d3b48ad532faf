"""`fraudstream produce`: simulated transactions to Kafka, and their labels after a delay.

Transactions are JSON (apps/schema/transaction.schema.json) keyed by customer id, so a card's
history stays on one partition. Labels go to fraud-labels once the simulated clock has passed
tx time + label delay, as chargebacks would arrive. Idempotent producer, acks=all.

A restart (--resume 1) continues each partition right after the newest transaction it holds,
and rebuilds the labels that were still waiting for their delay (they lived in memory only):
the simulator, deterministic for a seed, regenerates the days they can come from, and every
transaction already in Kafka whose label is newer than the last label of the partition that
label maps to is queued again (plan_resume). One idempotent producer writes each partition in
transaction order without gaps, so the first and last record of a partition tell what it
holds: after a crash no transaction or label is lost, none is sent twice.
"""

from __future__ import annotations

import json
import logging
import math
import signal
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.partitioner.default import murmur2
from prometheus_client import Counter, Gauge

from .config import KafkaConfig, ProducerConfig, Topics
from .features import DAY
from .http import Health, serve
from .schema import InvalidRecord, decode, decode_label, encode, iso
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


# Farthest back a resume looks for labels still to send (a label partition whose last label is
# older than the usual window widens it, e.g. after a crash lost a large unacknowledged queue).
MAX_RESUME_DAYS = 60
NOTHING = -1  # below every tx id: "no record" as a watermark


def partition_of(key: bytes, partitions: int) -> int:
    """The partition of a keyed record, as Sink (librdkafka murmur2_random) and the Java client pick it."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@dataclass(frozen=True)
class Record:
    """A record of ours as the resume reads it: the transaction it is, or labels."""
    tx_id: int
    tx_time: int
    customer_id: int


@dataclass(frozen=True)
class Tail:
    """What a topic holds: its partition count, and the oldest and newest record of each non-empty
    partition (None where that record does not decode: not one of ours)."""
    partitions: int
    last: dict[int, Record | None]
    first: dict[int, Record | None] = field(default_factory=dict)

    def newest_time(self) -> int | None:
        times = [r.tx_time for r in self.last.values() if r is not None]
        return max(times) if times else None


def read_tail(consumer: KafkaConsumer, topic: str, parse, with_first: bool = False, timeout: float = 30.0) -> Tail:
    """The last (and first) record of every partition of a topic (kafka-python, no group)."""
    partitions = sorted(consumer.partitions_for_topic(topic) or ())
    tps = [TopicPartition(topic, p) for p in partitions]
    tail = Tail(len(partitions), {}, {})
    if not tps:
        return tail
    ends = consumer.end_offsets(tps, timeout_ms=int(timeout * 1000))
    starts = consumer.beginning_offsets(tps, timeout_ms=int(timeout * 1000)) if with_first else {}
    for tp in tps:
        if ends[tp] <= (starts[tp] if with_first else 0):
            continue
        wanted = {ends[tp] - 1: tail.last} | ({starts[tp]: tail.first} if with_first else {})
        for offset, into in wanted.items():
            consumer.assign([tp])
            consumer.seek(tp, offset)
            deadline = time.monotonic() + timeout
            record = None
            while record is None:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"could not read offset {offset} of {topic}[{tp.partition}] "
                                       f"within {timeout:.0f}s")
                record = next((r for r in consumer.poll(timeout_ms=1000).get(tp, []) if r.offset == offset), None)
            try:
                parsed = parse(record.value)
                into[tp.partition] = Record(parsed.tx_id, parsed.tx_time, parsed.customer_id)
            except InvalidRecord:
                into[tp.partition] = None
    return tail


def read_tails(kafka: KafkaConfig, topics: Topics) -> tuple[Tail, Tail]:
    """The first and last transactions and the last labels of every partition."""
    consumer = KafkaConsumer(**kafka.client_options(), enable_auto_commit=False)
    try:
        return (read_tail(consumer, topics.transactions, decode, with_first=True),
                read_tail(consumer, topics.labels, decode_label))
    finally:
        consumer.close()


def read_tails_patiently(kafka: KafkaConfig, topics: Topics, health: Health, stopping, patience: float = 300):
    """read_tails, tried again while Kafka cannot answer (a broker restart as the producer starts
    must not kill it); not ready meanwhile. Exits (SystemExit) after `patience` seconds, or
    returns None once `stopping()`."""
    deadline = time.monotonic() + patience
    while not stopping():
        try:
            return read_tails(kafka, topics)
        except (KafkaError, TimeoutError) as exc:
            if time.monotonic() > deadline:
                raise SystemExit(f"gave up after {patience:.0f} s waiting for Kafka (reading where to resume): "
                                 f"{exc!r}; check that the brokers are up and --bootstrap-servers names them") from exc
            health.set_ready(False, f"reading where to resume: {exc!r}")
            log.warning("reading where to resume failed (%r); trying again in 2 s", exc)
            time.sleep(2)
    return None


def resume_window(newest_day: int, label_delay: int, labels: Tail) -> int:
    """First simulated day to regenerate when the newest transaction in Kafka is of `newest_day`:
    label_delay_days + 1 days back, and further back to the oldest last label of a partition if
    that is older (at most MAX_RESUME_DAYS)."""
    first = newest_day - math.ceil(label_delay / DAY)
    for last in labels.last.values():
        if last is not None and last.tx_time // DAY <= newest_day:
            first = min(first, last.tx_time // DAY)
    return max(0, first, newest_day - MAX_RESUME_DAYS)


@dataclass
class Resume:
    start_day: int  # the first simulated day with a transaction not yet in Kafka
    produced_until: np.ndarray  # per customer id: the newest tx id of the card already in Kafka
    labels: np.ndarray  # the labels still waiting for their delay (TX_DTYPE rows, in tx id order)

    def unsent(self, day_tx: np.ndarray) -> np.ndarray:
        """The transactions of a day that Kafka does not hold yet."""
        return day_tx[day_tx["tx_id"] > self.produced_until[day_tx["customer_id"]]]


def plan_resume(window: np.ndarray, n_customers: int, transactions: Tail, labels: Tail) -> Resume:
    """Where a restarted producer continues, and the labels it must still send (no broker needed).

    window: the simulator's transactions (TX_DTYPE, in tx id order) of every day a pending label
    can come from, up to the day of the newest transaction in Kafka. One idempotent producer
    writes each partition in tx id order without gaps, so a partition's first and last records
    tell which transactions it holds. The producer continues each partition right after its
    last record (a crash loses a different tail of each partition's queue: those transactions
    are sent again, none twice). A label is still to send when its transaction was produced and
    it is newer than the last label of its labels partition: exactly what was lost.

    A record in the window that is not the simulator's transaction of that tx id is not ours (a
    record injected by hand) and tells nothing: a transactions partition then counts as holding
    the whole window, a labels partition as holding no label (a duplicate label, never a lost one).
    """
    ids = window["tx_id"]

    def bound(record: Record | None, otherwise: int) -> int:
        if record is None or ids.size == 0:
            return otherwise
        if record.tx_id < ids[0]:
            return record.tx_id  # older than the window
        i = int(np.searchsorted(ids, record.tx_id))
        ours = (i < ids.size and int(ids[i]) == record.tx_id and int(window["tx_time"][i]) == record.tx_time
                and int(window["customer_id"][i]) == record.customer_id)
        return record.tx_id if ours else otherwise

    everything = int(ids[-1]) if ids.size else NOTHING
    tx_bounds = {p: (bound(transactions.first.get(p), NOTHING), bound(last, everything))
                 for p, last in transactions.last.items()}
    label_bounds = {p: bound(last, NOTHING) for p, last in labels.last.items()}
    low, high, labelled = (np.full(n_customers, NOTHING, dtype=np.int64) for _ in range(3))
    for c in range(n_customers):
        key = str(c).encode()
        if transactions.partitions:
            low[c], high[c] = tx_bounds.get(partition_of(key, transactions.partitions), (0, NOTHING))
        if labels.partitions:
            labelled[c] = label_bounds.get(partition_of(key, labels.partitions), NOTHING)
    cards = window["customer_id"]
    unsent = ids > high[cards]
    newest_day = int(window["tx_time"][-1]) // DAY if ids.size else 0
    start_day = int(window["tx_time"][unsent][0]) // DAY if unsent.any() else newest_day + 1
    pending = window[(ids >= low[cards]) & ~unsent & (ids > labelled[cards])]
    return Resume(start_day, high, pending)


def resume(simulator: Simulator, label_delay: int, transactions: Tail, labels: Tail) -> Resume | None:
    """plan_resume() on the days the simulator regenerates; None if Kafka holds no transaction."""
    newest = transactions.newest_time()
    if newest is None:
        return None
    started = time.perf_counter()
    newest_day = newest // DAY
    first = resume_window(newest_day, label_delay, labels)
    window = simulator.dataset(newest_day + 1 - first, first)
    plan = plan_resume(window, simulator.params.n_customers, transactions, labels)
    log.info("resume: from simulated day %d; %d labels still to send, from %d transactions of days %d-%d (%.1fs)",
             plan.start_day, plan.labels.size, window.size, first, newest_day, time.perf_counter() - started)
    return plan


def queue_label(pending: deque, tx) -> None:
    """Keep pending labels in tx id order: each labels partition must receive them in that order
    (the resume reads its last label as a watermark). Only right after a resume does a
    transaction come before labels already queued."""
    if not pending or pending[-1]["tx_id"] < tx["tx_id"]:
        pending.append(tx)
        return
    i = len(pending)
    while i and pending[i - 1]["tx_id"] > tx["tx_id"]:
        i -= 1
    pending.insert(i, tx)


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
    pending_labels: deque = deque()
    label_delay = int(cfg.label_delay_days * DAY)
    pacer = Pacer(cfg.rate, cfg.speedup)
    simulator = Simulator(SimulatorParams(seed=cfg.seed))
    count = 0
    start_day = cfg.start_day
    plan = None
    if cfg.resume:
        tails = read_tails_patiently(kafka, topics, health, lambda: bool(stop), cfg.startup_patience_seconds)
        if tails is None:
            sink.close(timeout=5)
            return 0
        plan = resume(simulator, label_delay, *tails)
    health.set_ready(True)
    if plan is not None:
        start_day = max(start_day, plan.start_day)
        pending_labels.extend(plan.labels)
    log.info("producing to %s from simulated day %d (rate %s/s, speedup %s)",
             topics.transactions, start_day, cfg.rate or "max", cfg.speedup or "off")
    for _, day_tx in simulator.days(start_day):
        for tx in (day_tx if plan is None else plan.unsent(day_tx)):
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
            queue_label(pending_labels, tx)
            SIM_TIME.set(now)
            count += 1
        else:
            continue
        break
    log.info("stopping after %d transactions; flushing", count)
    sink.close(timeout=60)
    return 0
