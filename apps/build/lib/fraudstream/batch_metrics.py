"""A Prometheus histogram fed a whole batch at once (numpy), for the scorer's per-transaction metrics.

prometheus_client observes one value per call (~4 us each); the scorer observes three values per
transaction, so per-value calls would cost more than its features.
"""

from __future__ import annotations

import threading

import numpy as np
from prometheus_client import REGISTRY
from prometheus_client.core import HistogramMetricFamily


class BatchHistogram:
    def __init__(self, name: str, documentation: str, buckets, registry=REGISTRY):
        self.name, self.documentation = name, documentation
        self.bounds = np.asarray(sorted(buckets), dtype=np.float64)
        self.counts = np.zeros(self.bounds.size + 1, dtype=np.int64)  # the last one is +Inf
        self.sum = 0.0
        self.lock = threading.Lock()
        registry.register(self)

    def observe_many(self, values) -> None:
        values = np.asarray(values, dtype=np.float64)
        if not values.size:
            return
        # Bucket i counts values <= bounds[i] (Prometheus "le" semantics).
        idx = np.searchsorted(self.bounds, values, side="left")
        with self.lock:
            self.counts += np.bincount(idx, minlength=self.counts.size)
            self.sum += float(values.sum())

    def collect(self):
        with self.lock:
            cumulative = np.cumsum(self.counts)
            total = self.sum
        buckets = [(repr(float(b)), int(c)) for b, c in zip(self.bounds, cumulative[:-1], strict=True)]
        buckets.append(("+Inf", int(cumulative[-1])))
        family = HistogramMetricFamily(self.name, self.documentation)
        family.add_metric([], buckets, total)
        yield family
