"""Each event partition's offsets reach the agent in order, without a hole.

The worker's state treats an event at or below a user's offset mark as a duplicate, so an
event must never be applied after a later one of its partition: it would be ignored, and
lost. Faust can skip a message (see :mod:`streams.transport`) and then hand the agent the
ones after it. :class:`Continuity` sees that as a *hole*: the partition's next offset
(from where reading resumed, then one past each message admitted) did not come. It then
drops the messages after the hole (not applied, not acknowledged), seeks the partition
back to the missing offset (:meth:`streams.transport.Consumer.seek_back`), and admits
again from there.

Not every hole is a skip: offsets without a message exist (a transactional producer's
commit markers; records removed by retention before a committed offset). So the broker is
asked first, with a consumer of our own (:class:`FirstOffset`): if the first message at or
after the missing offset is the one that came, the hole is a real gap, and Faust is told
to commit over it. (Asking Faust's consumer instead would not do: its read-offset filter
can drop the messages the seek fetches again.)

Example::

    continuity = Continuity(app.consumer)
    async for event in stream.events():
        if await continuity.admit(event.message.tp, event.message.offset):
            ...  # apply it
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from confluent_kafka import Consumer, KafkaException, TopicPartition
from faust.types import TP

from schemas.settings import KafkaSettings

log = logging.getLogger(__name__)

RESEEK_S = 1.0
"""While a hole stays open, seek back again at most this often (Faust may still be handing
out a batch fetched before the seek, which moves its read offset past the hole again)."""


class Seeker(Protocol):
    """What Continuity needs of the consumer (:class:`streams.transport.Consumer`)."""

    resume_at: dict[TP, int]

    async def seek_back(self, tp: TP, offset: int) -> None: ...

    def unpin(self, tp: TP | None = None) -> None: ...

    async def where(self, tp: TP) -> str: ...

    async def accept_gap(self, tp: TP, first: int, last: int) -> None: ...


class FirstOffset:
    """The offset of the first message at or after an offset of a partition, read with a
    consumer of our own (no group, nothing committed, uncommitted transactions included,
    as Faust reads them). Blocking: call it in a thread.

    The worker asks only about offsets it has seen a message beyond, so a working consumer
    always finds one. One that answers nothing is replaced at the next question: it may
    have lost every broker for good (librdkafka #5301, see
    :class:`~schemas.producer.BrokerWatch`), and would otherwise hold a real gap's
    partition until the worker restarts. (A statistics watch would not do here: the probe
    is idle for hours, and its unserved reports would pile up.)
    """

    def __init__(self, kafka: KafkaSettings, timeout_s: float = 10.0) -> None:
        self.kafka, self.timeout_s = kafka, timeout_s
        self._consumer: Consumer | None = None
        self.replaced = 0
        """Consumers dropped after answering nothing."""

    def __call__(self, tp: TP, offset: int) -> int | None:
        """The first message's offset, or None if there is none (yet)."""
        found = self._ask(self._current(), tp, offset)
        if found is None:
            self._drop()
        return found

    def _ask(self, consumer: Consumer, tp: TP, offset: int) -> int | None:
        try:
            consumer.assign([TopicPartition(tp.topic, tp.partition, offset)])
            deadline = time.monotonic() + self.timeout_s
            try:
                while time.monotonic() < deadline:
                    msg = consumer.poll(0.2)
                    if msg is not None and msg.error() is None:
                        return int(msg.offset() or 0)
                return None
            finally:
                consumer.unassign()
        except KafkaException:  # no answer: the caller seeks back, and asks again later
            log.warning(
                "could not read %s[%d] from %d", tp.topic, tp.partition, offset, exc_info=True
            )
            return None

    def _current(self) -> Consumer:
        if self._consumer is None:
            self._consumer = Consumer(
                {
                    **self.kafka.client_config(),
                    "group.id": "nearline-continuity-probe",
                    "enable.auto.commit": False,
                    "isolation.level": "read_uncommitted",
                    "auto.offset.reset": "earliest",
                }
            )
        return self._consumer

    def _drop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            self.replaced += 1
            # Closing a consumer without brokers can take its timeouts: not on this thread.
            threading.Thread(target=consumer.close, name="continuity-probe", daemon=True).start()

    def close(self) -> None:
        """Close the consumer, if one was made; a later question makes a new one."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            consumer.close()


@dataclass(slots=True)
class Hole:
    expected: int
    """The missing offset."""
    found: int
    """The offset that came instead."""
    sought: float | None = None
    """When the last seek back to ``expected`` completed."""
    seeks: int = 0


class Continuity:
    def __init__(
        self,
        consumer: Seeker,
        first_offset: Callable[[TP, int], int | None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.consumer, self.first_offset, self.clock = consumer, first_offset, clock
        self._next: dict[TP, int] = {}
        self._holes: dict[TP, Hole] = {}
        self.refetched = 0
        """Holes closed by seeking back: messages Faust had skipped."""
        self.gaps = 0
        """Holes that were offsets without a message."""
        self.dropped = 0
        """Messages dropped after a hole (handed again after the seek)."""
        self.again = 0
        """Messages dropped because they had been handed before (see :meth:`admit`)."""

    def reset(self) -> None:
        """Forget every partition (call when partitions are assigned or revoked)."""
        self._next.clear()
        self._holes.clear()
        self.consumer.unpin()

    async def admit(self, tp: TP, offset: int) -> bool:
        """Whether the message at ``offset`` of ``tp`` may be applied now; if not, it is
        to be dropped (neither applied nor acknowledged): it was handed before, or it
        comes again."""
        expected = self._next.get(tp)
        if expected is None:
            expected = self.consumer.resume_at.get(tp, offset)
        if offset < expected:
            # Handed again after a seek (Faust's own, to the committed offsets, or one back
            # over a hole): the first copy is in the agent's hands, or below the committed
            # offset. Applying it again would only count a duplicate.
            self.again += 1
            if self.again <= 100:  # a few per run so far: each one said, for the record
                log.info(
                    "%s[%d]: offset %d handed again (next expected: %d); dropped",
                    *tp,
                    offset,
                    expected,
                )
            return False
        hole = self._holes.get(tp)
        if offset == expected:
            self._next[tp] = offset + 1
            if hole is not None:
                del self._holes[tp]
                self.consumer.unpin(tp)
                self.refetched += 1
                log.info("%s[%d]: offset %d came after the seek back", *tp, offset)
            return True
        if hole is None or (hole.sought is not None and offset == hole.found):
            # A new hole; or the seek back handed the same message first again (the probe
            # may have had no answer the first time): ask the broker what is there.
            first = await asyncio.get_running_loop().run_in_executor(
                None, self.first_offset, tp, expected
            )
            if first == offset:  # nothing between: offsets without a message
                self._holes.pop(tp, None)
                self.consumer.unpin(tp)
                await self.consumer.accept_gap(tp, expected, offset - 1)
                self._next[tp] = offset + 1
                self.gaps += 1
                log.info("%s[%d]: offsets %d-%d hold no message", *tp, expected, offset - 1)
                return True
        if hole is None:
            hole = self._holes[tp] = Hole(expected, offset)
            log.warning(
                "%s[%d]: offset %d came before %d (the broker has %s there: Faust skipped "
                "it); seeking back to %d, and applying nothing after it until it comes",
                *tp,
                offset,
                expected,
                "a message" if first is not None else "no answer yet",
                expected,
            )
        self.dropped += 1
        if hole.sought is None or self.clock() - hole.sought >= RESEEK_S:
            hole.sought = None  # messages seen while the seek runs are stale
            await self.consumer.seek_back(tp, expected)
            hole.sought = self.clock()
            hole.seeks += 1
            if hole.seeks % 10 == 0:
                log.warning(
                    "%s[%d]: still waiting for offset %d after %d seeks back (%s)",
                    *tp,
                    expected,
                    hole.seeks,
                    await self.consumer.where(tp),
                )
        return False
