"""The simulator follows the Handbook's procedure: statistics on a small run, with tolerances."""
import math

import numpy as np
import pytest

from fraudstream.simulator import DAY, Simulator, SimulatorParams

SMALL = SimulatorParams(n_customers=1000, n_terminals=2000, seed=3)


@pytest.fixture(scope="module")
def sim():
    return Simulator(SMALL)


@pytest.fixture(scope="module")
def tx(sim):
    return sim.dataset(60)


def test_profiles_follow_the_published_distributions(sim):
    assert 0 <= sim.customer_xy.min() and sim.customer_xy.max() <= 100
    assert sim.mean_amount.min() >= 5 and sim.mean_amount.max() <= 100
    assert np.allclose(sim.std_amount, sim.mean_amount / 2)
    assert abs(sim.mean_tx_per_day.mean() - 2.0) < 0.15  # U(0, 4)
    # Terminals within radius 5 on a 100x100 square: pi * 25 / 10000 of them, fewer near edges.
    reach = np.mean([len(t) for t in sim.available_terminals]) / SMALL.n_terminals
    assert 0.0065 < reach < 0.0080


def test_daily_volume_time_of_day_and_amounts(sim, tx):
    per_customer_day = tx.size / SMALL.n_customers / 60
    # Poisson(U(0,4)) per day, minus the times that fall outside the day (about 3%).
    assert 1.80 < per_customer_day < 2.05
    seconds = tx["tx_time"] % DAY
    # N(43200 s, 20000 s) kept inside the day: truncated at +-2.16 sigma, so the std shrinks to ~18200 s.
    a = 43200 / 20000
    phi = math.exp(-a * a / 2) / math.sqrt(2 * math.pi)
    kept = math.erf(a / math.sqrt(2))
    expected_std = 20000 * math.sqrt(1 - 2 * a * phi / kept)
    assert abs(seconds.mean() - 43200) < 600 and abs(seconds.std() - expected_std) < 500
    genuine = tx[tx["scenario"] != 3]  # scenario 3 multiplies amounts
    assert (genuine["amount"] >= 0).all()
    # Negative draws are redrawn from U(0, 2 mean): the mean amount is ~1.027 x the profile mean.
    assert abs(genuine["amount"].mean() / sim.mean_amount[genuine["customer_id"]].mean() - 1.027) < 0.01


def test_fraud_scenarios(sim, tx):
    assert (tx["fraud"][tx["amount"] > 220] == 1).all()
    assert (tx["scenario"][tx["fraud"] == 0] == 0).all()
    day = 40
    terminals, customers = sim.compromised(day)
    later = tx[(tx["tx_time"] // DAY >= day) & (tx["tx_time"] // DAY < day + 28)]
    at = later[np.isin(later["terminal_id"], terminals)]
    assert at.size and (at["fraud"] == 1).all()
    cards = tx[(tx["tx_time"] // DAY >= day) & (tx["tx_time"] // DAY < day + 14) & np.isin(tx["customer_id"], customers)]
    share = (cards["scenario"] == 3).mean()
    assert 0.15 < share < 0.55  # a third of a compromised card's transactions, small sample
    # 56 of 2000 terminals compromised at any time once the first 28 days have passed: ~3% fraud.
    assert 0.02 < tx["fraud"].mean() < 0.05


def test_deterministic_for_a_seed():
    a = Simulator(SMALL).dataset(5)
    b = Simulator(SMALL).dataset(5)
    c = Simulator(SimulatorParams(n_customers=1000, n_terminals=2000, seed=4)).dataset(5)
    assert np.array_equal(a, b)
    assert not np.array_equal(a[: min(a.size, c.size)], c[: min(a.size, c.size)])


def test_days_can_start_later_with_the_same_ids(sim):
    whole = sim.dataset(4)
    tail = next(sim.days(first_day=3, n_days=1))[1]
    assert np.array_equal(whole[whole["tx_time"] // DAY == 3], tail)


def test_day_size_counts_a_day_without_generating_it(sim):
    assert [sim.day_size(d) for d in range(0, 200, 7)] == [sim.genuine_day(d).size for d in range(0, 200, 7)]
