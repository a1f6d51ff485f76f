"""Every Kafka topic nearline uses, declared once.

Each :class:`Topic` states its key, value schema(s), partition count, cleanup policy,
retention and, for event topics, the PostgreSQL table that mirrors it. Keys are UTF-8
text. Tests and parallel deployments share a broker by giving a name prefix to a
:class:`Catalogue`; the declarations below are the unprefixed ones.

Example::

    from schemas.catalogue import Catalogue

    topics = Catalogue(prefix="t123-")
    click = topics.topic("events.click")          # click.name == "t123-events.click"
    admin.create_topics([NewTopic(t.name, t.partitions, config=t.config()) for t in topics])
    topics.by_name(msg.topic()).value_schemas     # ("ClickEvent",)
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from schemas.errors import ConfigError
from schemas.events import MAX_CHUNK_BYTES

DAY_MS = 24 * 60 * 60 * 1000

EVENT_PARTITIONS = 6
"""Shared by the event topics and ``recommendations``: co-partitioning by ``user_id`` keeps
all of one member's events, and their result set, on the same stream worker."""

MODELS_MAX_MESSAGE_BYTES = MAX_CHUNK_BYTES + 64 * 1024
"""``max.message.bytes`` of ``models``: a full chunk plus its fields and batch overhead. The
producer must allow it too (librdkafka ``message.max.bytes``, Java ``max.request.size``)."""

MODEL_MANIFEST_KEY = b"manifest"
"""Key of manifests on ``models``; compaction keeps only the newest manifest."""


def model_chunk_key(version: int, index: int) -> bytes:
    """Key of chunk ``index`` of model ``version`` on ``models``.

    Chunks are keyed per version so that compaction can never leave a manifest pointing at
    chunks of another model; the publisher deletes (tombstones) chunks of superseded
    versions once the newer manifest is out.
    """
    return f"chunk/{version}/{index}".encode()


@dataclass(frozen=True, slots=True)
class Topic:
    """One Kafka topic and its contract."""

    base: str
    """The name without prefix; what code refers to the topic by."""
    key: str
    """What the message key holds (UTF-8 text)."""
    value_schemas: tuple[str, ...]
    """Record types the values may be, by short Avro name; the first is the main one."""
    partitions: int
    cleanup_policy: Literal["delete", "compact"]
    retention_ms: int
    """How long messages are kept; -1 for ever (compacted topics keep the latest per key)."""
    table: str | None = None
    """PostgreSQL table holding a copy of the events (event topics only)."""
    extra_config: tuple[tuple[str, str], ...] = ()
    prefix: str = ""

    @property
    def name(self) -> str:
        """The name on the broker, prefix included."""
        return self.prefix + self.base

    @property
    def value_schema(self) -> str:
        return self.value_schemas[0]

    def config(self) -> dict[str, str]:
        """Topic-level configuration for topic creation (all values are strings, as Kafka wants).

        Example::

            NewTopic(t.name, num_partitions=t.partitions, replication_factor=1, config=t.config())
        """
        return {
            "cleanup.policy": self.cleanup_policy,
            "retention.ms": str(self.retention_ms),
            **dict(self.extra_config),
        }


def _event_topic(base: str, schema: str, table: str) -> Topic:
    return Topic(
        base=base,
        key="user_id",
        value_schemas=(schema,),
        partitions=EVENT_PARTITIONS,
        cleanup_policy="delete",
        retention_ms=7 * DAY_MS,
        table=table,
    )


CLICKS = _event_topic("events.click", "ClickEvent", "click_events")
BROWSES = _event_topic("events.browse", "BrowseEvent", "browse_events")
VIEWS = _event_topic("events.view", "ViewEvent", "view_events")
DEAD_LETTERS = Topic(
    base="events.dlq",
    key="the original message key (absent if it had none)",
    value_schemas=("DeadLetter",),
    # Low volume; one partition keeps failures in the order they happened.
    partitions=1,
    cleanup_policy="delete",
    retention_ms=30 * DAY_MS,
)
RECOMMENDATIONS = Topic(
    base="recommendations",
    key="user_id",
    value_schemas=("RecommendationSet",),
    partitions=EVENT_PARTITIONS,
    cleanup_policy="compact",
    retention_ms=-1,
)
MODELS = Topic(
    base="models",
    key="'manifest' or 'chunk/<version>/<index>' (see model_chunk_key)",
    value_schemas=("ModelManifest", "ModelChunk"),
    # One partition: readers rely on every chunk arriving before the manifest announcing it,
    # and Kafka only orders messages within a partition.
    partitions=1,
    cleanup_policy="compact",
    retention_ms=-1,
    extra_config=(("max.message.bytes", str(MODELS_MAX_MESSAGE_BYTES)),),
)

TOPICS: tuple[Topic, ...] = (CLICKS, BROWSES, VIEWS, DEAD_LETTERS, RECOMMENDATIONS, MODELS)
EVENT_TOPICS: tuple[Topic, ...] = (CLICKS, BROWSES, VIEWS)
EVENT_TOPIC_BY_SCHEMA: Mapping[str, str] = {t.value_schema: t.base for t in EVENT_TOPICS}
"""Event type (Avro name) -> base topic name, e.g. ``"ClickEvent" -> "events.click"``."""
EVENT_SCHEMA_BY_TOPIC: Mapping[str, str] = {t.base: t.value_schema for t in EVENT_TOPICS}
"""Base topic name -> event type, e.g. ``"events.click" -> "ClickEvent"``."""

# Kafka's rule for topic names; the limit leaves room for the longest base name.
_LEGAL_PREFIX = re.compile(r"[A-Za-z0-9._-]{0,200}")


class Catalogue:
    """The topics, named with an optional ``prefix`` (for example one per test).

    Iterating yields every topic. Example::

        topics = Catalogue(prefix="it-42-")
        topics.for_event("ViewEvent").name   # "it-42-events.view"
    """

    def __init__(self, prefix: str = "") -> None:
        if not _LEGAL_PREFIX.fullmatch(prefix):
            raise ConfigError(
                f"topic prefix {prefix!r} may only use letters, digits, '.', '_', '-' (max 200)"
            )
        self.prefix = prefix
        self.topics = tuple(dataclasses.replace(t, prefix=prefix) for t in TOPICS)
        self._by_base = {t.base: t for t in self.topics}
        self._by_name = {t.name: t for t in self.topics}

    def __iter__(self) -> Iterator[Topic]:
        return iter(self.topics)

    @property
    def event_topics(self) -> tuple[Topic, ...]:
        return tuple(self._by_base[t.base] for t in EVENT_TOPICS)

    def topic(self, base: str) -> Topic:
        """The topic declared as ``base`` (e.g. ``"events.click"``)."""
        try:
            return self._by_base[base]
        except KeyError:
            raise ConfigError(
                f"unknown topic {base!r}; known: {', '.join(self._by_base)}"
            ) from None

    def by_name(self, name: str) -> Topic:
        """The topic called ``name`` on the broker (prefix included), as in a consumed message."""
        try:
            return self._by_name[name]
        except KeyError:
            raise ConfigError(
                f"topic {name!r} is not in the catalogue (prefix {self.prefix!r})"
            ) from None

    def for_event(self, schema: str) -> Topic:
        """The topic carrying events of type ``schema`` (e.g. ``"ClickEvent"``)."""
        try:
            return self._by_base[EVENT_TOPIC_BY_SCHEMA[schema]]
        except KeyError:
            raise ConfigError(
                f"{schema!r} is not an event type; known: {', '.join(EVENT_TOPIC_BY_SCHEMA)}"
            ) from None


def topic(base: str, prefix: str = "") -> Topic:
    """Shorthand for ``Catalogue(prefix).topic(base)``."""
    return Catalogue(prefix).topic(base)
