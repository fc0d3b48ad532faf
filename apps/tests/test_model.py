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
