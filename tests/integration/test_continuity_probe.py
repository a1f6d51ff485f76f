"""The worker's continuity probe (:class:`streams.continuity.FirstOffset`) against the real
broker: it tells a message from offsets that hold none (transaction markers), and a probe
that answered nothing is replaced."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka import Producer
from faust.types import TP

from schemas.settings import KafkaSettings
from streams.continuity import FirstOffset

pytestmark = pytest.mark.integration


def test_the_probe_finds_the_first_message_past_transaction_markers(
    kafka_bootstrap: str, create_topic: Callable[..., str], unique: Callable[[str], str]
) -> None:
    topic = create_topic(unique("probe"))
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "transactional.id": unique("t")})
    producer.init_transactions(30)
    for values in ([b"a", b"b"], [b"c"]):  # offsets 0 1 (marker 2) 3 (marker 4)
        producer.begin_transaction()
        for value in values:
            producer.produce(topic, value, b"k")
        producer.commit_transaction(30)
    tp = TP(topic, 0)
    probe = FirstOffset(KafkaSettings(bootstrap_servers=kafka_bootstrap), timeout_s=5.0)
    try:
        assert probe(tp, 0) == 0
        assert probe(tp, 1) == 1
        assert probe(tp, 2) == 3  # offset 2 is a commit marker: no message there
        assert probe.replaced == 0
        assert probe(tp, 4) is None  # only the last marker: nothing (yet)
        assert probe.replaced == 1
        producer.begin_transaction()
        producer.produce(topic, b"d", b"k")  # offset 5
        producer.commit_transaction(30)
        assert probe(tp, 4) == 5  # a new consumer answers
        assert probe.replaced == 1
    finally:
        probe.close()
