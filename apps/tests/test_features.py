"""Streaming features equal a brute-force batch reference, labels may arrive late, memory is bounded."""
import math

import numpy as np
import pytest

from fraudstream.features import DAY, FEATURES, OUTLIER_RATIO, FeatureState, featurize
from fraudstream.simulator import Simulator, SimulatorParams

DELAY = 7 * DAY


@pytest.fixture(scope="module")
def tx():
    return Simulator(SimulatorParams(n_customers=300, n_terminals=150, seed=5)).dataset(50)


def reference(tx):
    """Every feature recomputed from scratch over all earlier transactions (O(n^2))."""
    rows, outlier = [], {}
    t_all, c_all, term_all = tx["tx_time"], tx["customer_id"], tx["terminal_id"]
    cents_all, fraud_all = np.rint(tx["amount"] * 100).astype(np.int64), tx["fraud"]
    for i in range(tx.size):
        t, c, term, cents = int(t_all[i]), c_all[i], term_all[i], int(cents_all[i])
        mine = np.flatnonzero(c_all[: i + 1] == c)
        row = [cents / 100, float((6 + t // DAY) % 7 >= 5), float(t % DAY < 7 * 3600)]
        for w in (1, 7, 30):
            row.append(float(np.sum(t_all[mine] > t - w * DAY)))
        for w in (1, 7, 30):
            sel = mine[t_all[mine] > t - w * DAY]
            row.append(cents_all[sel].sum() / sel.size / 100)
        at = np.flatnonzero(term_all[:i] == term)
        for w in (1, 7, 30):
            row.append(float(np.sum((t_all[at] > t - DELAY - w * DAY) & (t_all[at] <= t - DELAY))))
        for w in (1, 7, 30):
            sel = at[(t_all[at] > t - DELAY - w * DAY) & (t_all[at] <= t - DELAY)]
            row.append(fraud_all[sel].sum() / sel.size if sel.size else 0.0)
        prev = [j for j in mine[:-1] if t_all[j] > t - 30 * DAY and not outlier[j]]
        if prev:
            a = cents_all[prev]
            mean = a.sum() / a.size
            var = (a * a).sum() / a.size - mean * mean
            ratio = cents / mean
            z = (cents - mean) / math.sqrt(var) if var > 0 else 0.0
        else:
            ratio = z = 0.0
        outlier[i] = len(prev) >= 3 and ratio > OUTLIER_RATIO
        recent = [j for j in mine if t_all[j] > t - 7 * DAY and outlier[j]]
        known = [j for j in mine[:-1] if fraud_all[j] and t - DELAY - 30 * DAY < t_all[j] <= t - DELAY]
        rows.append(row + [ratio, z, float(len(recent)), float(len(known))])
    return np.array(rows)


def test_streaming_equals_brute_force(tx):
    streaming = featurize(FeatureState(7), tx, with_labels=True)
    expected = reference(tx)
    assert streaming.shape == (tx.size, len(FEATURES))
    diff = np.abs(streaming - expected).max(axis=0)
    assert diff.max() <= 1e-9, dict(zip(FEATURES, diff, strict=True))
    # The features are not trivially zero: windows and risks carry signal.
    assert expected[:, FEATURES.index("terminal_risk_30d")].max() > 0


def test_late_labels_give_the_same_features(tx):
    known = featurize(FeatureState(7), tx, with_labels=True)
    state = FeatureState(7)
    late = np.empty_like(known)
    due = 0
    for i, row in enumerate(tx):
        # Deliver each label exactly when its transaction is older than the delay.
        while due < i and tx["tx_time"][due] <= row["tx_time"] - DELAY:
            assert state.add_label(int(tx["tx_id"][due]), int(tx["fraud"][due]))
            due += 1
        late[i] = state.update(int(row["tx_id"]), int(row["tx_time"]), int(row["customer_id"]),
                               int(row["terminal_id"]), float(row["amount"]))
    assert np.abs(late - known).max() <= 1e-9


def test_labels_arriving_after_the_window_moved_are_still_counted():
    state = FeatureState(7)
    state.update(1, 0, 1, 9, 10.0)
    state.update(2, 8 * DAY, 2, 9, 10.0)  # tx 1 is now older than the delay, label still unknown
    assert state.update(3, 8 * DAY + 1, 3, 9, 10.0)[FEATURES.index("terminal_risk_30d")] == 0
    state.add_label(1, 1)
    assert state.update(4, 8 * DAY + 2, 4, 9, 10.0)[FEATURES.index("terminal_risk_30d")] == pytest.approx(1 / 1)


def test_state_stays_bounded_on_a_long_stream():
    state = FeatureState(7)
    for i in range(20000):  # one card, one terminal, a transaction per hour for 833 days
        state.update(i, i * 3600, 1, 1, 20.0, fraud=0)
    size = state.size()
    assert size["customer_events"] <= 2 * 30 * 24 + 300
    assert size["terminal_events"] <= 2 * 37 * 24 + 300


def test_unknown_label_is_reported():
    assert FeatureState().add_label(12345, 1) is False
