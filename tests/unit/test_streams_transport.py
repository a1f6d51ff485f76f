"""The worker's Faust transport keeps read offsets across the seek that ends recovery."""

from __future__ import annotations

import asyncio
from typing import cast

import faust
from faust.types import TP

from streams.transport import Consumer, Transport

VIEW, CLICK = TP("t.events.view", 2), TP("t.events.click", 0)


class FakeThread:
    """The consumer thread's seeks, without a broker: the committed offsets it is told,
    and the partitions sent to their beginning."""

    def __init__(self, committed: dict[TP, int | None]) -> None:
        self.committed = committed
        self.to_beginning: list[TP] = []

    async def seek_to_committed(self) -> dict[TP, int | None]:
        return self.committed

    async def seek_to_beginning(self, *tps: TP) -> None:
        self.to_beginning.extend(TP(tp.topic, tp.partition) for tp in tps)


def consumer_with_committed(
    committed: dict[TP, int | None], app: faust.App | None = None
) -> tuple[Consumer, FakeThread]:
    if app is None:
        app = faust.App("transport-test", broker="kafka://127.0.0.1:1")
        app.transport = Transport(app.conf.broker_consumer, app)
    consumer = app.consumer
    assert isinstance(consumer, Consumer)
    thread = FakeThread(committed)
    consumer._thread = thread  # type: ignore[assignment]
    return consumer, thread


def test_a_partition_handed_past_its_committed_offset_keeps_its_read_offset() -> None:
    """Messages up to 1304 were handed before the seek: the rest of their batch (1305 on)
    must not look like a gap after offset 1299, nor may 1299-1303 be handed again."""
    consumer, thread = consumer_with_committed({VIEW: 1299, CLICK: 40})
    consumer._read_offset[VIEW] = 1304
    asyncio.run(consumer.perform_seek())
    assert consumer._read_offset[VIEW] == 1304
    assert consumer._committed_offset[VIEW] == 1299  # what the commits start from: unchanged
    assert consumer._read_offset[CLICK] == 40  # nothing handed yet: the committed offset
    assert thread.to_beginning == []


def test_a_read_offset_behind_the_committed_one_moves_up_to_it() -> None:
    consumer, _ = consumer_with_committed({VIEW: 1299})
    consumer._read_offset[VIEW] = 1200
    asyncio.run(consumer.perform_seek())
    assert consumer._read_offset[VIEW] == 1299


def test_changelog_partitions_are_left_as_faust_sets_them() -> None:
    probe, _ = consumer_with_committed({})
    table = probe.app.Table("state", default=int)
    changelog = TP(table.changelog_topic.get_topic_name(), 2)
    consumer, thread = consumer_with_committed(
        {VIEW: 1299, changelog: None}, cast(faust.App, probe.app)
    )
    consumer._read_offset[changelog] = 77  # recovery read the changelog this far
    asyncio.run(consumer.perform_seek())
    assert consumer._read_offset.get(changelog) is None
    assert thread.to_beginning == []  # recovery positions changelogs itself


def test_a_partition_never_committed_is_sought_to_its_beginning() -> None:
    """Messages fetched and dropped before the seek are fetched again: the group has no
    committed offset there, so Faust's seek alone would leave the partition where the
    fetcher got to, past them."""
    consumer, thread = consumer_with_committed({VIEW: None, CLICK: 0, TP("t.events.browse", 1): 5})
    asyncio.run(consumer.perform_seek())
    assert sorted(thread.to_beginning) == sorted([VIEW, CLICK])
    assert consumer._read_offset.get(VIEW) is None  # every message it fetches is handed


def test_the_gap_faust_recorded_after_such_a_seek_no_longer_appears() -> None:
    """What went wrong before, through Faust's own bookkeeping: with the read offset moved
    back to 1299, the next message of the batch (1305) made Faust add a gap of 1300-1304,
    which it counts as acknowledged."""
    consumer, _ = consumer_with_committed({VIEW: 1299})
    consumer._read_offset[VIEW] = 1304
    asyncio.run(consumer.perform_seek())
    read = consumer._read_offset[VIEW]
    assert read is not None
    gap = 1305 - read  # the test _drain_messages makes before _add_gap
    assert gap == 1
