"""The Handbook's evaluation protocol: train a week, wait out the label delay, test a week.

Features come from the streaming code (features.FeatureState) replayed over the simulated
history, so the numbers measure what the live scorer computes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import xgboost as xgb

from . import model as model_mod
from .datafile import iso_day
from .features import BOOK_FEATURES, FEATURES, FeatureState, featurize
from .metrics import DAY, daily_card_precision_at_k, quality, quality_by_scenario
from .simulator import Simulator, SimulatorParams, day_of

BOOK_BASELINES = {
    "book XGBoost (15 features)": {"auc_roc": 0.862, "average_precision": 0.639, "card_precision_at_100": 0.273},
    "book best after model selection": {"auc_roc": None, "average_precision": 0.687, "card_precision_at_100": 0.303},
}
DAILY = "daily_card_precision_at_100"


@dataclass
class History:
    transactions: np.ndarray
    X: np.ndarray
    days: np.ndarray
    featurize_seconds: float
    has_scenarios: bool = True  # TX_FRAUD_SCENARIO known: per-scenario figures too


def build_history(n_days: int = 183, seed: int = 0, delay_days: int = 7) -> History:
    return history_of(Simulator(SimulatorParams(seed=seed)).dataset(n_days), delay_days)


def history_of(tx: np.ndarray, delay_days: int = 7, has_scenarios: bool = True, progress=None) -> History:
    """Features of transactions in event-time order (simulated, or a file: datafile.load)."""
    start = time.perf_counter()
    X = featurize(FeatureState(delay_days), tx, with_labels=True, progress=progress)
    return History(tx, X, tx["tx_time"] // DAY, time.perf_counter() - start, has_scenarios)


def fold(history: History, test_start: int, train_days: int = 7, delay_days: int = 7, test_days: int = 7,
         drop_known: bool = True):
    """Index arrays (train, test) of one fold, as in the Handbook.

    Train: the `train_days` days from train_start = test_start - delay_days - train_days. Test:
    the `test_days` days from test_start, each without the cards already known as compromised
    that day. A label arrives `delay_days` after its transaction, so on test day d the frauds
    dated train_start .. d - delay_days - 1 are known, and a card with such a fraud is dropped
    from day d (a team would have blocked it; keeping it would inflate the figures). A card
    whose first fraud is dated d - delay_days or later stays in day d, and leaves from the day
    after its label arrived. Frauds before train_start are not looked at.
    drop_known=False keeps every card (to measure what the removal changes).
    """
    days, tx = history.days, history.transactions
    train_start = test_start - delay_days - train_days
    train = np.flatnonzero((days >= train_start) & (days < train_start + train_days))
    test = []
    for d in range(test_start, test_start + test_days):
        day_idx = np.flatnonzero(days == d)
        if drop_known:
            known_mask = (days >= train_start) & (days <= d - delay_days - 1) & (tx["fraud"] == 1)
            day_idx = day_idx[~np.isin(tx["customer_id"][day_idx], tx["customer_id"][known_mask])]
        test.append(day_idx)
    return train, np.concatenate(test)


def xgboost_baseline(X, y):
    """The book's baseline: XGBoost, 100 trees, learning rate 0.3, depth 3, on the 15 book features."""
    clf = xgb.XGBClassifier(n_estimators=100, learning_rate=0.3, max_depth=3, n_jobs=2, random_state=0)
    clf.fit(X[:, :len(BOOK_FEATURES)], y)
    return lambda Xt: clf.predict_proba(Xt[:, :len(BOOK_FEATURES)])[:, 1]


def fraudstream_model(X, y):
    booster = model_mod.fit(X, y)
    return lambda Xt: booster.inplace_predict(Xt)


def evaluate_fold(history: History, test_start: int, scorers: dict, drop_known: bool = True,
                  curves: dict | None = None) -> dict:
    """Every scorer's figures on one fold; `curves`, if given, collects name -> [(y, scores)]."""
    train, test = fold(history, test_start, drop_known=drop_known)
    X, y = history.X, history.transactions["fraud"]
    days, cards = history.days[test], history.transactions["customer_id"][test]
    results = {}
    for name, make in scorers.items():
        predict = make(X[train], y[train])
        scores = predict(X[test])
        results[name] = quality(days, cards, y[test], scores)
        results[name]["daily_card_precision_at_100"] = daily_card_precision_at_k(days, cards, y[test], scores).tolist()
        if history.has_scenarios:
            results[name]["by_scenario"] = quality_by_scenario(y[test], scores, history.transactions["scenario"][test])
        if curves is not None:
            curves.setdefault(name, []).append((y[test], scores))
    daily = daily_card_precision_at_k(days, cards, y[test], y[test].astype(float))
    results["oracle"] = {"card_precision_at_100": float(daily.mean()), "daily_card_precision_at_100": daily.tolist()}
    return results


def evaluate(history: History, first_test_day: str = "2018-08-08", folds: int = 1, drop_known: bool = True,
             curves: dict | None = None) -> dict:
    """Weekly folds from first_test_day; figures per fold and their mean (daily CP@100: every test day)."""
    scorers = {"fraudstream (XGBoost, %d features)" % len(FEATURES): fraudstream_model,
               "XGBoost baseline (this run, 15 features)": xgboost_baseline}
    start = day_of(first_test_day)
    per_fold = [evaluate_fold(history, start + 7 * k, scorers, drop_known, curves) for k in range(folds)]
    names = per_fold[0].keys()
    mean = {name: {metric: float(np.mean([f[name][metric] for f in per_fold])) for metric in per_fold[0][name]
                   if metric not in ("by_scenario", DAILY)} for name in names}
    for name in names:
        mean[name][DAILY] = [v for f in per_fold for v in f[name][DAILY]]
        if "by_scenario" in per_fold[0][name]:
            mean[name]["by_scenario"] = mean_by_scenario([f[name]["by_scenario"] for f in per_fold])
    test_days = [iso_day(d * DAY) for d in np.unique(history.days[(history.days >= start)
                                                                  & (history.days < start + 7 * folds)])]
    return {"folds": per_fold, "mean": mean, "first_test_day": first_test_day, "n_folds": folds,
            "test_days": test_days, "known_compromised_cards_dropped": drop_known}


def mean_by_scenario(folds: list[dict]) -> dict:
    """Per scenario over folds: frauds summed, the other figures averaged over the folds that had it."""
    out = {}
    for s in sorted({s for f in folds for s in f}, key=int):
        present = [f[s] for f in folds if s in f]
        out[s] = {"frauds": sum(p["frauds"] for p in present)}
        for metric in ("auc_roc", "average_precision"):
            values = [p[metric] for p in present if metric in p]
            if values:
                out[s][metric] = float(np.mean(values))
    return out


def scenario_table(result: dict) -> str:
    """AUC ROC and AP per fraud scenario (its frauds against every genuine transaction), "" if unknown."""
    rows = [(name, s, m) for name, v in result["mean"].items() for s, m in v.get("by_scenario", {}).items()]
    if not rows:
        return ""
    lines = [f"{'scorer':48} {'scenario':>8} {'frauds':>8} {'AUC ROC':>8} {'AP':>8}"]
    for name, s, m in rows:
        cells = [m.get("auc_roc"), m.get("average_precision")]
        lines.append(f"{name:48} {s:>8} {m['frauds']:8d} " +
                     " ".join(f"{v:8.3f}" if v is not None else f"{'-':>8}" for v in cells))
    return "\n".join(lines)


def table(result: dict) -> str:
    """The comparison table that `fraudstream evaluate` prints."""
    rows = dict(result["mean"])
    rows.update(BOOK_BASELINES)
    lines = [f"{'scorer':48} {'AUC ROC':>8} {'AP':>8} {'CP@100':>8}"]
    for name, m in rows.items():
        cells = [m.get("auc_roc"), m.get("average_precision"), m.get("card_precision_at_100")]
        lines.append(f"{name:48} " + " ".join(f"{v:8.3f}" if v is not None else f"{'-':>8}" for v in cells))
    return "\n".join(lines)
