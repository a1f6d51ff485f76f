"""Serving's reader of ``recommendations`` survives an error: it resumes at the message that
failed, so the store keeps updating, nothing is lost and nothing else is read twice; a
message that keeps failing is skipped after a few attempts instead of blocking the rest."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import Message, Producer

from schemas.admin import ensure_topics
from schemas.catalogue import Catalogue
from schemas.codec import default_codec
from schemas.events import RecommendationSet, RecommendedItem
from schemas.producer import PRODUCER_DEFAULTS, BrokerWatch
from schemas.settings import KafkaSettings
from serving import recommendation_reader
from serving.recommendation_reader import RecommendationReader
from serving.recommendation_store import RecommendationStore

pytestmark = pytest.mark.integration


class FailsOnce(RecommendationReader):
    """Raises on the 3rd set it takes, once, as a bug or a broken client would."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.taken = 0

    def _take(self, msg: Message, at_end: set[int]) -> None:
        if msg.error() is None:
            self.taken += 1
            if self.taken == 3:
                raise RuntimeError("injected")
        super()._take(msg, at_end)


def _sets(n: int, start: int = 0) -> list[RecommendationSet]:
    return [
        RecommendationSet(f"u{i}", (RecommendedItem(f"i{i}", 1.0),), "nearline", 1, 1_000 + i)
        for i in range(start, start + n)
    ]


def _topic(
    bootstrap: str,
) -> tuple[KafkaSettings, Catalogue, Callable[[list[RecommendationSet]], None]]:
    """A fresh recommendations topic, and a function publishing sets to it."""
    kafka = KafkaSettings(bootstrap_servers=bootstrap)
    catalogue = Catalogue(prefix=f"rr{uuid.uuid4().hex[:10]}.")
    ensure_topics(kafka, catalogue)
    producer = Producer({**kafka.client_config(), **PRODUCER_DEFAULTS})
    codec, topic = default_codec(), catalogue.topic("recommendations").name

    def publish(sets: list[RecommendationSet]) -> None:
        for s in sets:
            producer.produce(topic, codec.encode(s.SCHEMA, s.to_dict()), s.user_id.encode())
        assert producer.flush(30) == 0

    return kafka, catalogue, publish


def test_the_reader_resumes_after_an_error_and_reads_each_set_once(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recommendation_reader, "RESTART_S", 0.1)
    kafka, catalogue, publish = _topic(kafka_bootstrap)
    publish(_sets(10))
    store = RecommendationStore()
    reader = FailsOnce(kafka, catalogue, store)
    reader.start()
    try:
        assert reader.caught_up.wait(30), "the reader never caught up after the error"
        publish(_sets(5, start=10))  # sets arriving after the restart reach the store too
        deadline = time.monotonic() + 30
        while len(store) < 15 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        reader.stop()
    assert reader.restarts == 1 and reader.last_error == "RuntimeError: injected"
    assert len(store) == 15
    # The message that raised was attempted again (not lost); no other was read twice.
    assert reader.taken == 16


class AlwaysFails(RecommendationReader):
    """Raises on every attempt at user u2's set."""

    def _take(self, msg: Message, at_end: set[int]) -> None:
        if msg.error() is None and msg.key() == b"u2":
            raise RuntimeError("poison")
        super()._take(msg, at_end)


def test_a_message_that_always_fails_is_skipped_after_three_attempts(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recommendation_reader, "RESTART_S", 0.1)
    kafka, catalogue, publish = _topic(kafka_bootstrap)
    publish(_sets(10))
    store = RecommendationStore()
    reader = AlwaysFails(kafka, catalogue, store)
    reader.start()
    try:
        assert reader.caught_up.wait(30), "a poison message blocked the reader"
    finally:
        reader.stop()
    assert reader.restarts == recommendation_reader.MAX_ATTEMPTS
    assert len(store) == 9 and not store.has_any("u2") and store.has_any("u3")


class OrphanedOnce(BrokerWatch):
    """Tells the first consumer it watches, once armed, that it lost every broker."""

    armed = threading.Event()
    fired = threading.Event()

    def orphaned(self) -> bool:
        if self.armed.is_set() and not self.fired.is_set():
            self.fired.set()
            return True
        return False


def test_an_orphaned_consumer_is_replaced_and_the_next_reads_on(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recommendation_reader, "BrokerWatch", OrphanedOnce)
    kafka, catalogue, publish = _topic(kafka_bootstrap)
    publish(_sets(10))
    store = RecommendationStore()
    reader = FailsOnce(kafka, catalogue, store)  # counts what it takes; fails on the 3rd
    reader.start()
    try:
        assert reader.caught_up.wait(30)
        OrphanedOnce.armed.set()
        assert OrphanedOnce.fired.wait(10), "the reader never checked its watch"
        publish(_sets(5, start=10))  # read by the replacement
        deadline = time.monotonic() + 30
        while len(store) < 15 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        reader.stop()
    assert reader.replaced == 1 and reader.restarts == 1  # the one injected failure
    assert len(store) == 15
    assert reader.taken == 16  # the replacement resumed where the first stopped: none twice
