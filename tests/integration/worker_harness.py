"""Helpers for the stream worker's integration tests: a worker subprocess, event sending,
reading sets, dead letters, states and consumer-group progress from the real broker."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from schemas.admin import ensure_topics
from schemas.artifact import ModelArtifact
from schemas.catalogue import MODEL_MANIFEST_KEY, MODELS_MAX_MESSAGE_BYTES, Catalogue
from schemas.catalogue import model_chunk_key as chunk_key
from schemas.codec import default_codec
from schemas.events import (
    DeadLetter,
    Event,
    ModelChunk,
    ModelManifest,
    RecommendationSet,
)
from schemas.model_chunks import manifest_for, split
from schemas.producer import EventProducer
from schemas.settings import KafkaSettings
from streams.state import UserState


class Deployment:
    """One test's topics (own prefix), app id, settings and worker processes."""

    def __init__(self, bootstrap: str, token: str, tmp: Path, **worker_env: str) -> None:
        self.kafka = KafkaSettings(bootstrap_servers=bootstrap)
        self.prefix = f"w{token}."
        self.catalogue = Catalogue(self.prefix)
        self.group = f"{self.prefix}nearline-worker"
        self.tmp = tmp
        self.env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "NEARLINE_TOPIC_PREFIX": self.prefix,
            "NEARLINE_WORKER_APP_ID": "nearline-worker",
            "NEARLINE_WORKER_DATADIR": str(tmp / "data"),
            "NEARLINE_WORKER_LOGLEVEL": "info",
            "NEARLINE_WORKER_PROGRESS_S": "5",  # a stalled worker's log says where
            **worker_env,
        }
        ensure_topics(self.kafka, self.catalogue)
        self._wait_for_leaders()
        self.workers: list[WorkerProcess] = []

    def _wait_for_leaders(self, timeout: float = 20) -> None:
        # Right after creation a partition may answer NOT_LEADER for a moment, which the
        # model publisher's topic check does not retry.
        probe = Consumer({**self.kafka.client_config(), "group.id": "leader-probe"})
        deadline = time.monotonic() + timeout
        for topic in self.catalogue:
            for p in range(topic.partitions):
                while True:
                    try:
                        probe.get_watermark_offsets(TopicPartition(topic.name, p), timeout=5)
                        break
                    except KafkaException:
                        assert time.monotonic() < deadline, f"{topic.name}[{p}] has no leader"
                        time.sleep(0.2)
        probe.close()

    def worker(self, **env: str) -> WorkerProcess:
        n = len(self.workers)
        data = str(self.tmp / f"data{n}")
        env = {**self.env, "NEARLINE_WORKER_DATADIR": data, **env}
        worker = WorkerProcess(env, self.tmp / f"worker{n}.log")
        self.workers.append(worker)
        worker.start()
        return worker

    def close(self) -> None:
        for worker in self.workers:
            worker.kill()

    def send(self, events: Iterable[Event]) -> None:
        with EventProducer(self.kafka, self.catalogue) as producer:
            for event in events:
                producer.send_event(event)

    def send_raw(self, topic: str, key: bytes | None, value: bytes) -> None:
        producer = Producer(self.kafka.client_config())
        producer.produce(self.catalogue.topic(topic).name, value, key)
        assert producer.flush(30) == 0

    def topic_reader(self, topic: str) -> TopicReader:
        return TopicReader(self.kafka, self.catalogue.topic(topic).name)

    def sets(self) -> SetReader:
        return SetReader(self.topic_reader("recommendations"))

    def publish_tampered(self, model: ModelArtifact) -> None:
        """Chunks of ``model`` with one byte changed, announced with the true checksum."""
        data = model.to_bytes()
        chunks = split(model.version, data, 4096)
        producer = Producer(
            {**self.kafka.client_config(), "message.max.bytes": MODELS_MAX_MESSAGE_BYTES}
        )
        topic, codec = self.catalogue.topic("models").name, default_codec()
        for chunk in chunks:
            if chunk.index == 0:
                chunk = dataclasses.replace(chunk, data=chunk.data[:-1] + b"\x7f")
            value = codec.encode(ModelChunk.SCHEMA, chunk.to_dict())
            producer.produce(topic, value, chunk_key(chunk.version, chunk.index))
        manifest = manifest_for(model, data, len(chunks))
        producer.produce(
            topic, codec.encode(ModelManifest.SCHEMA, manifest.to_dict()), MODEL_MANIFEST_KEY
        )
        assert producer.flush(30) == 0

    def committed_lag(self) -> int:
        """Events not yet committed by the worker group, over every event partition."""
        admin = AdminClient(self.kafka.client_config())
        from confluent_kafka import ConsumerGroupTopicPartitions

        tps = [
            TopicPartition(t.name, p)
            for t in self.catalogue.event_topics
            for p in range(t.partitions)
        ]
        future = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(self.group, tps)])
        committed = {
            (tp.topic, tp.partition): tp.offset
            for tp in future[self.group].result().topic_partitions
        }
        probe = Consumer({**self.kafka.client_config(), "group.id": "lag-probe"})
        lag = 0
        for tp in tps:
            _, high = probe.get_watermark_offsets(tp, timeout=10)
            lag += high - max(committed.get((tp.topic, tp.partition), 0), 0)
        probe.close()
        return lag

    def assignments(self) -> list[set[tuple[str, int]]]:
        """Event partitions assigned to each member of the worker group."""
        admin = AdminClient(self.kafka.client_config())
        group = admin.describe_consumer_groups([self.group])[self.group].result()
        events = {t.name for t in self.catalogue.event_topics}
        return [
            {(tp.topic, tp.partition) for tp in m.assignment.topic_partitions if tp.topic in events}
            for m in group.members
        ]

    def states(self) -> dict[str, UserState]:
        """The latest state per user, read from the worker's changelog to its end."""
        reader = TopicReader(self.kafka, f"{self.group}-user_state-changelog")
        return {k.decode(): UserState.from_bytes(v) for k, v in reader.latest().items() if v}


class WorkerProcess:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streams"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            pytest.fail(f"the worker exited ({self.proc.returncode}):\n{self.tail()}")

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def stop(self, timeout: float = 60) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the worker ignored SIGTERM; see {self.log}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class TopicReader:
    """All partitions of one topic from the beginning, no consumer group commits."""

    def __init__(self, kafka: KafkaSettings, topic: str) -> None:
        self.consumer = Consumer(
            {
                **kafka.client_config(),
                "group.id": "reader",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
            }
        )
        meta = self.consumer.list_topics(topic, timeout=10).topics[topic]
        self.partitions = len(meta.partitions)
        self.consumer.assign(
            [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(self.partitions)]
        )

    def poll(self, timeout: float = 0.2) -> list[Any]:
        out = []
        for msg in self.consumer.consume(500, timeout):
            if msg.error() is None:
                out.append(msg)
        return out

    def latest(self, timeout: float = 20) -> dict[bytes, bytes]:
        """Latest value per key, reading every partition to its current end."""
        at_end: set[int] = set()
        latest: dict[bytes, bytes] = {}
        deadline = time.monotonic() + timeout
        while len(at_end) < self.partitions and time.monotonic() < deadline:
            for msg in self.consumer.consume(500, 0.5):
                if msg.error() is not None:
                    at_end.add(msg.partition())
                else:
                    latest[msg.key()] = msg.value()
        assert len(at_end) == self.partitions, "could not read the changelog to its end"
        return latest


class SetReader:
    """Every RecommendationSet published so far, decoded, in arrival order."""

    def __init__(self, reader: TopicReader) -> None:
        self.reader, self.seen = reader, []  # type: list[RecommendationSet]

    def collect(self) -> None:
        for msg in self.reader.poll():
            record = default_codec().decode(RecommendationSet.SCHEMA, msg.value())
            self.seen.append(RecommendationSet.from_dict(record))

    def wait_for(
        self,
        condition: Callable[[list[RecommendationSet]], bool],
        workers: Iterable[WorkerProcess],
        timeout: float = 30,
        what: str = "",
    ) -> list[RecommendationSet]:
        deadline = time.monotonic() + timeout
        workers = list(workers)
        while time.monotonic() < deadline:
            self.collect()
            if condition(self.seen):
                return self.seen
            for worker in workers:
                worker.check_alive()
        logs = "\n".join(w.tail(2500) for w in workers)
        pytest.fail(
            f"no {what or 'expected set'} after {timeout:g} s; got {self.seen[-5:]}\n{logs}"
        )

    def by_trigger(self, event_id: str) -> list[RecommendationSet]:
        return [s for s in self.seen if s.trigger_event_id == event_id]


def make_model(version: int, *, n_items: int = 40, dim: int = 8, seed: int = 0) -> ModelArtifact:
    rng = np.random.default_rng(seed)
    return ModelArtifact(
        version=version,
        item_ids=tuple(f"i{n}" for n in range(n_items)),
        item_embeddings=rng.normal(size=(n_items, dim)).astype(np.float32),
        item_biases=(rng.normal(size=n_items) * 0.1).astype(np.float32),
        user_ids=("known",),
        user_embeddings=rng.normal(size=(1, dim)).astype(np.float32),
        user_biases=np.zeros(1, np.float32),
        cluster_centroids=rng.normal(size=(3, dim)).astype(np.float32),
        item_clusters=rng.integers(0, 3, n_items, dtype=np.int32),
    )


def letters(reader: TopicReader) -> list[DeadLetter]:
    return [
        DeadLetter.from_dict(default_codec().decode(DeadLetter.SCHEMA, m.value()))
        for m in reader.poll(1.0)
    ]
