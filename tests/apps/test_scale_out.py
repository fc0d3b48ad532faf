"""Scale-out on the real broker: N scorers score exactly like one, through kills and rebalances.

One recorded stream (6 partitions, labels one simulated day late, so terminal windows and risks
fill up within the stream) is scored again and again by fresh consumer groups, each with its own
changelog and scores topic, and every run is compared to a single scorer, transaction by
transaction.
"""
import json
import signal
import subprocess
import time

import pytest
from kafka_helpers import metric, produce, read_all, scorer, stop

from conftest import FRAUDSTREAM, create_topics, delete_topics, topic_names

pytestmark = pytest.mark.e2e

N_TX = 50_000
DELAY = "--label-delay-days=1"  # producer and scorers: labels feed terminal risk within the stream


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A model trained with the stream's label delay: the scorer refuses one trained with another."""
    out = tmp_path_factory.mktemp("model-delay-1") / "artifact"
    subprocess.run([FRAUDSTREAM, "train", "--days", "21", DELAY, "--out", str(out)], check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def stream(platform):
    names = topic_names("transactions", "labels", "dlq")
    create_topics(names, 6)
    producer = produce(names | {"scores": "unused", "alerts": "unused"}, N_TX, 18300, extra=[DELAY])
    assert producer.wait(timeout=600) == 0, producer.stderr.read().decode()[-2000:]
    yield names
    delete_topics(names)


def fresh_run(stream):
    """Topics of one scoring run: the shared input, its own changelog and outputs."""
    names = topic_names("scores", "alerts", "changelog")
    create_topics(names, 6)
    return stream | names


def start(topics, model, port, changelog=True):
    extra = [DELAY] + ([] if changelog else ["--changelog="])
    return scorer(topics, model, port, f"g-{topics['scores']}", max_poll_records=500, extra=extra)


def scores_of(topics, timeout=300):
    """tx_id -> every score record for it, once all N_TX transactions have one."""
    out = {}
    for record in read_all(topics["scores"], expect=N_TX, timeout=timeout):
        value = json.loads(record.value)
        out.setdefault(value["tx_id"], []).append(value)
    return out


def run(stream, model, n, changelog=True):
    topics = fresh_run(stream)
    procs = [start(topics, model, 18310 + i, changelog) for i in range(n)]
    try:
        return scores_of(topics)
    finally:
        for proc in procs:
            stop(proc)
        delete_topics({k: topics[k] for k in ("scores", "alerts", "changelog")})


@pytest.fixture(scope="module")
def reference(stream, model):
    scores = run(stream, model, 1)
    assert len(scores) == N_TX
    return scores


def differences(scores, reference):
    """Transactions missing, and those with a score (any copy) further than 1e-9 from the reference."""
    missing = set(reference) - set(scores)
    differ = {tx for tx, copies in scores.items()
              if any(abs(c["score"] - reference[tx][0]["score"]) > 1e-9 for c in copies)}
    return missing, differ


def test_three_scorers_score_exactly_like_one(stream, model, reference):
    assert all(c["state_complete"] for copies in reference.values() for c in copies)
    three = run(stream, model, 3)
    missing, differ = differences(three, reference)
    assert not missing, f"{len(missing)} transactions never scored"
    assert not differ, f"{len(differ)} of {N_TX} scores differ from the single scorer's"
    assert all(c["state_complete"] for copies in three.values() for c in copies)


def test_without_the_shared_state_three_scorers_disagree(stream, model, reference):
    """The check above can fail: the in-memory design gives different scores with 3 scorers."""
    three = run(stream, model, 3, changelog=False)
    _, differ = differences(three, reference)
    assert len(differ) > 0.01 * N_TX, f"only {len(differ)} scores differ: the stream does not exercise the terminals"


def test_killed_scorer_restarts_with_the_same_state(stream, model, reference):
    """SIGKILL mid-stream, then 3 scorers (the victim's port again) take over from its commits.

    The victim runs alone until it has scored part of the stream: with 3 scorers from the start,
    they finish 50,000 transactions within their first rebalances, before any kill."""
    topics = fresh_run(stream)
    victim = start(topics, model, 18320)
    procs = []
    try:
        deadline = time.monotonic() + 120
        while metric(18320, "fraudstream_scorer_transactions_total") < 3000 and time.monotonic() < deadline:
            time.sleep(0.02)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        killed_at = scored_so_far(topics)
        assert 0 < killed_at < N_TX, f"{killed_at} scored when killed: not mid-stream"
        procs = [start(topics, model, 18320 + i) for i in range(3)]  # empty memory: restore from the changelog
        scores = scores_of(topics)
        restored = sum(metric(18320 + i, 'fraudstream_scorer_restored_records_total{store="customers"}')
                       for i in range(3))
        missing, differ = differences(scores, reference)
        assert not missing, f"{len(missing)} transactions lost"
        assert not differ, f"{len(differ)} scores differ after the restart"
        assert restored > 0, "the scorers rebuilt the victim's cards from the changelog"
    finally:
        for proc in procs:
            stop(proc)
        delete_topics({k: topics[k] for k in ("scores", "alerts", "changelog")})


def scored_so_far(topics):
    """Distinct transactions scored so far, read from the scores topic."""
    return len({json.loads(r.value)["tx_id"] for r in read_all(topics["scores"], timeout=5)})


def test_added_scorer_rebalances_without_changing_a_score(stream, model, reference):
    """A second scorer joins mid-stream. The first is paused (SIGSTOP) once it has scored part of
    the stream, until the second has restored the shared state: else the first finishes the
    50,000 transactions before anyone joins."""
    topics = fresh_run(stream)
    procs = [start(topics, model, 18330)]
    try:
        deadline = time.monotonic() + 120
        while metric(18330, "fraudstream_scorer_transactions_total") < 1000 and time.monotonic() < deadline:
            time.sleep(0.02)
        procs[0].send_signal(signal.SIGSTOP)
        paused_at = scored_so_far(topics)
        procs.append(start(topics, model, 18331))  # joins mid-stream: the group rebalances
        deadline = time.monotonic() + 120
        while (metric(18331, 'fraudstream_scorer_restored_records_total{store="history"}') <= 0
               and time.monotonic() < deadline):
            time.sleep(0.2)
        procs[0].send_signal(signal.SIGCONT)
        assert 0 < paused_at < N_TX, f"{paused_at} scored when the second scorer joined: not mid-stream"
        scores = scores_of(topics)
        missing, differ = differences(scores, reference)
        assert not missing, f"{len(missing)} transactions lost in the rebalance"
        assert not differ, f"{len(differ)} scores differ after the rebalance"
        replayed = metric(18330, 'fraudstream_scorer_restored_records_total{store="customers"}')
        assert replayed > 0, "the first scorer gave up partitions and rebuilt the cards of those it kept"
    finally:
        procs[0].send_signal(signal.SIGCONT)  # a stopped process cannot handle SIGTERM
        for proc in procs:
            stop(proc)
        delete_topics({k: topics[k] for k in ("scores", "alerts", "changelog")})
