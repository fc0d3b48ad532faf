"""The model artifact: a gradient-boosted classifier, its features, its threshold and provenance.

An artifact is a directory:
  model.json      the XGBoost booster (JSON format)
  artifact.json   features, threshold and the rule that chose it, label delay, metrics, data window,
                  version

The scorer computes features in its own FEATURES order with its own label delay and predicts
positionally, so it must refuse an artifact trained otherwise (Artifact.check_compatible).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xgboost as xgb

from .features import FEATURES
from .trees import Forest

# Chosen by measurement (bench/bench_models.py): on the book's protocol, 4 folds, XGBoost and
# LightGBM reach the same quality (AP .690 vs .688); XGBoost trains 2x faster and its batched
# predict is ~4x cheaper per row on one thread (4.6 vs 20 us), which is what the scorer pays.
# max_bin: with the default 256 bins the ~100 amounts above 220 of a training week (all fraud,
# scenario 1) share their bin with genuine ones below it; 8192 bins place the split (scenario-1
# AP .52 -> .89, all frauds .690 -> .701; training ~4x the CPU, predict cost unchanged).
XGB_PARAMS = {
    "objective": "binary:logistic",
    "eta": 0.05,
    "max_depth": 6,
    "subsample": 0.8,
    "colsample_bytree": 0.9,
    "tree_method": "hist",
    "max_bin": 8192,
    "nthread": 2,
    "seed": 0,
}
NUM_ROUNDS = 300
# Up to this many rows numpy walks the trees faster than a call into XGBoost (bench/README.md).
SMALL_BATCH = 16


@dataclass
class Artifact:
    booster: xgb.Booster
    features: list[str]
    threshold: float
    threshold_rule: str
    metrics: dict = field(default_factory=dict)
    data_window: dict = field(default_factory=dict)
    version: str = ""
    # The label delay (days) of the training protocol: terminal risk and known fraud only count
    # labels older than it, so a scorer with another delay feeds the model other numbers.
    label_delay_days: int | None = None
    forest: Forest | None = field(default=None, repr=False)  # the same trees, walked with numpy

    def __post_init__(self):
        if self.forest is None:
            self.forest = Forest.from_json(bytes(self.booster.save_raw("json")).decode())

    def check_compatible(self, features: list[str], label_delay_days: int) -> None:
        """Raise ValueError naming every way this artifact differs from a scorer that computes
        `features` (in that order) with `label_delay_days`; return None if it does not."""
        problems = []
        ours, theirs = list(self.features), list(features)
        missing = [f for f in ours if f not in theirs]
        extra = [f for f in theirs if f not in ours]
        if missing:
            problems.append(f"it needs features the scorer does not compute: {missing}")
        if extra:
            problems.append(f"the scorer computes features it was not trained on: {extra}")
        if not missing and not extra and ours != theirs:
            i = next(i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b)
            problems.append(f"same features in another order: position {i} is {ours[i]!r} in the artifact, "
                            f"{theirs[i]!r} in the scorer")
        if self.label_delay_days is None:
            problems.append(f"it does not record the label delay it was trained with (older artifact): retrain it "
                            f"with `fraudstream train --label-delay-days {label_delay_days}`")
        elif self.label_delay_days != label_delay_days:
            problems.append(f"artifact trained with label delay {self.label_delay_days:g} days, scorer configured "
                            f"with {label_delay_days:g}: set FRAUDSTREAM_LABEL_DELAY_DAYS={self.label_delay_days:g} "
                            f"or retrain")
        if problems:
            raise ValueError(f"model artifact {self.version or '(unsaved)'} does not fit this scorer: "
                             + "; ".join(problems))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Fraud probability for a batch of feature rows (one call for the whole batch).

        The margin of a small batch comes from numpy (trees.py: XGBoost costs ~1 ms a call,
        whatever the batch), of a large one from XGBoost; both are bit for bit the same margin
        (tested), and one logistic function turns either into the score, so a transaction gets
        the same score whatever batch it was in."""
        if len(X) <= SMALL_BATCH:
            margin = self.forest.margin(X)
        else:
            margin = self.booster.inplace_predict(X, predict_type="margin")
        return logistic(margin)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        model_text = bytes(self.booster.save_raw("json")).decode()
        (directory / "model.json").write_text(model_text)
        self.version = version_of(model_text, self.features, self.threshold, self.label_delay_days)
        meta = {"features": self.features, "threshold": self.threshold, "threshold_rule": self.threshold_rule,
                "metrics": self.metrics, "data_window": self.data_window, "version": self.version}
        if self.label_delay_days is not None:
            meta["label_delay_days"] = self.label_delay_days
        (directory / "artifact.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Artifact:
        directory = Path(directory)
        meta_path, model_path = directory / "artifact.json", directory / "model.json"
        for path in (meta_path, model_path):
            if not path.is_file():
                raise FileNotFoundError(f"model artifact {directory} lacks {path.name}: run `fraudstream train`")
        meta = json.loads(meta_path.read_text())
        model_text = model_path.read_text()
        if version_of(model_text, meta["features"], meta["threshold"], meta.get("label_delay_days")) != meta["version"]:
            raise ValueError(f"model artifact {directory} is inconsistent: its version hash does not match")
        missing = sorted(set(meta["features"]) - set(FEATURES))
        if missing:
            raise ValueError(f"model artifact {directory} needs features this scorer does not compute: {missing}")
        booster = xgb.Booster(params={"nthread": 1})  # the scorer predicts on one thread
        booster.load_model(bytearray(model_text.encode()))
        # Artifacts from before label_delay_days was a top-level field kept it in their data window.
        delay = meta.get("label_delay_days", meta["data_window"].get("label_delay_days"))
        return cls(booster, meta["features"], meta["threshold"], meta["threshold_rule"], meta["metrics"],
                   meta["data_window"], meta["version"], delay)


def logistic(margin: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(margin, dtype=np.float64)))


def version_of(model_text: str, features: list[str], threshold: float, label_delay_days: int | None = None) -> str:
    digest = hashlib.sha256(model_text.encode())
    # The delay joined the hash with its top-level field: older artifacts keep their version.
    digest.update(json.dumps([features, threshold] if label_delay_days is None else
                             [features, threshold, label_delay_days]).encode())
    return digest.hexdigest()[:12]


def fit(X: np.ndarray, y: np.ndarray, rounds: int = NUM_ROUNDS, params: dict | None = None) -> xgb.Booster:
    data = xgb.DMatrix(X, label=y, feature_names=list(FEATURES))
    return xgb.train({**XGB_PARAMS, **(params or {})}, data, num_boost_round=rounds)


def pick_threshold(scores: np.ndarray, y: np.ndarray, alerts_per_day: float, days: int) -> tuple[float, str]:
    """Threshold that maximises F1 on validation data, floored so alerts stay within budget."""
    order = np.argsort(-scores)
    sorted_scores, sorted_y = scores[order], y[order]
    tp = np.cumsum(sorted_y)
    precision = tp / np.arange(1, len(tp) + 1)
    recall = tp / max(tp[-1], 1)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0)
    budget = int(alerts_per_day * days)
    best = int(np.argmax(f1[:budget] if budget else f1))
    threshold = float(sorted_scores[best])
    rule = (f"max F1 on the validation window ({days} days), at most {alerts_per_day:g} alerts/day: "
            f"precision {precision[best]:.3f}, recall {recall[best]:.3f}")
    return threshold, rule
