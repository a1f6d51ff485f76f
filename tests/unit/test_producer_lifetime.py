"""A producer no longer referenced is freed at once, not at the next garbage collection:
until then its librdkafka client stays connected and logs reconnect errors (seen when the
demo stopped a broker it had started, and in CI from a dead-letter writer a test dropped with
letters still queued)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from schemas.catalogue import Catalogue
from schemas.dead_letters import DeadLetterWriter
from schemas.events import ClickEvent, Context, DeadLetter
from schemas.producer import EventProducer
from schemas.settings import KafkaSettings

NOWHERE = KafkaSettings(bootstrap_servers="127.0.0.1:1")


@pytest.fixture
def no_cycle_collector() -> Iterator[None]:
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.usefixtures("no_cycle_collector")
def test_a_dropped_event_producer_is_freed_with_records_queued() -> None:
    producer = EventProducer(NOWHERE, Catalogue("t."))
    producer.send_event(ClickEvent("u1", "i1", "row", 0, Context("s1", "tv")))
    ref = weakref.ref(producer)
    del producer
    assert ref() is None, gc.get_referrers(ref())


@pytest.mark.usefixtures("no_cycle_collector")
def test_a_dropped_dead_letter_writer_is_freed_with_letters_queued() -> None:
    writer = DeadLetterWriter(NOWHERE, Catalogue("t."))
    for n in range(3):
        writer.send(DeadLetter.for_message("t.events.view", 0, n, b"k", b"\x00", "bad", "why"))
    ref = weakref.ref(writer)
    del writer
    assert ref() is None, gc.get_referrers(ref())
