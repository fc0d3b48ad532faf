"""A producer killed while labels wait for their delay, then restarted: every label once, no transaction lost.

Issue 11, part 3: "A producer restart loses no labels that were still waiting for their delay."
The producer runs against the real local broker with fresh topics and a label delay of 0.05
simulated days (~500 transactions), is SIGKILLed mid-stream, restarted with --resume 1 (the
default), and stopped after a fixed number of further transactions.
"""
import json
import signal
import time
from datetime import UTC, datetime

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka_helpers import BOOTSTRAP, metric, produce

pytestmark = pytest.mark.e2e

DELAY_DAYS = 0.05
DELAY = int(DELAY_DAYS * 86400)
EPOCH = datetime(2018, 4, 1, tzinfo=UTC)


def sim_time(tx_datetime):
    return int((datetime.fromisoformat(tx_datetime.replace("Z", "+00:00")) - EPOCH).total_seconds())


def read_topic(topic, timeout=60):
    """Every record of a topic, up to its end offsets now (the writers have stopped or been killed)."""
    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, group_id=None)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        records, deadline = [], time.monotonic() + timeout
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            assert time.monotonic() < deadline, f"{topic}: could not read up to {ends} within {timeout}s"
            for batch in consumer.poll(timeout_ms=1000).values():
                records.extend(r for r in batch if r.offset < ends[TopicPartition(r.topic, r.partition)])
        return [json.loads(r.value) for r in records]
    finally:
        consumer.close()


def wait_for(port, name, at_least, timeout=90):
    deadline = time.monotonic() + timeout
    while metric(port, name) < at_least:
        assert time.monotonic() < deadline, f"{name} did not reach {at_least} within {timeout}s"
        time.sleep(0.2)


def test_a_killed_producer_resumes_every_waiting_label_once(topics):
    first = produce(topics, 1_000_000, 18400, rate=2000, extra=[f"--label-delay-days={DELAY_DAYS}"])
    try:
        # Well past the delay: labels have been sent, and ~500 more wait in memory.
        wait_for(18400, "fraudstream_producer_transactions_total", 4000)
        wait_for(18400, "fraudstream_producer_labels_total", 1000)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    before_tx = read_topic(topics["transactions"])
    before_labels = {label["tx_id"] for label in read_topic(topics["labels"])}
    killed_at = max(tx["tx_id"] for tx in before_tx)
    waiting = {tx["tx_id"] for tx in before_tx} - before_labels
    assert len(waiting) > 100, "the kill left labels waiting for their delay"

    more = 3000
    second = produce(topics, more, 18401, rate=0, extra=[f"--label-delay-days={DELAY_DAYS}"])
    assert second.wait(timeout=180) == 0, second.stderr.read().decode()[-3000:]

    transactions = read_topic(topics["transactions"])
    labels = read_topic(topics["labels"])
    ids = [tx["tx_id"] for tx in transactions]
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} transactions produced twice"
    assert sorted(ids) == list(range(len(ids))), "a transaction was lost across the restart"
    assert len(ids) == len(before_tx) + more

    times = {tx["tx_id"]: sim_time(tx["tx_datetime"]) for tx in transactions}
    last_now = max(times.values())
    due = {i for i, t in times.items() if t + DELAY <= last_now}
    counts = {}
    for label in labels:
        counts[label["tx_id"]] = counts.get(label["tx_id"], 0) + 1
    twice = sorted(i for i, n in counts.items() if n > 1)
    lost = sorted(due - set(counts))
    unknown = sorted(set(counts) - set(times))
    print(f"producer SIGKILL + resume: {len(ids)} transactions, {len(due)} labels due, "
          f"{len(lost)} lost, {len(twice)} duplicated, {len(unknown)} for unproduced transactions")
    assert not lost, f"{len(lost)} due labels lost, e.g. {lost[:10]}"
    assert not twice, f"{len(twice)} labels sent twice, e.g. {twice[:10]}"
    assert not unknown, f"labels for transactions never produced: {unknown[:10]}"
    resumed = {i for i in set(counts) - before_labels if i <= killed_at}
    assert resumed, "the restarted producer sent labels of transactions from before the kill"
    assert waiting & due <= resumed
