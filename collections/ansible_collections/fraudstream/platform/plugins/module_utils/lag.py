# Copyright: fraudstream contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Consumer-group lag arithmetic, free of I/O."""
from __future__ import annotations


def lag_report(committed, ends, begins=None):
    """Per-partition rows and totals.

    committed: {(topic, partition): offset or None}; ends, begins: {(topic, partition): offset}.
    A partition without a commit (or with a negative, "unset" one) lags from its begin offset, which
    is what auto.offset.reset=earliest would read; a commit past the end never lags negatively.
    """
    rows = []
    for (topic, partition), end in sorted(ends.items()):
        offset = committed.get((topic, partition))
        start = offset if offset is not None and offset >= 0 else (begins or {}).get((topic, partition), 0)
        lag = max(end - start, 0)
        rows.append({"topic": topic, "partition": partition, "committed_offset": offset,
                     "end_offset": end, "lag": lag})
    per_topic = {}
    for row in rows:
        per_topic[row["topic"]] = per_topic.get(row["topic"], 0) + row["lag"]
    return rows, per_topic, sum(per_topic.values())
