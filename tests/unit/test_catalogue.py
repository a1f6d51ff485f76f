"""The topic catalogue: invariants the rest of the platform relies on."""

from __future__ import annotations

import re

import pytest

from schemas.catalogue import (
    EVENT_SCHEMA_BY_TOPIC,
    EVENT_TOPIC_BY_SCHEMA,
    EVENT_TOPICS,
    MODEL_MANIFEST_KEY,
    MODELS_MAX_MESSAGE_BYTES,
    TOPICS,
    Catalogue,
    model_chunk_key,
    topic,
)
from schemas.codec import default_registry, encode
from schemas.errors import ConfigError
from schemas.events import EVENT_CLASSES, MAX_CHUNK_BYTES, ModelChunk

KAFKA_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")


def test_topic_names_are_unique_and_legal() -> None:
    names = [t.name for t in TOPICS]
    assert len(set(names)) == len(names)
    assert all(KAFKA_TOPIC_NAME.fullmatch(n) for n in names)
    assert set(names) == {
        "events.click",
        "events.browse",
        "events.view",
        "events.dlq",
        "recommendations",
        "models",
    }


def test_event_topics_are_co_partitioned_by_user() -> None:
    counts = {t.partitions for t in EVENT_TOPICS} | {topic("recommendations").partitions}
    assert len(counts) == 1 and counts.pop() > 1
    assert all(t.key == "user_id" for t in EVENT_TOPICS)
    assert topic("recommendations").key == "user_id"


def test_cleanup_policies() -> None:
    compacted = {t.base for t in TOPICS if t.cleanup_policy == "compact"}
    assert compacted == {"recommendations", "models"}
    for t in TOPICS:
        config = t.config()
        assert config["cleanup.policy"] == t.cleanup_policy
        assert all(isinstance(v, str) for v in config.values())
        if t.cleanup_policy == "delete":
            assert int(config["retention.ms"]) > 0


def test_every_value_schema_exists() -> None:
    names = default_registry().names()
    for t in TOPICS:
        assert t.value_schemas and set(t.value_schemas) <= names, t.base


def test_event_topics_have_distinct_twin_tables_and_others_none() -> None:
    tables = [t.table for t in EVENT_TOPICS]
    assert all(tables) and len(set(tables)) == len(tables)
    assert all(t.table is None for t in TOPICS if t not in EVENT_TOPICS)


def test_event_type_topic_mapping_is_a_bijection() -> None:
    assert {v: k for k, v in EVENT_TOPIC_BY_SCHEMA.items()} == EVENT_SCHEMA_BY_TOPIC
    assert set(EVENT_TOPIC_BY_SCHEMA) == set(EVENT_CLASSES)
    assert {topic(b).value_schema for b in EVENT_SCHEMA_BY_TOPIC} == set(EVENT_CLASSES)


def test_models_topic_fits_a_full_chunk_in_order() -> None:
    models = topic("models")
    assert models.partitions == 1  # chunks must precede their manifest
    assert set(models.value_schemas) == {"ModelManifest", "ModelChunk"}
    assert models.config()["max.message.bytes"] == str(MODELS_MAX_MESSAGE_BYTES)
    full = ModelChunk.of(
        version=2**40, index=2**30, count=2**31 - 1, data=b"\xff" * MAX_CHUNK_BYTES
    )
    encoded = encode("ModelChunk", full.to_dict())
    key = model_chunk_key(full.version, full.index)
    # Leave room for Kafka's record-batch and record headers (well under 1 KiB).
    assert len(encoded) + len(key) + 1024 <= MODELS_MAX_MESSAGE_BYTES


def test_model_keys_never_collide() -> None:
    keys = {model_chunk_key(v, i) for v in (1, 2, 12) for i in (0, 1, 21)}
    assert len(keys) == 9 and MODEL_MANIFEST_KEY not in keys


def test_prefix_applies_to_every_name() -> None:
    cat = Catalogue(prefix="t123-")
    assert [t.name for t in cat] == [f"t123-{t.base}" for t in TOPICS]
    assert cat.topic("events.click").name == "t123-events.click"
    assert cat.for_event("ViewEvent").name == "t123-events.view"
    assert [t.name for t in cat.event_topics] == [f"t123-{t.base}" for t in EVENT_TOPICS]
    assert cat.by_name("t123-models").base == "models"
    assert topic("models", prefix="x.").name == "x.models"
    # The declarations themselves stay unprefixed.
    assert topic("models").name == "models"


def test_prefixed_topic_keeps_its_contract() -> None:
    plain, prefixed = topic("events.view"), Catalogue("p-").topic("events.view")
    assert prefixed.config() == plain.config()
    assert (prefixed.partitions, prefixed.table, prefixed.value_schemas) == (
        plain.partitions,
        plain.table,
        plain.value_schemas,
    )


@pytest.mark.parametrize("prefix", ["bad prefix", "a/b", "x" * 201, "ü-"])
def test_illegal_prefix_is_a_config_error(prefix: str) -> None:
    with pytest.raises(ConfigError):
        Catalogue(prefix)


def test_unknown_names_are_config_errors() -> None:
    cat = Catalogue("t-")
    with pytest.raises(ConfigError):
        cat.topic("events.purchase")
    with pytest.raises(ConfigError):
        cat.by_name("events.click")  # unprefixed name in a prefixed catalogue
    with pytest.raises(ConfigError):
        cat.for_event("RecommendationSet")
