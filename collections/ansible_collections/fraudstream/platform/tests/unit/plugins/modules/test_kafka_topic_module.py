# Copyright: fraudstream contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kafka_topic run in-process against a fake cluster: deletes wait for every broker, check mode
keeps the documented types, growing partitions warns."""
from __future__ import annotations

import pytest

from ansible_collections.fraudstream.platform.plugins.module_utils.kafka_topics import wait_until_deleted
from ansible_collections.fraudstream.platform.tests.unit.plugins.modules.fakes import (
    FakeAdmin,
    FakeCluster,
    run_module,
    warning_texts,
)


def kafka_topic(cluster, check_mode=False, diff=False, **args):
    return run_module("kafka_topic", args, cluster=cluster, check_mode=check_mode, diff=diff)


def asked(cluster, broker):
    return sum(1 for call in cluster.calls if call == ("metadata", broker))


# -- delete waits until no broker lists the topic -------------------------------------------------------
def test_delete_returns_only_once_no_broker_lists_the_topic():
    cluster = FakeCluster(brokers=(1, 2, 3))
    cluster.add_topic("t")
    cluster.linger = {2: 3, 3: 1}  # broker 2 lists it for 3 more requests, broker 3 for 1
    result, code = kafka_topic(cluster, name="t", state="absent")
    assert code == 0 and result["changed"] and result["actions"] == ["delete topic"] and result["topic"] == {}
    assert cluster.lingering == {}, "a broker still lists the topic after the module returned"
    assert asked(cluster, 2) == 4 and asked(cluster, 3) == 2 and asked(cluster, 1) == 1


def test_delete_that_a_broker_does_not_finish_fails_naming_the_topic_and_what_was_seen():
    cluster = FakeCluster(brokers=(1, 2))
    cluster.add_topic("fraud-scratch", partitions=6)
    cluster.linger = {2: 10 ** 6}
    result, code = kafka_topic(cluster, name="fraud-scratch", state="absent", timeout=1)
    assert code == 1
    assert "topic 'fraud-scratch'" in result["msg"] and "after 1s the topic is still seen" in result["msg"]
    assert "broker 2 (kafka-2:9092) lists it with 6 partition(s)" in result["msg"]
    assert "broker 1" not in result["msg"]
    assert result["still_seen"] == {"broker 2 (kafka-2:9092)": "lists it with 6 partition(s)"}
    assert result["changed"] and result["actions"] == ["delete topic"]


def test_a_broker_that_does_not_answer_keeps_the_delete_unfinished():
    cluster = FakeCluster(brokers=(1, 2))
    cluster.add_topic("t")
    cluster.unreachable = {2}
    result, code = kafka_topic(cluster, name="t", state="absent", timeout=1)
    assert code == 1 and "broker 2 (kafka-2:9092) did not answer (NodeNotReadyError" in result["msg"]


def test_deleting_an_absent_topic_is_ok_and_sends_nothing():
    cluster = FakeCluster()
    result, code = kafka_topic(cluster, name="gone", state="absent", diff=True)
    assert code == 0 and not result["changed"] and result["actions"] == [] and result["topic"] == {}
    assert result["diff"] == {"before": {}, "after": {}}
    assert not [c for c in cluster.calls if c[0] in ("delete_topics", "metadata")]


def test_check_mode_delete_predicts_and_does_not_delete():
    cluster = FakeCluster()
    cluster.add_topic("t")
    result, code = kafka_topic(cluster, check_mode=True, diff=True, name="t", state="absent")
    assert code == 0 and result["changed"] and result["actions"] == ["delete topic"]
    assert result["diff"]["before"]["partitions"] == 3 and result["diff"]["after"] == {}
    assert "t" in cluster.topics


def test_timeout_must_be_positive():
    result, code = kafka_topic(FakeCluster(), name="t", state="absent", timeout=0)
    assert code == 1 and "timeout must be a positive number of seconds, got 0" in result["msg"]


def test_create_waits_for_the_new_topic_up_to_timeout():
    cluster = FakeCluster()
    kafka_topic(cluster, name="t", partitions=1, timeout=7)
    assert ("wait_for_topics", 7000) in cluster.calls


# -- wait_until_deleted on its own, with a clock that does not sleep ------------------------------------
class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class Client:
    def __init__(self, cluster):
        self.admin = FakeAdmin(cluster)


def deleted_but_lingering_on_broker_2():
    """Topic t deleted; broker 2 keeps listing it (as good as forever)."""
    cluster = FakeCluster(brokers=(1, 2))
    cluster.add_topic("t")
    cluster.linger = {2: 10 ** 6}
    FakeAdmin(cluster).delete_topics(["t"])
    return cluster, Clock()


def test_a_fenced_broker_is_no_longer_waited_for():
    cluster, clock = deleted_but_lingering_on_broker_2()
    cluster.fenced = {2}
    assert wait_until_deleted(Client(cluster), "t", 5, clock=clock, sleep=clock.sleep) == {}
    assert asked(cluster, 2) == 0


def test_the_wait_reports_at_the_deadline_and_not_before():
    cluster, clock = deleted_but_lingering_on_broker_2()
    still = wait_until_deleted(Client(cluster), "t", 5, clock=clock, sleep=clock.sleep)
    assert still == {"broker 2 (kafka-2:9092)": "lists it with 3 partition(s)"}
    assert 5 <= clock.now < 5.5 and asked(cluster, 1) == 1


def test_a_recreated_topic_of_the_same_name_is_told_apart():
    cluster = FakeCluster(brokers=(1,))
    old = cluster.add_topic("t")
    FakeAdmin(cluster).delete_topics(["t"])
    cluster.add_topic("t")  # auto-created again by a producer, say
    clock = Clock()
    still = wait_until_deleted(Client(cluster), "t", 1, deleted_id=str(old.topic_id), clock=clock, sleep=clock.sleep)
    assert "as a new topic of the same name" in still["broker 1 (kafka-1:9092)"]


# -- check mode keeps the documented types ------------------------------------------------------------
@pytest.mark.parametrize("answers_counts", [True, False], ids=["controller-answer", "broker-config"])
def test_check_mode_create_without_counts_predicts_the_broker_defaults_as_integers(answers_counts):
    cluster = FakeCluster(num_partitions=5, default_replication_factor=1, create_answers_counts=answers_counts)
    result, code = kafka_topic(cluster, check_mode=True, diff=True, name="new")
    assert code == 0 and result["changed"]
    assert result["topic"] == {"name": "new", "partitions": 5, "replication_factor": 1, "config": {}}
    for key in ("partitions", "replication_factor"):
        assert isinstance(result["topic"][key], int) and not isinstance(result["topic"][key], bool)
    assert result["diff"]["after"] == result["topic"]
    assert result["actions"] == ["create topic (partitions=5 (broker default), replication_factor=1 (broker default))"]
    assert "new" not in cluster.topics


def test_check_mode_predicts_what_a_real_run_then_returns():
    cluster = FakeCluster(num_partitions=4)
    predicted = kafka_topic(cluster, check_mode=True, name="new", config={"retention.ms": 1000})[0]
    created = kafka_topic(cluster, name="new", config={"retention.ms": 1000})[0]
    assert predicted["topic"] == created["topic"] and predicted["actions"] == created["actions"]


# -- growing partitions warns; shrinking fails -------------------------------------------------------
@pytest.mark.parametrize("check_mode", [False, True])
def test_growing_partitions_warns_that_keys_move_and_co_partitioned_topics_must_grow(check_mode):
    cluster = FakeCluster()
    cluster.add_topic("fraud-transactions", partitions=6)
    result, code = kafka_topic(cluster, check_mode=check_mode, name="fraud-transactions", partitions=12)
    assert code == 0 and result["actions"] == ["add partitions 6 -> 12"]
    [warning] = warning_texts(result)
    assert "topic 'fraud-transactions' grows from 6 to 12 partitions" in warning
    assert "Records with the same key will map to different partitions from now on" in warning
    assert "ordering per key breaks across the change" in warning
    assert "'<group>-changelog'" in warning and "fraud-labels" in warning
    assert "must be grown to 12 partitions together with this one" in warning
    assert cluster.topics["fraud-transactions"].partitions == (6 if check_mode else 12)


@pytest.mark.parametrize("args", [{"partitions": 6}, {"config": {"retention.ms": 1000}}, {}],
                         ids=["same-count", "config-only", "nothing"])
def test_no_warning_without_growth(args):
    cluster = FakeCluster()
    cluster.add_topic("t", partitions=6)
    result, code = kafka_topic(cluster, name="t", **args)
    assert code == 0 and warning_texts(result) == []


def test_no_warning_on_create():
    result, code = kafka_topic(FakeCluster(), name="t", partitions=12)
    assert code == 0 and result["changed"] and warning_texts(result) == []


def test_shrinking_fails_changes_nothing_and_does_not_warn():
    cluster = FakeCluster()
    cluster.add_topic("t", partitions=6)
    result, code = kafka_topic(cluster, name="t", partitions=3)
    assert code == 1 and "has 6 partitions; Kafka cannot decrease that to 3" in result["msg"]
    assert warning_texts(result) == [] and cluster.topics["t"].partitions == 6
