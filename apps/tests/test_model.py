"""The model artifact round-trips, refuses inconsistent or incomplete directories, and metrics hold."""
import json

import numpy as np
import pytest

from fraudstream.features import FEATURES
from fraudstream.metrics import card_precision_at_k, oracle_card_precision_at_k
from fraudstream.model import Artifact, fit, pick_threshold


@pytest.fixture(scope="module")
def artifact():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, len(FEATURES)))
    y = (X[:, 0] + rng.normal(scale=0.5, size=2000) > 1.5).astype(int)
    booster = fit(X, y, rounds=20)
    threshold, rule = pick_threshold(booster.inplace_predict(X), y, alerts_per_day=50, days=2)
    return Artifact(booster, list(FEATURES), threshold, rule, {"auc_roc": 0.9}, {"days": [0, 7]}), X


def test_round_trip_predicts_the_same(tmp_path, artifact):
    art, X = artifact
    art.save(tmp_path / "m")
    loaded = Artifact.load(tmp_path / "m")
    assert loaded.version == art.version and len(loaded.version) == 12
    assert loaded.threshold == art.threshold and "max F1" in loaded.threshold_rule
    assert np.array_equal(loaded.predict(X), art.predict(X))


def test_tampered_artifact_is_refused(tmp_path, artifact):
    art, _ = artifact
    art.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m/artifact.json").read_text())
    meta["threshold"] = 0.01
    (tmp_path / "m/artifact.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="version hash"):
        Artifact.load(tmp_path / "m")


def test_missing_artifact_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="fraudstream train"):
        Artifact.load(tmp_path)


def test_threshold_respects_the_alert_budget():
    scores = np.linspace(1, 0, 1000)
    y = np.ones(1000, dtype=int)  # every transaction is fraud: F1 grows with every alert
    threshold, _ = pick_threshold(scores, y, alerts_per_day=10, days=3)
    assert (scores >= threshold).sum() == 30


def test_card_precision_counts_cards_not_transactions():
    days = np.array([0, 0, 0, 0, 1, 1])
    cards = np.array([1, 1, 2, 3, 1, 2])
    y = np.array([1, 1, 0, 0, 0, 1])
    scores = np.array([0.9, 0.8, 0.7, 0.1, 0.9, 0.2])
    # Day 0: top-2 cards are 1 (fraud) and 2 -> 1/2; day 1: cards 1 and 2, one fraud -> 1/2.
    assert card_precision_at_k(days, cards, y, scores, k=2) == 0.5
    assert oracle_card_precision_at_k(days, cards, y, k=2) == 0.5
    assert card_precision_at_k(days, cards, y, scores, k=1) == 0.5


# -- the scorer refuses an artifact that does not fit it, naming the difference --------------------
def fitted(artifact, features=None, delay=7):
    art, _ = artifact
    return Artifact(art.booster, list(features or FEATURES), art.threshold, art.threshold_rule,
                    label_delay_days=delay)


def test_a_matching_artifact_is_accepted(artifact):
    assert fitted(artifact).check_compatible(list(FEATURES), 7) is None


def test_label_delay_is_saved_loaded_and_covered_by_the_version(tmp_path, artifact):
    art = fitted(artifact, delay=3)
    art.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m/artifact.json").read_text())
    assert meta["label_delay_days"] == 3
    assert Artifact.load(tmp_path / "m").label_delay_days == 3
    meta["label_delay_days"] = 7
    (tmp_path / "m/artifact.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="version hash"):
        Artifact.load(tmp_path / "m")


def test_another_label_delay_is_refused_with_the_fix(artifact):
    with pytest.raises(ValueError) as refused:
        fitted(artifact, delay=7).check_compatible(list(FEATURES), 3)
    assert ("artifact trained with label delay 7 days, scorer configured with 3: "
            "set FRAUDSTREAM_LABEL_DELAY_DAYS=7 or retrain") in str(refused.value)
    assert "feature" not in str(refused.value)


def test_missing_features_are_named(artifact):
    # The artifact needs a feature the scorer does not compute.
    with pytest.raises(ValueError, match=r"needs features the scorer does not compute: \['customer_nb_tx_1d'\]"):
        fitted(artifact).check_compatible([f for f in FEATURES if f != "customer_nb_tx_1d"], 7)


def test_extra_features_are_named(artifact):
    with pytest.raises(ValueError, match=r"computes features it was not trained on: \['new_feature'\]") as refused:
        fitted(artifact).check_compatible([*FEATURES, "new_feature"], 7)
    assert "label delay" not in str(refused.value)


def test_missing_and_extra_are_both_named(artifact):
    scorer = [("renamed" if f == "amount" else f) for f in FEATURES]
    with pytest.raises(ValueError) as refused:
        fitted(artifact).check_compatible(scorer, 7)
    assert "does not compute: ['amount']" in str(refused.value)
    assert "not trained on: ['renamed']" in str(refused.value)


def test_another_order_names_the_first_position_that_differs(artifact):
    scorer = list(FEATURES)
    scorer[4], scorer[6] = scorer[6], scorer[4]
    with pytest.raises(ValueError) as refused:
        fitted(artifact).check_compatible(scorer, 7)
    message = str(refused.value)
    assert f"another order: position 4 is {FEATURES[4]!r} in the artifact, {FEATURES[6]!r} in the scorer" in message
    assert "does not compute" not in message and "not trained on" not in message


def test_every_difference_is_named_at_once(artifact):
    with pytest.raises(ValueError) as refused:
        fitted(artifact).check_compatible(list(reversed(FEATURES)), 14)
    assert "position 0" in str(refused.value) and "label delay 7 days, scorer configured with 14" in str(refused.value)


def test_an_artifact_without_a_label_delay_is_refused_with_retrain(tmp_path, artifact):
    art, _ = artifact
    Artifact(art.booster, list(FEATURES), art.threshold, art.threshold_rule).save(tmp_path / "m")
    assert "label_delay_days" not in json.loads((tmp_path / "m/artifact.json").read_text())
    old = Artifact.load(tmp_path / "m")
    assert old.label_delay_days is None
    with pytest.raises(ValueError, match=r"does not record the label delay.*retrain.*--label-delay-days 7"):
        old.check_compatible(list(FEATURES), 7)


def test_an_older_artifact_with_the_delay_in_its_data_window_still_loads(tmp_path, artifact):
    """`fraudstream train` has long written the delay into data_window; such artifacts keep working."""
    art, _ = artifact
    Artifact(art.booster, list(FEATURES), art.threshold, art.threshold_rule,
             data_window={"label_delay_days": 5}).save(tmp_path / "m")
    old = Artifact.load(tmp_path / "m")
    assert old.label_delay_days == 5
    old.check_compatible(list(FEATURES), 5)
    with pytest.raises(ValueError, match="label delay 5 days, scorer configured with 7"):
        old.check_compatible(list(FEATURES), 7)


@pytest.fixture(scope="module")
def deep():
    """A model like the real one (300 rounds, depth 6), missing values included."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(5000, len(FEATURES)))
    X[rng.random(X.shape) < 0.02] = np.nan
    y = ((np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 5]) * X[:, 9] > 1.2)
         & (rng.random(5000) < 0.9)).astype(int)
    booster = fit(X, y, rounds=300)
    return Artifact(booster, list(FEATURES), 0.5, "test"), X


def test_numpy_margin_is_xgboosts_bit_for_bit(deep):
    art, X = deep
    assert np.array_equal(art.forest.margin(X), art.booster.inplace_predict(X, predict_type="margin"))


def test_a_score_does_not_depend_on_the_batch_it_was_in(deep):
    """Small batches are walked by numpy, large ones by XGBoost: same scores, so N scorers
    (whose batches differ) score exactly like one."""
    art, X = deep
    whole = art.predict(X[:200])
    one_by_one = np.concatenate([art.predict(X[i:i + 1]) for i in range(200)])
    assert np.array_equal(whole, one_by_one)
    assert np.abs(whole - art.booster.inplace_predict(X[:200])).max() < 1e-6
