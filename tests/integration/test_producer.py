"""EventProducer against the real broker: routing, keys, wire format, and lost deliveries."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer

from schemas.admin import ensure_topics
from schemas.catalogue import Catalogue
from schemas.codec import MAGIC, default_codec
from schemas.errors import SchemaError
from schemas.events import BrowseEvent, ClickEvent, Context, ViewEvent
from schemas.producer import DeliveryError, EventProducer
from schemas.settings import KafkaSettings

pytestmark = pytest.mark.integration


def test_events_go_to_their_topics_keyed_by_user(
    kafka_bootstrap: str, unique: Callable[[str], str]
) -> None:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    catalogue = Catalogue(prefix=unique("p") + ".")
    ensure_topics(kafka, catalogue)
    ctx = Context(session_id="s1", device="tv")
    sent = [
        ClickEvent(user_id="u1", item_id="i1", surface="row", position=2, context=ctx),
        BrowseEvent(user_id="u2", list_id="top", item_ids=("i1", "i2"), context=ctx),
        ViewEvent(
            user_id="u3", item_id="i3", duration_ms=1000, progress=0.5, context=ctx, rating=4.0
        ),
    ]
    with EventProducer(kafka, catalogue) as producer:
        for event in sent:
            producer.send_event(event)
        with pytest.raises(SchemaError):  # validated before it leaves: nothing invalid sent
            producer.send("ClickEvent", {"user_id": "u9"})
    assert producer.delivered == 3 and producer.failed == 0

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": unique("g"),
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([t.name for t in catalogue.event_topics])
    got = {}
    deadline = time.monotonic() + 30
    while len(got) < 3 and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            got[msg.topic()] = msg
    consumer.close()
    codec = default_codec()
    for event in sent:
        msg = got[catalogue.for_event(event.SCHEMA).name]
        assert msg.key() == event.user_id.encode()
        assert msg.value()[:2] == MAGIC
        assert codec.decode(event.SCHEMA, msg.value()) == event.to_dict()


def test_undeliverable_records_are_reported_not_lost_silently() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    producer = EventProducer(
        KafkaSettings(bootstrap_servers=f"127.0.0.1:{dead}"),
        Catalogue(),
        config={"message.timeout.ms": 2000, "logger": _silent()},
    )
    producer.send_event(
        ClickEvent(
            user_id="u1", item_id="i1", surface="row", position=0, context=Context("s", "web")
        )
    )
    with pytest.raises(DeliveryError, match="not delivered|unacknowledged"):
        producer.flush(timeout=10)


def _silent() -> object:
    import logging

    log = logging.getLogger("test.librdkafka")
    log.addHandler(logging.NullHandler())
    log.propagate = False
    return log
