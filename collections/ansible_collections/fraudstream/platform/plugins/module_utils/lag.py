# Copyright: fraudstream contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Consumer-group lag arithmetic, free of I/O."""
from __future__ import annotations


def partition_lag(committed, end):
    """Lag of one partition; a partition with no committed offset lags by everything up to end.

    committed: the group's committed offset or None; end: the log-end offset.
    """
    if committed is None or committed < 0:
        return end
    return max(end - committed, 0)


def lag_report(committed, ends, begins=None):
    """Per-partition rows and totals.

    committed: {(topic, partition): offset or None}; ends, begins: {(topic, partition): offset}.
    A partition without a commit counts from its begin offset (what auto.offset.reset=earliest reads).
    """
    rows = []
    for (topic, partition), end in sorted(ends.items()):
        offset = committed.get((topic, partition))
        begin = (begins or {}).get((topic, partition), 0)
        lag = partition_lag(offset, end) if offset is not None else max(end - begin, 0)
        rows.append({"topic": topic, "partition": partition, "committed_offset": offset,
                     "end_offset": end, "lag": lag})
    per_topic = {}
    for row in rows:
        per_topic[row["topic"]] = per_topic.get(row["topic"], 0) + row["lag"]
    return rows, per_topic, sum(per_topic.values())
