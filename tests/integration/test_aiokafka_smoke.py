"""The same group/commit/resume contract through aiokafka, the client Faust is built on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

pytestmark = pytest.mark.integration


async def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for value in values:
            await producer.send(topic, value)
        await producer.flush()
    finally:
        await producer.stop()


async def _consume(bootstrap: str, topic: str, group: str, quiet: float = 3.0) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    got: list[bytes] = []
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=int(quiet * 1000))
            if not batch:
                break
            for records in batch.values():
                got.extend(r.value for r in records if r.value is not None)
            await consumer.commit()
    finally:
        await consumer.stop()
    return got


def test_aiokafka_group_commit_resumes_after_restart(
    kafka_bootstrap: str, unique: Callable[[str], str], create_topic: Callable[..., str]
) -> None:
    topic = create_topic(unique("smoke-aio"), partitions=2)
    group = unique("g")

    async def scenario() -> tuple[list[bytes], list[bytes]]:
        await _produce(kafka_bootstrap, topic, [f"a{i}".encode() for i in range(30)])
        first = await _consume(kafka_bootstrap, topic, group)
        await _produce(kafka_bootstrap, topic, [f"b{i}".encode() for i in range(7)])
        second = await _consume(kafka_bootstrap, topic, group)
        return first, second

    first, second = asyncio.run(scenario())
    assert sorted(first) == sorted(f"a{i}".encode() for i in range(30))
    assert sorted(second) == sorted(f"b{i}".encode() for i in range(7))
