"""`fraudstream replay --data FILE`: a file's transactions to Kafka as the producer sends live ones.

The file (datafile.py: CSV or Parquet, checked, sorted by event time) is sent in event-time
order to fraud-transactions, keyed by customer id, as the same JSON (schema.encode), at `--rate`
transactions/s (0: as fast as possible) or at the file's own pace sped up (`--speedup`), with
the producer's Pacer. Each transaction's label (if the file has TX_FRAUD) goes to fraud-labels,
keyed the same way and in the producer's format (producer.label_value), once the file's clock
passes its time + `--label-delay-days`: right before the first transaction at or after that
time, as the producer does. The labels still waiting after the last transaction are sent at the
end: no transaction follows, so no score can see them early (features only count labels older
than the delay, whenever they arrive). No headers, no explicit timestamps: as the producer.

The order of sends (`plan`) and the sending loop (`replay`, with any send function) are apart
from Kafka, so tests capture the records without a broker.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from .config import KafkaConfig, Topics
from .datafile import Progress, load
from .features import DAY
from .producer import Pacer, label_value
from .schema import encode

log = logging.getLogger("fraudstream.replay")

FIELDS = ("tx_id", "tx_time", "customer_id", "terminal_id", "amount", "fraud", "scenario")


@dataclass(frozen=True)
class ReplayConfig:
    rate: float = 0.0  # transactions per second; 0 = as fast as possible
    speedup: float = 0.0  # > 0: at the file's own pace (its event times), this many times faster
    label_delay_days: float = 7.0  # event time between a transaction and its label, as the producer's


def plan(tx: np.ndarray, label_delay: int, with_labels: bool = True,
         chunk: int = 50_000) -> Iterator[tuple[tuple | None, list[tuple]]]:
    """(transaction, the labels due before it) in event-time order, the producer's way: a label is
    due once a transaction's time reaches its own time + label_delay. Last, (None, the labels
    still waiting). Rows are tuples in FIELDS order; tx must be sorted by tx_time (datafile.load)."""
    pending: deque = deque()
    for start in range(0, tx.size, chunk):
        part = tx[start:start + chunk]
        for row in zip(*(part[f].tolist() for f in FIELDS), strict=True):
            now = row[1]
            due = []
            while pending and pending[0][1] + label_delay <= now:
                due.append(pending.popleft())
            yield row, due
            if with_labels:
                pending.append(row)
    yield None, list(pending)


def tx_record(row: tuple) -> tuple[bytes, bytes]:
    """(key, value) of a transaction, as producer.run sends it."""
    return str(row[2]).encode(), encode(row[0], row[1], row[2], row[3], float(row[4]))


def label_record(row: tuple) -> tuple[bytes, bytes]:
    """(key, value) of a label, as producer.run sends it."""
    return str(row[2]).encode(), label_value(dict(zip(FIELDS, row, strict=True)))


def replay(tx: np.ndarray, send: Callable, topics: Topics, pacer: Pacer, label_delay: int, with_labels: bool = True,
           stopping: Callable[[], bool] = lambda: False, progress: Callable | None = None) -> dict[str, int]:
    """Send the file's records with send(topic, value, key=key); returns how many of each were sent."""
    sent = {"transactions": 0, "labels": 0}
    for row, due in plan(tx, label_delay, with_labels):
        if stopping():
            break
        if row is not None:
            pacer.wait(row[1])
        for label in due:
            key, value = label_record(label)
            send(topics.labels, value, key=key)
        sent["labels"] += len(due)
        if row is not None:
            key, value = tx_record(row)
            send(topics.transactions, value, key=key)
            sent["transactions"] += 1
            if progress is not None:
                progress(sent["transactions"], tx.size)
    return sent


def run(kafka: KafkaConfig, topics: Topics, cfg: ReplayConfig, data: str, columns: str | None = None) -> int:
    from .sink import DeliveryFailed, Sink

    if cfg.rate < 0 or cfg.speedup < 0:
        raise ValueError("--rate and --speedup must not be negative")
    started = time.monotonic()
    dataset = load(data, columns, require_labels=False, for_replay=True, progress=Progress(f"reading {data}"))
    for warning in dataset.warnings:
        print(f"fraudstream replay: warning: {warning}", file=sys.stderr)
    print(f"fraudstream replay: {dataset.describe()}", file=sys.stderr)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    signal.signal(signal.SIGINT, lambda *_: stop.append(True))
    errors = []

    def delivered(topic, error):
        if error is not None:
            errors.append(f"{topic}: {error}")

    sink = Sink(kafka, client_id="fraud-replay", linger_ms=5, on_delivery=delivered, delivery_timeout_ms=300_000)

    def send(topic, value, key):
        sink.send(topic, value, key=key)
        sink.poll()

    log.info("replaying %s to %s (rate %s/s, speedup %s, labels to %s after %g days)", data, topics.transactions,
             cfg.rate or "max", cfg.speedup or "off", topics.labels if dataset.has_labels else "(none)",
             cfg.label_delay_days)
    progress = Progress(f"replay {data}: transactions sent")
    sent = replay(dataset.transactions, send, topics, Pacer(cfg.rate, cfg.speedup), int(cfg.label_delay_days * DAY),
                  dataset.has_labels, lambda: bool(stop), progress)
    progress(sent["transactions"], dataset.transactions.size, final=True)
    try:
        sink.flush(timeout=330)
    except DeliveryFailed:
        pass  # each failed record is in `errors` already (delivered())
    except TimeoutError as exc:
        errors.append(str(exc))
    summary = {"data": data, **sent, "file_transactions": int(dataset.transactions.size),
               "reordered": dataset.reordered, "stopped": bool(stop), "send_errors": len(errors),
               "seconds": round(time.monotonic() - started, 1)}
    print(json.dumps(summary, indent=2))
    if errors:
        print(f"fraudstream replay: {len(errors)} sends not acknowledged, the first: {errors[0]}", file=sys.stderr)
        return 1
    return 0
