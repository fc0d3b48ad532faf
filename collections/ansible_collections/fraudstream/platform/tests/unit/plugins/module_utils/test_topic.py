from __future__ import annotations

import pytest

from ansible_collections.fraudstream.platform.plugins.module_utils.kafka_options import topic_name_error
from ansible_collections.fraudstream.platform.plugins.module_utils.topic import (
    NO_TOPIC_ID,
    config_value,
    deletion_timeout_message,
    grow_warning,
    plan_update,
    seen_description,
    summary,
    validate_desired,
)

KNOWN = {"retention.ms", "cleanup.policy", "min.insync.replicas", "segment.bytes"}


def topic(partitions=3, rf=1, overrides=None):
    overrides = overrides or {}
    config = {"retention.ms": "604800000", "cleanup.policy": "delete", "min.insync.replicas": "1",
              "segment.bytes": "1073741824"}
    config.update(overrides)
    return {"name": "t", "partitions": partitions, "replication_factor": rf, "config": config, "overrides": overrides}


def test_same_settings_change_nothing():
    plan = plan_update(topic(overrides={"retention.ms": "1000"}), 3, 1, {"retention.ms": 1000}, known_keys=KNOWN)
    assert not plan.changed and not plan.errors


def test_value_equal_to_the_default_is_no_change():
    assert not plan_update(topic(), None, None, {"cleanup.policy": "delete"}, known_keys=KNOWN).changed


def test_partition_increase_is_planned():
    plan = plan_update(topic(), 6)
    assert plan.new_partitions == 6 and plan.after(topic())["partitions"] == 6


def test_partition_decrease_is_refused_with_the_counts():
    plan = plan_update(topic(partitions=6), 3)
    assert not plan.changed
    assert "has 6 partitions" in plan.errors[0] and "decrease that to 3" in plan.errors[0]


def test_replication_factor_change_is_refused():
    plan = plan_update(topic(rf=1), None, 3)
    assert "replication factor 1" in plan.errors[0] and "reassignment" in plan.errors[0]


def test_merge_sets_only_given_keys():
    current = topic(overrides={"segment.bytes": "1000000"})
    plan = plan_update(current, None, None, {"retention.ms": 5000}, "merge", KNOWN)
    assert plan.set_config == {"retention.ms": "5000"} and plan.reset_config == []
    assert plan.after(current)["config"] == {"retention.ms": "5000", "segment.bytes": "1000000"}


def test_replace_resets_other_overrides():
    current = topic(overrides={"segment.bytes": "1000000", "retention.ms": "5000"})
    plan = plan_update(current, None, None, {"retention.ms": "5000"}, "replace", KNOWN)
    assert plan.set_config == {} and plan.reset_config == ["segment.bytes"]
    assert plan.after(current)["config"] == {"retention.ms": "5000"}


def test_unknown_key_is_an_error_and_nothing_is_planned_for_it():
    plan = plan_update(topic(), None, None, {"retension.ms": 1}, known_keys=KNOWN)
    assert "unknown key(s) retension.ms" in plan.errors[0]
    assert "retension.ms" not in plan.set_config


@pytest.mark.parametrize("value, expected", [(True, "true"), (False, "false"), (1000, "1000"),
                                             (["compact", "delete"], "compact,delete"), ("x", "x")])
def test_config_values_compare_as_kafka_reports_them(value, expected):
    assert config_value(value) == expected


@pytest.mark.parametrize("name, fragment", [("", "empty"), ("..", "'.' or '..'"), ("a" * 250, "maximum is 249"),
                                            ("bad name!", "' ', '!'")])
def test_invalid_topic_names(name, fragment):
    assert fragment in topic_name_error(name)


def test_valid_topic_name():
    assert topic_name_error("fraud-transactions.v1_x") is None


def test_argument_errors_name_the_field():
    errors = validate_desired(None, 0, -1)
    assert errors == ["partitions must be a positive integer, got 0", "replication_factor must be a positive integer, got -1"]


def test_summary_of_absent_topic_is_empty():
    assert summary(None) == {}


def test_timeout_must_be_positive():
    assert validate_desired(None, None, None, 0) == ["timeout must be a positive number of seconds, got 0"]
    assert validate_desired(None, None, None, 1) == []


def test_grow_warning_says_keys_move_ordering_breaks_and_co_partitioned_topics_must_grow():
    warning = grow_warning("fraud-transactions", 6, 12)
    assert warning.startswith("topic 'fraud-transactions' grows from 6 to 12 partitions.")
    assert "Records with the same key will map to different partitions from now on" in warning
    assert "ordering per key breaks across the change" in warning
    assert "co-partitioned topic" in warning and "'<group>-changelog'" in warning and "fraud-labels" in warning
    assert warning.endswith("must be grown to 12 partitions together with this one.")


def test_deletion_timeout_message_names_the_topic_and_each_broker_still_seeing_it():
    msg = deletion_timeout_message("t", 60, {"broker 2 (k2:9092)": "lists it with 3 partition(s)",
                                             "broker 1 (k1:9092)": "did not answer (NodeNotReadyError: 1)"})
    assert msg.startswith("topic 't': the controller accepted the delete, but after 60s the topic is still seen: ")
    assert ("broker 1 (k1:9092) did not answer (NodeNotReadyError: 1); broker 2 (k2:9092) lists it with 3 "
            "partition(s).") in msg


@pytest.mark.parametrize("topic_id, deleted_id, new", [("b", "a", True), ("a", "a", False), ("b", None, False),
                                                       (NO_TOPIC_ID, "a", False), ("", "a", False)])
def test_seen_description_tells_a_recreated_topic_apart(topic_id, deleted_id, new):
    text = seen_description(2, None, topic_id, deleted_id)
    assert text.startswith("lists it with 2 partition(s)")
    assert ("as a new topic of the same name" in text) is new


def test_seen_description_names_a_partition_error():
    assert seen_description(0, "LeaderNotAvailableError") == "lists it with 0 partition(s) (error LeaderNotAvailableError)"
