"""Pure parts of the scorer: online precision/recall from delayed labels, batch histograms."""
import math

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest

from fraudstream.batch_metrics import BatchHistogram
from fraudstream.scorer import OnlineQuality
from fraudstream.state import EVENT, unseen


def test_online_precision_and_recall_from_late_labels():
    q = OnlineQuality(window=4)
    for tx_id, flagged in [(1, True), (2, True), (3, False), (4, False), (5, True)]:
        q.scored(tx_id, flagged)
    assert math.isnan(q.values()[0])  # no label yet
    for tx_id, fraud in [(1, True), (2, False), (3, True), (4, False), (99, True)]:
        q.labelled(tx_id, fraud)  # 99 was never scored here: ignored
    precision, recall, n = q.values()
    assert (precision, recall, n) == (0.5, 0.5, 4)
    q.labelled(5, True)  # the window keeps the last 4: (2,F) (3,T) (4,F) (5,T)
    assert q.values() == (0.5, 0.5, 4)


def test_online_quality_forgets_the_oldest_unlabelled():
    q = OnlineQuality(window=10, remember=3)
    for tx_id in range(5):
        q.scored(tx_id, True)
    assert list(q.flagged) == [2, 3, 4]


def test_batch_histogram_matches_prometheus_bucket_semantics():
    registry = CollectorRegistry()
    hist = BatchHistogram("x_seconds", "test", buckets=(0.1, 1.0), registry=registry)
    hist.observe_many(np.array([0.05, 0.1, 0.5, 1.0, 7.0]))
    hist.observe_many([])
    text = generate_latest(registry).decode()
    assert 'x_seconds_bucket{le="0.1"} 2.0' in text  # le is inclusive
    assert 'x_seconds_bucket{le="1.0"} 4.0' in text
    assert 'x_seconds_bucket{le="+Inf"} 5.0' in text
    assert "x_seconds_count 5.0" in text and "x_seconds_sum 8.65" in text


def test_changelog_events_count_once_across_and_within_records():
    events = np.zeros(6, EVENT)
    events["offset"] = [3, 4, 5, 4, 5, 6]  # a record that carries offsets 4 and 5 twice
    events["tx_id"] = [30, 40, 50, 41, 51, 60]
    kept = unseen(events, done=3)
    assert kept["offset"].tolist() == [4, 5, 6]
    assert kept["tx_id"].tolist() == [40, 50, 60], "the first copy is kept, in order"
    assert unseen(events[:3], done=5).size == 0
