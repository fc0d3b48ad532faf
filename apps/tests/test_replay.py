"""`fraudstream replay` without Kafka: the producer's records, keys and label delay, in event-time order, paced.

The sends are captured (replay() takes any send function; run() is given a fake Sink), and the
producer's Pacer runs on a fake clock.
"""
import functools
import json

import numpy as np
import pytest

from fraudstream import cli, producer, sink
from fraudstream.config import KafkaConfig, ProducerConfig, Topics
from fraudstream.datafile import DATA_DTYPE, load, write
from fraudstream.features import DAY
from fraudstream.producer import Pacer
from fraudstream.replay import replay
from fraudstream.schema import decode, decode_label
from fraudstream.simulator import Simulator, SimulatorParams

TOPICS = Topics(transactions="tx", labels="labels")
SMALL = functools.partial(SimulatorParams, n_customers=1000, n_terminals=2000)  # quicker to build


class Clock:
    """time.monotonic() and time.sleep() for the producer's Pacer: sleeping advances it at once."""

    def __init__(self):
        self.now = 1000.0

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        assert seconds > 0
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(producer, "time", fake)
    return fake


def capture(clock=None):
    """A send function for replay() and the list of (topic, key, value, clock time) it was given."""
    sent = []

    def send(topic, value, key):
        sent.append((topic, key, value, clock.now if clock else None))
    return sent, send


def transactions(times, customers=None, fraud=None):
    tx = np.zeros(len(times), dtype=DATA_DTYPE)
    tx["tx_id"] = np.arange(100, 100 + len(times))
    tx["tx_time"] = times
    tx["customer_id"] = customers if customers is not None else np.arange(len(times)) % 3
    tx["terminal_id"] = 7
    tx["amount"] = 12.5
    tx["fraud"] = fraud if fraud is not None else np.arange(len(times)) % 2
    return tx


def kinds(sent):
    return [(topic, json.loads(value)["tx_id"]) for topic, _, value, _ in sent]


def test_replaying_a_simulated_file_sends_exactly_what_produce_sends(tmp_path, monkeypatch):
    """Same records, same keys, same order, labels at the same points: `produce` on seed 2 against
    the replay of `simulate --seed 2 --out days.csv` (a smaller simulator for both)."""
    n, delay_days = 3000, 0.05
    write(tmp_path / "days.csv", Simulator(SMALL(seed=2)).dataset(2))
    sent, send = capture()
    replay(load(tmp_path / "days.csv").transactions, send, TOPICS, Pacer(0, 0), int(delay_days * DAY))

    produced = []

    class FakeSink:
        def __init__(self, *args, **kwargs):
            pass

        def send(self, topic, value, key=None, **kwargs):
            assert not kwargs, "the producer sends no headers, partitions or timestamps"
            produced.append((topic, key, value))

        def poll(self):
            pass

        def close(self, timeout=None):
            pass

    monkeypatch.setattr(producer, "Sink", FakeSink)
    monkeypatch.setattr(producer, "SimulatorParams", SMALL)
    monkeypatch.setattr(producer, "serve", lambda *args, **kwargs: None)
    monkeypatch.setattr(producer.signal, "signal", lambda *args: None)
    producer.run(KafkaConfig(), TOPICS, ProducerConfig(rate=0, label_delay_days=delay_days, seed=2, resume=0,
                                                       max_messages=n))
    assert sum(topic == "tx" for topic, _, _ in produced) == n
    assert sum(topic == "labels" for topic, _, _ in produced) > 500, "labels are interleaved"
    assert [s[:3] for s in sent[:len(produced)]] == produced


def test_event_time_order_card_keys_and_each_label_after_its_delay(tmp_path):
    rng = np.random.default_rng(1)
    times = rng.integers(0, 5 * DAY, size=500)
    tx = transactions(times, customers=rng.integers(0, 40, size=500), fraud=rng.integers(0, 2, size=500))
    tx["tx_id"] = rng.permutation(10**12 + np.arange(500))  # a user's ids: large, in no particular order
    write(tmp_path / "mine.csv", tx)  # out of time order: load sorts it
    data = load(tmp_path / "mine.csv")
    assert data.reordered > 0
    delay = DAY // 2
    sent, send = capture()
    assert replay(data.transactions, send, TOPICS, Pacer(0, 0), delay) == {"transactions": 500, "labels": 500}

    sent_tx = [(i, decode(value, max_future=10**10)) for i, (topic, _, value, _) in enumerate(sent) if topic == "tx"]
    assert [t.tx_time for _, t in sent_tx] == sorted(times.tolist()), "event-time order"
    assert sorted(t.tx_id for _, t in sent_tx) == sorted(tx["tx_id"].tolist()), "every transaction once"
    by_id = {int(r["tx_id"]): r for r in tx}
    for _, t in sent_tx:
        row = by_id[t.tx_id]
        assert (t.customer_id, t.terminal_id, t.amount) == (row["customer_id"], row["terminal_id"], row["amount"])
    for i, (topic, key, value, _) in enumerate(sent):
        assert key == str(json.loads(value)["customer_id"]).encode(), "keyed by card, as the producer keys"
        if topic != "labels":
            continue
        label = decode_label(value, max_future=10**10)
        assert label.fraud == by_id[label.tx_id]["fraud"]
        due = label.tx_time + delay
        own = next(j for j, t in sent_tx if t.tx_id == label.tx_id)
        before = [t.tx_time for j, t in sent_tx if j < i]
        after = [t.tx_time for j, t in sent_tx if j > i]
        assert own < i, "a label follows its transaction"
        assert before[-1] < due, "not sent before its delay has passed on the file's clock"
        assert not after or after[0] >= due, "sent right before the first transaction at or after its due time"


def test_labels_wait_for_their_delay_and_the_rest_follow_the_last_transaction(clock):
    tx = transactions([0, 100, 200, 1000], fraud=[1, 0, 1, 0])
    sent, send = capture(clock)
    replay(tx, send, TOPICS, Pacer(0, speedup=10), label_delay=150)
    assert kinds(sent) == [("tx", 100), ("tx", 101), ("labels", 100), ("tx", 102), ("labels", 101),
                           ("labels", 102), ("tx", 103), ("labels", 103)]
    start = sent[0][3]
    # Paced on the file's clock / 10; a label goes when the clock reaches the transaction it precedes.
    assert [round(t - start, 6) for *_, t in sent] == [0, 10, 20, 20, 100, 100, 100, 100]
    assert [json.loads(v)["fraud"] for topic, _, v, _ in sent if topic == "labels"] == [1, 0, 1, 0]


def test_a_file_without_labels_sends_none(clock):
    sent, send = capture(clock)
    assert replay(transactions([0, 10 * DAY]), send, TOPICS, Pacer(0, 0), DAY, with_labels=False) == \
        {"transactions": 2, "labels": 0}
    assert kinds(sent) == [("tx", 100), ("tx", 101)]


def test_rate_spaces_transactions_evenly_whatever_their_times(clock):
    tx = transactions([0, 0, 5, 86000, 86001, 90000], fraud=[0] * 6)
    sent, send = capture(clock)
    replay(tx, send, TOPICS, Pacer(rate=4, speedup=0), label_delay=7 * DAY)
    tx_times = [t for topic, *_, t in sent if topic == "tx"]
    assert tx_times == pytest.approx([tx_times[0] + k / 4 for k in range(6)])


def test_speedup_follows_the_files_own_pace(clock):
    times = [3600, 3660, 7200, 7200, 90000]
    sent, send = capture(clock)
    replay(transactions(times, fraud=[0] * 5), send, TOPICS, Pacer(0, speedup=60), label_delay=7 * DAY)
    tx_times = [t for topic, *_, t in sent if topic == "tx"]
    assert [t - tx_times[0] for t in tx_times] == pytest.approx([(s - 3600) / 60 for s in times])


def test_stopping_ends_the_replay_between_transactions():
    sent, send = capture()
    calls = []
    result = replay(transactions([0, 1, 2, 3]), send, TOPICS, Pacer(0, 0), DAY,
                    stopping=lambda: calls.append(1) or len(calls) > 2)
    assert result == {"transactions": 2, "labels": 0}
    assert kinds(sent) == [("tx", 100), ("tx", 101)]


def test_the_replay_command_reads_a_mapped_file_and_reports(tmp_path, monkeypatch, capfd):
    sends = []

    class FakeSink:
        def __init__(self, kafka, client_id, **kwargs):
            assert kafka.bootstrap_servers == "broker:9093" and client_id == "fraud-replay"

        def send(self, topic, value, key=None):
            sends.append((topic, key, value))

        def poll(self):
            pass

        def flush(self, timeout=None):
            return []

    monkeypatch.setattr(sink, "Sink", FakeSink)
    monkeypatch.setattr("signal.signal", lambda *args: None)
    (tmp_path / "mine.csv").write_text("id,ts,card,pos,eur,is_fraud\n"
                                       "1,2018-05-01 10:00:00,42,7,10.0,0\n2,2018-05-01 09:00:00,43,7,99.5,1\n")
    assert cli.main(["replay", "--data", str(tmp_path / "mine.csv"), "--bootstrap-servers", "broker:9093",
                     "--transactions", "my-tx", "--labels", "my-labels", "--label-delay-days", "7",
                     "--columns", "TRANSACTION_ID=id,TX_DATETIME=ts,CUSTOMER_ID=card,TERMINAL_ID=pos,"
                                  "TX_AMOUNT=eur,TX_FRAUD=is_fraud"]) == 0
    out, err = capfd.readouterr()
    summary = json.loads(out)
    assert (summary["transactions"], summary["labels"], summary["reordered"], summary["send_errors"]) == (2, 2, 1, 0)
    assert "1 rows are out of time order" in err
    assert [(topic, key, json.loads(value)["tx_id"]) for topic, key, value in sends] == [
        ("my-tx", b"43", 2), ("my-tx", b"42", 1), ("my-labels", b"43", 2), ("my-labels", b"42", 1)]


def test_the_replay_command_refuses_a_bad_file_before_connecting(tmp_path, monkeypatch, capfd):
    monkeypatch.setattr(sink, "Sink", lambda *args, **kwargs: pytest.fail("no Kafka for a bad file"))
    (tmp_path / "bad.csv").write_text("TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT\n"
                                      "1,2017-12-31 10:00:00,42,7,10.0\n")
    assert cli.main(["replay", "--data", str(tmp_path / "bad.csv")]) == 2
    assert "row 1 (line 2), column TX_DATETIME: 2017-12-31 10:00:00: the scorer refuses times before" in \
        capfd.readouterr().err
