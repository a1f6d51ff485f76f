"""The worker's Faust consumer (streams.transport): the seek that ends recovery, the
acknowledgements it lets through, and the gaps it records."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import faust
from faust.types import TP

from streams.transport import Consumer, Transport

VIEW, CLICK, BROWSE = TP("t.events.view", 2), TP("t.events.click", 0), TP("t.events.browse", 1)


class FakeThread:
    """The consumer thread's seeks, without a broker."""

    def __init__(self, committed: dict[TP, int | None], earliest: dict[TP, int]) -> None:
        self.committed, self.earliest = committed, earliest
        self.to_beginning: list[TP] = []

    async def seek_to_committed(self) -> dict[TP, int | None]:
        return self.committed

    async def seek_to_beginning(self, *tps: Any) -> None:
        self.to_beginning.extend(TP(tp.topic, tp.partition) for tp in tps)

    async def earliest_offsets(self, *tps: Any) -> dict[Any, int]:
        return {tp: self.earliest[TP(tp.topic, tp.partition)] for tp in tps}


def make_consumer(
    committed: dict[TP, int | None], earliest: dict[TP, int] | None = None
) -> tuple[Consumer, FakeThread]:
    app = faust.App("transport-test", broker="kafka://127.0.0.1:1")
    app.transport = Transport(app.conf.broker_consumer, app)
    consumer = app.consumer
    assert isinstance(consumer, Consumer)
    thread = FakeThread(committed, earliest or {})
    consumer._thread = thread  # type: ignore[assignment]
    return consumer, thread


def test_partitions_never_committed_are_sought_to_their_beginning() -> None:
    """What Faust skipped before the seek is fetched again: without a committed offset,
    Faust's seek alone would leave the partition where the fetcher got to."""
    consumer, thread = make_consumer({VIEW: None, CLICK: 0, BROWSE: 5}, {VIEW: 3, CLICK: 0})
    asyncio.run(consumer.perform_seek())
    assert sorted(thread.to_beginning) == sorted([VIEW, CLICK])
    assert consumer.resume_at == {VIEW: 3, CLICK: 0, BROWSE: 5}


def test_changelog_partitions_are_left_to_recovery() -> None:
    consumer, thread = make_consumer({})
    table = consumer.app.Table("state", default=int)
    changelog = TP(table.changelog_topic.get_topic_name(), 2)
    thread.committed = {VIEW: 7, changelog: None}
    asyncio.run(consumer.perform_seek())
    assert thread.to_beginning == []
    assert consumer.resume_at == {VIEW: 7}


def message(tp: TP, offset: int) -> Any:
    return SimpleNamespace(
        tp=tp, topic=tp.topic, partition=tp.partition, offset=offset, acked=False
    )


def test_only_the_agents_acknowledgements_of_event_messages_go_through() -> None:
    """Faust's stream acknowledges the messages it skips (flow control off, an older
    generation); a commit would then pass them. Those are refused."""
    consumer, _ = make_consumer({})
    skipped, released = message(VIEW, 4), message(VIEW, 5)
    consumer.ack(skipped)
    assert (skipped.acked, consumer.refused_acks) == (False, 1)
    consumer.agent_acks(released)
    consumer.ack(released)
    assert (released.acked, consumer.refused_acks) == (True, 1)


def test_faust_records_no_gap_of_an_event_partition_by_itself() -> None:
    consumer, _ = make_consumer({})
    asyncio.run(consumer._add_gap(VIEW, 10, 14))  # what Faust does after a seek-back jump
    assert not consumer._gap[VIEW]
    asyncio.run(consumer.accept_gap(VIEW, 10, 13))  # what the agent does for a real one
    assert sorted((i.begin, i.end) for i in consumer._gap[VIEW]) == [(10, 14)]


def test_a_partition_sought_back_reads_as_its_pin_until_unpinned() -> None:
    """Faust's drain loop drops messages below its read offset. Handing out the rest of a
    batch fetched before a seek back moves that offset past the message sought: pinned,
    the partition still reads as the offset sought."""
    consumer, _ = make_consumer({})
    reads = consumer._read_offset
    get = reads.__getitem__  # what the drain loop binds once
    seeks: list[tuple[TP, int]] = []

    async def seek_wait(partitions: dict[Any, int]) -> None:
        seeks.extend((TP(tp.topic, tp.partition), o) for tp, o in partitions.items())

    consumer.seek_wait = seek_wait  # type: ignore[method-assign]
    reads[VIEW] = 1900
    asyncio.run(consumer.seek_back(VIEW, 1884))
    assert seeks == [(VIEW, 1884)]
    reads[VIEW] = 2500  # the rest of the old batch, handed out
    assert get(VIEW) == 1884
    assert get(CLICK) is None and CLICK not in reads
    consumer.unpin(VIEW)
    assert get(VIEW) == 2500


def test_a_commit_faust_holds_back_is_named_with_where_it_waits() -> None:
    consumer, _ = make_consumer({VIEW: 40, CLICK: 7, BROWSE: 5})
    asyncio.run(consumer.perform_seek())  # committed (next to read): view 40, click 7, browse 5
    consumer._acked[VIEW].extend([42, 43, 44])  # 40 and 41 never acknowledged: held
    consumer._acked[CLICK].extend([8, 9])  # 7 missing: Faust lets one offset through
    consumer._acked[BROWSE].extend([5, 6])  # consecutive from the committed offset
    holds = consumer.commit_holds({VIEW.topic, CLICK.topic, BROWSE.topic})
    assert holds == [f"{VIEW.topic}[{VIEW.partition}] committed to 40, 3 acknowledged from 42"]
    # The hold is real: Faust's own search commits nothing of that partition.
    assert consumer._new_offset(VIEW) is None and consumer._new_offset(BROWSE) == 7
    assert consumer.commit_holds({CLICK.topic}) == []
