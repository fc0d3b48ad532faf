"""`fraudstream score`, the fraud-consumer: score every transaction, at least once, and lose none.

Per poll batch: decode and validate every record, update the owned cards' windows, append what
was learnt to the changelog (state.py), wait until the shared History is complete for the
batch, predict the whole batch in one call, send every score to fraud-scores (and those at or
above the threshold to fraud-alerts), send bad records to the DLQ with their reason and original
bytes, wait for Kafka to acknowledge all of it, and only then commit the offsets (ledger.py
keeps that bookkeeping). A record that fails, for any reason, goes to the DLQ alone; an output
that Kafka refuses for good is replaced, never retried forever. SIGTERM finishes the batch
first; a Kafka error rewinds to the committed offsets and restores state. Labels from
fraud-labels feed the terminal-risk features and the online precision/recall.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import signal
import time
from collections import OrderedDict, deque

import numpy as np
import orjson
from confluent_kafka import KafkaException
from prometheus_client import Counter, Gauge, Histogram

from .batch_metrics import BatchHistogram
from .config import KafkaConfig, ScorerConfig, Topics
from .features import FEATURES, Customers, History, assemble
from .http import Health, serve
from .ledger import Ledger, Pending, TopicPartition, dlq_reason
from .model import Artifact
from .schema import decode, decode_label
from .sink import DeliveryFailed, Refused, Sink
from .source import EndOffsets, Source, patiently
from .state import EVENT, LABEL, TX, Replica, apply_events, changelog_record

log = logging.getLogger("fraudstream.score")

PROCESSED = Counter("fraudstream_scorer_transactions", "Transactions scored and acknowledged")
FLAGGED = Counter("fraudstream_scorer_flagged", "Transactions at or above the threshold (sent to fraud-alerts)")
DLQ = Counter("fraudstream_scorer_dlq", "Records sent to the DLQ", ["reason"])
REPLACED = Counter("fraudstream_scorer_refused_outputs", "Outputs Kafka refused for good and what became of them",
                   ["topic", "error", "outcome"])
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
LAG = Gauge("fraudstream_scorer_lag", "Records not yet done (outputs acknowledged) behind the log end, "
            "per owned partition", ["topic", "partition"])
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
LAST_PROGRESS = Gauge("fraudstream_scorer_last_progress_timestamp_seconds",
                      "Wall time the loop last completed an iteration without error")
DLQ_VALUE_LIMIT = 512 * 1024  # a bigger bad record is kept in the DLQ truncated (header dlq.truncated)
MAX_POLL_RECORDS = 10_000  # one changelog record per partition and batch stays far below 1 MB


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


class Scorer:
    def __init__(self, kafka: KafkaConfig, topics: Topics, cfg: ScorerConfig, artifact: Artifact,
                 health: Health | None = None):
        if not 1 <= cfg.max_poll_records <= MAX_POLL_RECORDS:
            raise SystemExit(f"--max-poll-records (FRAUDSTREAM_MAX_POLL_RECORDS) must be in [1, {MAX_POLL_RECORDS}], "
                             f"got {cfg.max_poll_records}")
        if not cfg.startup_patience_seconds >= 0:
            raise SystemExit("--startup-patience-seconds (FRAUDSTREAM_STARTUP_PATIENCE_SECONDS) must be 0 or more, "
                             f"got {cfg.startup_patience_seconds}")
        self.topics, self.cfg, self.artifact = topics, cfg, artifact
        self.health = health or Health()
        self.history = History(cfg.label_delay_days)
        self.customers: dict[int, Customers] = {}  # per owned transactions partition
        self.ledger = Ledger()
        self.replica = Replica(kafka, topics.changelog, self.history, self._patiently) if topics.changelog else None
        # Range assignment gives a member the same partition numbers of both topics: a card's
        # labels reach the scorer that scored its transactions (online precision).
        self.consumer = Source(kafka, group_id=cfg.group_id, client_id=f"{cfg.group_id}-scorer",
                               max_records=cfg.max_poll_records, batch_wait_ms=cfg.batch_wait_ms,
                               on_commit_failed=self.ledger.commit_failed)
        self.sink = Sink(kafka, client_id=f"{cfg.group_id}-scorer")
        self.sink.warm([t for t in (topics.scores, topics.alerts, topics.dlq, topics.changelog) if t])
        # End offsets of every input partition, owned or not (the shared state's "caught up").
        self.end_offsets = EndOffsets(kafka, client_id=f"{cfg.group_id}-offsets") if self.replica else None
        self.quality = OnlineQuality(cfg.precision_window)
        self.assigned_now: set[TopicPartition] = set()
        self.to_restore: set[TopicPartition] = set()
        self.stopping = False
        self.rewinding = False  # a Kafka error happened: read nothing until the rewind has succeeded
        self.closed_cleanly = True  # False when the group consumer could not leave its group at shutdown
        self._ends: tuple[float, dict] = (0.0, {})
        self.uncommitted, self.commit_due = 0, 0.0  # scored since the last commit; when the next is due
        if self.replica:
            self._check_partitions()
        MODEL.labels(artifact.version, f"{artifact.threshold:.6f}").set(1)

    def _patiently(self, call, what: str):
        """A start-up call, tried again while Kafka cannot answer it (source.patiently): not ready
        meanwhile, and why; the scorer exits after startup_patience_seconds."""
        return patiently(call, what, lambda reason: self.health.set_ready(False, reason),
                         self.cfg.startup_patience_seconds)

    def _check_partitions(self) -> None:
        counts = {t: len(self._patiently(lambda t=t: self.consumer.partitions_for_topic(t), f"metadata of {t}"))
                  for t in (self.topics.transactions, self.topics.labels)}
        for topic, n in counts.items():
            if n == 0:
                raise SystemExit(f"topic {topic!r} does not exist: create it with as many partitions as the "
                                 f"changelog {self.topics.changelog} ({len(self.replica.partitions)}; fraud_workloads_topics)")
            if n != len(self.replica.partitions):
                raise SystemExit(f"{topic} has {n} partitions but the changelog {self.topics.changelog} has "
                                 f"{len(self.replica.partitions)}: give them the same count (fraud_workloads_topics)")

    # -- state ----------------------------------------------------------------------------------
    def restore_replica(self) -> None:
        self.health.set_ready(False, "restoring the shared state from the changelog")
        events, seconds = self._patiently(self.replica.restore, "restoring the changelog")
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
            before = self.consumer.start_offset(tp)
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
                offsets = self.end_offsets(tps)
            except KafkaException as exc:
                log.debug("end offsets unavailable (%r); counting the partitions as not caught up", exc)
                offsets = {}
            ends = {(TX if tp.topic == self.topics.transactions else LABEL, tp.partition): o for tp, o in offsets.items()}
            self._ends = (time.monotonic(), ends)
        return ends

    # -- one batch ------------------------------------------------------------------------------
    def process(self, batch: dict) -> int:
        """Read a poll batch, score what has complete state, wait for every output to be
        acknowledged, then commit (asynchronously) what is safe; returns the count scored."""
        for tp, records in batch.items():
            self.ledger.read(tp, records[-1].offset)
            if tp.topic == self.topics.labels:
                self.on_labels(tp, records)
            else:
                self.ingest(tp, records)
        scored, incomplete = self.take_ready()
        if scored:
            self.score(scored, incomplete)
        if not batch and not scored:
            return 0
        self.settle()  # raises when an output was not acknowledged: then nothing is committed
        self.ledger.acknowledged()
        self.uncommitted += len(scored)
        if self.uncommitted >= self.cfg.max_poll_records or time.monotonic() >= self.commit_due:
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
        events = np.empty(len(records), EVENT)
        n = 0
        for record in records:
            try:
                tx = decode(record.value, self.cfg.max_record_bytes, self.cfg.max_future_seconds)
                cents = round(tx.amount * 100)
                card, extra, outlier = customers.update(tx.customer_id, tx.tx_time, cents)
                events[n] = (record.offset, tx.tx_id, tx.tx_time, tx.customer_id, tx.terminal_id, cents, outlier)
            except Exception as exc:  # noqa: BLE001 (one record's failure is that record's alone)
                self.reject(tp, record, exc)
                continue
            n += 1
            self.ledger.hold(tp, Pending(tx, record, cents, card, extra))
        self.publish(TX, tp.partition, records[-1].offset, events[:n])

    def on_labels(self, tp: TopicPartition, records) -> None:
        """Labels of one partition to the changelog (they reach the History from there)."""
        events = np.empty(len(records), EVENT)
        n = 0
        for record in records:
            try:
                label = decode_label(record.value, self.cfg.max_record_bytes, self.cfg.max_future_seconds)
                events[n] = (record.offset, label.tx_id, label.tx_time, label.customer_id, label.terminal_id, 0,
                             label.fraud)
            except Exception as exc:  # noqa: BLE001 (one record's failure is that record's alone)
                self.reject(tp, record, exc)
                continue
            n += 1
            LABELS.inc()
            self.quality.labelled(label.tx_id, bool(label.fraud))
        self.publish(LABEL, tp.partition, records[-1].offset, events[:n])

    def take_ready(self) -> tuple[list[Pending], int]:
        """Pending transactions whose state is complete (or that waited too long), oldest first."""
        newest = self.ledger.newest_pending_time()
        if newest is None:
            return [], 0
        delay = self.history.delay
        limit = math.inf if self.replica is None else self.replica.complete_until(newest - delay, self.source_ends)
        ready, forced = self.ledger.take_ready(limit, delay, time.monotonic() - self.cfg.state_wait_seconds)
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
        try:
            scores = self.artifact.predict(np.asarray(rows, dtype=np.float64)).tolist()
        except Exception:  # noqa: BLE001 (find the row that fails; the others are scored)
            scores = [self.predict_one(p, row) for p, row in zip(ready, rows, strict=True)]
        threshold, version = self.artifact.threshold, self.artifact.version
        now, send = time.monotonic(), self.sink.send
        scores_topic, alerts_topic = self.topics.scores, self.topics.alerts
        flagged_count = 0
        for p, score in zip(ready, scores, strict=True):
            if score is None:
                continue
            tx, flagged = p.tx, score >= threshold
            value = orjson.dumps({"tx_id": tx.tx_id, "customer_id": tx.customer_id, "terminal_id": tx.terminal_id,
                                  "amount": tx.amount, "score": score, "flagged": flagged, "threshold": threshold,
                                  "model_version": version, "scoring_latency_ms": round((now - p.since) * 1000, 3),
                                  "state_complete": p.complete})
            send(scores_topic, value, p.record.key)
            if flagged:
                send(alerts_topic, value, p.record.key)
                flagged_count += 1
            self.quality.scored(tx.tx_id, flagged)
        SCORES.observe_many([s for s in scores if s is not None])
        FLAGGED.inc(flagged_count)

    def predict_one(self, p: Pending, row: list) -> float | None:
        try:
            return float(self.artifact.predict(np.asarray([row], dtype=np.float64))[0])
        except Exception as exc:  # noqa: BLE001
            self.reject(TopicPartition(p.record.topic, p.record.partition), p.record, exc)
            return None

    def commit(self) -> None:
        """Asynchronously, what is safe (ledger.acknowledged()); a failure is offered again."""
        offsets = self.ledger.to_commit()
        self.consumer.commit(offsets, asynchronous=True)
        self.ledger.did_commit(offsets)
        self.uncommitted, self.commit_due = 0, time.monotonic() + self.cfg.commit_interval_ms / 1000

    # -- bad records and refused outputs ----------------------------------------------------------
    def reject(self, tp: TopicPartition, record, exc: Exception) -> None:
        """One record to the DLQ with its reason (unless a rewind read it again after its DLQ
        record was sent); any other exception than a validation error is logged with its trace."""
        if not self.ledger.needs_dlq(tp, record.offset):
            return
        reason = dlq_reason(exc)
        if reason.startswith("error:"):
            log.error("%s[%d]@%d failed: to the DLQ", record.topic, record.partition, record.offset, exc_info=exc)
        DLQ.labels(reason).inc()
        value, headers = record.value, [("dlq.reason", reason.encode()), ("dlq.error", str(exc).encode()[:1000]),
                                        ("dlq.topic", record.topic.encode()),
                                        ("dlq.partition", str(record.partition).encode()),
                                        ("dlq.offset", str(record.offset).encode())]
        if value is not None and len(value) > DLQ_VALUE_LIMIT:
            value, headers = value[:DLQ_VALUE_LIMIT], [*headers, ("dlq.truncated", str(len(value)).encode())]
        self.sink.send(self.topics.dlq, value, key=record.key, headers=headers)
        self.ledger.dlq_queued(tp, record.offset)

    def settle(self) -> None:
        """Wait for Kafka to acknowledge every output. One that it refused for good is replaced
        once by something it accepts (replace()); one refused again is dropped, counted and
        logged (the source record stays in its topic): a refused record never wedges a partition."""
        refused = self.sink.flush(should_stop=lambda: self.stopping, on_slow=self.acks_slow)
        for r in refused:
            self.replace(r)
        if refused:
            for r in self.sink.flush(should_stop=lambda: self.stopping):
                REPLACED.labels(r.topic, r.error, "dropped").inc()
                log.error("Kafka refused %s twice (%s); dropped it", r.topic, r.error)

    def acks_slow(self, waiting: int) -> None:
        self.health.set_ready(False, f"waiting for Kafka to acknowledge {waiting} records")

    def replace(self, r: Refused) -> None:
        headers = list(r.headers or ())
        if r.topic == self.topics.changelog:  # stamped now: within any broker's timestamp window
            self.sink.send(r.topic, r.value, r.key, partition=r.partition if r.partition >= 0 else None,
                           headers=headers)
            outcome = "restamped"
        elif r.topic == self.topics.dlq:  # the headers say which record it was; its bytes stay at the source
            self.sink.send(r.topic, None, r.key, headers=[*headers, ("dlq.refused", r.error.encode())])
            outcome = "dlq_headers_only"
        else:
            self.sink.send(self.topics.dlq, r.value, r.key, headers=[("dlq.reason", f"refused:{r.error}".encode()),
                                                                     ("dlq.topic", r.topic.encode())])
            outcome = "to_dlq"
        REPLACED.labels(r.topic, r.error, outcome).inc()
        log.error("Kafka refused a record for %s (%s): %s", r.topic, r.error, outcome)

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
        PENDING.set(sum(map(len, self.ledger.pending.values())))
        if self.replica:
            WATERMARK.set(self.replica.low_watermark())
        for tp in self.assigned_now:
            high, done = self.consumer.highwater(tp), self.ledger.safe.get(tp)
            if high is not None and done is not None:
                LAG.labels(tp.topic, str(tp.partition)).set(max(high - done, 0))

    def rewind(self) -> None:
        """After a Kafka error: commit what was acknowledged, then every partition back to its
        committed offset, state rebuilt to match. Raises while Kafka cannot answer; the loop
        calls it again until it succeeds."""
        self.ledger.reset()
        offsets = self.ledger.to_commit()
        self.consumer.commit(offsets)
        self.ledger.did_commit(offsets)
        for tp in self.consumer.assignment():
            self.consumer.seek(tp, self.consumer.start_offset(tp))
            if tp.topic == self.topics.transactions:
                self.to_restore.add(tp)  # its cards are rebuilt before the next batch

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        if self.replica:
            self.restore_replica()
        self.health.set_ready(False, "waiting for partition assignment")
        self.consumer.subscribe([self.topics.transactions, self.topics.labels],
                                on_assigned=self.assigned, on_revoked=self.revoked)
        gc.freeze()  # modules, model and restored state: the collector need not walk them again
        self.health.watch(self.cfg.stall_seconds)
        last_observe = 0.0
        while not self.stopping:
            try:
                if self.rewinding:
                    self.rewind()
                    self.rewinding = False
                waiting = self.ledger.waiting()
                batch = self.consumer.poll(timeout_ms=20 if waiting else 500)
                if self.to_restore:
                    self.restore_customers(batch)
                if self.replica:
                    self.replica.poll(20 if waiting and not batch else 0)
                if batch or waiting:
                    self.process(batch)
                elif time.monotonic() >= self.commit_due and self.ledger.to_commit():
                    self.commit()  # quiet now: what the last batches left
            except (KafkaException, DeliveryFailed, RuntimeError, TimeoutError) as exc:
                ERRORS.inc()
                self.health.set_ready(False, f"recovering from {exc!r}")
                log.error("%s (%r): rewinding to the committed offsets", "rewind failed, again" if self.rewinding
                          else "batch failed", exc)
                self.rewinding = True
                time.sleep(1)
                continue
            self.health.progressed()
            LAST_PROGRESS.set_to_current_time()
            if not self.health.ready and self.assigned_now:
                self.health.set_ready(True)
            if time.monotonic() - last_observe > 2:
                self.observe()
                last_observe = time.monotonic()
        return self.shutdown()

    def shutdown(self) -> int:
        """Commit only what Kafka acknowledged; after an error, nothing more (it is scored again)."""
        self.sink.close(timeout=5 if self.rewinding else 30)
        if self.rewinding:
            log.warning("stopping after an error: nothing more committed; the unacknowledged batch is scored again")
        else:
            try:
                self.consumer.commit(self.ledger.to_commit())
                log.info("stopping: last batch committed")
            except KafkaException as exc:
                log.warning("stopping: the last commit failed (%s); its batch will be scored again", exc)
        self.closed_cleanly = self.consumer.close()
        if self.replica:  # they join no group, but librdkafka's close has no bound either
            self.closed_cleanly &= self.replica.close() & self.end_offsets.close()
        return 0

    def stop(self, *_):
        self.stopping = True

    # -- rebalance (called inside poll) ---------------------------------------------------------
    def revoked(self, partitions: set[TopicPartition]) -> None:
        """Commit what was acknowledged of the revoked partitions, then drop what was held for
        them: the next owner reads the rest again. Their metrics go too."""
        offsets = self.ledger.to_commit(partitions)
        if offsets and not (self.rewinding or self.stopping):
            try:
                self.consumer.commit(offsets)
            except KafkaException as exc:
                log.warning("commit on revoke failed (%s); the next owner re-scores from the last commit", exc)
        self.ledger.forget(partitions)
        self.assigned_now -= partitions
        for tp in partitions:
            if tp.topic == self.topics.transactions:
                self.customers.pop(tp.partition, None)
            try:
                LAG.remove(tp.topic, str(tp.partition))
            except KeyError:
                pass

    def assigned(self, partitions: set[TopicPartition]) -> None:
        self.assigned_now |= partitions
        self.to_restore.update(tp for tp in partitions if tp.topic == self.topics.transactions)


def run(kafka: KafkaConfig, topics: Topics, cfg: ScorerConfig) -> int:
    health = Health()
    serve(cfg.metrics_port, health, cfg.metrics_host)
    health.set_ready(False, "loading the model")
    artifact = Artifact.load(cfg.model_dir)
    artifact.check_compatible(list(FEATURES), cfg.label_delay_days)
    log.info("model %s (threshold %.4f) from %s", artifact.version, artifact.threshold, cfg.model_dir)
    scorer = Scorer(kafka, topics, cfg, artifact, health)
    rc = scorer.run()
    if not scorer.closed_cleanly:
        # The group consumer is stuck leaving a group whose coordinator is gone; the interpreter's
        # exit would wait on it too. Offsets are committed (or not) already; the group drops this
        # member after session.timeout.ms.
        logging.shutdown()
        os._exit(rc)
    return rc
