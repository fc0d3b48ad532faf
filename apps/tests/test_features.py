"""Streaming features equal a brute-force reference, in any event order and after a restore; memory is bounded."""
import math

import numpy as np
import pytest

from fraudstream.features import DAY, FEATURES, OUTLIER_RATIO, Customers, FeatureState, History, assemble, featurize
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


def test_history_is_order_independent(tx):
    """Terminal events applied in any order (as from N partitions) give the same features."""
    known = featurize(FeatureState(7), tx, with_labels=True)
    customers, history = Customers(), History(7)
    for row in np.random.default_rng(1).permutation(tx):  # every event first, shuffled
        history.add_transaction(int(row["terminal_id"]), int(row["tx_time"]))
        if row["fraud"]:
            history.add_fraud(int(row["terminal_id"]), int(row["customer_id"]), int(row["tx_time"]))
    rows = []
    for row in tx:
        t, cents = int(row["tx_time"]), round(float(row["amount"]) * 100)
        customer, extra, _ = customers.update(int(row["customer_id"]), t, cents)
        rows.append(assemble(cents, t, customer, extra, history.terminal(int(row["terminal_id"]), t),
                             history.known_fraud(int(row["customer_id"]), t)))
    assert np.abs(np.array(rows) - known).max() <= 1e-9


def test_customer_replay_of_recorded_outliers_restores_the_same_state(tx):
    """A restore replays (time, cents, outlier) and then continues exactly as if never stopped."""
    one, restored, log = Customers(), Customers(), []
    half = tx.size // 2
    for i, row in enumerate(tx):
        args = int(row["customer_id"]), int(row["tx_time"]), round(float(row["amount"]) * 100)
        expected = one.update(*args)
        if i < half:
            log.append((*args, expected[2]))
            continue
        if i == half:
            for c, t, cents, outlier in log:
                restored.update(c, t, cents, outlier)
        assert restored.update(*args) == expected


def test_state_stays_bounded_on_a_long_stream():
    state = FeatureState(7)
    for i in range(20000):  # one card, one terminal, a transaction per hour for 833 days
        state.update(i, i * 3600, 1, 1, 20.0, fraud=0)
    size = state.size()
    assert size["customer_events"] <= 2 * 30 * 24 + 300
    assert size["terminal_events"] <= 2 * 37 * 24 + 300
