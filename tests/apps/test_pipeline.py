"""The producer and scorer against the real local broker: all scored, poison to the DLQ, SIGKILL-safe."""
import json
import signal
import time

import pytest
import requests
from kafka import KafkaProducer
from kafka.partitioner.default import murmur2
from kafka_helpers import (
    BOOTSTRAP,
    metric,
    produce,
    read_all,
    read_to_end,
    scored_past_commits,
    scorer,
    source_positions,
    stop,
)

pytestmark = pytest.mark.e2e


def test_every_produced_transaction_is_scored(topics, model):
    n = 3000
    producer = produce(topics, n, 18100)
    assert producer.wait(timeout=120) == 0, producer.stderr.read().decode()[-2000:]
    proc = scorer(topics, model, 18101, f"g-{topics['scores']}")
    try:
        scores = read_all(topics["scores"], expect=n)
        ids = [json.loads(r.value)["tx_id"] for r in scores]
        assert set(ids) == set(range(n)), f"{n - len(set(ids))} transactions were never scored"
        assert requests.get("http://127.0.0.1:18101/readyz", timeout=5).status_code == 200
        time.sleep(3)
        assert metric(18101, "fraudstream_scorer_transactions_total") == n
        flagged = [json.loads(r.value) for r in scores if json.loads(r.value)["flagged"]]
        alerts = read_all(topics["alerts"], expect=len({a["tx_id"] for a in flagged}), timeout=30)
        assert {json.loads(a.value)["tx_id"] for a in alerts} == {a["tx_id"] for a in flagged}
        first = json.loads(scores[0].value)
        assert {"score", "model_version", "scoring_latency_ms", "threshold"} <= set(first)
    finally:
        assert stop(proc) == 0, "SIGTERM must end the scorer cleanly"


def test_a_cards_transactions_and_labels_share_the_java_clients_partition(topics):
    """The producer writes through librdkafka (sink.py); its keys must land where kafka-python and
    the Java client put them (murmur2), or a card's labels would miss the scorer of its transactions."""
    n = 2000
    producer = produce(topics, n, 18106, extra=["--label-delay-days=0.05"])
    assert producer.wait(timeout=120) == 0, producer.stderr.read().decode()[-2000:]
    records = read_all(topics["transactions"], expect=n) + read_all(topics["labels"], timeout=10)
    assert len(records) > n, "labels were produced too"
    wrong = [r for r in records if r.partition != (murmur2(r.key) & 0x7FFFFFFF) % 3]
    assert not wrong, f"{len(wrong)} of {len(records)} records on another partition than murmur2(key) % 3"


def test_poison_goes_to_the_dlq_and_scoring_goes_on(topics, model):
    proc = scorer(topics, model, 18102, f"g-{topics['scores']}")
    try:
        good = json.dumps({"tx_id": 1, "tx_datetime": "2018-04-02T10:00:00Z", "customer_id": 1,
                           "terminal_id": 2, "amount": 10.0}).encode()
        poison = {
            "not_json": b'{"tx_id": 5, "amount": ',  # truncated
            "wrong_type": good.replace(b'"customer_id": 1', b'"customer_id": "one"'),
            "missing_field": b'{"tx_id": 6}',
            "oversize": b'{"tx_id": 7, "pad": "' + b"x" * 20000 + b'"}',
            "not_utf8": b"\xff\xfe\xfd",
        }
        producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
        for value in poison.values():
            producer.send(topics["transactions"], value, key=b"1")
        producer.send(topics["transactions"], good, key=b"1")
        producer.flush()
        dlq = read_all(topics["dlq"], expect=len(poison), headers=True, timeout=60)
        reasons = {dict(r.headers)["dlq.reason"].decode(): r.value for r in dlq}
        assert reasons == poison, "each bad record reaches the DLQ once, with its reason and original bytes"
        assert all(b"dlq.offset" in dict(r.headers) or "dlq.offset" in dict(r.headers) for r in dlq)
        scores = read_all(topics["scores"], expect=1, timeout=60)
        assert [json.loads(r.value)["tx_id"] for r in scores] == [1]
        assert proc.poll() is None, "the scorer must keep running"
        time.sleep(3)
        assert metric(18102, 'fraudstream_scorer_dlq_total{reason="oversize"}') == 1
    finally:
        stop(proc)


def test_sigkill_mid_stream_loses_nothing(topics, model):
    """At-least-once across a SIGKILL: nothing is lost, and only what the killed scorer had scored
    past its committed offsets is scored again (how much that is depends on the machine's speed)."""
    n = 20000
    producer = produce(topics, n, 18103)
    group = f"g-{topics['scores']}"
    proc = scorer(topics, model, 18104, group)
    try:
        deadline = time.monotonic() + 60
        while metric(18104, "fraudstream_scorer_transactions_total") < 2000 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert producer.wait(timeout=180) == 0
    uncommitted = scored_past_commits(topics["scores"], group, source_positions(topics["transactions"], n))
    before = read_to_end(topics["scores"])
    scored_before = {json.loads(r.value)["tx_id"] for r in before}
    ends = {}
    for r in before:
        ends[r.partition] = max(ends.get(r.partition, -1), r.offset)
    restarted = scorer(topics, model, 18105, group)
    try:
        scores = read_all(topics["scores"], expect=n, timeout=180)
        ids = {json.loads(r.value)["tx_id"] for r in scores}
        again = {json.loads(r.value)["tx_id"] for r in scores if r.offset > ends.get(r.partition, -1)} & scored_before
        print(f"SIGKILL run: {n} produced, {n - len(ids)} lost, {len(again)} scored again "
              f"({len(uncommitted)} scored past the committed offsets at the kill)")
        assert n - len(ids) == 0
        assert again <= uncommitted, f"{len(again - uncommitted)} transactions behind the committed offsets scored again"
    finally:
        stop(restarted)
