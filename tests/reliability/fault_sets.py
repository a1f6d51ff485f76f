"""Reading the recommendation sets published from now on, to show that results still flow
after a fault.

Example::

    sets = NewSets(kafka, catalogue)          # positioned at the topic's current end
    deployment.send(probes)
    sets.wait_for_triggers({p.event_id for p in probes}, [worker])
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import pytest
from confluent_kafka import Consumer, TopicPartition
from worker_harness import WorkerProcess

from schemas.catalogue import Catalogue
from schemas.codec import default_codec
from schemas.events import RecommendationSet
from schemas.settings import KafkaSettings


class NewSets:
    """The sets published after construction (explicit end offsets, so none is missed)."""

    def __init__(self, kafka: KafkaSettings, catalogue: Catalogue) -> None:
        topic = catalogue.topic("recommendations")
        self.consumer = Consumer(
            {**kafka.client_config(), "group.id": "fault-sets", "enable.auto.commit": False}
        )
        tps = []
        for p in range(topic.partitions):
            _, high = self.consumer.get_watermark_offsets(TopicPartition(topic.name, p), 10)
            tps.append(TopicPartition(topic.name, p, high))
        self.consumer.assign(tps)
        self.seen: list[RecommendationSet] = []

    def collect(self) -> None:
        codec = default_codec()
        for msg in self.consumer.consume(500, 0.2):
            if msg.error() is None and msg.value():
                record = codec.decode(RecommendationSet.SCHEMA, msg.value())
                self.seen.append(RecommendationSet.from_dict(record))

    def wait_for_triggers(
        self, triggers: set[str], workers: Iterable[WorkerProcess], timeout: float = 60
    ) -> list[RecommendationSet]:
        """The sets naming each of ``triggers``; fails if any is missing after ``timeout``."""
        deadline = time.monotonic() + timeout
        workers = list(workers)
        while True:
            self.collect()
            found = [s for s in self.seen if s.trigger_event_id in triggers]
            if {s.trigger_event_id for s in found} == triggers:
                return found
            for worker in workers:
                worker.check_alive()
            if time.monotonic() > deadline:
                missing = len(triggers - {s.trigger_event_id for s in found})
                pytest.fail(f"{missing} of {len(triggers)} probe events got no set in {timeout} s")

    def close(self) -> None:
        self.consumer.close()
