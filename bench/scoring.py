"""Run `fraudstream score` processes on a recorded stream and time them from the scores topic."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import numpy as np
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient

BOOTSTRAP = "127.0.0.1:9092"
CLI = [sys.executable, "-m", "fraudstream.cli"]


def create(names: dict, partitions: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    admin.create_topics({n: {"num_partitions": partitions, "replication_factor": 1,
                             "configs": {"retention.ms": "-1"} if kind == "changelog" else {}}
                         for kind, n in names.items()}, wait_for_metadata=True)
    admin.close()


def delete(names: dict) -> None:
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    admin.delete_topics(list(names.values()))
    admin.close()


def names(*kinds) -> dict:
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    return {k: f"{prefix}-{k}" for k in kinds}


def flags(topics: dict) -> list[str]:
    return [f"--{k}={v}" for k, v in topics.items()] + [f"--bootstrap-servers={BOOTSTRAP}"]


def record(n: int, partitions: int, extra=()) -> dict:
    """A recorded stream: n transactions and their labels, produced flat out."""
    topics = names("transactions", "labels", "dlq")
    create(topics, partitions)
    subprocess.run([*CLI, "produce", *flags(topics), "--rate=0", f"--max-messages={n}", "--metrics-port=18590",
                    *extra], check=True, capture_output=True)
    return topics


def score(stream: dict, model_dir: str, n: int, scorers: int, changelog: bool, extra=(), port=18500) -> dict:
    """Score the stream with `scorers` processes; throughput from the first to the last score record."""
    run = stream | names("scores", "alerts", "changelog")
    create({k: run[k] for k in ("scores", "alerts", "changelog")}, len(partitions(run["transactions"])))
    procs = [subprocess.Popen([*CLI, "score", *flags(run), f"--model-dir={model_dir}", f"--group-id=g-{run['scores']}",
                               f"--metrics-port={port + i}", *extra, *([] if changelog else ["--changelog="])],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(scorers)]
    try:
        stamps, scores = read_scores(run["scores"], n)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)
    seconds = (max(stamps) - min(stamps)) / 1000
    result = {"scorers": scorers, "changelog": changelog, "transactions": len(scores), "seconds": seconds,
              "tx_per_s": len(scores) / seconds, "scores": scores, "topics": run}
    if changelog:
        result["changelog_bytes_per_tx"] = topic_bytes(run["changelog"]) / len(scores)
    return result


def partitions(topic: str) -> set:
    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP)
    try:
        return consumer.partitions_for_topic(topic) or set()
    finally:
        consumer.close()


def read_scores(topic: str, n: int, timeout: float = 600):
    consumer = KafkaConsumer(topic, bootstrap_servers=BOOTSTRAP, auto_offset_reset="earliest", group_id=None,
                             enable_auto_commit=False)
    stamps, scores, deadline = [], {}, time.monotonic() + timeout
    while len(scores) < n and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=1000).values():
            for r in batch:
                stamps.append(r.timestamp)
                value = json.loads(r.value)
                scores[value["tx_id"]] = value["score"]
    consumer.close()
    if len(scores) < n:
        raise RuntimeError(f"only {len(scores)} of {n} transactions scored in {timeout}s")
    return np.array(stamps), scores


def topic_bytes(topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=None, enable_auto_commit=False)
    tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    ends, total = consumer.end_offsets(tps), 0
    while any(consumer.position(tp) < ends[tp] for tp in tps):
        for batch in consumer.poll(timeout_ms=1000).values():
            total += sum(len(r.value) for r in batch)
    consumer.close()
    return total
