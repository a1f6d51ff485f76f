"""Start a consumer group at the current end of some topics: commit their high watermarks.

The demo's worker should react to live events, not spend minutes re-reading the 80,000
history events (it works through ~600-1,700 events/s here). The history already reached
the model through the offline job, and users the model knows get their offline vector
blended into the nearline one, so nothing is lost by skipping it. The group must have no
active member when this runs (the broker refuses otherwise), so it runs before the worker
starts.

Example::

    skip_to_end(kafka, "demo-1a2b.nearline-worker", ["demo-1a2b.events.view", ...])
"""

from __future__ import annotations

import uuid

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from schemas.errors import NearlineError
from schemas.settings import KafkaSettings


def end_offsets(
    kafka: KafkaSettings, topics: list[str], timeout: float = 10.0
) -> list[TopicPartition]:
    """Every partition of ``topics`` at its high watermark."""
    probe = Consumer({**kafka.client_config(), "group.id": f"nearline-probe-{uuid.uuid4().hex}"})
    try:
        out = []
        for topic in topics:
            meta = probe.list_topics(topic, timeout=timeout).topics[topic]
            for partition in sorted(meta.partitions):
                _, high = probe.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=timeout
                )
                out.append(TopicPartition(topic, partition, high))
        return out
    finally:
        probe.close()


def skip_to_end(kafka: KafkaSettings, group: str, topics: list[str], timeout: float = 10.0) -> int:
    """Commit ``group``'s offsets at the end of ``topics``; return how many events it skips."""
    positions = end_offsets(kafka, topics, timeout)
    admin = AdminClient(dict(kafka.client_config()))
    request = [ConsumerGroupTopicPartitions(group, positions)]
    try:
        result = admin.alter_consumer_group_offsets(request)[group].result(timeout)
    except KafkaException as exc:
        raise NearlineError(f"could not set the offsets of group {group}: {exc}") from exc
    failed = [tp for tp in result.topic_partitions if tp.error is not None]
    if failed:
        raise NearlineError(
            f"could not set the offsets of group {group}: "
            + ", ".join(f"{tp.topic}[{tp.partition}] {tp.error}" for tp in failed)
        )
    return sum(tp.offset for tp in positions)
