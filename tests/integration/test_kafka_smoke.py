"""Smoke tests of the real broker through confluent-kafka: groups, idempotence,
transactions and watermarks. Each asserts something a broken broker gets wrong."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

pytestmark = pytest.mark.integration


def _consume(
    config: dict[str, object], topic: str, want: int, timeout: float = 30.0
) -> list[bytes]:
    consumer = Consumer(config)
    consumer.subscribe([topic])
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < want and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            got.append(msg.value())
            if config.get("enable.auto.commit") is False:
                consumer.commit(msg, asynchronous=False)
    finally:
        consumer.close()
    return got


def _drain(config: dict[str, object], topic: str, quiet: float = 3.0) -> list[bytes]:
    """Everything a consumer sees until ``quiet`` seconds pass without a message."""
    consumer = Consumer(config)
    consumer.subscribe([topic])
    got: list[bytes] = []
    last = time.monotonic()
    try:
        while time.monotonic() - last < quiet:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                got.append(msg.value())
                last = time.monotonic()
    finally:
        consumer.close()
    return got


def _produce(bootstrap: str, topic: str, values: list[bytes], **extra: object) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, **extra})
    errors: list[object] = []
    for value in values:
        producer.produce(topic, value, on_delivery=lambda err, _msg: err and errors.append(err))
    assert producer.flush(30) == 0
    assert errors == []


def test_group_commit_resumes_after_restart(
    kafka_bootstrap: str, unique: Callable[[str], str], create_topic: Callable[..., str]
) -> None:
    topic = create_topic(unique("smoke-group"), partitions=3)
    _produce(kafka_bootstrap, topic, [f"m{i}".encode() for i in range(20)])
    config = {
        "bootstrap.servers": kafka_bootstrap,
        "group.id": unique("g"),
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    }
    first = _consume(config, topic, want=20)
    assert sorted(first) == sorted(f"m{i}".encode() for i in range(20))

    _produce(kafka_bootstrap, topic, [f"n{i}".encode() for i in range(5)])
    # A restarted member of the same group starts at the committed offsets: only the new five.
    second = _drain(config, topic)
    assert sorted(second) == sorted(f"n{i}".encode() for i in range(5))


def test_idempotent_producer_delivers_each_record_once_in_order(
    kafka_bootstrap: str, unique: Callable[[str], str], create_topic: Callable[..., str]
) -> None:
    topic = create_topic(unique("smoke-idem"), partitions=1)
    values = [f"{i:05d}".encode() for i in range(2000)]
    _produce(
        kafka_bootstrap,
        topic,
        values,
        **{"enable.idempotence": True, "acks": "all", "linger.ms": 5},
    )
    got = _drain(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": unique("g"),
            "auto.offset.reset": "earliest",
        },
        topic,
    )
    assert got == values


def test_aborted_transaction_is_invisible_to_read_committed(
    kafka_bootstrap: str, unique: Callable[[str], str], create_topic: Callable[..., str]
) -> None:
    topic = create_topic(unique("smoke-txn"), partitions=1)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "transactional.id": unique("txn")})
    producer.init_transactions(30)
    producer.begin_transaction()
    for i in range(5):
        producer.produce(topic, f"aborted{i}".encode())
    producer.flush(30)
    producer.abort_transaction(30)
    producer.begin_transaction()
    for i in range(3):
        producer.produce(topic, f"committed{i}".encode())
    producer.commit_transaction(30)

    base = {"bootstrap.servers": kafka_bootstrap, "auto.offset.reset": "earliest"}
    committed = _drain(
        {**base, "group.id": unique("rc"), "isolation.level": "read_committed"}, topic
    )
    assert committed == [f"committed{i}".encode() for i in range(3)]
    # The aborted records are in the log: a read_uncommitted reader sees them. This is what
    # makes the assertion above meaningful rather than vacuous.
    everything = _drain(
        {**base, "group.id": unique("ru"), "isolation.level": "read_uncommitted"}, topic
    )
    assert [v for v in everything if v.startswith(b"aborted")] == [
        f"aborted{i}".encode() for i in range(5)
    ]


def test_high_watermark_counts_every_record(
    kafka_bootstrap: str, unique: Callable[[str], str], create_topic: Callable[..., str]
) -> None:
    topic = create_topic(unique("smoke-hwm"), partitions=1)
    for size in (10, 1, 25):
        _produce(kafka_bootstrap, topic, [b"x"] * size)
    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": unique("g")})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    finally:
        consumer.close()
    assert (low, high) == (0, 36)
