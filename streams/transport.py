"""Faust's Kafka transport, with two fixes to the seek that ends recovery.

When a worker starts (or gets partitions), Faust recovers its tables, then resumes the
event partitions and *then* awaits a seek to their committed offsets. Until that seek,
the fetcher runs: some messages are handed to the agent, and some are fetched and then
dropped (Faust drops what arrives for a partition it has not resumed yet, or while its
flow is stopped). The seek is what brings the dropped ones back. In faust-streaming
0.15.3 with aiokafka 0.14 it goes wrong twice:

1. **A partition the group never committed is not sought at all** (aiokafka seeks only to
   a committed offset above 0). Messages dropped before the seek are then skipped: the
   worker reads on from after them. Nothing ever acknowledges them, so the group's lag
   stays for good; and once a later message of the partition is acknowledged, Faust
   commits past them and they are lost. Our #606 test met this (1 run in 10): a restarted
   worker read nothing of a partition whose first burst had been open at the kill. So such
   partitions are sought to their beginning, where the group starts when it has no
   committed offset (``auto_offset_reset="earliest"``).
2. **The seek moves Faust's read offset back** to the committed one. The rest of the batch
   being handed when the seek lands then jumps from the committed offset to the batch's
   next message. Faust takes that jump for a *gap* (offsets with no message, as
   transaction markers leave) and later counts the gap's offsets as acknowledged,
   although their events may still wait in an open burst. A commit can then pass them
   (faust-streaming #606 again), and a SIGKILL right after loses them. The gap's offsets
   are also acknowledged for real, so they are in Faust's list twice. Its search for the
   first run of consecutive offsets then advances the commit by one offset per commit:
   after a restart, the group's lag stayed in the tens of thousands for minutes while the
   worker had acknowledged everything. So each read offset is kept at least where it was:
   the messages up to it were handed and are in the agent's hands. The messages the seek
   fetches again are dropped by Faust's own read-offset filter, except the last one
   handed, which comes once more and is ignored as a duplicate.

Real gaps are still recorded. Changelog partitions, which recovery reads and positions
itself, are left as Faust sets them.

Example::

    app = faust.App(...)
    app.transport = Transport(app.conf.broker_consumer, app)   # before the app is used
"""

from __future__ import annotations

from collections.abc import Mapping

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP


class Consumer(faust_aiokafka.Consumer):
    def _streamed(self, tp: TP) -> bool:
        """Whether agents read ``tp`` (not a table's changelog, which recovery reads)."""
        return tp.topic not in self.app.tables.changelog_topics

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed = await super().seek_to_committed()
        never = [tp for tp, offset in committed.items() if not offset and self._streamed(tp)]
        if never:
            await self._seek_to_beginning(never)
        return committed

    async def _seek_to_beginning(self, tps: list[TP]) -> None:
        await self._thread.seek_to_beginning(*(faust_aiokafka.ensure_aiokafka_TP(tp) for tp in tps))

    async def perform_seek(self) -> None:
        handed: dict[TP, int] = {
            tp: offset
            for tp, offset in self._read_offset.items()
            if offset is not None and self._streamed(tp)
        }
        await super().perform_seek()
        for tp, offset in handed.items():
            now = self._read_offset.get(tp)
            if now is None or now < offset:
                self._read_offset[tp] = offset


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer
