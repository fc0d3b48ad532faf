"""The scorer's bookkeeping, without I/O: what was read, what waits, what may be committed.

At least once, on every path: an offset becomes safe to commit only when every output of the
records before it (scores, alerts, DLQ records, changelog) was acknowledged by Kafka; records
read after that are forgotten on an error and read again. A DLQ send counts as done only once
acknowledged, so a record is sent to the DLQ again after a rewind if its first send was lost.
scorer.Scorer is the I/O shell around this class.
"""

from __future__ import annotations

import time
from collections import deque
from typing import NamedTuple

from .schema import InvalidRecord


class TopicPartition(NamedTuple):
    topic: str
    partition: int


class Pending:
    """A transaction read and added to its card's window, waiting for the shared state to score it."""
    __slots__ = ("tx", "record", "cents", "card", "extra", "since", "complete")

    def __init__(self, tx, record, cents, card, extra, since: float | None = None):
        self.tx, self.record, self.cents, self.card, self.extra = tx, record, cents, card, extra
        self.since = time.monotonic() if since is None else since
        self.complete = True


def dlq_reason(exc: Exception) -> str:
    """The DLQ reason of a record that failed: the validation reason, or the exception's class."""
    return exc.reason if isinstance(exc, InvalidRecord) else f"error:{type(exc).__name__}"


class Ledger:
    def __init__(self):
        self.next_offset: dict[TopicPartition, int] = {}  # after the last record read, per partition
        self.pending: dict[TopicPartition, deque[Pending]] = {}
        self.dlq_sent: dict[TopicPartition, int] = {}  # highest offset sent to the DLQ, not yet acknowledged
        self.dlq_done: dict[TopicPartition, int] = {}  # highest offset whose DLQ record was acknowledged
        self.safe: dict[TopicPartition, int] = {}  # offsets whose records' outputs are all acknowledged
        self.committed: dict[TopicPartition, int] = {}  # what this member last committed

    # -- reading ------------------------------------------------------------------------------
    def read(self, tp: TopicPartition, last_offset: int) -> None:
        self.next_offset[tp] = last_offset + 1

    def hold(self, tp: TopicPartition, item: Pending) -> None:
        self.pending.setdefault(tp, deque()).append(item)

    def needs_dlq(self, tp: TopicPartition, offset: int) -> bool:
        """False for a record read again after a rewind whose DLQ record was already sent."""
        return offset > max(self.dlq_done.get(tp, -1), self.dlq_sent.get(tp, -1))

    def dlq_queued(self, tp: TopicPartition, offset: int) -> None:
        self.dlq_sent[tp] = max(self.dlq_sent.get(tp, -1), offset)

    # -- scoring ------------------------------------------------------------------------------
    def waiting(self) -> bool:
        return any(self.pending.values())

    def newest_pending_time(self) -> int | None:
        queues = [q for q in self.pending.values() if q]
        return max(q[-1].tx.tx_time for q in queues) if queues else None

    def take_ready(self, limit: float, delay: int, give_up: float) -> tuple[list[Pending], int]:
        """Pending transactions whose state is complete (tx_time - delay < limit), or that have
        waited since before `give_up` (monotonic time; those are marked incomplete), oldest first."""
        ready, forced = [], 0
        for queue in self.pending.values():
            while queue and (queue[0].tx.tx_time - delay < limit or queue[0].since < give_up):
                item = queue.popleft()
                if item.tx.tx_time - delay >= limit:
                    item.complete = False
                    forced += 1
                ready.append(item)
        return ready, forced

    # -- committing ---------------------------------------------------------------------------
    def acknowledged(self) -> None:
        """Kafka acknowledged every output sent so far: DLQ sends are done, and every partition
        read is safe up to what was read, or to its oldest transaction still pending."""
        for tp, offset in self.dlq_sent.items():
            self.dlq_done[tp] = max(self.dlq_done.get(tp, -1), offset)
        self.dlq_sent.clear()
        for tp, offset in self.next_offset.items():
            queue = self.pending.get(tp)
            self.safe[tp] = queue[0].record.offset if queue else offset

    def to_commit(self, partitions=None) -> dict[TopicPartition, int]:
        """Safe offsets that the group does not have yet (of `partitions`, or all)."""
        return {tp: o for tp, o in self.safe.items()
                if self.committed.get(tp) != o and (partitions is None or tp in partitions)}

    def did_commit(self, offsets: dict) -> None:
        self.committed.update(offsets)

    def commit_failed(self, partitions) -> None:
        """An asynchronous commit failed: offer these partitions again at the next commit."""
        for tp in partitions:
            self.committed.pop(tp, None)

    # -- errors and rebalances ----------------------------------------------------------------
    def reset(self) -> None:
        """After a Kafka error: forget what was read but not acknowledged (it is read again from
        the committed offsets). Acknowledged DLQ sends and safe offsets stay true."""
        self.next_offset.clear()
        self.pending.clear()
        self.dlq_sent.clear()
        self.committed.clear()  # ask the group again: a commit may have failed unseen

    def forget(self, partitions) -> None:
        """Partitions revoked or lost: another member reads them from the group's committed offsets."""
        for table in (self.next_offset, self.pending, self.dlq_sent, self.dlq_done, self.safe, self.committed):
            for tp in partitions:
                table.pop(tp, None)
