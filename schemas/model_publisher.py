"""Publishing a model on ``models``: chunks first, then the manifest that makes it live.

The order is the contract readers rely on (one partition, so it is kept): every chunk is
acknowledged before the manifest is sent, so a reader that sees a manifest has already
seen its chunks. Once the manifest is acknowledged, the chunk keys of older versions are
deleted with tombstones so that compaction reclaims them; the publisher learns which keys
exist by reading the topic first. Leftovers of a failed tombstone pass are only logged:
the model is live by then, and the next publication deletes them.

One publisher at a time: two publishing concurrently could both pick the same version.

Example::

    from schemas.model_loader import scan_models
    from schemas.model_publisher import publish_model

    scan = scan_models(kafka, catalogue)
    manifest = publish_model(kafka, catalogue, replace(model, version=scan.next_version))
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from schemas.artifact import ModelArtifact, ModelRejected
from schemas.catalogue import (
    MODEL_MANIFEST_KEY,
    MODELS_MAX_MESSAGE_BYTES,
    Catalogue,
    model_chunk_key,
)
from schemas.codec import Codec, default_codec
from schemas.events import ModelChunk, ModelManifest
from schemas.model_chunks import manifest_for, split
from schemas.model_loader import ModelScan, scan_models
from schemas.producer import PRODUCER_DEFAULTS, DeliveryError
from schemas.settings import KafkaSettings

log = logging.getLogger(__name__)


class _Deliveries:
    """Collects delivery failures of one producer."""

    def __init__(self) -> None:
        self.failures: list[str] = []

    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self.failures.append(f"{msg.key()!r}: {err.str()}")

    def flush(self, producer: Producer, what: str, timeout: float) -> None:
        remaining = producer.flush(timeout)
        if remaining or self.failures:
            first = self.failures[0] if self.failures else f"{remaining} still queued"
            raise DeliveryError(f"{what} not acknowledged within {timeout:g} s ({first})")


def publish_model(
    kafka: KafkaSettings,
    catalogue: Catalogue,
    artifact: ModelArtifact,
    *,
    timeout: float = 60.0,
    producer_config: Mapping[str, Any] | None = None,
    codec: Codec | None = None,
    scan: ModelScan | None = None,
) -> ModelManifest:
    """Publish ``artifact`` as the model in force; returns its (acknowledged) manifest.

    Raises :class:`ModelRejected` if ``artifact.version`` is not newer than every version
    already announced, and :class:`~schemas.producer.DeliveryError` if the broker did not
    acknowledge the chunks or the manifest (then the previous model stays in force).

    Example::

        manifest = publish_model(KafkaSettings(), Catalogue(), model)
        manifest.sha256, manifest.chunk_count
    """
    codec = codec or default_codec()
    topic = catalogue.topic("models").name
    # A caller that has just scanned the topic (the offline job does, to score the current
    # model) passes that scan; it is only valid while nobody else publishes meanwhile, which
    # the one-publisher rule guarantees.
    scan = scan or scan_models(kafka, catalogue, timeout=timeout, verify=False)
    if artifact.version <= scan.published_version:
        raise ModelRejected(
            f"not newer than the published v{scan.published_version}; "
            f"publish it as v{scan.next_version}",
            artifact.version,
        )
    data = artifact.to_bytes()
    chunks = split(artifact.version, data)
    manifest = manifest_for(artifact, data, len(chunks))
    # Encoded before anything is sent: an oversized or invalid manifest must fail while
    # nothing is on the topic yet.
    manifest_value = codec.encode(ModelManifest.SCHEMA, manifest.to_dict(), validate=True)
    deliveries = _Deliveries()
    producer = Producer(
        {
            **kafka.client_config(),
            **PRODUCER_DEFAULTS,
            # librdkafka's default (1,000,000) is below a full chunk plus its framing.
            "message.max.bytes": MODELS_MAX_MESSAGE_BYTES,
            **(producer_config or {}),
        }
    )
    for chunk in chunks:
        value = codec.encode(ModelChunk.SCHEMA, chunk.to_dict())
        _produce(producer, topic, model_chunk_key(chunk.version, chunk.index), value, deliveries)
    deliveries.flush(producer, f"model v{artifact.version} chunks", timeout)
    _produce(producer, topic, MODEL_MANIFEST_KEY, manifest_value, deliveries)
    deliveries.flush(producer, f"model v{artifact.version} manifest", timeout)
    log.info("model v%d published in %d chunks", artifact.version, len(chunks))
    _delete_stale_chunks(producer, topic, scan.live_chunks, artifact.version, len(chunks), timeout)
    return manifest


def _produce(
    producer: Producer, topic: str, key: bytes, value: bytes | None, deliveries: _Deliveries
) -> None:
    while True:
        try:
            producer.produce(topic, value, key, on_delivery=deliveries)
            return
        except BufferError:
            # Local queue full (a big model is many MiB): serve deliveries until there is room.
            producer.poll(0.1)


def _delete_stale_chunks(
    producer: Producer,
    topic: str,
    live: Mapping[int, frozenset[int]],
    version: int,
    count: int,
    timeout: float,
) -> None:
    """Tombstone chunk keys of older versions, and of this version beyond its last chunk
    (left by an earlier failed attempt). Newer versions' keys may be another publisher's
    work in progress, so they are left alone."""
    stale = [
        (v, i)
        for v, indices in live.items()
        for i in indices
        if v < version or (v == version and i >= count)
    ]
    if not stale:
        return
    deliveries = _Deliveries()
    for v, i in sorted(stale):
        _produce(producer, topic, model_chunk_key(v, i), None, deliveries)
    try:
        deliveries.flush(producer, f"{len(stale)} tombstones", timeout)
    except DeliveryError as exc:
        log.error("stale model chunks stay until the next publication: %s", exc)
