"""The per-event pipeline without Kafka: decoding, dead letters, state, bursts, publication."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import streams.processor as processor_module
from schemas.artifact import ModelArtifact
from schemas.catalogue import Catalogue
from schemas.codec import default_codec, encode
from schemas.events import ClickEvent, Context, DeadLetter, RecommendationSet, ViewEvent
from streams.intake import Intake
from streams.model import ModelHolder
from streams.processor import EventProcessor
from streams.settings import StreamsSettings
from streams.signals import Weights
from streams.state import UserState
from streams.trending import DecayedCounts
from streams.trending_board import TrendingBoard

TOPICS = Catalogue("t.")
VIEWS = TOPICS.topic("events.view").name
CLICKS = TOPICS.topic("events.click").name


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Store(dict[bytes, bytes]):
    """A table as the processor sees it."""

    def __init__(self, topic: str) -> None:
        super().__init__()
        self.topic = topic

    def remember(self, key: bytes, value: bytes) -> None:
        self[key] = value


class Output:
    """Writes delivered at once; tokens released on poll, as the real one does."""

    def __init__(self) -> None:
        self.writes: list[tuple[int, str, bytes, bytes]] = []
        self.done: list[str] = []

    def write_many(self, bursts: Any) -> None:
        for partition, writes, tokens in bursts:
            self.writes += [(partition, topic, key, value) for topic, key, value in writes]
            self.done += tokens

    def poll(self) -> list[str]:
        done, self.done = self.done, []
        return done


class Rig:
    def __init__(self, **settings: Any) -> None:
        self.clock = Clock()
        self.states, self.latest = Store("changelog"), Store("recs")
        self.shares: dict[str, DecayedCounts] = {}
        self.output = Output()
        board = TrendingBoard(
            self.shares, lambda: DecayedCounts(3_600_000), lambda: {0, 1}, clock=self.clock
        )
        codec = default_codec()
        self.processor: EventProcessor[str] = EventProcessor(
            Intake(TOPICS, codec, Weights()),
            self.states,
            self.latest,
            board,
            ModelHolder(),
            self.output,
            StreamsSettings(**settings),
            codec,
            clock=self.clock,
            wall=lambda: 42,
        )
        self.offset = 0

    @property
    def published(self) -> list[tuple[int, bytes, RecommendationSet]]:
        return [
            (p, key, RecommendationSet.from_dict(default_codec().decode("RecommendationSet", v)))
            for p, topic, key, v in self.output.writes
            if topic == "recs"
        ]

    def state_writes(self) -> list[tuple[int, bytes]]:
        return [(p, key) for p, topic, key, _ in self.output.writes if topic == "changelog"]

    def feed(
        self, event: ViewEvent | ClickEvent, partition: int = 0, **kw: Any
    ) -> DeadLetter | None:
        self.offset += 1
        topic = VIEWS if isinstance(event, ViewEvent) else CLICKS
        value = encode(event.SCHEMA, event.to_dict())
        key = kw.get("key", event.user_id.encode())
        return self.processor.handle(
            f"token{self.offset}", topic, partition, kw.get("offset", self.offset), key, value
        )

    def flush_due(self) -> list[str]:
        self.processor.flush_due()
        return self.output.poll()

    def flush(self) -> list[str]:
        self.processor.flush()
        return self.output.poll()


def view(user: str = "u1", item: str = "i1") -> ViewEvent:
    return ViewEvent(user, item, 1000, 1.0, Context("s", "tv"), ts=1_700_000_000_000)


def test_a_burst_yields_one_set_naming_its_last_event_then_acks_all() -> None:
    rig = Rig(coalesce_idle_ms=5, coalesce_max_ms=50)
    events = [view(item=f"i{n}") for n in range(3)]
    for event in events:
        assert rig.feed(event, partition=4) is None
        rig.clock.now += 0.001  # 1 ms apart: one burst
    assert rig.flush_due() == []
    rig.clock.now += 0.005
    assert rig.flush_due() == ["token1", "token2", "token3"]
    [(partition, key, recs)] = rig.published
    assert (partition, key, recs.trigger_event_id) == (4, b"u1", events[-1].event_id)
    assert recs.source == "trending" and recs.items == ()  # only its own items are trending
    assert UserState.from_bytes(rig.states[b"u1"]).counts == (0, 0, 3)
    assert rig.state_writes() == [(4, b"u1")]  # one write per burst, to the user's partition


def test_bursts_are_cut_by_max_wait_and_max_events() -> None:
    rig = Rig(coalesce_idle_ms=5, coalesce_max_ms=20)
    for n in range(10):
        rig.feed(view(item=f"i{n}"))
        rig.clock.now += 0.004  # never idle long enough
        rig.flush_due()
    assert len(rig.published) == 2  # at 20 ms and at 40 ms of a 40 ms stream
    each = Rig(coalesce_max_events=1)
    first, second = view(), view(item="i2")
    each.feed(first)
    each.feed(second)  # the first burst is full: it waits, alone, for the next flush
    assert each.output.poll() == [] and each.published == []
    assert each.flush_due() == ["token1", "token2"]  # full bursts are due at once
    assert [r.trigger_event_id for _, _, r in each.published] == [first.event_id, second.event_id]
    states = [UserState.from_bytes(v) for _, t, _, v in each.output.writes if t == "changelog"]
    assert [s.counts for s in states] == [(0, 0, 1), (0, 0, 2)]  # each burst its own state


def test_full_bursts_are_flushed_together_once_enough_wait() -> None:
    rig = Rig(coalesce_max_events=1)
    rig.processor.batch_limit = 3
    for n in range(3):
        rig.feed(view(item=f"i{n}"))  # each event fills the previous one's burst
    assert rig.published == []  # two full bursts wait
    rig.feed(view(item="i3"))  # the third full burst reaches the limit
    assert rig.output.poll() == ["token1", "token2", "token3"]
    triggers = [r.trigger_event_id for _, _, r in rig.published]
    assert len(triggers) == 3 and len(set(triggers)) == 3


def test_duplicates_change_no_state_but_republish() -> None:
    rig = Rig()
    event = view()
    rig.feed(event, offset=7)
    rig.flush()
    before = rig.states[b"u1"]
    rig.feed(event, offset=7)  # redelivered after a crash
    assert rig.processor.duplicates == 1
    rig.flush()
    assert rig.states[b"u1"] == before and len(rig.state_writes()) == 1  # nothing new
    assert [r.trigger_event_id for _, _, r in rig.published] == [event.event_id] * 2


def test_bad_input_becomes_a_dead_letter_with_a_reason() -> None:
    rig = Rig()
    letter = rig.processor.handle("t", VIEWS, 2, 11, b"u1", b"\x00garbage")
    assert isinstance(letter, DeadLetter)
    assert (letter.reason, letter.original_topic, letter.partition, letter.offset) == (
        "not-avro-or-json",
        VIEWS,
        2,
        11,
    )
    wrong = rig.feed(view(user="u2"), key=b"u1")
    assert isinstance(wrong, DeadLetter) and wrong.reason == "wrong-key"
    unknown = rig.processor.handle("t", "elsewhere", 0, 0, b"u1", b"{}")
    assert isinstance(unknown, DeadLetter) and unknown.reason == "unknown-topic"
    assert rig.states == {} and rig.processor.pending == {}


def test_trending_counts_are_per_partition_and_serve_other_users() -> None:
    rig = Rig(top_n=5)
    rig.feed(view("u1", "hit"), partition=0)
    rig.feed(view("u2", "hit"), partition=1)
    rig.feed(view("u3", "other"), partition=1)
    rig.flush()
    assert set(rig.shares) == {"p0", "p1"}
    newcomer = [r for _, k, r in rig.published if k == b"u3"][0]
    assert [i.item_id for i in newcomer.items] == ["hit"]  # merged over partitions 0 and 1


def test_a_user_tripping_a_bug_loses_only_their_own_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rig = Rig()
    rig.feed(view("good"))
    rig.feed(view("bad"))
    real = processor_module.recommend_many

    def fragile(requests: Any, *args: Any) -> Any:
        if any(user == "bad" for user, _, _ in requests):
            raise RuntimeError("bug")
        return real(requests, *args)

    monkeypatch.setattr(processor_module, "recommend_many", fragile)
    assert rig.flush() == ["token1", "token2"]  # nobody's events are held back
    assert [key for _, key, _ in rig.published] == [b"good"]
    assert sorted(key for _, key in rig.state_writes()) == [b"bad", b"good"]


def test_users_flushed_together_get_the_sets_they_would_get_alone() -> None:
    together, alone = Rig(top_n=3), Rig(top_n=3)
    for rig in (together, alone):
        holder = ModelHolder()
        holder.swap(tiny_model())
        rig.processor.models = holder
    events = [view("a", "i0"), view("a", "i1"), view("b", "i5"), view("c", "unknown")]
    for event in events:
        together.feed(event)
    together.flush()
    for event in events:
        alone.feed(event)
        if event.user_id != "a" or event.item_id == "i1":
            alone.flush()

    def strip(rig: Rig) -> list[Any]:
        return [
            (k, [(i.item_id, i.reason) for i in r.items], r.cluster, r.source)
            for _, k, r in rig.published
        ]

    assert strip(together) == strip(alone)
    for (_, _, one), (_, _, other) in zip(together.published, alone.published, strict=True):
        # float32 scoring in batches of another shape may round the last bit differently
        assert [i.score for i in one.items] == pytest.approx([i.score for i in other.items])
    assert [r.source for _, _, r in together.published] == ["nearline", "nearline", "trending"]


def tiny_model() -> ModelArtifact:
    rng = np.random.default_rng(2)
    return ModelArtifact(
        version=1,
        item_ids=tuple(f"i{n}" for n in range(12)),
        item_embeddings=rng.normal(size=(12, 4)).astype(np.float32),
        item_biases=rng.normal(size=12).astype(np.float32),
        user_ids=("b",),
        user_embeddings=rng.normal(size=(1, 4)).astype(np.float32),
        user_biases=np.zeros(1, np.float32),
        cluster_centroids=rng.normal(size=(2, 4)).astype(np.float32),
        item_clusters=np.zeros(12, np.int32),
    )
