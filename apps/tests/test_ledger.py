"""The scorer's bookkeeping (ledger.py) without a broker: what is committed, ready, rewound, DLQ'd."""
from types import SimpleNamespace

from fraudstream.ledger import Ledger, Pending, TopicPartition, dlq_reason
from fraudstream.schema import InvalidRecord

TX = TopicPartition("fraud-transactions", 0)
TX1 = TopicPartition("fraud-transactions", 1)
LABELS = TopicPartition("fraud-labels", 0)


def pending(offset, tx_time=1000, since=100.0):
    record = SimpleNamespace(offset=offset)
    return Pending(SimpleNamespace(tx_time=tx_time), record, 0, (), (), since=since)


def test_nothing_is_committed_before_kafka_acknowledged_the_outputs():
    ledger = Ledger()
    ledger.read(TX, 9)
    assert ledger.to_commit() == {}, "read is not done: the outputs were not acknowledged yet"
    ledger.acknowledged()
    assert ledger.to_commit() == {TX: 10}
    ledger.did_commit({TX: 10})
    assert ledger.to_commit() == {}, "nothing new to commit"


def test_a_pending_transaction_holds_its_partition_back():
    ledger = Ledger()
    ledger.read(TX, 9)
    ledger.hold(TX, pending(4))
    ledger.hold(TX, pending(7))
    ledger.read(LABELS, 2)
    ledger.acknowledged()
    assert ledger.to_commit() == {TX: 4, LABELS: 3}
    ready, forced = ledger.take_ready(limit=float("inf"), delay=0, give_up=0)
    assert [p.record.offset for p in ready] == [4, 7] and forced == 0
    ledger.acknowledged()
    assert ledger.to_commit() == {TX: 10, LABELS: 3}


def test_ready_needs_complete_state_or_a_timeout():
    ledger = Ledger()
    ledger.hold(TX, pending(1, tx_time=500, since=10.0))
    ledger.hold(TX, pending(2, tx_time=900, since=50.0))
    ledger.hold(TX1, pending(5, tx_time=400, since=60.0))
    assert ledger.newest_pending_time() == 900
    ready, forced = ledger.take_ready(limit=450, delay=0, give_up=0)
    assert [p.record.offset for p in ready] == [5] and forced == 0
    ready, forced = ledger.take_ready(limit=450, delay=0, give_up=20.0)  # offset 1 waited since 10.0
    assert [p.record.offset for p in ready] == [1] and forced == 1 and not ready[0].complete
    assert ledger.waiting()


def test_an_error_forgets_the_unacknowledged_and_keeps_the_acknowledged():
    ledger = Ledger()
    ledger.read(TX, 9)
    ledger.acknowledged()
    ledger.did_commit({TX: 10})
    ledger.read(TX, 19)  # a batch whose outputs then failed
    ledger.hold(TX, pending(15))
    ledger.reset()
    assert not ledger.waiting()
    assert ledger.to_commit() == {TX: 10}, "the rewind commits what was acknowledged (the group may lack it)"
    ledger.acknowledged()
    assert ledger.safe == {TX: 10}, "nothing read after the error became safe"


def test_dlq_records_count_as_sent_only_once_acknowledged():
    ledger = Ledger()
    assert ledger.needs_dlq(TX, 3)
    ledger.dlq_queued(TX, 3)
    assert not ledger.needs_dlq(TX, 3), "read again in the same batch: once"
    ledger.reset()  # the flush failed: the DLQ record may be lost
    assert ledger.needs_dlq(TX, 3), "after a rewind an unacknowledged DLQ send is sent again"
    ledger.dlq_queued(TX, 3)
    ledger.acknowledged()
    ledger.reset()
    assert not ledger.needs_dlq(TX, 3), "acknowledged: a rewind does not duplicate it"
    assert ledger.needs_dlq(TX, 4)


def test_a_failed_asynchronous_commit_is_offered_again():
    ledger = Ledger()
    ledger.read(TX, 9)
    ledger.acknowledged()
    ledger.did_commit(ledger.to_commit())
    ledger.commit_failed({TX})
    assert ledger.to_commit() == {TX: 10}


def test_revoked_partitions_are_forgotten_entirely():
    ledger = Ledger()
    for tp in (TX, TX1):
        ledger.read(tp, 5)
        ledger.hold(tp, pending(5))
        ledger.dlq_queued(tp, 4)
    ledger.acknowledged()
    assert ledger.to_commit({TX}) == {TX: 5}
    ledger.forget({TX})
    assert ledger.to_commit() == {TX1: 5} and set(ledger.pending) == {TX1}
    assert ledger.needs_dlq(TX, 4), "a partition assigned again starts afresh"


def test_dlq_reasons():
    assert dlq_reason(InvalidRecord("out_of_range", "x")) == "out_of_range"
    assert dlq_reason(OverflowError("too big")) == "error:OverflowError"
