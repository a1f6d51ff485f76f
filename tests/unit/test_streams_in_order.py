"""InOrder (acknowledgements released in offset order) and the progress line built on it."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from streams.agents import InOrder
from streams.progress import Progress


@dataclass(frozen=True)
class Msg:
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, eq=False)
class Ev:
    message: Msg


def event(topic: str, partition: int, offset: int) -> Any:
    """What InOrder reads of a Faust event: its message's topic, partition and offset."""
    return Ev(Msg(topic, partition, offset))


def events(topic: str, partition: int, offsets: range) -> list[Any]:
    return [event(topic, partition, o) for o in offsets]


@dataclass
class Clock:
    now: float = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_event_is_released_only_once_every_earlier_one_of_its_partition_is() -> None:
    order = InOrder()
    a = events("v", 0, range(4))
    b = events("v", 1, range(2))
    for e in [*a, *b]:
        order.track(e)
    assert order.release([a[1], a[3], b[0]]) == [b[0]]  # a[0] still out
    assert order.release([a[0]]) == a[:2]  # a[2] still out: a[3] waits
    assert order.release([a[2]]) == a[2:]
    assert order.waiting() == 1 and order.released == 5


def test_an_event_handed_twice_is_tracked_and_released_twice() -> None:
    """Faust may hand the last message read before a seek once more after it: two events
    for one offset, each acknowledged in turn (Faust ignores the second)."""
    order = InOrder()
    first, again, nxt = event("v", 0, 7), event("v", 0, 7), event("v", 0, 8)
    for e in (first, again, nxt):
        order.track(e)
    assert order.release([again, nxt]) == []
    assert order.release([first]) == [first, again, nxt]


def test_oldest_names_the_partition_held_back_longest() -> None:
    clock = Clock()
    order = InOrder(clock)
    assert order.oldest() is None
    a = events("v", 0, range(3))
    order.track(a[0])
    clock.now = 101.0
    b = events("c", 2, range(5, 7))
    order.track(b[0])
    order.track(b[1])
    order.track(a[1])
    clock.now = 102.0
    assert order.oldest() == ("v", 0, 0, 100.0)
    order.release([a[0]])  # v[0] moves on at 102: c[2]@5 is now the oldest head
    assert order.oldest() == ("c", 2, 5, 101.0)
    order.release(b)
    assert order.oldest() == ("v", 0, 1, 102.0)


@dataclass
class FakeProcessor:
    applied: int = 12
    duplicates: int = 1
    published: int = 4
    pending: dict[bytes, object] = field(default_factory=lambda: {b"u1": 1, b"u2": 2})
    ready: list[object] = field(default_factory=list)


def test_the_progress_line_says_what_each_stage_did_and_what_waits() -> None:
    clock = Clock()
    order = InOrder(clock)
    held = events("t.events.view", 2, range(40, 43))
    for e in held:
        order.track(e)
    order.release([held[1]])
    clock.now = 103.5
    monitor = SimpleNamespace(
        # the last offset read per partition, and the committed (next to read) offsets
        tp_read_offsets={TP("t.events.view", 2): 42, TP("t.events.click", 0): 9, TP("x", 0): 5},
        tp_committed_offsets={TP("t.events.view", 2): 40, TP("t.events.click", 0): 10},
    )
    runtime = SimpleNamespace(
        app=SimpleNamespace(monitor=monitor, consumer=SimpleNamespace(refused_acks=0)),
        catalogue=SimpleNamespace(
            event_topics=[
                SimpleNamespace(name="t.events.view"),
                SimpleNamespace(name="t.events.click"),
            ]
        ),
        processor=FakeProcessor(),
        letters=SimpleNamespace(posted=2),
        output=SimpleNamespace(in_flight=6),
        continuity=SimpleNamespace(refetched=0, gaps=0, dropped=0, again=0),
    )
    line = Progress(runtime, order, clock).line()
    assert line == (
        "progress: 12 events applied, 1 duplicates, 2 dead letters, 4 sets published, "
        "0 acknowledged; offsets read to 53, committed to 50; waiting: 2 bursts open, "
        "6 writes in flight, 3 events to acknowledge (oldest: t.events.view[2]@40 for 3.5 s)"
    )
    runtime.app.consumer.refused_acks = 4
    runtime.continuity = SimpleNamespace(refetched=1, gaps=2, dropped=9, again=5)
    assert (
        Progress(runtime, order, clock)
        .line()
        .endswith(
            "; Faust's skips: 4 acknowledgements refused, 1 holes refetched (9 messages dropped "
            "for it), 2 gaps without messages, 5 messages handed twice dropped"
        )
    )


def test_the_progress_line_names_commits_faust_holds_back() -> None:
    clock = Clock()
    monitor = SimpleNamespace(tp_read_offsets={}, tp_committed_offsets={})
    asked: list[list[str]] = []

    def holds(topics: list[str]) -> list[str]:
        asked.append(topics)
        return [f"t.events.view[{n}] committed to 40, 3 acknowledged from 42" for n in range(5)]

    runtime = SimpleNamespace(
        app=SimpleNamespace(
            monitor=monitor, consumer=SimpleNamespace(refused_acks=0, commit_holds=holds)
        ),
        catalogue=SimpleNamespace(event_topics=[SimpleNamespace(name="t.events.view")]),
        processor=FakeProcessor(),
        letters=SimpleNamespace(posted=0),
        output=SimpleNamespace(in_flight=0),
        continuity=SimpleNamespace(refetched=0, gaps=0, dropped=0, again=0),
    )
    line = Progress(runtime, InOrder(clock), clock).line()
    assert asked == [["t.events.view"]]
    assert line.endswith(
        "; commits held: t.events.view[0] committed to 40, 3 acknowledged from 42, "
        "t.events.view[1] committed to 40, 3 acknowledged from 42, "
        "t.events.view[2] committed to 40, 3 acknowledged from 42 and 2 more"
    )
