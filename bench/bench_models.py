"""XGBoost vs LightGBM on the same streaming features, side by side in one run (no Kafka needed).

Quality on the book's protocol (4 weekly test folds from 2018-08-08), training time per fold, and
predict cost per row on one thread, batched (500 rows per call, like the scorer) and one row at a
time. Writes bench/results/models.json and bench/results/models.png.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np

from fraudstream import protocol
from fraudstream.features import FEATURES
from fraudstream.metrics import quality
from fraudstream.model import NUM_ROUNDS, XGB_PARAMS, fit

OUT = Path(__file__).resolve().parent / "results"
LGB_PARAMS = {"objective": "binary", "learning_rate": 0.05, "num_leaves": 31, "min_data_in_leaf": 50,
              "feature_fraction": 0.9, "bagging_fraction": 0.8, "bagging_freq": 1, "verbose": -1,
              "num_threads": 2, "seed": 7}


def train_lightgbm(X, y):
    booster = lgb.train(LGB_PARAMS, lgb.Dataset(X, label=y, feature_name=list(FEATURES)), num_boost_round=NUM_ROUNDS)
    return lambda rows: booster.predict(rows, num_threads=1)


def train_xgboost(X, y):
    booster = fit(X, y)
    booster.set_param({"nthread": 1})
    return booster.inplace_predict


def per_row_us(predict, rows):
    predict(rows)
    start = time.perf_counter()
    for _ in range(20):
        predict(rows)
    batched = (time.perf_counter() - start) / (20 * len(rows)) * 1e6
    start = time.perf_counter()
    for row in rows[:200]:
        predict(row[None, :])
    return batched, (time.perf_counter() - start) / 200 * 1e6


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    history = protocol.build_history(160)
    X, y = history.X, history.transactions["fraud"]
    results = {}
    for name, train in (("lightgbm", train_lightgbm), ("xgboost", train_xgboost)):
        folds, train_s = [], []
        for k in range(4):
            tr, te = protocol.fold(history, protocol.day_of("2018-08-08") + 7 * k)
            start = time.perf_counter()
            predict = train(X[tr], y[tr])
            train_s.append(time.perf_counter() - start)
            folds.append(quality(history.days[te], history.transactions["customer_id"][te], y[te], predict(X[te])))
        batched, one_row = per_row_us(predict, X[te][:500])
        results[name] = {**{m: float(np.mean([f[m] for f in folds])) for m in folds[0]},
                         "train_seconds_per_fold": float(np.mean(train_s)),
                         "predict_us_per_row_batched": batched, "predict_us_one_row": one_row}
    results["params"] = {"xgboost": XGB_PARAMS, "lightgbm": LGB_PARAMS, "rounds": NUM_ROUNDS}
    (OUT / "models.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(results)
    print(json.dumps(results, indent=2))
    return 0


def plot(results):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ["lightgbm", "xgboost"]
    panels = [("average_precision", "AP (4 folds)"), ("card_precision_at_100", "CP@100 (4 folds)"),
              ("train_seconds_per_fold", "train s / fold"), ("predict_us_per_row_batched", "predict us/row, batched")]
    fig, axes = plt.subplots(1, len(panels), figsize=(13, 3.2))
    for ax, (key, title) in zip(axes, panels, strict=True):
        values = [results[n][key] for n in names]
        ax.bar(names, values, color=["#2ca02c", "#1f77b4"])
        ax.set_title(title)
        for i, v in enumerate(values):
            ax.text(i, v, f"{v:.3g}", ha="center", va="bottom")
    fig.tight_layout()
    fig.savefig(OUT / "models.png", dpi=100)


if __name__ == "__main__":
    sys.exit(main())
