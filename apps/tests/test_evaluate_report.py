"""`fraudstream evaluate --json`: per-scenario AP and daily CP@100 in the JSON, a PNG next to it, and
the rule that removes cards already known as compromised from the test days.

A smaller simulator (500 customers) and booster keep it to seconds.
"""
import functools
import json

import numpy as np
import pytest

from fraudstream import cli, model, protocol
from fraudstream.metrics import card_precision_at_k, daily_card_precision_at_k
from fraudstream.simulator import DAY, TX_DTYPE, SimulatorParams

SMALL = functools.partial(SimulatorParams, n_customers=500, n_terminals=1000)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    out = tmp_path_factory.mktemp("evaluate")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli, "SimulatorParams", SMALL)
        # A smaller booster: this is about the report, not the model.
        patch.setattr(protocol, "fraudstream_model",
                      lambda X, y: model.fit(X, y, rounds=30, params={"nthread": 1}).inplace_predict)
        assert cli.main(["evaluate", "--days", "28", "--seed", "3", "--folds", "2",
                         "--first-test-day", "2018-04-15", "--json", str(out / "e.json")]) == 0
    return out


def test_a_png_is_written_next_to_each_json(evaluated):
    for folds in (1, 2):
        png = evaluated / f"e-{folds}fold.png"
        assert (evaluated / f"e-{folds}fold.json").is_file()
        assert png.stat().st_size > 10_000
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_json_has_per_scenario_ap_and_daily_card_precision(evaluated):
    result = json.loads((evaluated / "e-2fold.json").read_text())
    assert result["test_days"][0] == "2018-04-15" and len(result["test_days"]) == 14
    assert result["known_compromised_cards_dropped"] is True
    scorers = [name for name in result["mean"] if name != "oracle"]
    assert len(scorers) == 2
    for name in scorers:
        for fold in result["folds"]:
            assert fold[name]["by_scenario"], "no scenario in a test week"
            for figures in fold[name]["by_scenario"].values():
                assert 0 < figures["average_precision"] <= 1 and figures["frauds"] > 0
        mean = result["mean"][name]["by_scenario"]
        assert set(mean) == {s for f in result["folds"] for s in f[name]["by_scenario"]}
        assert all("average_precision" in m for m in mean.values())
    for name in [*scorers, "oracle"]:
        daily = result["mean"][name]["daily_card_precision_at_100"]
        assert len(daily) == 14
        assert daily == [v for f in result["folds"] for v in f[name]["daily_card_precision_at_100"]]
        assert np.isclose(np.mean(daily), result["mean"][name]["card_precision_at_100"])
    oracle = np.array(result["mean"]["oracle"]["daily_card_precision_at_100"])
    for name in scorers:  # no scorer beats the oracle on any day
        assert (np.array(result["mean"][name]["daily_card_precision_at_100"]) <= oracle + 1e-12).all()


def test_card_precision_is_the_mean_of_the_daily_figures():
    rng = np.random.default_rng(0)
    days, cards = rng.integers(0, 3, 300), rng.integers(0, 40, 300)
    y, scores = (rng.random(300) < 0.1).astype(int), rng.random(300)
    daily = daily_card_precision_at_k(days, cards, y, scores, k=5)
    assert daily.shape == (3,) and card_precision_at_k(days, cards, y, scores, k=5) == daily.mean()


def history(rows):
    """A hand-made history: rows of (day, card, fraud)."""
    tx = np.zeros(len(rows), dtype=TX_DTYPE)
    for i, (day, card, fraud) in enumerate(rows):
        tx[i] = (i, day * DAY + 3600, card, 0, 10.0, fraud, 3 * fraud)
    return protocol.History(tx, np.zeros((len(rows), 1)), tx["tx_time"] // DAY, 0.0)


def test_cards_known_as_compromised_leave_the_test_days():
    # Test week from day 15: train_start = 15 - 7 - 7 = 1; on test day d the frauds dated 1 .. d - 8 are known.
    h = history([
        (0, 4, 1),             # card 4: a fraud before the training week: not looked at
        (3, 1, 1),             # card 1: a fraud on day 3, known from day 11 on
        (8, 2, 1),             # card 2: a fraud on day 8 (= 15 - 7): its label arrives on day 15
        (15, 1, 0), (15, 2, 0), (15, 3, 0), (15, 4, 0),
        (16, 1, 0), (16, 2, 0), (16, 3, 0),
    ])
    train, test = protocol.fold(h, 15)
    tested = {(int(d), int(c)) for d, c in zip(h.days[test], h.transactions["customer_id"][test], strict=True)}
    assert tested == {(15, 2), (15, 3), (15, 4), (16, 3)}
    assert set(h.days[train]) == {3}  # days 1 .. 7
    _, everything = protocol.fold(h, 15, drop_known=False)
    assert len(everything) == 7
