"""The worker's Output against the real broker: batches queued in order, tokens released
only once every write of their burst is delivered, and a full librdkafka queue."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from schemas.producer import DeliveryError
from schemas.settings import KafkaSettings
from streams.output import Output

pytestmark = pytest.mark.integration


def read_all(bootstrap: str, topic: str, partitions: int, n: int) -> list[tuple[int, bytes]]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "output-test"})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    got: list[tuple[int, bytes]] = []
    deadline = time.monotonic() + 30
    while len(got) < n and time.monotonic() < deadline:
        for msg in consumer.consume(500, 0.5):
            if msg.error() is None:
                got.append((msg.partition(), msg.value()))
    consumer.close()
    return got


def drain(output: Output[int], expected: int) -> list[int]:
    released: list[int] = []
    deadline = time.monotonic() + 30
    while len(released) < expected and time.monotonic() < deadline:
        released += output.poll()
        time.sleep(0.01)
    return released


@pytest.mark.parametrize("queue_limit", [None, 7], ids=["roomy-queue", "queue-of-7"])
def test_bursts_are_delivered_in_order_and_release_their_tokens(
    kafka_bootstrap: str,
    create_topic: Callable[..., str],
    unique: Callable[[str], str],
    queue_limit: int | None,
) -> None:
    states = create_topic(unique("states"), partitions=3)
    sets = create_topic(unique("sets"), partitions=3)
    config = {} if queue_limit is None else {"queue.buffering.max.messages": queue_limit}
    output: Output[int] = Output(KafkaSettings(bootstrap_servers=kafka_bootstrap), config)
    bursts = []
    for n in range(60):
        writes = [(states, b"u%d" % (n % 5), b"state-%03d" % n)]
        if n % 4:  # some bursts write no set
            writes.append((sets, b"u%d" % (n % 5), b"set-%03d" % n))
        bursts.append((n % 3, writes, [2 * n, 2 * n + 1]))
    bursts.append((0, [], [1000]))  # nothing to write: its token is free at once
    # A queue of 7 cannot take the first flush's 105 messages at once.
    output.write_many(bursts[:40])
    output.write_many(bursts[40:])
    assert sorted(drain(output, 121)) == sorted([1000] + list(range(120)))
    assert output.in_flight == 0
    for topic, count, prefix in ((states, 60, b"state-"), (sets, 45, b"set-")):
        got = read_all(kafka_bootstrap, topic, 3, count)
        assert len(got) == count
        for partition in range(3):
            values = [v for p, v in got if p == partition]
            assert values == sorted(values)  # the order they were written in
            assert all(v.startswith(prefix) for v in values)
            numbers = [int(v[len(prefix) :]) for v in values]
            assert all(n % 3 == partition for n in numbers)


def test_a_failed_delivery_stops_the_output_and_keeps_the_tokens(
    kafka_bootstrap: str, create_topic: Callable[..., str], unique: Callable[[str], str]
) -> None:
    topic = create_topic(unique("small"), partitions=1, config={"max.message.bytes": "2000"})
    output: Output[int] = Output(
        KafkaSettings(bootstrap_servers=kafka_bootstrap), {"compression.type": "none"}
    )
    output.write_many([(0, [(topic, b"k", b"x" * 10_000)], [1])])  # the broker refuses it
    deadline = time.monotonic() + 30
    with pytest.raises(DeliveryError, match="writes failed"):
        while time.monotonic() < deadline:
            assert output.poll() == []  # the token is never released
            time.sleep(0.05)
