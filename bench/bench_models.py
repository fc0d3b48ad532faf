"""Boosters on the same streaming features, side by side (no Kafka needed).

Quality on the book's protocol (4 weekly test folds from 2018-08-08), training time per fold, and
predict cost per row on one thread, batched (500 rows per call, like the scorer) and one row at a
time, of: LightGBM, XGBoost as model.py trains it, and XGBoost with the parameters it had before
issue 17 (`xgboost-before`). `bench_models.py NAME...` runs only those and keeps the others'
figures. Writes bench/results/models.json and bench/results/models.png.
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


def train_xgboost(X, y, params=None):
    booster = fit(X, y, params=params)
    booster.set_param({"nthread": 1})
    return booster.inplace_predict


# model.py's parameters before issue 17 (AP .690): hist splits at 256 quantile bins, which cannot
# separate the ~100 amounts above 220 (all fraud) in a training week from the genuine ones below.
BEFORE = {"max_bin": 256}
MODELS = {"lightgbm": train_lightgbm, "xgboost-before": lambda X, y: train_xgboost(X, y, BEFORE),
          "xgboost": train_xgboost}


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
    names = sys.argv[1:] or list(MODELS)
    history = protocol.build_history(160)
    X, y = history.X, history.transactions["fraud"]
    path = OUT / "models.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    for name in names:
        train = MODELS[name]
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
    results["params"] = {"xgboost": XGB_PARAMS, "xgboost-before": {**XGB_PARAMS, **BEFORE}, "lightgbm": LGB_PARAMS,
                         "rounds": NUM_ROUNDS}
    path.write_text(json.dumps(results, indent=2) + "\n")
    plot(results)
    print(json.dumps(results, indent=2))
    return 0


def plot(results):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in MODELS if n in results]
    panels = [("average_precision", "AP (4 folds)"), ("card_precision_at_100", "CP@100 (4 folds)"),
              ("train_seconds_per_fold", "train s / fold"), ("predict_us_per_row_batched", "predict us/row, batched")]
    fig, axes = plt.subplots(1, len(panels), figsize=(13, 3.2))
    for ax, (key, title) in zip(axes, panels, strict=True):
        values = [results[n][key] for n in names]
        ax.bar(names, values, color=["#2ca02c", "#aec7e8", "#1f77b4"][-len(names):])
        ax.set_title(title)
        for i, v in enumerate(values):
            ax.text(i, v, f"{v:.3g}", ha="center", va="bottom")
    fig.tight_layout()
    fig.savefig(OUT / "models.png", dpi=100)


if __name__ == "__main__":
    sys.exit(main())
