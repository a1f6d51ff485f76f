"""Faust's Kafka consumer, made safe for an agent that acknowledges by hand.

What goes wrong in faust-streaming 0.15.3 (with aiokafka 0.14), found by the worker-kill
tests (``docs/reliability.md`` has the evidence):

1. **Faust acknowledges messages it skips.** A stream skips each message it takes from
   its queue while the app's flow control is off (during a rebalance and recovery, until
   the seek to the committed offsets is done), or that was fetched in an older group
   generation; and it *acknowledges* the skipped message. Faust then commits past it, and
   a message the agent never saw is lost for good. Here only the agent acknowledges event
   messages: :meth:`Consumer.ack` refuses any other acknowledgement of them (the agent
   goes through :meth:`Consumer.agent_acks`).
2. **A partition the group never committed is not sought** by the seek that ends
   recovery (aiokafka seeks only to a committed offset above 0), so what was fetched and
   skipped before it is not fetched again: the worker read on from after it. Such
   partitions are sought to their beginning, where the group starts without a committed
   offset (``auto_offset_reset="earliest"``).
3. **False gaps.** When the seek moves the read offset back while a fetched batch is being
   handed out, the batch's next message looks like a jump, which Faust records as a *gap*
   (offsets with no message, as transaction markers leave) and counts as acknowledged in
   its commits, whether or not the agent has them. Its bookkeeping then also holds those
   offsets twice, and its search for consecutive offsets advances the commit by one offset
   per commit. Here Faust records no gap for event partitions by itself: the agent tells
   the real ones (:meth:`Consumer.accept_gap`, see :class:`streams.continuity.Continuity`).

The agent's side is :class:`~streams.continuity.Continuity`: it checks that each event
partition's offsets come in order without a hole, from :attr:`Consumer.resume_at`, and
seeks back over a hole (a message Faust skipped) before anything after it is applied.

Example::

    app = faust.App(...)
    app.transport = Transport(app.conf.broker_consumer, app)   # before the app is used
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message

log = logging.getLogger(__name__)


class ReadOffsets(dict[TP, int | None]):
    """Faust's read offsets (per partition, the last offset its drain loop handed out; it
    hands out only messages at or above it), with *pins*: a pinned partition reads as its
    pin, whatever the drain loop stored since.

    Seeking back is not enough to get a skipped message again: the drain loop may be in
    the middle of a fetched batch, and handing out its rest moves the read offset past
    the message before it is fetched again, which then drops it. That happened under a
    steady flow after every seek back (a partition held for 25 s, until the next kill).
    """

    def __init__(self) -> None:
        super().__init__()
        self.pins: dict[TP, int] = {}

    def __missing__(self, tp: TP) -> None:
        return None  # as Faust's defaultdict(lambda: None), without storing

    def __getitem__(self, tp: TP) -> int | None:
        pin = self.pins.get(tp)
        return super().__getitem__(tp) if pin is None else pin


class Consumer(faust_aiokafka.Consumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_offset: ReadOffsets = ReadOffsets()
        self.resume_at: dict[TP, int] = {}
        """Per event partition, where reading resumed at the last seek to committed offsets."""
        self.refused_acks = 0
        """Acknowledgements of event messages that did not come from the agent (skips)."""
        self._agent_ack: int | None = None

    def _streamed(self, tp: TP) -> bool:
        """Whether agents read ``tp`` (not a table's changelog, which recovery reads)."""
        return tp.topic not in self.app.tables.changelog_topics

    # 1. acknowledgements --------------------------------------------------------------

    def agent_acks(self, message: Message | None) -> None:
        """Let acknowledgements of ``message`` through (the agent's own, which it makes
        right after this call), until the next call (None: none)."""
        self._agent_ack = None if message is None else id(message)

    def commit_holds(self, topics: Collection[str]) -> list[str]:
        """Partitions of ``topics`` whose commit Faust holds back, and why.

        Faust commits only from the committed offset on, through consecutive acknowledged
        offsets (``Consumer._new_offset``): while the first acknowledged one lies more than
        one past the committed offset, nothing of the partition is committed. A message in
        between that is never acknowledged holds it for good (seen once in CI, cause
        unknown; this says where).
        """
        holds = []
        for tp, acked in list(self._acked.items()):
            committed = self._committed_offset.get(tp)
            if tp.topic in topics and acked and committed and min(acked) - committed > 1:
                holds.append(
                    f"{tp.topic}[{tp.partition}] committed to {committed}, "
                    f"{len(acked)} acknowledged from {min(acked)}"
                )
        return holds

    def drop(self, message: Message) -> None:
        """Forget ``message`` (dropped by the agent, to come again or handed before): a
        stopping worker waits for every message it tracks to be acknowledged, and would
        wait for this one for ever."""
        self._unacked_messages.discard(message)

    def ack(self, message: Message) -> bool:
        if self._agent_ack == id(message):
            return super().ack(message)
        if self._streamed(message.tp):
            self.refused_acks += 1
            return False
        return super().ack(message)

    # 2. the seek that ends recovery ---------------------------------------------------

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed = await super().seek_to_committed()
        streamed = {
            TP(tp.topic, tp.partition): o for tp, o in committed.items() if self._streamed(tp)
        }
        never = [tp for tp, offset in streamed.items() if not offset]
        if never:
            aio = [faust_aiokafka.ensure_aiokafka_TP(tp) for tp in never]
            await self._thread.seek_to_beginning(*aio)
            earliest = await self.earliest_offsets(*aio)
            for tp, offset in earliest.items():
                streamed[TP(tp.topic, tp.partition)] = offset
        self.resume_at = {tp: int(offset or 0) for tp, offset in streamed.items()}
        return committed

    async def seek_back(self, tp: TP, offset: int) -> None:
        """Fetch ``tp`` again from ``offset``, and hand out everything from there until
        :meth:`unpin` (see :class:`ReadOffsets`)."""
        self._read_offset.pins[tp] = offset
        # In the consumer's thread, between two fetches: Faust's seek() from this thread
        # raced with the fetcher handing out a batch, which then set the position past the
        # seek again (aiokafka's FetchResult.getall); the message never came back.
        await self.seek_wait({faust_aiokafka.ensure_aiokafka_TP(tp): offset})
        self._read_offset[tp] = offset

    async def where(self, tp: TP) -> str:
        """Where ``tp`` stands, for a log line: the fetch position, Faust's read offset."""
        position = await self.position(faust_aiokafka.ensure_aiokafka_TP(tp))
        stored = dict.get(self._read_offset, tp)
        return (
            f"fetch position {position}, read offset {stored}, pin {self._read_offset.pins.get(tp)}"
        )

    def unpin(self, tp: TP | None = None) -> None:
        """End :meth:`seek_back` for ``tp`` (None: for every partition)."""
        if tp is None:
            self._read_offset.pins.clear()
        else:
            self._read_offset.pins.pop(tp, None)

    # 3. gaps ---------------------------------------------------------------------------

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        if not self._streamed(tp):
            await super()._add_gap(tp, offset_from, offset_to)

    async def accept_gap(self, tp: TP, first: int, last: int) -> None:
        """Record ``first..last`` of ``tp`` as offsets without a message, to be committed
        over (the agent saw the broker skip them twice)."""
        await super()._add_gap(tp, first, last)


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer
