"""The scorer's group reader (source.py, librdkafka) on the real broker: what the scorer relies on."""
import time

from kafka import KafkaProducer

from fraudstream.config import KafkaConfig
from fraudstream.source import Source

from conftest import BOOTSTRAP


def read(source, want, timeout=30):
    """Poll until `want` records have arrived; {TopicPartition: [offsets]}."""
    got, deadline = {}, time.monotonic() + timeout
    while sum(map(len, got.values())) < want and time.monotonic() < deadline:
        for tp, records in source.poll(200).items():
            got.setdefault(tp, []).extend(r.offset for r in records)
    return got


def test_source_assigns_both_topics_alike_commits_and_rewinds(topics):
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP)
    for i in range(30):
        producer.send(topics["transactions"], f"tx{i}".encode(), partition=i % 3)
        producer.send(topics["labels"], f"label{i}".encode(), partition=i % 3)
    producer.flush()
    events = []
    source = Source(KafkaConfig(bootstrap_servers=BOOTSTRAP), group_id=f"g-{topics['transactions']}",
                    client_id="test-source", max_records=500)
    try:
        source.subscribe([topics["transactions"], topics["labels"]],
                         on_assigned=lambda tps: events.append(("assigned", tps)),
                         on_revoked=lambda tps: events.append(("revoked", tps)))
        got = read(source, 60)
        assert sorted(len(o) for o in got.values()) == [10] * 6, got
        assert [kind for kind, _ in events] == ["assigned"]
        assert {(tp.topic, tp.partition) for tp in events[0][1]} == {
            (topics[t], p) for t in ("transactions", "labels") for p in range(3)}
        assert source.assignment() == events[0][1]

        tx0 = next(tp for tp in got if tp.topic == topics["transactions"] and tp.partition == 0)
        assert source.committed(tx0) is None and source.beginning(tx0) == 0
        source.commit({tx0: 4})
        assert source.committed(tx0) == 4
        assert source.highwater(tx0) == 10

        source.seek(tx0, 4)  # the scorer's rewind: read again from the committed offset
        again = read(source, 6)
        assert again == {tx0: [4, 5, 6, 7, 8, 9]}
    finally:
        source.close()
        producer.close()
