"""Streaming features: state updated one transaction at a time; the same code trains and scores.

Customer windows cover (t - w, t] and include the current transaction. Terminal windows cover
(t - delay - w, t - delay] with the labels of the transactions in them: as in the book, every
label is known once its transaction is older than the delay (7 days by default), so nothing
leaks from the future. Customer state lives where the card's partition is scored; the terminal
History is order-independent, so scorers that share its events agree (state.py).

Amounts are kept in integer cents, so running sums are exact and features computed by any
number of scorers, in any batch split, are bit-for-bit equal.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_right, insort

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
    """A card's last 30 days: times, amounts (cents), window starts and running sums.

    Sequences are arrays, not lists: the garbage collector does not walk them, so a full
    collection does not pause the scorer in proportion to the state it holds.
    """
    __slots__ = ("times", "cents", "outlier", "s1", "s7", "s30", "sum1", "sum7", "sum30",
                 "usual_n", "usual_sum", "usual_sumsq", "outliers7")

    def __init__(self):
        self.times = array("q")
        self.cents = array("q")
        self.outlier = bytearray()
        self.s1 = self.s7 = self.s30 = 0
        self.sum1 = self.sum7 = self.sum30 = 0
        # 30-day count, sum and sum of squares of the amounts that were not outliers.
        self.usual_n = self.usual_sum = self.usual_sumsq = 0
        self.outliers7 = 0


class History:
    """Every transaction's (terminal, time) and the times of known frauds, per terminal and per card.

    Order-independent: events may arrive from any partition in any order, and a query at t only
    counts what is older than t - delay. So every scorer that holds the same events computes the
    same terminal features, whatever it saw first (see state.py). Times are in arrays (see
    CustomerState).
    """

    def __init__(self, delay_days: int = 7):
        self.delay = delay_days * DAY
        self.terminal_times: dict[int, array] = {}
        self.terminal_frauds: dict[int, array] = {}
        self.customer_frauds: dict[int, array] = {}

    def add_transaction(self, terminal_id: int, t: int) -> None:
        times = self.terminal_times.get(terminal_id)
        if times is None:
            self.terminal_times[terminal_id] = array("q", (t,))
        elif times[-1] <= t:
            times.append(t)
        else:
            insort(times, t)

    def add_fraud(self, terminal_id: int, customer_id: int, t: int) -> None:
        insort(self.terminal_frauds.setdefault(terminal_id, array("q")), t)
        insort(self.customer_frauds.setdefault(customer_id, array("q")), t)

    def terminal(self, terminal_id: int, t: int) -> tuple:
        """Transactions and fraud rate at the terminal in (t - delay - w, t - delay], w = 1, 7, 30 days."""
        times = self.terminal_times.get(terminal_id)
        if not times:
            return (0, 0, 0, 0.0, 0.0, 0.0)
        h = t - self.delay
        hi = bisect_right(times, h)
        c1 = hi - bisect_right(times, h - DAY, 0, hi)
        c7 = hi - bisect_right(times, h - 7 * DAY, 0, hi)
        c30 = hi - bisect_right(times, h - 30 * DAY, 0, hi)
        frauds = self.terminal_frauds.get(terminal_id)
        if not frauds:
            return (c1, c7, c30, 0.0, 0.0, 0.0)
        hi = bisect_right(frauds, h)
        f1 = hi - bisect_right(frauds, h - DAY, 0, hi)
        f7 = hi - bisect_right(frauds, h - 7 * DAY, 0, hi)
        f30 = hi - bisect_right(frauds, h - 30 * DAY, 0, hi)
        return (c1, c7, c30, f1 / c1 if c1 else 0.0, f7 / c7 if c7 else 0.0, f30 / c30 if c30 else 0.0)

    def known_fraud(self, customer_id: int, t: int) -> float:
        """The card's frauds in (t - delay - 30d, t - delay]."""
        times = self.customer_frauds.get(customer_id)
        if not times:
            return 0.0
        h = t - self.delay
        return float(bisect_right(times, h) - bisect_right(times, h - WINDOWS[-1] * DAY))

    def evict(self, before: int) -> None:
        """Forget events at or before `before` (no query at t >= before + delay + 30d needs them)."""
        for table in (self.terminal_times, self.terminal_frauds, self.customer_frauds):
            for key in list(table):
                times = table[key]
                cut = bisect_right(times, before)
                if cut == len(times):
                    del table[key]
                elif cut:
                    del times[:cut]

    def size(self) -> dict[str, int]:
        return {"terminals": len(self.terminal_times),
                "terminal_events": sum(map(len, self.terminal_times.values())),
                "known_frauds": sum(map(len, self.terminal_frauds.values()))}


class Customers:
    """Cards' 30-day windows, updated in each card's transaction order (one partition's order)."""

    def __init__(self):
        self.cards: dict[int, CustomerState] = {}

    def __len__(self):
        return len(self.cards)

    def events(self) -> int:
        return sum(len(c.times) for c in self.cards.values())

    def update(self, customer_id: int, t: int, cents: int, recorded: bool | None = None):
        """Add one transaction; returns (count and average features, (ratio, z, outliers), is_outlier).

        recorded: replay a recorded outlier decision instead of judging the amount again (restore).
        """
        # The windows are unrolled (1, 7, 30 days): this is the hot path of training and scoring.
        cust = self.cards.get(customer_id)
        if cust is None:
            cust = self.cards[customer_id] = CustomerState()
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
        is_outlier = (un >= 3 and ratio > OUTLIER_RATIO) if recorded is None else bool(recorded)
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
                (ratio, z, float(cust.outliers7)), is_outlier)

class FeatureState:
    """One process that sees every transaction in order: training, evaluation, a single scorer."""

    def __init__(self, delay_days: int = 7):
        self.customers = Customers()
        self.history = History(delay_days)
        self._day = 0

    def size(self) -> dict[str, int]:
        return {"customers": len(self.customers), "customer_events": self.customers.events(), **self.history.size()}

    def update(self, tx_id: int, tx_time: int, customer_id: int, terminal_id: int, amount: float,
               fraud: int = 0) -> list[float]:
        """Add one transaction with its label and return its features (in FEATURES order).

        The label only counts once the transaction is older than the delay, as in the book.
        """
        cents = round(amount * 100)
        customer, extra, _ = self.customers.update(customer_id, tx_time, cents)
        row = assemble(cents, tx_time, customer, extra, self.history.terminal(terminal_id, tx_time),
                       self.history.known_fraud(customer_id, tx_time))
        self.history.add_transaction(terminal_id, tx_time)
        if fraud == 1:
            self.history.add_fraud(terminal_id, customer_id, tx_time)
        if tx_time // DAY > self._day:  # once a simulated day, forget what left every window
            self._day = tx_time // DAY
            self.history.evict(tx_time - self.history.delay - WINDOWS[-1] * DAY)
        return row


def assemble(cents: int, t: int, customer: tuple, extra: tuple, terminal: tuple, known: float) -> list[float]:
    """One row in FEATURES order."""
    weekend = 1.0 if (START_WEEKDAY + t // DAY) % 7 >= 5 else 0.0
    night = 1.0 if t % DAY < 7 * 3600 else 0.0
    return [cents / 100, weekend, night, *customer, *terminal, *extra, known]


def featurize(state: FeatureState, transactions: np.ndarray, with_labels: bool = False,
              chunk: int = 100_000, progress=None) -> np.ndarray:
    """Features of a structured array of transactions (simulator.TX_DTYPE), in order.

    Computed `chunk` rows at a time into one float64 array, so the Python rows of a long history
    never all exist at once; progress(done, total), if given, is called after every chunk."""
    X = np.empty((transactions.size, len(FEATURES)), dtype=np.float64)
    for start in range(0, transactions.size, chunk):
        part = transactions[start:start + chunk]
        labels = part["fraud"].tolist() if with_labels else [0] * part.size
        X[start:start + part.size] = list(map(state.update, part["tx_id"].tolist(), part["tx_time"].tolist(),
                                              part["customer_id"].tolist(), part["terminal_id"].tolist(),
                                              part["amount"].tolist(), labels))
        if progress is not None:
            progress(start + part.size, transactions.size)
    return X
