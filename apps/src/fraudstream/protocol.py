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
from .features import BOOK_FEATURES, FEATURES, FeatureState, featurize
from .metrics import DAY, oracle_card_precision_at_k, quality, quality_by_scenario
from .simulator import Simulator, SimulatorParams, day_of

BOOK_BASELINES = {
    "book XGBoost (15 features)": {"auc_roc": 0.862, "average_precision": 0.639, "card_precision_at_100": 0.273},
    "book best after model selection": {"auc_roc": None, "average_precision": 0.687, "card_precision_at_100": 0.303},
}


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


def fold(history: History, test_start: int, train_days: int = 7, delay_days: int = 7, test_days: int = 7):
    """Index arrays (train, test) of one fold; the test set drops cards already known as compromised."""
    days, tx = history.days, history.transactions
    train_start = test_start - delay_days - train_days
    train = np.flatnonzero((days >= train_start) & (days < train_start + train_days))
    test = []
    for d in range(test_start, test_start + test_days):
        # Labels known on day d: every fraud up to d - delay - 1.
        known_mask = (days >= train_start) & (days <= d - delay_days - 1) & (tx["fraud"] == 1)
        known = np.unique(tx["customer_id"][known_mask])
        day_idx = np.flatnonzero(days == d)
        test.append(day_idx[~np.isin(tx["customer_id"][day_idx], known)])
    return train, np.concatenate(test)


def xgboost_baseline(X, y):
    """The book's baseline: XGBoost, 100 trees, learning rate 0.3, depth 3, on the 15 book features."""
    clf = xgb.XGBClassifier(n_estimators=100, learning_rate=0.3, max_depth=3, n_jobs=2, random_state=0)
    clf.fit(X[:, :len(BOOK_FEATURES)], y)
    return lambda Xt: clf.predict_proba(Xt[:, :len(BOOK_FEATURES)])[:, 1]


def fraudstream_model(X, y):
    booster = model_mod.fit(X, y)
    return lambda Xt: booster.inplace_predict(Xt)


def evaluate_fold(history: History, test_start: int, scorers: dict) -> dict:
    train, test = fold(history, test_start)
    X, y = history.X, history.transactions["fraud"]
    results = {}
    for name, make in scorers.items():
        predict = make(X[train], y[train])
        scores = predict(X[test])
        results[name] = quality(history.days[test], history.transactions["customer_id"][test], y[test], scores)
        if history.has_scenarios:
            results[name]["by_scenario"] = quality_by_scenario(y[test], scores, history.transactions["scenario"][test])
    results["oracle"] = {"card_precision_at_100": oracle_card_precision_at_k(
        history.days[test], history.transactions["customer_id"][test], y[test])}
    return results


def evaluate(history: History, first_test_day: str = "2018-08-08", folds: int = 1) -> dict:
    scorers = {"fraudstream (XGBoost, %d features)" % len(FEATURES): fraudstream_model,
               "XGBoost baseline (this run, 15 features)": xgboost_baseline}
    start = day_of(first_test_day)
    per_fold = [evaluate_fold(history, start + 7 * k, scorers) for k in range(folds)]
    names = per_fold[0].keys()
    mean = {name: {metric: float(np.mean([f[name][metric] for f in per_fold])) for metric in per_fold[0][name]
                   if metric != "by_scenario"} for name in names}
    for name in names:
        if "by_scenario" in per_fold[0][name]:
            mean[name]["by_scenario"] = mean_by_scenario([f[name]["by_scenario"] for f in per_fold])
    return {"folds": per_fold, "mean": mean, "first_test_day": first_test_day, "n_folds": folds}


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
