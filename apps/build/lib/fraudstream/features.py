"""Streaming features: state updated one transaction at a time; the same code trains and scores.

Customer windows cover (t - w, t] and include the current transaction. Terminal windows cover
(t - delay - w, t - delay] and count only the fraud labels known by now, so nothing leaks from
the future: labels arrive late (chargebacks), and the default delay is the book's 7 days.

Amounts are kept in integer cents, so running sums are exact and features computed by any
number of scorers, in any batch split, are bit-for-bit equal.
"""

from __future__ import annotations

import math

import numpy as np

DAY = 86400
WINDOWS = (1, 7, 30)
START_WEEKDAY = 6  # 2018-04-01 was a Sunday
# An amount above this multiple of the card's usual mean is an outlier, kept out of the baseline.
OUTLIER_RATIO = 3.0

BOOK_FEATURES = [
    "amount", "during_weekend", "during_night",
    *[f"customer_nb_tx_{w}d" for w in WINDOWS],
    *[f"customer_avg_amount_{w}d" for w in WINDOWS],
    *[f"terminal_nb_tx_{w}d" for w in WINDOWS],
    *[f"terminal_risk_{w}d" for w in WINDOWS],
]
EXTRA_FEATURES = [
    # How unusual the amount is for this card, against its usual (non-outlier) amounts of the
    # previous 30 days: a stolen card's inflated amounts do not raise its own baseline.
    "amount_to_customer_avg_30d",
    "amount_zscore_30d",
    # Outlier amounts on this card in the last 7 days: a card in use by a fraudster.
    "customer_outliers_7d",
    # The card's own confirmed fraud, with the same label delay.
    "customer_known_fraud_30d",
]
FEATURES = BOOK_FEATURES + EXTRA_FEATURES


class CustomerState:
    """A card's last 30 days: times, amounts (cents), window starts and running sums."""
    __slots__ = ("times", "cents", "outlier", "s1", "s7", "s30", "sum1", "sum7", "sum30",
                 "usual_n", "usual_sum", "usual_sumsq", "outliers7", "fraud_times")

    def __init__(self):
        self.times: list[int] = []
        self.cents: list[int] = []
        self.outlier: list[bool] = []
        self.s1 = self.s7 = self.s30 = 0
        self.sum1 = self.sum7 = self.sum30 = 0
        # 30-day count, sum and sum of squares of the amounts that were not outliers.
        self.usual_n = self.usual_sum = self.usual_sumsq = 0
        self.outliers7 = 0
        self.fraud_times: list[int] = []  # times of this card's transactions known as fraud


class TerminalState:
    """A terminal's transactions up to delay + 30 days old, with their labels (-1: not known yet)."""
    __slots__ = ("times", "labels", "base", "end", "s1", "s7", "s30", "f1", "f7", "f30")

    def __init__(self):
        self.times: list[int] = []
        self.labels: list[int] = []
        self.base = 0  # absolute sequence number of times[0]
        self.end = 0  # entries before this index are older than the delay
        self.s1 = self.s7 = self.s30 = 0
        self.f1 = self.f7 = self.f30 = 0


class FeatureState:
    """Per-customer and per-terminal windows, bounded to the longest window plus the delay."""

    def __init__(self, delay_days: int = 7):
        self.delay = delay_days * DAY
        self.customers: dict[int, CustomerState] = {}
        self.terminals: dict[int, TerminalState] = {}
        # tx_id -> (terminal id, absolute sequence, customer id, tx time) for labels still to come.
        self.pending: dict[int, tuple[int, int, int, int]] = {}
        self._updates = 0

    # -- size ---------------------------------------------------------------------------------
    def size(self) -> dict[str, int]:
        return {"customers": len(self.customers), "terminals": len(self.terminals),
                "customer_events": sum(len(c.times) for c in self.customers.values()),
                "terminal_events": sum(len(t.times) for t in self.terminals.values()),
                "pending_labels": len(self.pending)}

    # -- updates ------------------------------------------------------------------------------
    def update(self, tx_id: int, tx_time: int, customer_id: int, terminal_id: int, amount: float,
               fraud: int = -1) -> list[float]:
        """Add one transaction and return its features (in FEATURES order).

        fraud: the label if already known (replaying history), else -1; a label that arrives
        later goes through add_label(). Either way it counts only once older than the delay.
        """
        cents = round(amount * 100)
        c_feats, (ratio, z, outliers) = self._customer(customer_id, tx_time, cents)
        t_feats = self._terminal(terminal_id, tx_time, fraud)
        seconds = tx_time % DAY
        day = tx_time // DAY
        weekend = 1.0 if (START_WEEKDAY + day) % 7 >= 5 else 0.0
        night = 1.0 if seconds < 7 * 3600 else 0.0
        known = self._customer_known_fraud(customer_id, tx_time)
        self._updates += 1
        if self._updates % 65536 == 0:
            self._prune_pending(tx_time)
        if fraud < 0:
            term = self.terminals[terminal_id]
            self.pending[tx_id] = (terminal_id, term.base + len(term.times) - 1, customer_id, tx_time)
        elif fraud == 1:
            self.customers[customer_id].fraud_times.append(tx_time)
        return [cents / 100, weekend, night, *c_feats, *t_feats, ratio, z, outliers, known]

    def add_label(self, tx_id: int, fraud: int) -> bool:
        """Record a late label; returns False when the transaction is unknown or already evicted."""
        entry = self.pending.pop(tx_id, None)
        if entry is None:
            return False
        terminal_id, seq, customer_id, tx_time = entry
        term = self.terminals.get(terminal_id)
        if term is not None and seq >= term.base:
            i = seq - term.base
            term.labels[i] = fraud
            if fraud == 1 and i < term.end:  # already inside some windows: count it now
                term.f1 += term.s1 <= i
                term.f7 += term.s7 <= i
                term.f30 += term.s30 <= i
        if fraud == 1 and customer_id in self.customers:
            times = self.customers[customer_id].fraud_times
            times.append(tx_time)
            times.sort()
        return True

    def _prune_pending(self, now):
        """Forget labels that would arrive too late to enter any window."""
        oldest = now - self.delay - WINDOWS[-1] * DAY
        for tx_id in [k for k, v in self.pending.items() if v[3] <= oldest]:
            del self.pending[tx_id]

    # -- customer windows -----------------------------------------------------------------------
    # The windows are unrolled (1, 7, 30 days): this is the hot path of training and scoring.
    def _customer(self, customer_id, t, cents):
        cust = self.customers.get(customer_id)
        if cust is None:
            cust = self.customers[customer_id] = CustomerState()
        times, amounts, outlier = cust.times, cust.cents, cust.outlier
        n = len(times)
        s, acc, limit = cust.s1, cust.sum1, t - DAY
        while s < n and times[s] <= limit:
            acc -= amounts[s]
            s += 1
        cust.s1, cust.sum1 = s, acc
        s, acc, o7, limit = cust.s7, cust.sum7, cust.outliers7, t - 7 * DAY
        while s < n and times[s] <= limit:
            acc -= amounts[s]
            o7 -= outlier[s]
            s += 1
        cust.s7, cust.sum7 = s, acc
        s, acc, limit = cust.s30, cust.sum30, t - 30 * DAY
        un, us, usq = cust.usual_n, cust.usual_sum, cust.usual_sumsq
        while s < n and times[s] <= limit:
            a = amounts[s]
            acc -= a
            if not outlier[s]:
                un -= 1
                us -= a
                usq -= a * a
            s += 1
        # Judge this amount against the card's usual amounts (current excluded).
        if un:
            mean = us / un
            var = usq / un - mean * mean
            ratio = cents / mean if mean else 0.0
            z = (cents - mean) / math.sqrt(var) if var > 0 else 0.0
        else:
            ratio = z = 0.0
        is_outlier = un >= 3 and ratio > OUTLIER_RATIO
        if not is_outlier:
            un += 1
            us += cents
            usq += cents * cents
        times.append(t)
        amounts.append(cents)
        outlier.append(is_outlier)
        n += 1
        cust.s30, cust.sum30 = s, acc + cents
        cust.usual_n, cust.usual_sum, cust.usual_sumsq = un, us, usq
        cust.outliers7 = o7 + is_outlier
        cust.sum1 += cents
        cust.sum7 += cents
        c1, c7, c30 = n - cust.s1, n - cust.s7, n - s
        if s > 256 and s * 2 > n:  # evict what left the longest window
            del times[:s], amounts[:s], outlier[:s]
            cust.s1 -= s
            cust.s7 -= s
            cust.s30 = 0
        return ((c1, c7, c30, cust.sum1 / c1 / 100, cust.sum7 / c7 / 100, cust.sum30 / c30 / 100),
                (ratio, z, float(cust.outliers7)))

    def _customer_known_fraud(self, customer_id, t):
        """Frauds of this card in (t - delay - 30d, t - delay]."""
        times = self.customers[customer_id].fraud_times
        if not times:
            return 0.0
        lo, hi = t - self.delay - WINDOWS[-1] * DAY, t - self.delay
        while times and times[0] <= lo:
            times.pop(0)
        return float(sum(1 for x in times if x <= hi))

    # -- terminal windows -----------------------------------------------------------------------
    def _terminal(self, terminal_id, t, fraud):
        term = self.terminals.get(terminal_id)
        if term is None:
            term = self.terminals[terminal_id] = TerminalState()
        times, labels = term.times, term.labels
        n = len(times)
        horizon = t - self.delay
        e, f1, f7, f30 = term.end, term.f1, term.f7, term.f30
        while e < n and times[e] <= horizon:
            if labels[e] == 1:
                f1 += 1
                f7 += 1
                f30 += 1
            e += 1
        s, limit = term.s1, horizon - DAY
        while s < e and times[s] <= limit:
            f1 -= labels[s] == 1
            s += 1
        term.s1 = s
        s, limit = term.s7, horizon - 7 * DAY
        while s < e and times[s] <= limit:
            f7 -= labels[s] == 1
            s += 1
        term.s7 = s
        s, limit = term.s30, horizon - 30 * DAY
        while s < e and times[s] <= limit:
            f30 -= labels[s] == 1
            s += 1
        term.s30, term.end, term.f1, term.f7, term.f30 = s, e, f1, f7, f30
        c1, c7, c30 = e - term.s1, e - term.s7, e - s
        times.append(t)
        labels.append(fraud)
        if s > 256 and s * 2 > n:
            del times[:s], labels[:s]
            term.base += s
            term.end -= s
            term.s1 -= s
            term.s7 -= s
            term.s30 = 0
        return (c1, c7, c30, f1 / c1 if c1 else 0.0, f7 / c7 if c7 else 0.0, f30 / c30 if c30 else 0.0)


def featurize(state: FeatureState, transactions: np.ndarray, with_labels: bool = False) -> np.ndarray:
    """Features of a structured array of transactions (simulator.TX_DTYPE), in order."""
    labels = transactions["fraud"].tolist() if with_labels else [-1] * transactions.size
    rows = list(map(state.update, transactions["tx_id"].tolist(), transactions["tx_time"].tolist(),
                    transactions["customer_id"].tolist(), transactions["terminal_id"].tolist(),
                    transactions["amount"].tolist(), labels))
    return np.array(rows, dtype=np.float64).reshape(len(rows), len(FEATURES))
