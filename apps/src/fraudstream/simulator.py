"""Card-transaction simulator with fraud scenarios.

An independent implementation of the procedure and parameters published in the Fraud Detection
Handbook (Le Borgne, Siblini, Lebichot, Bontempi, Université Libre de Bruxelles, 2022),
chapter 3.2 "Transaction data simulator". No code of the book is used.

Transactions are generated one simulated day at a time, so the same generator serves batch mode
(a fixed number of days written to a file) and live mode (an endless stream on a clock).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

DAY = 86400
START = datetime(2018, 4, 1)
# Structured dtype of one day's (or a dataset's) transactions.
TX_DTYPE = np.dtype([
    ("tx_id", np.int64),
    ("tx_time", np.int64),  # seconds since START
    ("customer_id", np.int32),
    ("terminal_id", np.int32),
    ("amount", np.float64),
    ("fraud", np.int8),
    ("scenario", np.int8),  # 0 genuine, 1 amount > 220, 2 compromised terminal, 3 compromised card
])


@dataclass(frozen=True)
class SimulatorParams:
    n_customers: int = 5000
    n_terminals: int = 10000
    radius: float = 5.0
    seed: int = 0
    # Scenario 1: every transaction above this amount is fraud.
    fraud_amount: float = 220.0
    # Scenario 2: terminals compromised per day, and for how many days.
    compromised_terminals_per_day: int = 2
    terminal_compromise_days: int = 28
    # Scenario 3: cards compromised per day, for how many days, share of their tx hit, amount factor.
    compromised_customers_per_day: int = 3
    customer_compromise_days: int = 14
    customer_fraud_share: float = 1 / 3
    customer_fraud_factor: float = 5.0


class Simulator:
    """Customers, terminals and a day-by-day transaction generator, deterministic for a seed."""

    def __init__(self, params: SimulatorParams | None = None):
        self.params = p = params or SimulatorParams()
        rng = np.random.default_rng(p.seed)
        # Customer profiles: location, mean and std of amounts, mean transactions per day.
        self.customer_xy = rng.uniform(0, 100, size=(p.n_customers, 2))
        self.mean_amount = rng.uniform(5, 100, size=p.n_customers)
        self.std_amount = self.mean_amount / 2
        self.mean_tx_per_day = rng.uniform(0, 4, size=p.n_customers)
        # Terminal profiles: location.
        self.terminal_xy = rng.uniform(0, 100, size=(p.n_terminals, 2))
        # Terminals within the radius of each customer.
        self.available_terminals = self._terminals_in_radius()
        self._unreachable = np.array([len(t) == 0 for t in self.available_terminals])
        self._seed = p.seed

    def _terminals_in_radius(self) -> list[np.ndarray]:
        r2 = self.params.radius ** 2
        out = []
        for xy in self.customer_xy:
            d2 = ((self.terminal_xy - xy) ** 2).sum(axis=1)
            out.append(np.flatnonzero(d2 < r2).astype(np.int32))
        return out

    def _day_rng(self, day: int, stream: int) -> np.random.Generator:
        # Each (day, purpose) has its own stream, so any day can be generated on its own.
        return np.random.default_rng([self._seed, day, stream])

    def genuine_day(self, day: int) -> np.ndarray:
        """All transactions of one day before fraud is injected, sorted by time."""
        p = self.params
        rng = self._day_rng(day, 0)
        counts = rng.poisson(self.mean_tx_per_day)
        # A customer with no terminal in reach makes no transaction.
        counts[self._unreachable] = 0
        customers = np.repeat(np.arange(p.n_customers, dtype=np.int32), counts)
        times = np.rint(rng.normal(DAY / 2, 20000, size=customers.size)).astype(np.int64)
        keep = (times > 0) & (times < DAY)
        customers, times = customers[keep], times[keep]
        amounts = rng.normal(self.mean_amount[customers], self.std_amount[customers])
        negative = amounts < 0
        amounts[negative] = rng.uniform(0, 2 * self.mean_amount[customers[negative]])
        picks = rng.random(customers.size)
        terminals = np.fromiter(
            (t[int(u * len(t))] for t, u in zip((self.available_terminals[c] for c in customers), picks, strict=True)),
            dtype=np.int32, count=customers.size)
        tx = np.zeros(customers.size, dtype=TX_DTYPE)
        tx["tx_time"] = day * DAY + times
        tx["customer_id"] = customers
        tx["terminal_id"] = terminals
        tx["amount"] = np.round(amounts, 2)
        return tx[np.argsort(tx["tx_time"], kind="stable")]

    def day_size(self, day: int) -> int:
        """genuine_day(day).size, without generating the day (~30x cheaper): the same draws, in
        the same order, up to the times. Tx ids count every earlier day's transactions."""
        rng = self._day_rng(day, 0)
        counts = rng.poisson(self.mean_tx_per_day)
        counts[self._unreachable] = 0
        times = np.rint(rng.normal(DAY / 2, 20000, size=int(counts.sum()))).astype(np.int64)
        return int(((times > 0) & (times < DAY)).sum())

    def compromised(self, day: int) -> tuple[np.ndarray, np.ndarray]:
        """Terminals and customers compromised on a given day."""
        p = self.params
        rng = self._day_rng(day, 1)
        terminals = rng.choice(p.n_terminals, size=p.compromised_terminals_per_day, replace=False)
        customers = rng.choice(p.n_customers, size=p.compromised_customers_per_day, replace=False)
        return terminals, customers

    def _still_compromised(self, day: int, kind: int, duration: int) -> list[int]:
        """Terminals (kind 0) or customers (kind 1) compromised within the last `duration` days."""
        active = set()
        for d in range(max(0, day - duration + 1), day + 1):
            active.update(self.compromised(d)[kind].tolist())
        return sorted(active)

    def day(self, day: int, first_tx_id: int = 0) -> np.ndarray:
        """One day of transactions with the three fraud scenarios applied."""
        p = self.params
        tx = self.genuine_day(day)
        tx["tx_id"] = first_tx_id + np.arange(tx.size)
        # In the book's order, a later scenario overrides an earlier one's label.
        big = tx["amount"] > p.fraud_amount
        tx["fraud"][big] = 1
        tx["scenario"][big] = 1
        at_terminal = np.isin(tx["terminal_id"], self._still_compromised(day, 0, p.terminal_compromise_days))
        tx["fraud"][at_terminal] = 1
        tx["scenario"][at_terminal] = 2
        hit = np.isin(tx["customer_id"], self._still_compromised(day, 1, p.customer_compromise_days))
        hit &= self._day_rng(day, 2).random(tx.size) < p.customer_fraud_share
        tx["amount"][hit] = np.round(tx["amount"][hit] * p.customer_fraud_factor, 2)
        tx["fraud"][hit] = 1
        tx["scenario"][hit] = 3
        return tx

    def days(self, first_day: int = 0, n_days: int | None = None):
        """Yield (day, transactions) from first_day on, n_days of them or forever."""
        tx_id = 0
        for d in range(first_day):
            tx_id += self.day_size(d)
        day = first_day
        while n_days is None or day < first_day + n_days:
            tx = self.day(day, tx_id)
            tx_id += tx.size
            yield day, tx
            day += 1

    def dataset(self, n_days: int = 183, first_day: int = 0) -> np.ndarray:
        return np.concatenate([tx for _, tx in self.days(first_day, n_days)])


def tx_datetime(tx_time: int) -> datetime:
    return START + timedelta(seconds=int(tx_time))


def day_of(date: str) -> int:
    """Day index of an ISO date (2018-07-25 -> 115)."""
    return (datetime.fromisoformat(date) - START).days


def save(path: str, transactions: np.ndarray, params: SimulatorParams) -> None:
    np.savez_compressed(path, transactions=transactions, **{f"param_{k}": v for k, v in vars(params).items()})


def load(path: str) -> np.ndarray:
    with np.load(path) as data:
        return data["transactions"]
