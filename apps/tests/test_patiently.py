"""source.patiently: start-up calls wait for a broker that cannot answer yet, and nothing else."""
import pytest
from confluent_kafka import KafkaError, KafkaException

from fraudstream.source import patiently, topic_metadata, transient


def failing(*errors):
    """A call that raises each of `errors` in turn, then returns "ok"; and the list of its calls."""
    calls = []

    def call():
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return "ok"
    return call, calls


def down():
    return KafkaException(KafkaError(KafkaError._TRANSPORT, "Connection refused"))


def test_unreachable_broker_is_waited_for_with_backoff_and_reported():
    call, calls = failing(down(), down(), TimeoutError("no answer"), down())
    slept, reasons = [], []
    assert patiently(call, "metadata of t", reasons.append, sleep=slept.append) == "ok"
    assert len(calls) == 5 and slept == [1, 2, 4, 8]
    assert all(r.startswith("waiting for Kafka (metadata of t)") for r in reasons) and len(reasons) == 4


def test_backoff_is_capped():
    call, _ = failing(*(down() for _ in range(8)))
    slept = []
    patiently(call, "x", sleep=slept.append, patience=3600)
    assert max(slept) == 15


@pytest.mark.parametrize("code", [KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.UNKNOWN_TOPIC_OR_PART,
                                  KafkaError.INVALID_CONFIG])
def test_other_errors_are_raised_at_once(code):
    call, calls = failing(KafkaException(KafkaError(code)))
    with pytest.raises(KafkaException):
        patiently(call, "x", sleep=lambda _: pytest.fail("slept on a permanent error"))
    assert len(calls) == 1 and not transient(KafkaException(KafkaError(code)))


def test_gives_up_after_its_patience_with_what_it_waited_for():
    call, calls = failing(*(down() for _ in range(100)))
    with pytest.raises(SystemExit, match=r"gave up after 0 s waiting for Kafka \(metadata of t\): .*Connection refused"):
        patiently(call, "metadata of t", sleep=lambda _: None, patience=0.5)
    assert len(calls) == 1  # the next try would have come after the deadline


@pytest.mark.parametrize("code", [KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
                                  KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.NOT_COORDINATOR])
def test_a_broker_not_ready_yet_is_waited_for_though_librdkafka_did_not_mark_it_retriable(code):
    """Seen live: get_watermark_offsets raised an unmarked NOT_LEADER_FOR_PARTITION while a
    restarted broker took its partitions back, and the scorer died."""
    error = KafkaError(code, "not ready")
    assert not error.retriable()
    call, calls = failing(KafkaException(error))
    assert patiently(call, "x", sleep=lambda _: None) == "ok" and len(calls) == 2


class Metadata:
    """What list_topics() returns for one topic."""

    def __init__(self, topic, error=None, partitions=(0, 1)):
        self.topics = {topic: type("T", (), {"error": error, "partitions": dict.fromkeys(partitions)})()}

    def list_topics(self, topic, timeout):
        return self


def test_topic_metadata_tells_missing_from_not_ready_from_forbidden():
    assert topic_metadata(Metadata("t"), "t").partitions == {0: None, 1: None}
    assert topic_metadata(Metadata("t", KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART)), "t") is None
    with pytest.raises(KafkaException) as raised:
        topic_metadata(Metadata("t", KafkaError(KafkaError.LEADER_NOT_AVAILABLE)), "t")
    assert transient(raised.value)
    with pytest.raises(SystemExit, match="Describe on it"):
        topic_metadata(Metadata("t", KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)), "t")
