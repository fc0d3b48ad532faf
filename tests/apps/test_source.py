"""The scorer's group reader (source.py, librdkafka) on the real broker: what the scorer relies on."""
import threading
import time

from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KafkaTP

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


def test_a_rebalance_inside_poll_returns_no_record_of_the_old_assignment(topics):
    """librdkafka runs the rebalance callbacks inside consume() and returns, in the same batch,
    records fetched for the old assignment (confluent-kafka-python #1013): records of partitions
    revoked from this member, and records of kept ones that the new assignment reads again from
    the committed offset. Each member here commits after every poll, like the scorer; a second
    member joins while the first waits inside poll() and then leaves again. Every record must come
    from a partition its member owns when poll() returns, once per ownership, in offset order,
    starting at the offset the group had committed."""
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, linger_ms=5)
    stop = threading.Event()

    def trickle():  # records keep arriving, so poll() is waiting for more when the group rebalances
        i = 0
        while not stop.is_set():
            producer.send(topics["transactions"], f"tx{i}".encode(), partition=i % 3)
            i += 1
            time.sleep(0.002)
        producer.flush()

    group = f"g-{topics['transactions']}"
    problems, seen = [], []
    members_stop = {"a": threading.Event(), "b": threading.Event()}

    def member(name):
        source = Source(KafkaConfig(bootstrap_servers=BOOTSTRAP), group_id=group, client_id=f"test-{name}",
                        max_records=100_000, batch_wait_ms=1500)
        expect = {}  # next offset per owned partition (None: the committed offset, asked at the first record)

        def assigned(tps):
            expect.update(dict.fromkeys(tps))

        def revoked(tps):
            for tp in tps:
                expect.pop(tp, None)

        source.subscribe([topics["transactions"]], on_assigned=assigned, on_revoked=revoked)
        try:
            while not members_stop[name].is_set():
                batch = source.poll(500)
                for tp, records in batch.items():
                    if tp not in expect:
                        problems.append(f"{name}: {len(records)} records of {tp.partition}, not owned")
                        continue
                    start = expect[tp] if expect[tp] is not None else (source.committed(tp) or 0)
                    offsets = [r.offset for r in records]
                    if offsets != list(range(start, start + len(offsets))):
                        problems.append(f"{name}: partition {tp.partition} from {start}: got {offsets[:5]}...")
                    expect[tp] = offsets[-1] + 1
                    seen.extend((tp.partition, o) for o in offsets)
                source.commit({tp: o for tp, o in expect.items() if o is not None})
        finally:
            source.close()

    threads = [threading.Thread(target=trickle), threading.Thread(target=member, args=("a",))]
    for t in threads:
        t.start()
    try:
        time.sleep(4)
        b = threading.Thread(target=member, args=("b",))
        b.start()  # joins while a waits inside poll(): a's batch spans the rebalance
        time.sleep(8)
        members_stop["b"].set()  # leaves: a is given everything back, inside a poll again
        b.join()
        time.sleep(6)
    finally:
        stop.set()
        threads[0].join()
        time.sleep(3)
        members_stop["a"].set()
        threads[1].join()
        producer.close()
    assert not problems, problems[:10]
    ends = {p: KafkaConsumer(bootstrap_servers=BOOTSTRAP).end_offsets(
        [KafkaTP(topics["transactions"], p)]) for p in range(3)}
    assert len(seen) >= 1000
    for p in range(3):
        got = sorted(o for q, o in seen if q == p)
        end = list(ends[p].values())[0]
        assert got[-1] == end - 1 and set(got) == set(range(end)), f"partition {p}: every record read"
