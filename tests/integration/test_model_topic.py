"""The model's trip over a real ``models`` topic: publish, load, follow, refuse, clean up.

Each test has its own topic prefix; the topic is created with its declared partitions and
configuration, so the broker enforces the real message size limit.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from confluent_kafka import Producer

from schemas.artifact import ModelArtifact, ModelRejected
from schemas.catalogue import (
    MODEL_MANIFEST_KEY,
    MODELS_MAX_MESSAGE_BYTES,
    Catalogue,
    model_chunk_key,
)
from schemas.codec import default_codec
from schemas.events import MAX_CHUNK_BYTES, ModelChunk, ModelManifest
from schemas.model_chunks import manifest_for, split
from schemas.model_loader import ModelFollower, load_latest, scan_models
from schemas.model_publisher import publish_model
from schemas.settings import KafkaSettings

pytestmark = pytest.mark.integration


def make_model(version: int, *, n_items: int = 50, dim: int = 16, seed: int = 0) -> ModelArtifact:
    rng = np.random.default_rng(seed)
    return ModelArtifact(
        version=version,
        item_ids=tuple(f"i{n}" for n in range(n_items)),
        item_embeddings=rng.normal(size=(n_items, dim)).astype(np.float32),
        item_biases=rng.normal(size=n_items).astype(np.float32),
        user_ids=("u1", "u2", "u3"),
        user_embeddings=rng.normal(size=(3, dim)).astype(np.float32),
        user_biases=rng.normal(size=3).astype(np.float32),
        item_feature_names=("genre:drama", "genre:comedy"),
        feature_embeddings=rng.normal(size=(2, dim)).astype(np.float32),
        feature_biases=rng.normal(size=2).astype(np.float32),
        cluster_centroids=rng.normal(size=(4, dim)).astype(np.float32),
        item_clusters=rng.integers(0, 4, n_items, dtype=np.int32),
        config={"loss": "warp", "components": dim},
        cutoff={"last_event_ts": 1_700_000_000_000},
        metrics={"precision@10": 0.2 + version / 100},
        created_at=1_700_000_000_000 + version,
    )


def same(a: ModelArtifact, b: ModelArtifact) -> bool:
    return a.to_bytes() == b.to_bytes()


@pytest.fixture
def kafka(kafka_bootstrap: str) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=kafka_bootstrap)


@pytest.fixture
def catalogue(unique: Callable[[str], str], create_topic: Callable[..., str]) -> Catalogue:
    topics = Catalogue(prefix=unique("m") + ".")
    models = topics.topic("models")
    create_topic(models.name, models.partitions, models.config())
    return topics


class Raw:
    """Writes whatever a test needs on the topic, bypassing the publisher's care."""

    def __init__(self, kafka: KafkaSettings, catalogue: Catalogue) -> None:
        self.topic = catalogue.topic("models").name
        self.codec = default_codec()
        self.producer = Producer(
            {**kafka.client_config(), "message.max.bytes": MODELS_MAX_MESSAGE_BYTES}
        )

    def chunk(self, chunk: ModelChunk) -> None:
        value = self.codec.encode("ModelChunk", chunk.to_dict())
        self.producer.produce(self.topic, value, model_chunk_key(chunk.version, chunk.index))

    def manifest(self, manifest: ModelManifest) -> None:
        value = self.codec.encode("ModelManifest", manifest.to_dict())
        self.producer.produce(self.topic, value, MODEL_MANIFEST_KEY)

    def model(
        self, model: ModelArtifact, *, chunk_bytes: int = 2048
    ) -> tuple[ModelManifest, list[ModelChunk]]:
        data = model.to_bytes()
        chunks = split(model.version, data, chunk_bytes)
        return manifest_for(model, data, len(chunks)), chunks

    def flush(self) -> None:
        assert self.producer.flush(30) == 0


class Recorder:
    """Collects a follower's callbacks, thread-safely."""

    def __init__(self) -> None:
        self.models: list[ModelArtifact] = []
        self.refusals: list[tuple[int | None, str]] = []
        self._lock = threading.Lock()

    def on_model(self, model: ModelArtifact) -> None:
        with self._lock:
            self.models.append(model)

    def on_refused(self, version: int | None, reason: str) -> None:
        with self._lock:
            self.refusals.append((version, reason))

    def wait(self, condition: Callable[[Recorder], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if condition(self):
                    return
            time.sleep(0.05)
        raise AssertionError(f"timed out; models {self.versions}, refusals {self.refusals}")

    @property
    def versions(self) -> list[int]:
        return [m.version for m in self.models]


@pytest.fixture
def follow(kafka: KafkaSettings, catalogue: Catalogue) -> Iterator[Callable[[], Recorder]]:
    followers: list[ModelFollower] = []

    def start() -> Recorder:
        recorder = Recorder()
        follower = ModelFollower(kafka, catalogue, recorder.on_model, recorder.on_refused)
        follower.start()
        followers.append(follower)
        assert follower.wait_caught_up(30)
        return recorder

    yield start
    for follower in followers:
        follower.stop()


def test_a_published_model_is_loaded_by_a_fresh_reader(
    kafka: KafkaSettings, catalogue: Catalogue
) -> None:
    assert load_latest(kafka, catalogue, timeout=30) is None
    model = make_model(1)
    manifest = publish_model(kafka, catalogue, model)
    loaded = load_latest(kafka, catalogue, timeout=30)
    assert loaded is not None and same(loaded, model)
    assert (manifest.version, manifest.chunk_count) == (1, 1)
    scan = scan_models(kafka, catalogue, timeout=30)
    assert (scan.published_version, scan.next_version, scan.refusals) == (1, 2, ())


def test_bad_models_are_refused_and_the_current_one_stays(
    kafka: KafkaSettings, catalogue: Catalogue, follow: Callable[[], Recorder]
) -> None:
    publish_model(kafka, catalogue, make_model(3))
    recorder = follow()
    recorder.wait(lambda r: r.versions == [3])
    raw = Raw(kafka, catalogue)

    manifest, chunks = raw.model(make_model(4, seed=4))  # truncated: last chunk cut short
    for chunk in chunks[:-1]:
        raw.chunk(chunk)
    raw.chunk(ModelChunk.of(4, chunks[-1].index, len(chunks), chunks[-1].data[:-10]))
    raw.manifest(manifest)

    manifest, chunks = raw.model(make_model(5, seed=5))  # tampered: data changed, sha kept
    n5 = len(chunks)
    for chunk in chunks:
        if chunk.index == 1:
            chunk = dataclasses.replace(chunk, data=b"\0" + chunk.data[1:])
        raw.chunk(chunk)
    raw.manifest(manifest)

    manifest, chunks = raw.model(make_model(6, seed=6))  # wrong shapes in the manifest
    for chunk in chunks:
        raw.chunk(chunk)
    raw.manifest(dataclasses.replace(manifest, shapes={**manifest.shapes, "item_biases": (49,)}))

    manifest, _ = raw.model(make_model(7, seed=7))  # manifest without chunks
    raw.manifest(manifest)

    manifest, chunks = raw.model(make_model(2, seed=2))  # a valid but older model
    for chunk in chunks:
        raw.chunk(chunk)
    raw.manifest(manifest)
    raw.flush()

    recorder.wait(lambda r: len(r.refusals) == 5)
    expected = [
        (4, "model v4 refused: artifact is"),
        (5, f"model v5 refused: chunk 1 of {n5} sha256 mismatch"),
        (6, "model v6 refused: shapes differ from the manifest: item_biases [50] vs manifest [49]"),
        (7, "model v7 refused: manifest without chunks"),
        (2, "model v2 refused: not newer than the current v3"),
    ]
    for (version, reason), (want_version, want_start) in zip(
        recorder.refusals, expected, strict=True
    ):
        assert version == want_version and reason.startswith(want_start), reason
    assert recorder.versions == [3]

    # A fresh reader falls back to the newest valid model and reports what was refused.
    refused: list[Any] = []
    loaded = load_latest(kafka, catalogue, timeout=30, on_refused=lambda v, _: refused.append(v))
    assert loaded is not None and loaded.version == 3
    assert refused == [4, 5, 6, 7, 2]

    # The next good model replaces the current one in the follower.
    publish_model(kafka, catalogue, make_model(8, seed=8))
    recorder.wait(lambda r: r.versions == [3, 8])
    assert same(recorder.models[-1], make_model(8, seed=8))


def test_a_model_bigger_than_a_chunk_round_trips(
    kafka: KafkaSettings, catalogue: Catalogue, follow: Callable[[], Recorder]
) -> None:
    recorder = follow()
    model = make_model(1, n_items=6000, dim=128)  # 3 MB of item embeddings
    manifest = publish_model(kafka, catalogue, model)
    assert manifest.total_size > 3_000_000
    assert manifest.chunk_count == -(-manifest.total_size // MAX_CHUNK_BYTES) == 4
    recorder.wait(lambda r: r.versions == [1])
    assert same(recorder.models[0], model)
    loaded = load_latest(kafka, catalogue, timeout=30)
    assert loaded is not None and same(loaded, model)


def test_publishing_deletes_older_chunks_and_refuses_stale_versions(
    kafka: KafkaSettings, catalogue: Catalogue
) -> None:
    raw = Raw(kafka, catalogue)
    _, orphans = raw.model(make_model(2), chunk_bytes=1024)  # a failed attempt's leftovers
    for chunk in orphans:
        raw.chunk(chunk)
    raw.flush()
    publish_model(kafka, catalogue, make_model(1))
    assert scan_models(kafka, catalogue, timeout=30).next_version == 3
    with pytest.raises(ModelRejected, match="model v1 refused: not newer than the published v1"):
        publish_model(kafka, catalogue, make_model(1))
    publish_model(kafka, catalogue, make_model(3, n_items=3000, dim=128))
    scan = scan_models(kafka, catalogue, timeout=30)
    assert set(scan.live_chunks) == {3} and scan.live_chunks[3] == frozenset({0, 1})
    assert scan.model is not None and scan.model.version == 3
