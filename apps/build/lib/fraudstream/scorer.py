"""`fraudstream score`, the fraud-consumer: score every transaction, at least once, and lose none.

Per poll batch: decode and validate every record, update the feature state, predict the whole
batch in one call, send every score to fraud-scores (and those at or above the threshold to
fraud-alerts), send bad records to the DLQ with their reason and original bytes, wait for Kafka
to acknowledge all of it, and only then commit the offsets. SIGTERM finishes the batch first.
Labels from fraud-labels feed the terminal-risk features and the online precision/recall.
"""

from __future__ import annotations

import json
import logging
import signal
import time
from collections import OrderedDict, deque

import numpy as np
from kafka import KafkaConsumer, KafkaProducer
from prometheus_client import Counter, Gauge, Histogram

from .batch_metrics import BatchHistogram
from .config import KafkaConfig, ScorerConfig, Topics
from .features import FeatureState
from .http import Health, serve
from .model import Artifact
from .schema import InvalidRecord, decode

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


class Scorer:
    def __init__(self, kafka: KafkaConfig, topics: Topics, cfg: ScorerConfig, artifact: Artifact,
                 health: Health | None = None):
        self.topics, self.cfg, self.artifact = topics, cfg, artifact
        self.health = health or Health()
        self.consumer = KafkaConsumer(
            topics.transactions, topics.labels, **kafka.client_options(), group_id=cfg.group_id,
            client_id=f"{cfg.group_id}-scorer", enable_auto_commit=False, auto_offset_reset="earliest",
            max_poll_records=cfg.max_poll_records)
        self.producer = KafkaProducer(**kafka.client_options(), acks="all", enable_idempotence=True, linger_ms=2,
                                      batch_size=256 * 1024)
        self.state = FeatureState(cfg.label_delay_days)
        self.quality = OnlineQuality(cfg.precision_window)
        self.stopping = False
        MODEL.labels(artifact.version, f"{artifact.threshold:.6f}").set(1)

    # -- one batch ------------------------------------------------------------------------------
    def process(self, batch: dict) -> int:
        """Score one poll batch and wait for every output to be acknowledged; returns the count."""
        polled = time.monotonic()
        futures, good = [], []
        for tp, records in batch.items():
            for record in records:
                if tp.topic == self.topics.labels:
                    self.on_label(record)
                    continue
                try:
                    good.append((decode(record.value, self.cfg.max_record_bytes), record))
                except InvalidRecord as exc:
                    futures.append(self.to_dlq(record, exc))
        # Event-time order across partitions keeps every terminal's window in order.
        good.sort(key=lambda pair: (pair[0].tx_time, pair[0].tx_id))
        if good:
            update = self.state.update
            rows = [update(tx.tx_id, tx.tx_time, tx.customer_id, tx.terminal_id, tx.amount) for tx, _ in good]
            scores = self.artifact.predict(np.asarray(rows, dtype=np.float64))
            threshold, version = self.artifact.threshold, self.artifact.version
            latency_ms = round((time.monotonic() - polled) * 1000, 3)
            for (tx, record), score in zip(good, scores.tolist(), strict=True):
                flagged = score >= threshold
                value = json.dumps({"tx_id": tx.tx_id, "customer_id": tx.customer_id, "terminal_id": tx.terminal_id,
                                    "amount": tx.amount, "score": score, "flagged": flagged, "threshold": threshold,
                                    "model_version": version, "scoring_latency_ms": latency_ms},
                                   separators=(",", ":")).encode()
                futures.append(self.producer.send(self.topics.scores, value, key=record.key))
                if flagged:
                    futures.append(self.producer.send(self.topics.alerts, value, key=record.key))
                self.quality.scored(tx.tx_id, flagged)
            SCORES.observe_many(scores)
            FLAGGED.inc(int((scores >= threshold).sum()))
        self.producer.flush()
        failed = [f.exception for f in futures if f.failed()]
        if failed:
            raise RuntimeError(f"{len(failed)} outputs were not acknowledged ({failed[0]}); offsets not committed")
        self.consumer.commit()
        done = time.monotonic()
        now = time.time()
        SCORING.observe_many(np.full(len(good), done - polled))
        EVENT_TO_SCORE.observe_many(np.maximum(now - np.fromiter((r.timestamp for _, r in good), float, len(good)) / 1000,
                                               0))
        PROCESSED.inc(len(good))
        BATCH.observe(len(good))
        LAST_BATCH.set(now)
        return len(good)

    def to_dlq(self, record, exc: InvalidRecord):
        DLQ.labels(exc.reason).inc()
        headers = [("dlq.reason", exc.reason.encode()), ("dlq.error", str(exc).encode()[:1000]),
                   ("dlq.topic", record.topic.encode()), ("dlq.partition", str(record.partition).encode()),
                   ("dlq.offset", str(record.offset).encode())]
        return self.producer.send(self.topics.dlq, record.value, key=record.key, headers=headers)

    def on_label(self, record) -> None:
        try:
            label = json.loads(record.value)
            tx_id, fraud = int(label["tx_id"]), int(label["fraud"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring malformed label at %s[%d]@%d", record.topic, record.partition, record.offset)
            return
        LABELS.inc()
        self.state.add_label(tx_id, fraud)
        self.quality.labelled(tx_id, bool(fraud))

    # -- loop -----------------------------------------------------------------------------------
    def observe(self) -> None:
        precision, recall, n = self.quality.values()
        PRECISION.set(precision)
        RECALL.set(recall)
        LABELLED.set(n)
        size = self.state.size()
        for kind, value in size.items():
            STATE.labels(kind).set(value)
        for tp in self.consumer.assignment():
            high = self.consumer.highwater(tp)
            if high is not None:
                LAG.labels(tp.topic, str(tp.partition)).set(max(high - self.consumer.position(tp), 0))

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        last_observe = 0.0
        while not self.stopping:
            batch = self.consumer.poll(timeout_ms=500)
            if self.consumer.assignment() and not self.health.ready:
                self.health.set_ready(True)
            if batch:
                self.process(batch)
            if time.monotonic() - last_observe > 2:
                self.observe()
                last_observe = time.monotonic()
        log.info("stopping: last batch committed")
        self.producer.flush()
        self.producer.close()
        self.consumer.close(autocommit=False)
        return 0

    def stop(self, *_):
        self.stopping = True


def run(kafka: KafkaConfig, topics: Topics, cfg: ScorerConfig) -> int:
    health = Health()
    serve(cfg.metrics_port, health, cfg.metrics_host)
    health.set_ready(False, "loading the model")
    artifact = Artifact.load(cfg.model_dir)
    health.set_ready(False, "waiting for partition assignment")
    log.info("model %s (threshold %.4f) from %s", artifact.version, artifact.threshold, cfg.model_dir)
    return Scorer(kafka, topics, cfg, artifact, health).run()
