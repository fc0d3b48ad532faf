"""Reliability on the real local broker: broker restart, scorer SIGKILL, steady poison.

Each test prints (and writes to out/reliability.json) lost, duplicated and DLQ counts.
"""
import json
import signal
import threading
import time
from collections import Counter

import pytest
import requests
from kafka import KafkaProducer
from kafka_helpers import (
    BOOTSTRAP,
    LOGS,
    group_offsets,
    metric,
    produce,
    read_all,
    read_to_end,
    scored_ids,
    scored_past_commits,
    scorer,
    source_positions,
    stop,
    supervisorctl,
)

from conftest import ROOT

pytestmark = pytest.mark.e2e
REPORT = ROOT / "out/reliability.json"


def report(name, **counts):
    REPORT.parent.mkdir(exist_ok=True)
    data = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    data[name] = counts
    REPORT.write_text(json.dumps(data, indent=2) + "\n")
    print(f"{name}: {counts}")


def test_broker_restart_mid_stream_loses_nothing(topics, model):
    n = 15000
    producer = produce(topics, n, 18200, rate=1500)
    proc = scorer(topics, model, 18201, f"g-{topics['scores']}")
    try:
        time.sleep(5)
        supervisorctl("restart", "kafka")  # the broker goes away for several seconds, mid-stream
        assert producer.wait(timeout=240) == 0, producer.stderr.read().decode()[-2000:]
        ids = scored_ids(topics, n, timeout=240)
        lost, dup = n - len(set(ids)), len(ids) - len(set(ids))
        report("broker_restart", produced=n, lost=lost, duplicated=dup, scorer_alive=proc.poll() is None)
        assert lost == 0
        assert proc.poll() is None, "the scorer must ride out a broker restart"
    finally:
        stop(proc)


def test_a_scorer_started_before_the_broker_waits_for_it(topics, model):
    """Start-up order is not a crash: a scorer whose broker is down waits, unready and saying why,
    and scores everything once the broker is back."""
    n, port = 3000, 18241
    supervisorctl("stop", "kafka")
    try:
        proc = scorer(topics, model, port, f"g-{topics['scores']}")
        reason, deadline = "", time.monotonic() + 60
        while "waiting for Kafka" not in reason and time.monotonic() < deadline and proc.poll() is None:
            try:
                reason = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).text
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        time.sleep(12)  # past the first librdkafka timeouts (10 s)
        alive = proc.poll() is None
    finally:
        supervisorctl("start", "kafka")
    try:
        assert alive, f"the scorer died waiting for the broker:\n{(LOGS / f'scorer-{port}.log').read_text()[-3000:]}"
        assert reason.startswith("not ready: waiting for Kafka"), reason
        producer = produce(topics, n, 18240)
        assert producer.wait(timeout=240) == 0, producer.stderr.read().decode()[-2000:]
        ids = scored_ids(topics, n)
        report("scorer_before_broker", produced=n, lost=n - len(set(ids)), scorer_alive=proc.poll() is None)
        assert len(set(ids)) == n and proc.poll() is None, (LOGS / f"scorer-{port}.log").read_text()[-3000:]
    finally:
        stop(proc)


def test_sigkill_scorer_three_times_loses_nothing_and_rescores_only_the_uncommitted(topics, model):
    """At-least-once across three SIGKILLs: every transaction is scored, and a transaction is scored
    twice only if a killed scorer had scored it past the offsets committed at its death. (Commits
    are asynchronous: how far past depends on the machine's speed, not on the batch size alone.)"""
    n, batch = 20000, 200
    producer = produce(topics, n, 18202)
    assert producer.wait(timeout=180) == 0
    source = source_positions(topics["transactions"], n)
    group = f"g-{topics['scores']}"
    uncommitted = set()  # what the killed scorers had scored past their commits
    for port in (18203, 18204, 18205):  # kill it mid-stream three times, then let it finish
        proc = scorer(topics, model, port, group, max_poll_records=batch)
        deadline = time.monotonic() + 60
        start = max(metric(port, "fraudstream_scorer_transactions_total"), 0)
        while metric(port, "fraudstream_scorer_transactions_total") < start + 3000 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        uncommitted |= scored_past_commits(topics["scores"], group, source)
    last = scorer(topics, model, 18206, group, max_poll_records=batch)
    try:
        ids = scored_ids(topics, n)
        again = {tx for tx, count in Counter(ids).items() if count > 1}
        lost, dup = n - len(set(ids)), len(ids) - len(set(ids))
        report("sigkill_scorer", produced=n, kills=3, lost=lost, duplicated=dup, batch=batch,
               scored_past_commits_at_kills=len(uncommitted))
        assert lost == 0
        assert again <= uncommitted, f"{len(again - uncommitted)} transactions behind the committed offsets scored again"
    finally:
        stop(last)


def test_steady_poison_goes_to_the_dlq_while_scoring_continues(topics, model):
    n, poison_every = 6000, 20
    proc = scorer(topics, model, 18207, f"g-{topics['scores']}")
    sent_poison = 0
    try:
        producer = produce(topics, n, 18208, rate=1000)
        bad = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
        stop_poison = threading.Event()

        def poison():
            nonlocal sent_poison
            while not stop_poison.is_set():
                bad.send(topics["transactions"], b'{"tx_id": 1, "amount": "lots"', key=b"x")
                sent_poison += 1
                time.sleep(poison_every / 1000)

        thread = threading.Thread(target=poison)
        thread.start()
        assert producer.wait(timeout=120) == 0
        stop_poison.set()
        thread.join()
        bad.flush()
        ids = scored_ids(topics, n)
        dlq = read_all(topics["dlq"], expect=sent_poison, headers=True, timeout=60)
        lost = n - len(set(ids))
        report("steady_poison", produced=n, poison=sent_poison, dlq=len(dlq), lost=lost,
               scorer_alive=proc.poll() is None)
        assert lost == 0 and len(dlq) == sent_poison and proc.poll() is None
        assert metric(18207, "fraudstream_scorer_dlq_total") == sent_poison
    finally:
        stop(proc)


def test_sigterm_during_a_broker_outage_commits_nothing_unacknowledged(topics, model):
    """The broker goes away mid-stream; the scorer, stuck waiting for acknowledgements, reports
    itself unready and not live, then gets SIGTERM. Nothing it commits may lie past a
    transaction whose score Kafka did not acknowledge, and a new scorer then loses nothing."""
    n, port, group = 20000, 18221, f"g-{topics['scores']}"
    producer = produce(topics, n, 18220, rate=1000)
    proc = scorer(topics, model, port, group, extra=["--stall-seconds=5"])
    deadline = time.monotonic() + 60
    while metric(port, "fraudstream_scorer_transactions_total") < 3000 and time.monotonic() < deadline:
        time.sleep(0.1)
    supervisorctl("stop", "kafka")
    try:
        probes, deadline = {}, time.monotonic() + 90
        while time.monotonic() < deadline and probes != {"readyz": 503, "healthz": 503}:
            probes = {p: requests.get(f"http://127.0.0.1:{port}/{p}", timeout=5).status_code
                      for p in ("readyz", "healthz")}
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        rc = proc.wait(timeout=90)
        stop_seconds = time.monotonic() - started
    finally:
        supervisorctl("start", "kafka")
    assert producer.wait(timeout=240) == 0, producer.stderr.read().decode()[-2000:]
    committed = group_offsets(group)
    scored = {json.loads(r.value)["tx_id"] for r in read_to_end(topics["scores"])}
    ahead = [(r.partition, r.offset) for r in read_all(topics["transactions"], expect=n)
             if r.offset < committed.get(r.partition, 0) and json.loads(r.value)["tx_id"] not in scored]
    last = scorer(topics, model, 18222, group)
    try:
        ids = scored_ids(topics, n)
        lost, dup = n - len(set(ids)), len(ids) - len(set(ids))
        report("sigterm_in_broker_outage", produced=n, lost=lost, duplicated=dup, committed_unscored=len(ahead),
               probes_during_outage=probes, exit_code=rc, stop_seconds=round(stop_seconds, 1))
        assert probes == {"readyz": 503, "healthz": 503}, "an unacknowledged wait must show on both probes"
        assert rc == 0 and not ahead, f"committed past {len(ahead)} unacknowledged scores: {ahead[:5]}"
        # Seen once in 2026-12 (not reproduced since): the new scorer scored nothing for 180 s after
        # the restart. What it says about itself, for whoever sees it next:
        assert lost == 0, (f"scorer metrics: {requests.get('http://127.0.0.1:18222/metrics', timeout=5).text[-3000:]}\n"
                           f"log: {(LOGS / 'scorer-18222.log').read_text()[-3000:]}")
    finally:
        stop(last)


@pytest.mark.parametrize("missing, port", [("transactions", 18251), ("changelog", 18252)])
def test_a_missing_topic_stops_the_scorer_with_its_name(topics, model, missing, port):
    """Not a wait: a topic that does not exist is a deployment error, named at once."""
    absent = {**topics, missing: f"{topics[missing]}-absent"}
    proc = scorer(absent, model, port, f"g-{topics['scores']}")
    rc = proc.wait(timeout=120)
    log = (LOGS / f"scorer-{port}.log").read_text()
    assert rc != 0 and f"topic '{absent[missing]}' does not exist" in log, log[-2000:]
