"""A restarted producer sends exactly the labels still waiting for their delay: none lost, none twice.

The producer's sends are emulated as run() makes them (labels once tx time + delay has passed,
then the transaction), into fake partitions keyed as Sink keys them. A crash loses a different
tail of each partition (the unacknowledged queue); the resume decision (labels_to_resend) is
driven from the partitions' first and last records, as the producer reads them from Kafka.
"""
from collections import deque

import numpy as np
import pytest

from fraudstream.features import DAY
from fraudstream.producer import (
    MAX_RESUME_DAYS,
    Record,
    Tail,
    label_value,
    partition_of,
    plan_resume,
    queue_label,
    resume,
    resume_window,
)
from fraudstream.schema import decode_label
from fraudstream.simulator import Simulator, SimulatorParams

SMALL = SimulatorParams(n_customers=1000, n_terminals=2000, seed=5)
TX_PARTITIONS, LABEL_PARTITIONS = 3, 5  # different counts: each topic's own partition must be used
DELAY = 2 * DAY


@pytest.fixture(scope="module")
def sim():
    return Simulator(SMALL)


def emulate(sim, start_day, n, label_delay=DELAY, plan=None):
    """The (topic, tx) sends of run(): n transactions from start_day, each preceded by the labels due."""
    pending = deque() if plan is None else deque(plan.labels)
    sends, count = [], 0
    for _, day_tx in sim.days(start_day):
        for tx in (day_tx if plan is None else plan.unsent(day_tx)):
            if count >= n:
                return sends
            now = int(tx["tx_time"])
            while pending and pending[0]["tx_time"] + label_delay <= now:
                sends.append(("label", pending.popleft()))
            sends.append(("tx", tx))
            queue_label(pending, tx)
            count += 1
    return sends


class Topics:
    """Fake partitions of the transactions and labels topics: what the broker acknowledged."""

    def __init__(self):
        self.logs = {"tx": [[] for _ in range(TX_PARTITIONS)], "label": [[] for _ in range(LABEL_PARTITIONS)]}

    def write(self, sends, lose=None, rng=None):
        """Append sends; `lose`: a crash loses up to that many of the newest records of each partition."""
        for topic, tx in sends:
            logs = self.logs[topic]
            logs[partition_of(str(int(tx["customer_id"])).encode(), len(logs))].append(tx)
        if lose:
            for log in (*self.logs["tx"], *self.logs["label"]):
                del log[len(log) - int(rng.integers(0, min(lose, len(log)) + 1)):]

    def tail(self, topic):
        def record(tx):
            return Record(int(tx["tx_id"]), int(tx["tx_time"]), int(tx["customer_id"]))
        logs = self.logs[topic]
        return Tail(len(logs), {p: record(log[-1]) for p, log in enumerate(logs) if log},
                    {p: record(log[0]) for p, log in enumerate(logs) if log})

    def ids(self, topic):
        return [int(tx["tx_id"]) for log in self.logs[topic] for tx in log]


def restart(sim, topics, label_delay=DELAY):
    """What run() does on restart: where it continues, and the labels it queues."""
    return resume(sim, label_delay, topics.tail("tx"), topics.tail("label"))


def due_labels_once(topics, last_now, label_delay=DELAY):
    """Every produced transaction whose label was due has exactly one label; no other label exists."""
    produced = {int(tx["tx_id"]): int(tx["tx_time"]) for log in topics.logs["tx"] for tx in log}
    labels = topics.ids("label")
    due = {i for i, t in produced.items() if t + label_delay <= last_now}
    counts = {}
    for i in labels:
        counts[i] = counts.get(i, 0) + 1
    assert not {i: c for i, c in counts.items() if c > 1}, "labels sent twice"
    assert not set(counts) - set(produced), "labels for transactions never produced"
    assert not due - set(counts), f"{len(due - set(counts))} of {len(due)} due labels lost"
    return len(due)


def transactions_once(topics, n_expected):
    ids = topics.ids("tx")
    assert len(ids) == len(set(ids)), "a transaction sent twice"
    assert sorted(ids) == list(range(min(ids), min(ids) + len(ids))), "a transaction lost"
    assert len(ids) == n_expected


@pytest.mark.parametrize("seed", range(6))
def test_a_crash_then_resume_loses_and_repeats_nothing(sim, seed):
    rng = np.random.default_rng(seed)
    topics = Topics()
    first_run = emulate(sim, 0, int(rng.integers(8_000, 14_000)))
    topics.write(first_run, lose=int(rng.choice([0, 5, 400])), rng=rng)
    kept = len(topics.ids("tx"))
    plan = restart(sim, topics)
    pending = plan.labels["tx_id"].tolist()
    assert pending and set(pending) <= set(topics.ids("tx"))
    assert not set(pending) & set(topics.ids("label")), "a label already in Kafka is queued again"
    assert pending == sorted(pending), "queued in transaction order, as run() expects"
    second_run = emulate(sim, plan.start_day, 9_000, plan=plan)
    topics.write(second_run)
    transactions_once(topics, kept + 9_000)
    assert due_labels_once(topics, int(second_run[-1][1]["tx_time"])) > 5_000


def test_two_crashes_in_a_row(sim):
    rng = np.random.default_rng(1)
    topics = Topics()
    topics.write(emulate(sim, 0, 7_000), lose=50, rng=rng)
    plan = restart(sim, topics)
    topics.write(emulate(sim, plan.start_day, 3_000, plan=plan), lose=50, rng=rng)
    kept = len(topics.ids("tx"))
    plan = restart(sim, topics)
    last = emulate(sim, plan.start_day, 9_000, plan=plan)
    topics.write(last)
    transactions_once(topics, kept + 9_000)
    due_labels_once(topics, int(last[-1][1]["tx_time"]))


def test_a_restart_with_no_label_sent_yet_queues_every_produced_label(sim):
    topics = Topics()
    topics.write(emulate(sim, 0, 1_500))  # less than the delay: no label sent
    assert not topics.ids("label")
    assert sorted(restart(sim, topics).labels["tx_id"].tolist()) == sorted(topics.ids("tx"))
    # A labels topic without partitions yet (not created) means the same.
    plan = plan_resume(sim.dataset(2), SMALL.n_customers, topics.tail("tx"), Tail(0, {}))
    assert sorted(plan.labels["tx_id"].tolist()) == sorted(topics.ids("tx"))


def test_an_empty_topic_is_no_resume(sim):
    assert resume(sim, DELAY, Tail(3, {}), Tail(3, {})) is None
    assert resume(sim, DELAY, Tail(0, {}), Tail(0, {})) is None


def test_transactions_the_first_run_never_produced_get_no_label(sim):
    """A first run that started at day 3: the window reaches back before it, into nothing."""
    topics = Topics()
    topics.write(emulate(sim, 3, 2_500))
    plan = restart(sim, topics)
    assert resume_window(topics.tail("tx").newest_time() // DAY, DELAY, topics.tail("label")) < 3
    assert plan.labels.size and plan.labels["tx_time"].min() >= 3 * DAY
    assert plan.start_day == 4


def window_of(sim, topics):
    newest_day = topics.tail("tx").newest_time() // DAY
    first = resume_window(newest_day, DELAY, topics.tail("label"))
    return sim.dataset(newest_day + 1 - first, first)


def test_a_foreign_last_label_means_resending_its_partition_not_losing_it(sim):
    topics = Topics()
    topics.write(emulate(sim, 0, 8_000))
    transactions, labels = topics.tail("tx"), topics.tail("label")
    window = window_of(sim, topics)
    honest = plan_resume(window, SMALL.n_customers, transactions, labels).labels
    # Someone wrote a label by hand: an id in the window, but not that transaction's customer.
    real = labels.last[0]
    forged = Tail(labels.partitions, {**labels.last, 0: Record(real.tx_id + 7, real.tx_time, 10**9)})
    resent = plan_resume(window, SMALL.n_customers, transactions, forged).labels
    on_0 = np.array([partition_of(str(c).encode(), LABEL_PARTITIONS) == 0 for c in resent["customer_id"]])
    assert set(honest["tx_id"].tolist()) <= set(resent["tx_id"].tolist())
    labelled_0 = {int(tx["tx_id"]) for tx in topics.logs["label"][0]}
    assert labelled_0 & set(resent["tx_id"][on_0].tolist()), "partition 0 is resent whole: duplicates"
    # An undecodable last label: the same.
    undecodable = plan_resume(window, SMALL.n_customers, transactions, Tail(labels.partitions, {**labels.last, 0: None}))
    assert set(undecodable.labels["tx_id"].tolist()) == set(resent["tx_id"].tolist())


def test_an_undecodable_last_transaction_counts_the_whole_window_as_produced(sim):
    topics = Topics()
    topics.write(emulate(sim, 0, 8_000))
    transactions, labels = topics.tail("tx"), topics.tail("label")
    window = window_of(sim, topics)
    honest = plan_resume(window, SMALL.n_customers, transactions, labels)
    blind = plan_resume(window, SMALL.n_customers,
                        Tail(transactions.partitions, {**transactions.last, 1: None}, transactions.first), labels)
    assert set(honest.labels["tx_id"].tolist()) <= set(blind.labels["tx_id"].tolist())
    assert not set(blind.labels["tx_id"].tolist()) & set(topics.ids("label")), "still no duplicate"
    assert not blind.unsent(window).size or blind.unsent(window)["tx_id"].min() > honest.unsent(window)["tx_id"].min()


def test_queue_label_keeps_tx_id_order():
    rows = np.zeros(6, dtype=[("tx_id", np.int64)])
    rows["tx_id"] = [1, 4, 6, 2, 5, 7]
    pending = deque()
    for row in rows:
        queue_label(pending, row)
    assert [int(r["tx_id"]) for r in pending] == [1, 2, 4, 5, 6, 7]


def test_resume_window_covers_the_delay_and_the_oldest_last_label():
    no_labels = Tail(0, {})
    # Newest transaction on day 19: 7 days of delay back from the day in progress (days 12-19).
    assert resume_window(19, 7 * DAY, no_labels) == 12
    assert resume_window(19, int(0.01 * DAY), no_labels) == 18
    assert resume_window(3, 7 * DAY, no_labels) == 0
    old = Tail(2, {0: Record(1, 5 * DAY + 10, 1), 1: None})
    assert resume_window(19, 7 * DAY, old) == 5
    assert resume_window(200, 7 * DAY, old) == 200 - MAX_RESUME_DAYS


def test_partition_of_is_librdkafkas_murmur2():
    """rd_murmur2's own test vectors (librdkafka src/rdmurmur2.c, checked against the Java
    client); murmur2_random maps a non-null key to (hash & 0x7fffffff) % partitions, as Sink sends."""
    vectors = {b"kafka": 0xD067CF64, b"giberish123456789": 0x8F552B0C, b"1234": 0x9FC97B14, b"234": 0xE7C009CA,
               b"34": 0x873930DA, b"4": 0x5A4B5CA1, b"PreAmbleWillBeRemoved,ThePrePartThatIs": 0x78424F1C,
               b"": 0x106E08D9}
    for key, digest in vectors.items():
        for n in (1, 3, 7, 12, 50):
            assert partition_of(key, n) == (digest & 0x7FFFFFFF) % n, (key, n)


def test_a_resent_label_is_the_label_the_first_run_would_have_sent(sim):
    tx = sim.dataset(1)[17]
    label = decode_label(label_value(tx))
    assert (label.tx_id, label.tx_time, label.customer_id) == (int(tx["tx_id"]), int(tx["tx_time"]),
                                                               int(tx["customer_id"]))
