"""Every record ends as a score or a DLQ record with a reason, and none blocks what follows.

Bad records of many kinds (malformed, wrong types, every extreme, oversize, wrong encodings) go
in mid-stream on every partition of both input topics; schema-valid extremes must be scored.
Also: a record that the broker refuses to store (here, every changelog record, through a topic
timestamp limit) must not wedge its partition.
"""
import json
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from kafka.structs import TopicPartition
from kafka_helpers import BOOTSTRAP, metric, produce, read_all, scored_ids, scorer, stop
from test_reliability import report

pytestmark = pytest.mark.e2e

TX = {"schema_version": 1, "tx_id": 0, "tx_datetime": "2018-04-05T10:00:00Z", "customer_id": 42,
      "terminal_id": 7, "amount": 25.0}
LABEL = {"tx_id": 0, "tx_datetime": "2018-04-05T10:00:00Z", "customer_id": 42, "terminal_id": 7, "fraud": 1}
BIG = 2**63


def tx(**fields):
    return json.dumps({**TX, **fields}).encode()


def label(**fields):
    return json.dumps({**LABEL, **fields}).encode()


# (name, topic kind, value, expected DLQ reason)
BAD = [
    ("truncated JSON", "transactions", tx()[:-9], "not_json"),
    ("latin-1 bytes", "transactions", "{\"amount\": \"\xe9\"}".encode("latin-1"), "not_utf8"),
    ("UTF-16 JSON", "transactions", tx().decode().encode("utf-16"), "not_utf8"),
    ("tombstone", "transactions", None, "not_json"),
    ("JSON array", "transactions", b"[1, 2, 3]", "not_object"),
    ("JSON string", "transactions", b'"a transaction"', "not_object"),
    ("missing amount", "transactions", json.dumps({k: v for k, v in TX.items() if k != "amount"}).encode(),
     "missing_field"),
    ("tx_id 2^63", "transactions", tx(tx_id=BIG), "out_of_range"),
    ("tx_id 2^64", "transactions", tx(tx_id=2**64), "out_of_range"),  # JSON Schema: 1.8e19 is an integer
    ("customer_id 10^40", "transactions", tx(customer_id=10**40), "out_of_range"),
    ("terminal_id -1", "transactions", tx(terminal_id=-1), "out_of_range"),
    ("customer_id -2^63", "transactions", tx(customer_id=-BIG), "out_of_range"),
    ("tx_id string", "transactions", tx(tx_id="17"), "wrong_type"),
    ("tx_id 1.5", "transactions", tx(tx_id=1.5), "wrong_type"),
    ("terminal_id true", "transactions", tx(terminal_id=True), "wrong_type"),
    ("amount 1e308", "transactions", tx(amount=1e308), "out_of_range"),
    ("amount -0.01", "transactions", tx(amount=-0.01), "out_of_range"),
    ("amount string", "transactions", tx(amount="12.50"), "wrong_type"),
    ("amount infinity", "transactions", tx().replace(b'"amount": 25.0', b'"amount": 1e400'), "not_json"),
    ("amount NaN", "transactions", tx().replace(b'"amount": 25.0', b'"amount": NaN'), "not_json"),
    ("year 2999", "transactions", tx(tx_datetime="2999-01-01T00:00:00Z"), "future_time"),
    ("3 hours ahead", "transactions",
     tx(tx_datetime=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3 * 3600))), "future_time"),
    ("year 1970", "transactions", tx(tx_datetime="1970-01-01T00:00:00Z"), "out_of_range"),
    ("year 1", "transactions", tx(tx_datetime="0001-01-01T00:00:00+14:00"), "out_of_range"),
    ("no time zone", "transactions", tx(tx_datetime="2018-04-05T10:00:00"), "wrong_type"),
    ("epoch number", "transactions", tx(tx_datetime=1522922400), "wrong_type"),
    ("month 13", "transactions", tx(tx_datetime="2018-13-05T10:00:00Z"), "wrong_type"),
    ("schema_version 2", "transactions", tx(schema_version=2), "unsupported_version"),
    ("20 KB record", "transactions", tx(pad="x" * 20_000), "oversize"),
    ("900 KB record", "transactions", tx(pad="x" * 900_000), "oversize"),
    ("deep nesting", "transactions", b"[" * 2000 + b"]" * 2000, "not_json"),
    ("label fraud 2", "labels", label(fraud=2), "out_of_range"),
    ("label fraud '1'", "labels", label(fraud="1"), "wrong_type"),
    ("label fraud 0.5", "labels", label(fraud=0.5), "wrong_type"),
    ("label without tx_id", "labels", json.dumps({k: v for k, v in LABEL.items() if k != "tx_id"}).encode(),
     "missing_field"),
    ("label tx_id 2^63", "labels", label(tx_id=BIG), "out_of_range"),
    ("label a day ahead", "labels",
     label(tx_datetime=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86400))), "future_time"),
    ("label not JSON", "labels", b"chargeback!", "not_json"),
]
# Schema-valid extremes: scored like any transaction (ids far above the simulator's).
EXTREME = [
    tx(tx_id=BIG - 1, customer_id=BIG - 1, terminal_id=BIG - 1),
    tx(tx_id=BIG - 2, amount=0),
    tx(tx_id=BIG - 3, amount=1_000_000),
    tx(tx_id=BIG - 4, amount=5e-324),
    tx(tx_id=BIG - 5, amount=1e-9, tx_datetime="2018-04-01T00:00:00Z"),  # the epoch: far behind the stream
    tx(tx_id=BIG - 6, tx_datetime="2018-04-05T12:00:00.123456+02:00"),
    tx(tx_id=BIG - 7, customer_id=0, terminal_id=0, amount=7.0),
    tx(tx_id=3, customer_id=1),  # a repeated id (the simulator's tx 3): scored again
]
# Valid labels that score nothing: for a transaction never seen, and a genuine one.
VALID_LABELS = [label(tx_id=BIG - 9, customer_id=123456789), label(tx_id=BIG - 10, fraud=0)]


def send_mid_stream(topics, producer):
    """The bad and extreme records, spread over every partition; returns {(topic, partition,
    offset): expected reason} and the extreme tx ids."""
    expected = {}
    records = [(kind, value, reason) for _, kind, value, reason in BAD]
    records += [("transactions", v, None) for v in EXTREME] + [("labels", v, None) for v in VALID_LABELS]
    for i, (kind, value, reason) in enumerate(records):
        meta = producer.send(topics[kind], value, key=b"poison", partition=i % 3).get(timeout=30)
        if reason:
            expected[(topics[kind], meta.partition, meta.offset)] = reason
    producer.flush()
    return expected, {json.loads(v)["tx_id"] for v in EXTREME}


def committed_everything(topics, group, timeout=60):
    """True once the group has committed the log end of every input partition (nothing waits)."""
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP)
    tps = [TopicPartition(topics[k], p) for k in ("transactions", "labels") for p in range(3)]
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ends = consumer.end_offsets(tps)
            committed = admin.list_group_offsets({group: None})[group]
            behind = {tp: ends[tp] - (committed[tp].offset if tp in committed else 0) for tp in tps}
            if not any(behind.values()):
                return True
            time.sleep(1)
        return behind
    finally:
        admin.close()
        consumer.close()


def test_every_bad_record_goes_to_the_dlq_with_its_reason_and_nothing_waits(topics, model):
    n, group, port = 6000, f"g-{topics['scores']}", 18210
    proc = scorer(topics, model, port, group)
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", max_request_size=2 << 20)
    try:
        stream = produce(topics, n, 18211, rate=1000)
        deadline = time.monotonic() + 60
        while metric(port, "fraudstream_scorer_transactions_total") < 500 and time.monotonic() < deadline:
            time.sleep(0.1)
        expected, extreme_ids = send_mid_stream(topics, producer)  # mid-stream: scoring is under way
        assert stream.wait(timeout=120) == 0, stream.stderr.read().decode()[-2000:]
        ids = set(scored_ids(topics, len(set(range(n)) | extreme_ids)))
        dlq = read_all(topics["dlq"], expect=len(expected), headers=True, timeout=60)
        got = {(h["dlq.topic"].decode(), int(h["dlq.partition"]), int(h["dlq.offset"])): h["dlq.reason"].decode()
               for h in (dict(r.headers) for r in dlq)}
        lost = n - len(ids & set(range(n)))
        report("poison_kinds", produced=n, extreme_valid=len(extreme_ids), bad=len(expected), dlq=len(dlq),
               lost=lost + len(extreme_ids - ids), kinds=len(BAD), scorer_alive=proc.poll() is None)
        assert lost == 0, f"{lost} good transactions were never scored"
        assert extreme_ids <= ids, f"valid extremes not scored: {extreme_ids - ids}"
        assert got == expected, {k: (got.get(k), v) for k, v in expected.items() if got.get(k) != v}
        assert len(dlq) == len(expected), "each bad record in the DLQ exactly once"
        truncated = [dict(r.headers) for r in dlq if "dlq.truncated" in dict(r.headers)]
        assert len(truncated) == 1 and int(truncated[0]["dlq.truncated"]) > 900_000
        assert committed_everything(topics, group) is True, "a record after a bad one still waits"
        assert proc.poll() is None, "the scorer must never exit on data"
        assert metric(port, "fraudstream_scorer_kafka_errors_total") == 0, "no bad record may cause a rewind"
    finally:
        producer.close()
        assert stop(proc) == 0


def test_a_record_the_broker_refuses_does_not_wedge_the_partition(topics, model):
    """The changelog's records carry 2018 event times; a topic that refuses timestamps older than a
    day refuses every one of them. The scorer stamps them anew instead of retrying forever."""
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topics["changelog"],
                                        configs={"message.timestamp.before.max.ms": "86400000",
                                                 "retention.ms": "-1"})])
    admin.close()
    n, port = 2000, 18212
    stream = produce(topics, n, 18213, rate=500)
    proc = scorer(topics, model, port, f"g-{topics['scores']}")
    try:
        assert stream.wait(timeout=120) == 0
        ids = set(scored_ids(topics, n, timeout=120))
        restamped = metric(port, "fraudstream_scorer_refused_outputs_total", 'error="INVALID_TIMESTAMP"')
        report("broker_refuses_changelog", produced=n, lost=n - len(ids), restamped=restamped,
               scorer_alive=proc.poll() is None)
        assert len(ids) == n and restamped > 0
        assert metric(port, "fraudstream_scorer_refused_outputs_total", 'outcome="dropped"') <= 0
        assert proc.poll() is None
    finally:
        assert stop(proc) == 0
