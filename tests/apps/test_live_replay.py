"""`fraudstream replay` through the live pipeline: every transaction of a file scored, once.

Issue "Your own transactions: train, evaluate and replay them", part 3. A file written by
`simulate --out` (the Handbook's CSV, as a user would bring it) is replayed flat out to fresh
topics on the real local broker, its labels 0.05 simulated days after their transactions; then
a scorer scores it as it scores live traffic. The unit tests (apps/tests/test_replay.py) show
that the records, keys and label timing are the producer's.
"""
import csv
import json
import time

import pytest
from kafka.partitioner.default import murmur2
from kafka_helpers import metric, read_all, read_to_end, scorer, stop, topic_flags

from conftest import FRAUDSTREAM, run

pytestmark = pytest.mark.e2e

PORT = 18500


def test_a_replayed_file_is_scored_once_per_transaction(topics, model, tmp_path):
    data = tmp_path / "history.csv"
    run([FRAUDSTREAM, "simulate", "--days", "1", "--seed", "7", "--out", str(data)], timeout=600)
    with open(data, newline="") as f:
        ids = sorted(int(row["TRANSACTION_ID"]) for row in csv.DictReader(f))
    n = len(ids)
    assert n > 5000

    replay = run([FRAUDSTREAM, "replay", f"--data={data}", *topic_flags(topics), "--rate=0",
                  "--label-delay-days=0.05"], timeout=600)
    summary = json.loads(replay.stdout)
    assert (summary["transactions"], summary["labels"], summary["send_errors"]) == (n, n, 0), replay.stderr[-2000:]
    sent = read_to_end(topics["transactions"])
    assert len(sent) == n
    wrong = [r for r in sent if r.key != str(json.loads(r.value)["customer_id"]).encode()
             or r.partition != (murmur2(r.key) & 0x7FFFFFFF) % 3]
    assert not wrong, f"{len(wrong)} transactions not keyed by card or on another partition than murmur2(key) % 3"
    assert len(read_to_end(topics["labels"])) == n

    proc = scorer(topics, model, PORT, f"g-{topics['scores']}")
    try:
        read_all(topics["scores"], expect=n, timeout=180)
        time.sleep(3)  # anything scored twice would have arrived by now
        scored = [json.loads(r.value)["tx_id"] for r in read_to_end(topics["scores"])]
        missing, twice = len(set(ids) - set(scored)), len(scored) - len(set(scored))
        assert sorted(scored) == ids, f"{missing} transactions never scored, {twice} scored more than once"
        assert metric(PORT, "fraudstream_scorer_transactions_total") == n
        assert not read_to_end(topics["dlq"]), "the scorer accepts every replayed record"
    finally:
        assert stop(proc) == 0, "SIGTERM must end the scorer cleanly"
