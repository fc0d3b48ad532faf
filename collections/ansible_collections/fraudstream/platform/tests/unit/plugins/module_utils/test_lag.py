from __future__ import annotations

from ansible_collections.fraudstream.platform.plugins.module_utils.lag import lag_report


def test_lag_is_end_minus_committed_summed_per_topic():
    rows, per_topic, total = lag_report({("a", 0): 10, ("a", 1): 5}, {("a", 0): 15, ("a", 1): 5, ("b", 0): 7})
    assert [r["lag"] for r in rows] == [5, 0, 7]
    assert per_topic == {"a": 5, "b": 7} and total == 12


def test_uncommitted_partition_lags_from_its_begin_offset():
    rows, per_topic, total = lag_report({}, {("a", 0): 100}, {("a", 0): 40})
    assert rows[0]["committed_offset"] is None and total == per_topic["a"] == 60


def test_committed_past_end_never_gives_negative_lag():
    assert lag_report({("a", 0): 20}, {("a", 0): 10})[2] == 0


def test_unset_commit_counts_like_no_commit():
    assert lag_report({("a", 0): -1}, {("a", 0): 50}, {("a", 0): 10})[2] == 40
