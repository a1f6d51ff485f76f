"""Reading the run's ``recommendations`` topic from now on, with each set's arrival time.

Every partition is assigned at its current end (resolved explicitly, so that no set
published after :class:`RecsReader` is built can be skipped), with no group and nothing
committed.

Example::

    reader = RecsReader(kafka, catalogue)
    for recs, arrived in reader.poll(0.1):   # arrived: time.monotonic() when read
        ...
    reader.close()
"""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer

from deploy.demo.group_offsets import end_offsets
from schemas.catalogue import Catalogue
from schemas.codec import default_codec
from schemas.errors import SchemaError
from schemas.events import RecommendationSet
from schemas.settings import KafkaSettings


class RecsReader:
    def __init__(self, kafka: KafkaSettings, catalogue: Catalogue) -> None:
        topic = catalogue.topic("recommendations").name
        self.consumer = Consumer(
            {
                **kafka.client_config(),
                # librdkafka wants a group id; assign() never joins it and nothing is committed.
                "group.id": f"nearline-demo-reader-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 10,  # we measure latency: do not let fetches linger
            }
        )
        self.consumer.assign(end_offsets(kafka, [topic]))
        self.codec = default_codec()
        self.unreadable = 0

    def poll(self, timeout: float) -> list[tuple[RecommendationSet, float]]:
        out = []
        for msg in self.consumer.consume(500, timeout):
            arrived = time.monotonic()
            if msg.error() is not None or msg.value() is None:
                continue
            try:
                record = self.codec.decode(RecommendationSet.SCHEMA, msg.value())
            except SchemaError:
                self.unreadable += 1
                continue
            out.append((RecommendationSet.from_dict(record), arrived))
        return out

    def close(self) -> None:
        self.consumer.close()
