"""Detection-quality metrics of the Fraud Detection Handbook: AUC ROC, AP and Card Precision@k."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

DAY = 86400


def daily_card_precision_at_k(days: np.ndarray, customers: np.ndarray, y: np.ndarray, scores: np.ndarray,
                              k: int = 100) -> np.ndarray:
    """Per day (in day order): the share of true frauds among the k cards with the highest score.

    A card's score on a day is its highest transaction score; it is fraudulent that day if any
    of its transactions is.
    """
    values = []
    for day in np.unique(days):
        mask = days == day
        cards, inverse = np.unique(customers[mask], return_inverse=True)
        card_score = np.full(cards.size, -np.inf)
        card_fraud = np.zeros(cards.size, dtype=bool)
        np.maximum.at(card_score, inverse, scores[mask])
        np.logical_or.at(card_fraud, inverse, y[mask] == 1)
        top = np.argsort(-card_score, kind="stable")[:k]
        values.append(card_fraud[top].sum() / k)
    return np.array(values)


def card_precision_at_k(days: np.ndarray, customers: np.ndarray, y: np.ndarray, scores: np.ndarray,
                        k: int = 100) -> float:
    """Card Precision@k: the daily figure (daily_card_precision_at_k) averaged over days."""
    return float(np.mean(daily_card_precision_at_k(days, customers, y, scores, k)))


def oracle_card_precision_at_k(days: np.ndarray, customers: np.ndarray, y: np.ndarray, k: int = 100) -> float:
    """The best CP@k any scorer could reach: min(k, fraudulent cards that day) / k, averaged."""
    return card_precision_at_k(days, customers, y, y.astype(float), k)


def quality(days, customers, y, scores, k: int = 100) -> dict[str, float]:
    return {
        "auc_roc": float(roc_auc_score(y, scores)),
        "average_precision": float(average_precision_score(y, scores)),
        f"card_precision_at_{k}": card_precision_at_k(days, customers, y, scores, k),
    }


def quality_by_scenario(y, scores, scenarios, threshold: float | None = None) -> dict[str, dict]:
    """Per fraud scenario: its frauds against every genuine transaction (the other scenarios' frauds
    left out): how many, AUC ROC, AP, and the share at or above `threshold` if one is given.
    Scenario 0 on a fraud means 'no known scenario'."""
    out = {}
    genuine = y == 0
    for s in np.unique(scenarios[y == 1]):
        frauds = (y == 1) & (scenarios == s)
        figures = {"frauds": int(frauds.sum())}
        if genuine.any():
            mask = genuine | frauds
            figures["auc_roc"] = float(roc_auc_score(y[mask], scores[mask]))
            figures["average_precision"] = float(average_precision_score(y[mask], scores[mask]))
        if threshold is not None:
            figures["recall_at_threshold"] = float((scores[frauds] >= threshold).mean())
        out[str(int(s))] = figures
    return out
