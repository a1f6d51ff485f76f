"""Continuity: each event partition's offsets are applied in order, without a hole."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from faust.types import TP

from schemas.settings import KafkaSettings
from streams.continuity import RESEEK_S, Continuity, FirstOffset

VIEW, CLICK = TP("t.events.view", 2), TP("t.events.click", 0)


@dataclass
class FakeConsumer:
    resume_at: dict[TP, int] = field(default_factory=dict)
    seeks: list[tuple[TP, int]] = field(default_factory=list)
    gaps: list[tuple[TP, int, int]] = field(default_factory=list)

    pins: dict[TP, int] = field(default_factory=dict)

    async def seek_back(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))
        self.pins[tp] = offset

    async def where(self, tp: TP) -> str:
        return "here"

    def unpin(self, tp: TP | None = None) -> None:
        if tp is None:
            self.pins.clear()
        else:
            self.pins.pop(tp, None)

    async def accept_gap(self, tp: TP, first: int, last: int) -> None:
        self.gaps.append((tp, first, last))


@dataclass
class Broker:
    """What the probe reads: the offsets that hold a message, per partition."""

    offsets: dict[TP, list[int]]
    asked: int = 0

    def __call__(self, tp: TP, offset: int) -> int | None:
        self.asked += 1
        return next((o for o in self.offsets[tp] if o >= offset), None)


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


def admits(c: Continuity, tp: TP, offsets: list[int]) -> list[bool]:
    async def run() -> list[bool]:
        return [await c.admit(tp, o) for o in offsets]

    return asyncio.run(run())


def test_offsets_in_order_from_where_reading_resumed_are_admitted() -> None:
    consumer = FakeConsumer(resume_at={VIEW: 40, CLICK: 0})
    c = Continuity(consumer, Broker({}))
    assert admits(c, VIEW, [40, 41, 42]) == [True, True, True]
    assert admits(c, CLICK, [0, 1]) == [True, True]
    # Handed again after a seek: the first copies are in the agent's hands already.
    assert admits(c, VIEW, [41, 42, 43]) == [False, False, True]
    assert admits(c, VIEW, [39]) == [False]  # below where reading resumed: committed
    assert c.again == 3
    assert consumer.seeks == [] and consumer.gaps == []


def test_after_a_skipped_message_nothing_is_applied_until_it_comes_again() -> None:
    """Faust skipped offset 0 (acknowledging it) and handed 1 and 2: they must not be
    applied before 0, or 0 would look like a duplicate to the user's state."""
    clock = Clock()
    consumer = FakeConsumer(resume_at={VIEW: 0})
    broker = Broker({VIEW: [0, 1, 2, 3]})
    c = Continuity(consumer, broker, clock)
    assert admits(c, VIEW, [1, 2]) == [False, False]
    assert consumer.seeks == [(VIEW, 0)]  # one seek back, not one per message
    clock.now = RESEEK_S  # still not there a second later (Faust's read offset moved on)
    assert admits(c, VIEW, [3]) == [False]
    assert consumer.seeks == [(VIEW, 0), (VIEW, 0)]
    assert consumer.pins == {VIEW: 0}  # Faust hands everything from 0 until it comes
    assert admits(c, VIEW, [0, 1, 2, 3]) == [True, True, True, True]
    assert consumer.pins == {}
    assert (c.refetched, c.dropped, c.gaps, broker.asked) == (1, 3, 0, 1)


def test_offsets_without_a_message_are_a_gap_committed_over() -> None:
    """A transactional producer's commit marker holds offset 5: the broker's first message
    at or after 5 is 6, the one that came. Nothing is dropped and nothing sought."""
    consumer = FakeConsumer(resume_at={VIEW: 4})
    c = Continuity(consumer, Broker({VIEW: [4, 6, 7]}))
    assert admits(c, VIEW, [4, 6, 7]) == [True, True, True]
    assert consumer.gaps == [(VIEW, 5, 5)]
    assert consumer.seeks == [] and c.gaps == 1


def test_forgetting_on_a_rebalance_starts_again_from_where_reading_resumes() -> None:
    consumer = FakeConsumer(resume_at={VIEW: 10})
    c = Continuity(consumer, Broker({VIEW: list(range(30))}))
    assert admits(c, VIEW, [10, 11]) == [True, True]
    c.reset()
    consumer.resume_at = {VIEW: 20}
    assert admits(c, VIEW, [20]) == [True]


def test_a_gap_the_broker_did_not_answer_for_is_asked_again_when_the_seek_shows_it() -> None:
    consumer = FakeConsumer(resume_at={VIEW: 4})
    answers = iter([None, 6])  # no answer at first (broker away), then the truth
    c = Continuity(consumer, lambda tp, offset: next(answers))
    assert admits(c, VIEW, [6]) == [False]  # not known to be a gap: dropped, sought back
    assert consumer.seeks == [(VIEW, 4)]
    assert admits(c, VIEW, [6, 7]) == [True, True]  # the seek handed 6 first again
    assert consumer.gaps == [(VIEW, 4, 5)]


def test_a_probe_that_answers_nothing_is_replaced_at_the_next_question() -> None:
    # Orphaned (librdkafka #5301) or not, a probe that found nothing is not asked again.
    probe = FirstOffset(KafkaSettings(bootstrap_servers="127.0.0.1:1"), timeout_s=0.3)
    assert probe(VIEW, 5) is None
    assert probe.replaced == 1 and probe._consumer is None
    assert probe(VIEW, 5) is None
    assert probe.replaced == 2
    probe.close()
