"""The PNG that `fraudstream evaluate --json` writes next to its JSON.

Left: precision-recall curves of every scorer on the test folds pooled (all test transactions of
all folds in one curve; the legend's AP is of that pooled set, not the mean of the folds' APs).
Right: card precision@100 per test day, every scorer and the oracle (the best any scorer could
reach that day), with the folds' boundaries.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve

from .protocol import DAILY


def write_png(path: str, result: dict, curves: dict) -> None:
    """result: protocol.evaluate's; curves: name -> [(y, scores) per fold], as evaluate collects them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (pr, cp) = plt.subplots(1, 2, figsize=(13, 4.8))
    for name, parts in curves.items():
        y = np.concatenate([p[0] for p in parts])
        scores = np.concatenate([p[1] for p in parts])
        precision, recall, _ = precision_recall_curve(y, scores)
        pr.plot(recall, precision, label=f"{name}: AP {average_precision_score(y, scores):.3f}")
    pr.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02),
           title=f"precision-recall, {result['n_folds']} test fold(s) pooled")
    pr.legend(loc="best", fontsize=8)

    days = np.arange(len(result["test_days"]))
    for name, figures in result["mean"].items():
        mean = figures["card_precision_at_100"]
        style = {"color": "black", "linestyle": "--"} if name == "oracle" else {}
        cp.plot(days, figures[DAILY], marker="o", markersize=3, label=f"{name}: mean {mean:.3f}", **style)
    for k in range(1, result["n_folds"]):
        cp.axvline(7 * k - 0.5, color="grey", linewidth=0.5)
    step = -(-len(days) // 7)  # at most 7 dates on the axis
    cp.set_xticks(days[::step], [d[5:] for d in result["test_days"][::step]])
    cp.set(xlabel="test day", ylabel="card precision@100", ylim=(0, 1.02),
           title="card precision@100 per test day (known compromised cards removed)"
           if result.get("known_compromised_cards_dropped", True) else "card precision@100 per test day")
    cp.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
