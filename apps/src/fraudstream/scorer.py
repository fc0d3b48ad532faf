"""`fraudstream score`, the fraud-consumer: score every transaction, at least once, and lose none.

Per poll batch: decode and validate every record, update the owned cards' windows, append what
was learnt to the changelog (state.py), wait until the shared History is complete for the
batch, predict the whole batch in one call, send every score to fraud-scores (and those at or
above the threshold to fraud-alerts), send bad records to the DLQ with their reason and original
bytes, wait for Kafka to acknowledge all of it, and only then commit the offsets. SIGTERM
finishes the batch first; a Kafka error rewinds to the committed offsets and restores state.
Labels from fraud-labels feed the terminal-risk features and the online precision/recall.
"""

from __future__ import annotations

import gc
import json
import logging
import math
import signal
import time
from collections import OrderedDict, deque

import numpy as np
import orjson
from confluent_kafka import KafkaException
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from prometheus_client import Counter, Gauge, Histogram

from .batch_metrics import BatchHistogram
from .config import KAFKA_TIMEOUT_MS, KafkaConfig, ScorerConfig, Topics
from .features import Customers, History, assemble
from .http import Health, serve
from .model import Artifact
from .schema import InvalidRecord, decode, parse_time
from .sink import Sink
from .source import Source
from .state import EVENT, LABEL, TX, Replica, apply_events, changelog_record

log = logging.getLogger("fraudstream.score")

PROCESSED = Counter("fraudstream_scorer_transactions", "Transactions scored and acknowledged")
FLAGGED = Counter("fraudstream_scorer_flagged", "Transactions at or above the threshold (sent to fraud-alerts)")
DLQ = Counter("fraudstream_scorer_dlq", "Records sent to the DLQ", ["reason"])
LABELS = Counter("fraudstream_scorer_labels", "Labels consumed from fraud-labels")
BATCH = Histogram("fraudstream_scorer_batch_size", "Transactions per poll batch",
                  buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500))
SCORING = BatchHistogram("fraudstream_scorer_scoring_latency_seconds",
                         "From poll to acknowledged score, per transaction",
                         buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
EVENT_TO_SCORE = BatchHistogram("fraudstream_scorer_event_to_score_seconds",
                                "From the record's timestamp to its acknowledged score",
                                buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
SCORES = BatchHistogram("fraudstream_scorer_score", "Distribution of fraud scores",
                        buckets=(0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.99))
LAG = Gauge("fraudstream_scorer_lag", "Records behind the log end, per partition", ["topic", "partition"])
MODEL = Gauge("fraudstream_scorer_model_info", "The loaded model", ["version", "threshold"])
PRECISION = Gauge("fraudstream_scorer_online_precision", "Precision at the threshold over the label window")
RECALL = Gauge("fraudstream_scorer_online_recall", "Recall at the threshold over the label window")
LABELLED = Gauge("fraudstream_scorer_online_window_labels", "Labelled transactions in the precision window")
STATE = Gauge("fraudstream_scorer_feature_state", "Entries held in the feature state", ["kind"])
ERRORS = Counter("fraudstream_scorer_kafka_errors", "Batches rewound after a Kafka error")
INCOMPLETE = Counter("fraudstream_scorer_incomplete_state",
                     "Transactions scored before every partition's state was known (waited too long)")
PENDING = Gauge("fraudstream_scorer_pending", "Transactions read and waiting for the other partitions' state")
RESTORE_SECONDS = Gauge("fraudstream_scorer_restore_seconds", "Duration of the last state restore", ["store"])
RESTORED = Counter("fraudstream_scorer_restored_records", "Events replayed by state restores", ["store"])
WATERMARK = Gauge("fraudstream_scorer_state_watermark_seconds",
                  "Simulated time every partition's state has reached (the oldest partition)")
LAST_BATCH = Gauge("fraudstream_scorer_last_batch_timestamp_seconds", "Wall time of the last committed batch")


class OnlineQuality:
    """Precision and recall at the threshold over the last N labelled transactions."""

    def __init__(self, window: int, remember: int = 1_000_000):
        self.flagged: OrderedDict[int, bool] = OrderedDict()  # tx_id -> flagged, until its label comes
        self.outcomes: deque = deque(maxlen=window)
        self.remember = remember

    def scored(self, tx_id: int, flagged: bool) -> None:
        self.flagged[tx_id] = flagged
        if len(self.flagged) > self.remember:
            self.flagged.popitem(last=False)

    def labelled(self, tx_id: int, fraud: bool) -> None:
        flagged = self.flagged.pop(tx_id, None)
        if flagged is not None:
            self.outcomes.append((flagged, fraud))

    def values(self) -> tuple[float, float, int]:
        tp = sum(1 for f, y in self.outcomes if f and y)
        flagged = sum(1 for f, _ in self.outcomes if f)
        frauds = sum(1 for _, y in self.outcomes if y)
        return (tp / flagged if flagged else float("nan"), tp / frauds if frauds else float("nan"),
                len(self.outcomes))


class Pending:
    """A transaction read and added to its card's window, waiting for the shared state to score it."""
    __slots__ = ("tx", "record", "cents", "card", "extra", "since", "complete")

    def __init__(self, tx, record, cents, card, extra):
        self.tx, self.record, self.cents, self.card, self.extra = tx, record, cents, card, extra
        self.since = time.monotonic()
        self.complete = True


class Scorer:
    def __init__(self, kafka: KafkaConfig, topics: Topics, cfg: ScorerConfig, artifact: Artifact,
                 health: Health | None = None):
        self.topics, self.cfg, self.artifact = topics, cfg, artifact
        self.health = health or Health()
        self.history = History(cfg.label_delay_days)
        self.customers: dict[int, Customers] = {}  # per owned transactions partition
        self.replica = Replica(kafka, topics.changelog, self.history) if topics.changelog else None
        # Range assignment gives a member the same partition numbers of both topics: a card's
        # labels reach the scorer that scored its transactions (online precision).
        self.consumer = Source(kafka, group_id=cfg.group_id, client_id=f"{cfg.group_id}-scorer",
                               max_records=cfg.max_poll_records)
        self.sink = Sink(kafka, client_id=f"{cfg.group_id}-scorer")
        self.sink.warm([t for t in (topics.scores, topics.alerts, topics.dlq, topics.changelog) if t])
        # End offsets of every input partition, owned or not, in one request per poll of the state
        # (librdkafka's get_watermark_offsets() asks one partition at a time).
        self.offsets = KafkaConsumer(**kafka.client_options(), group_id=None, client_id=f"{cfg.group_id}-offsets")
        for topic in (topics.transactions, topics.labels):
            self.offsets.partitions_for_topic(topic)
        self.quality = OnlineQuality(cfg.precision_window)
        self.pending: dict[TopicPartition, deque[Pending]] = {}
        # Next offset to commit per partition read since its assignment or rewind.
        self.next_offset: dict[TopicPartition, int] = {}
        self.dlq_done: dict[TopicPartition, int] = {}  # last offset sent to the DLQ, per partition
        self.to_restore: set[TopicPartition] = set()
        self.stopping = False
        self.rewinding = False  # a Kafka error happened: read nothing until the rewind has succeeded
        self._ends: tuple[float, dict] = (0.0, {})
        if self.replica:
            self._check_partitions()
        MODEL.labels(artifact.version, f"{artifact.threshold:.6f}").set(1)

    def _check_partitions(self) -> None:
        counts = {t: len(self.consumer.partitions_for_topic(t) or ())
                  for t in (self.topics.transactions, self.topics.labels)}
        for topic, n in counts.items():
            if n != len(self.replica.partitions):
                raise SystemExit(f"{topic} has {n} partitions but the changelog {self.topics.changelog} has "
                                 f"{len(self.replica.partitions)}: give them the same count (fraud_workloads_topics)")

    # -- state ----------------------------------------------------------------------------------
    def restore_replica(self) -> None:
        self.health.set_ready(False, "restoring the shared state from the changelog")
        events, seconds = self.replica.restore()
        RESTORE_SECONDS.labels("history").set(seconds)
        RESTORED.labels("history").inc(events)
        log.info("history restored: %d events in %.2fs", events, seconds)

    def restore_customers(self, batch: dict) -> None:
        """Newly assigned (or rewound) partitions are read from their committed offset: rebuild
        their cards from the changelog's events before it."""
        self.health.set_ready(False, "restoring card windows")
        start, replayed = time.monotonic(), 0
        if self.replica:
            self.replica.catch_up()
        for tp in sorted(self.to_restore):
            self.pending.pop(tp, None)
            self.next_offset.pop(tp, None)
            before = self.start_offset(tp)
            newer = [r for r in batch.pop(tp, ()) if r.offset >= before]  # older: counted in the cards
            if newer:
                batch[tp] = newer
            customers = self.customers[tp.partition] = Customers()
            if not self.replica:
                continue
            events = self.replica.customer_events(tp.partition, before)
            for c, t, cents, outlier in zip(events["customer_id"].tolist(), events["tx_time"].tolist(),
                                            events["cents"].tolist(), events["flag"].tolist(), strict=True):
                customers.update(c, t, cents, outlier)
            replayed += events.size
        seconds = time.monotonic() - start
        RESTORE_SECONDS.labels("customers").set(seconds)
        RESTORED.labels("customers").inc(replayed)
        log.info("partitions %s: %d card events replayed in %.2fs", sorted(tp.partition for tp in self.to_restore),
                 replayed, seconds)
        self.to_restore.clear()
        self.health.set_ready(True)

    def start_offset(self, tp: TopicPartition) -> int:
        """Where a partition is read from after an assignment: the group's committed offset, or
        the beginning (auto.offset.reset=earliest)."""
        committed = self.consumer.committed(tp)
        return self.consumer.beginning(tp) if committed is None else committed

    def publish(self, kind: str, partition: int, through: int, events: np.ndarray) -> None:
        """Append one source partition's batch to the changelog (or, in memory, to the History)."""
        if self.replica is None:
            apply_events(self.history, kind, events)
            return
        self.sink.send(self.topics.changelog, partition=partition,
                                  **changelog_record(kind, through, events, self.replica.watermark[(kind, partition)]))

    def source_ends(self) -> dict:
        """End offsets of every transactions and labels partition, cached for half a second."""
        at, ends = self._ends
        if time.monotonic() - at > 0.5:
            tps = [TopicPartition(t, p) for t in (self.topics.transactions, self.topics.labels)
                   for p in self.replica.partitions]
            try:
                offsets = self.offsets.end_offsets(tps, timeout_ms=KAFKA_TIMEOUT_MS)
            except (KafkaError, KeyError) as exc:  # KeyError: kafka-python before it has the metadata
                log.debug("end offsets unavailable (%r); counting the partitions as not caught up", exc)
                offsets = {}
            ends = {(TX if tp.topic == self.topics.transactions else LABEL, tp.partition): o for tp, o in offsets.items()}
            self._ends = (time.monotonic(), ends)
        return ends

    # -- one batch ------------------------------------------------------------------------------
    def process(self, batch: dict) -> int:
        """Read a poll batch, score what has complete state, wait for every output to be
        acknowledged and commit up to the oldest transaction still pending; returns the count."""
        for tp, records in batch.items():
            self.next_offset[tp] = records[-1].offset + 1
            if tp.topic == self.topics.labels:
                self.on_labels(tp.partition, records)
            else:
                self.ingest(tp, records)
        scored, incomplete = self.take_ready()
        if scored:
            self.score(scored, incomplete)
        if not batch and not scored:
            return 0
        self.sink.flush()  # raises when an output was not acknowledged: then nothing is committed
        self.commit()
        done, now = time.monotonic(), time.time()
        SCORING.observe_many(np.fromiter((done - p.since for p in scored), float, len(scored)))
        EVENT_TO_SCORE.observe_many(np.maximum(
            now - np.fromiter((p.record.timestamp for p in scored), float, len(scored)) / 1000, 0))
        PROCESSED.inc(len(scored))
        BATCH.observe(len(scored))
        LAST_BATCH.set(now)
        return len(scored)

    def ingest(self, tp: TopicPartition, records) -> None:
        """A partition's records in order: bad ones to the DLQ, good ones into their card's window
        and the changelog (that is what other scorers wait for), then pending until scored."""
        customers = self.customers.setdefault(tp.partition, Customers())
        queue = self.pending.setdefault(tp, deque())
        events = np.empty(len(records), EVENT)
        n = 0
        for record in records:
            try:
                tx = decode(record.value, self.cfg.max_record_bytes)
            except InvalidRecord as exc:
                if record.offset > self.dlq_done.get(tp, -1):  # read again after a rebalance: sent already
                    self.to_dlq(record, exc)
                    self.dlq_done[tp] = record.offset
                continue
            cents = round(tx.amount * 100)
            card, extra, outlier = customers.update(tx.customer_id, tx.tx_time, cents)
            events[n] = (record.offset, tx.tx_id, tx.tx_time, tx.customer_id, tx.terminal_id, cents, outlier)
            n += 1
            queue.append(Pending(tx, record, cents, card, extra))
        self.publish(TX, tp.partition, records[-1].offset, events[:n])

    def take_ready(self) -> tuple[list[Pending], int]:
        """Pending transactions whose state is complete (or that waited too long), oldest first."""
        queues = [q for q in self.pending.values() if q]
        if not queues:
            return [], 0
        delay = self.history.delay
        if self.replica is None:
            limit = math.inf
        else:
            self.replica.poll(0)
            newest = max(q[-1].tx.tx_time for q in queues)
            limit = self.replica.complete_until(newest - delay, self.source_ends)
        ready, forced = [], 0
        give_up = time.monotonic() - self.cfg.state_wait_seconds
        for queue in queues:
            while queue and (queue[0].tx.tx_time - delay < limit or queue[0].since < give_up):
                item = queue.popleft()
                if item.tx.tx_time - delay >= limit:
                    item.complete = False
                    forced += 1
                ready.append(item)
        if forced:
            log.warning("%d transactions waited %.0fs for the other partitions' state; scored anyway. Behind "
                        "(kind, partition, watermark, done, end): %s", forced, self.cfg.state_wait_seconds,
                        self.replica.behind(min(p.tx.tx_time for p in ready) - delay, self.source_ends))
        return ready, forced

    def score(self, ready: list[Pending], incomplete: int) -> None:
        INCOMPLETE.inc(incomplete)
        terminal, known = self.history.terminal, self.history.known_fraud
        rows = [assemble(p.cents, p.tx.tx_time, p.card, p.extra, terminal(p.tx.terminal_id, p.tx.tx_time),
                         known(p.tx.customer_id, p.tx.tx_time)) for p in ready]
        scores = self.artifact.predict(np.asarray(rows, dtype=np.float64))
        threshold, version = self.artifact.threshold, self.artifact.version
        now, send = time.monotonic(), self.sink.send
        scores_topic, alerts_topic = self.topics.scores, self.topics.alerts
        for p, score in zip(ready, scores.tolist(), strict=True):
            tx, flagged = p.tx, score >= threshold
            value = orjson.dumps({"tx_id": tx.tx_id, "customer_id": tx.customer_id, "terminal_id": tx.terminal_id,
                                  "amount": tx.amount, "score": score, "flagged": flagged, "threshold": threshold,
                                  "model_version": version, "scoring_latency_ms": round((now - p.since) * 1000, 3),
                                  "state_complete": p.complete})
            send(scores_topic, value, p.record.key)
            if flagged:
                send(alerts_topic, value, p.record.key)
            self.quality.scored(tx.tx_id, flagged)
        SCORES.observe_many(scores)
        FLAGGED.inc(int((scores >= threshold).sum()))

    def commit_offsets(self) -> dict:
        """Every partition read since its assignment, up to what was read or to its oldest pending
        transaction."""
        offsets = {}
        for tp, offset in self.next_offset.items():
            queue = self.pending.get(tp)
            offsets[tp] = queue[0].record.offset if queue else offset
        return offsets

    def commit(self) -> None:
        """Commit synchronously, after the outputs are acknowledged. (Asynchronous commits were
        measured faster, but kafka-python 3.0.12 lost their callbacks across rebalances and a
        SIGKILL then re-scored thousands of transactions instead of one batch.)"""
        self.consumer.commit(self.commit_offsets())

    def to_dlq(self, record, exc: InvalidRecord) -> None:
        DLQ.labels(exc.reason).inc()
        headers = [("dlq.reason", exc.reason.encode()), ("dlq.error", str(exc).encode()[:1000]),
                   ("dlq.topic", record.topic.encode()), ("dlq.partition", str(record.partition).encode()),
                   ("dlq.offset", str(record.offset).encode())]
        self.sink.send(self.topics.dlq, record.value, key=record.key, headers=headers)

    def on_labels(self, partition: int, records) -> None:
        """Labels of one partition to the changelog (they reach the History from there)."""
        events = np.empty(len(records), EVENT)
        n = 0
        for record in records:
            try:
                label = json.loads(record.value)
                tx_id, fraud = int(label["tx_id"]), int(label["fraud"])
                tx_time = parse_time(label["tx_datetime"])
                customer, terminal = int(label["customer_id"]), int(label["terminal_id"])
            except (ValueError, KeyError, TypeError):
                log.warning("ignoring malformed label at %s[%d]@%d", record.topic, record.partition, record.offset)
                continue
            LABELS.inc()
            self.quality.labelled(tx_id, bool(fraud))
            events[n] = (record.offset, tx_id, tx_time, customer, terminal, 0, fraud)
            n += 1
        self.publish(LABEL, partition, records[-1].offset, events[:n])

    # -- loop -----------------------------------------------------------------------------------
    def observe(self) -> None:
        precision, recall, n = self.quality.values()
        PRECISION.set(precision)
        RECALL.set(recall)
        LABELLED.set(n)
        STATE.labels("customers").set(sum(len(c) for c in self.customers.values()))
        STATE.labels("customer_events").set(sum(c.events() for c in self.customers.values()))
        for kind, value in self.history.size().items():
            STATE.labels(kind).set(value)
        PENDING.set(sum(map(len, self.pending.values())))
        if self.replica:
            WATERMARK.set(self.replica.low_watermark())
        for tp in self.consumer.assignment():
            high, position = self.consumer.highwater(tp), self.next_offset.get(tp)
            if high is not None and position is not None:
                LAG.labels(tp.topic, str(tp.partition)).set(max(high - position, 0))

    def rewind(self) -> None:
        """After a Kafka error: every partition back to its committed offset, state rebuilt to match.
        Raises while Kafka cannot answer; the loop calls it again until it succeeds."""
        self.pending.clear()
        self.next_offset.clear()
        assigned = self.consumer.assignment()
        for tp in assigned:
            self.consumer.seek(tp, self.start_offset(tp))
            if tp.topic == self.topics.transactions:
                self.to_restore.add(tp)  # its cards are rebuilt before the next batch
        if not self.to_restore:
            self.health.set_ready(bool(assigned), "waiting for partition assignment")

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        if self.replica:
            self.restore_replica()
        self.health.set_ready(False, "waiting for partition assignment")
        self.consumer.subscribe([self.topics.transactions, self.topics.labels],
                                on_assigned=self.assigned, on_revoked=self.revoked)
        gc.freeze()  # modules, model and restored state: the collector need not walk them again
        last_observe = 0.0
        while not self.stopping:
            try:
                if self.rewinding:
                    self.rewind()
                    self.rewinding = False
                waiting = any(self.pending.values())
                batch = self.consumer.poll(timeout_ms=20 if waiting else 500)
                if self.to_restore:
                    self.restore_customers(batch)
                if self.replica:
                    self.replica.poll(20 if waiting else 0)
                if batch or waiting:
                    self.process(batch)
            except (KafkaError, KafkaException, RuntimeError, TimeoutError) as exc:
                ERRORS.inc()
                self.health.set_ready(False, f"recovering from {exc!r}")
                log.error("%s (%r): rewinding to the committed offsets", "rewind failed, again" if self.rewinding
                          else "batch failed", exc)
                self.rewinding = True
                time.sleep(1)
                continue
            if time.monotonic() - last_observe > 2:
                self.observe()
                last_observe = time.monotonic()
        self.sink.close()
        try:
            self.commit()
            log.info("stopping: last batch committed")
        except KafkaException as exc:
            log.warning("stopping: the last commit failed (%s); its batch will be scored again", exc)
        self.consumer.close()
        self.offsets.close()
        if self.replica:
            self.replica.close()
        return 0

    def stop(self, *_):
        self.stopping = True

    # -- rebalance (called inside poll) ---------------------------------------------------------
    def revoked(self, partitions: set[TopicPartition]) -> None:
        """Drop what was held for revoked partitions: not committed, the next owner reads it again."""
        for tp in partitions:
            self.pending.pop(tp, None)
            self.next_offset.pop(tp, None)
            if tp.topic == self.topics.transactions:
                self.customers.pop(tp.partition, None)

    def assigned(self, partitions: set[TopicPartition]) -> None:
        self.to_restore.update(tp for tp in partitions if tp.topic == self.topics.transactions)


def run(kafka: KafkaConfig, topics: Topics, cfg: ScorerConfig) -> int:
    health = Health()
    serve(cfg.metrics_port, health, cfg.metrics_host)
    health.set_ready(False, "loading the model")
    artifact = Artifact.load(cfg.model_dir)
    log.info("model %s (threshold %.4f) from %s", artifact.version, artifact.threshold, cfg.model_dir)
    return Scorer(kafka, topics, cfg, artifact, health).run()
