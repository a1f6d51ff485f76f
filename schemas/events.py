"""Domain types for everything that crosses a boundary, and the value rules they obey.

The wire form of each type is a plain ``dict`` shaped like its Avro record (see
``schemas/avro/``); ``to_dict`` / ``from_dict`` convert explicitly, so the codec never has
to know about these classes. Times are epoch milliseconds (``int``) and ids are strings,
exactly as they travel.

Example::

    from schemas.codec import encode
    from schemas.events import ClickEvent, Context

    click = ClickEvent(user_id="u1", item_id="i9", surface="top-picks", position=3,
                       context=Context(session_id="s1", device="tv"))
    payload = encode(ClickEvent.SCHEMA, click.to_dict())

:func:`check_values` holds the rules Avro types cannot express (an ``event_id`` is a UUID,
a duration is not negative...). The codec applies it to every decoded message.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from schemas.errors import SchemaError

MiB = 1024 * 1024
MAX_CHUNK_BYTES = 1 * MiB
"""Largest ``ModelChunk.data``; the ``models`` topic and the codec limits are sized from it."""

MAX_DEAD_LETTER_VALUE_BYTES = 512 * 1024
"""Dead letters keep at most this much of the original value, so that they fit the
broker's default 1 MB message limit even when the original was oversized."""

MAX_DEAD_LETTER_KEY_BYTES = 4096

RECOMMENDATION_SOURCES = ("nearline", "offline", "online", "trending", "fallback")


def now_ms() -> int:
    """The current time as epoch milliseconds, the unit of every timestamp on the wire."""
    return time.time_ns() // 1_000_000


def new_event_id() -> str:
    """A fresh random event id in canonical UUID text form."""
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class Context:
    """Circumstances of an event (session, device, locale, country)."""

    session_id: str
    device: str
    locale: str | None = None
    country: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "device": self.device,
            "locale": self.locale,
            "country": self.country,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        return cls(d["session_id"], d["device"], d.get("locale"), d.get("country"))


@dataclass(frozen=True, slots=True)
class ClickEvent:
    """A member clicked ``item_id`` at ``position`` on ``surface``."""

    SCHEMA: ClassVar[str] = "ClickEvent"
    user_id: str
    item_id: str
    surface: str
    position: int
    context: Context
    ts: int = field(default_factory=now_ms)
    event_id: str = field(default_factory=new_event_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "user_id": self.user_id,
            "ts": self.ts,
            "context": self.context.to_dict(),
            "item_id": self.item_id,
            "surface": self.surface,
            "position": self.position,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        return cls(
            user_id=d["user_id"],
            item_id=d["item_id"],
            surface=d["surface"],
            position=d["position"],
            context=Context.from_dict(d["context"]),
            ts=d["ts"],
            event_id=d["event_id"],
        )


@dataclass(frozen=True, slots=True)
class BrowseEvent:
    """A member browsed row ``list_id`` and was shown ``item_ids`` (impressions)."""

    SCHEMA: ClassVar[str] = "BrowseEvent"
    user_id: str
    list_id: str
    item_ids: tuple[str, ...]
    context: Context
    ts: int = field(default_factory=now_ms)
    event_id: str = field(default_factory=new_event_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "user_id": self.user_id,
            "ts": self.ts,
            "context": self.context.to_dict(),
            "list_id": self.list_id,
            "item_ids": list(self.item_ids),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        return cls(
            user_id=d["user_id"],
            list_id=d["list_id"],
            item_ids=tuple(d["item_ids"]),
            context=Context.from_dict(d["context"]),
            ts=d["ts"],
            event_id=d["event_id"],
        )


@dataclass(frozen=True, slots=True)
class ViewEvent:
    """A member watched ``item_id`` for ``duration_ms``, reaching ``progress`` (0..1)."""

    SCHEMA: ClassVar[str] = "ViewEvent"
    user_id: str
    item_id: str
    duration_ms: int
    progress: float
    context: Context
    rating: float | None = None
    ts: int = field(default_factory=now_ms)
    event_id: str = field(default_factory=new_event_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "user_id": self.user_id,
            "ts": self.ts,
            "context": self.context.to_dict(),
            "item_id": self.item_id,
            "duration_ms": self.duration_ms,
            "progress": self.progress,
            "rating": self.rating,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        return cls(
            user_id=d["user_id"],
            item_id=d["item_id"],
            duration_ms=d["duration_ms"],
            progress=d["progress"],
            context=Context.from_dict(d["context"]),
            rating=d.get("rating"),
            ts=d["ts"],
            event_id=d["event_id"],
        )


Event = ClickEvent | BrowseEvent | ViewEvent
EVENT_CLASSES: Mapping[str, type[ClickEvent] | type[BrowseEvent] | type[ViewEvent]] = {
    cls.SCHEMA: cls for cls in (ClickEvent, BrowseEvent, ViewEvent)
}


@dataclass(frozen=True, slots=True)
class RecommendedItem:
    item_id: str
    score: float
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "score": self.score, "reason": self.reason}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        return cls(d["item_id"], d["score"], d.get("reason"))


@dataclass(frozen=True, slots=True)
class RecommendationSet:
    """Ranked items for one member, best first; ``model_version`` 0 means no model was used."""

    SCHEMA: ClassVar[str] = "RecommendationSet"
    user_id: str
    items: tuple[RecommendedItem, ...]
    source: str
    model_version: int = 0
    computed_at: int = field(default_factory=now_ms)
    trigger_event_id: str | None = None
    cluster: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "items": [item.to_dict() for item in self.items],
            "model_version": self.model_version,
            "source": self.source,
            "computed_at": self.computed_at,
            "trigger_event_id": self.trigger_event_id,
            "cluster": self.cluster,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        return cls(
            user_id=d["user_id"],
            items=tuple(RecommendedItem.from_dict(i) for i in d["items"]),
            source=d["source"],
            model_version=d["model_version"],
            computed_at=d["computed_at"],
            trigger_event_id=d.get("trigger_event_id"),
            cluster=d.get("cluster"),
        )


@dataclass(frozen=True, slots=True)
class ModelManifest:
    """Announces a complete model artifact; ``config`` and ``cutoff`` are JSON texts."""

    SCHEMA: ClassVar[str] = "ModelManifest"
    version: int
    sha256: str
    total_size: int
    chunk_count: int
    format: str
    shapes: Mapping[str, tuple[int, ...]]
    config: str = "{}"
    cutoff: str = "{}"
    metrics: Mapping[str, float] = field(default_factory=dict)
    created_at: int = field(default_factory=now_ms)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "sha256": self.sha256,
            "total_size": self.total_size,
            "chunk_count": self.chunk_count,
            "created_at": self.created_at,
            "format": self.format,
            "shapes": {name: list(dims) for name, dims in self.shapes.items()},
            "config": self.config,
            "cutoff": self.cutoff,
            "metrics": dict(self.metrics),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        return cls(
            version=d["version"],
            sha256=d["sha256"],
            total_size=d["total_size"],
            chunk_count=d["chunk_count"],
            format=d["format"],
            shapes={name: tuple(dims) for name, dims in d["shapes"].items()},
            config=d["config"],
            cutoff=d["cutoff"],
            metrics=dict(d["metrics"]),
            created_at=d["created_at"],
        )


@dataclass(frozen=True, slots=True)
class ModelChunk:
    """Slice ``index`` of ``count`` of the artifact of model ``version``.

    Example::

        chunk = ModelChunk.of(version=7, index=0, count=1, data=artifact_bytes)
    """

    SCHEMA: ClassVar[str] = "ModelChunk"
    version: int
    index: int
    count: int
    data: bytes
    sha256: str

    @classmethod
    def of(cls, version: int, index: int, count: int, data: bytes) -> Self:
        """Build a chunk, computing its checksum."""
        return cls(version, index, count, data, hashlib.sha256(data).hexdigest())

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "index": self.index,
            "count": self.count,
            "data": self.data,
            "sha256": self.sha256,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        return cls(d["version"], d["index"], d["count"], d["data"], d["sha256"])


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that failed processing, kept with its origin and the reason.

    Example::

        except SchemaError as exc:
            letter = DeadLetter.for_message(msg.topic(), msg.partition(), msg.offset(),
                                            msg.key(), msg.value(), exc.reason, str(exc))
    """

    SCHEMA: ClassVar[str] = "DeadLetter"
    original_topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    reason: str
    detail: str
    failed_at: int = field(default_factory=now_ms)

    @classmethod
    def for_message(
        cls,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        reason: str,
        detail: str,
    ) -> Self:
        """Build a dead letter, truncating key and value so the letter itself stays small.

        The original may have been rejected precisely for being oversized; a dead letter
        that in turn exceeds the broker's message limit would be lost.
        """
        value = value or b""
        notes = []
        if len(value) > MAX_DEAD_LETTER_VALUE_BYTES:
            notes.append(f"value truncated from {len(value)} bytes")
            value = value[:MAX_DEAD_LETTER_VALUE_BYTES]
        if key is not None and len(key) > MAX_DEAD_LETTER_KEY_BYTES:
            notes.append(f"key truncated from {len(key)} bytes")
            key = key[:MAX_DEAD_LETTER_KEY_BYTES]
        if notes:
            detail = f"{detail} ({'; '.join(notes)})"
        return cls(topic, partition, offset, key, value, reason, detail)

    def to_dict(self) -> dict[str, Any]:
        return {
            "original_topic": self.original_topic,
            "partition": self.partition,
            "offset": self.offset,
            "key": self.key,
            "value": self.value,
            "reason": self.reason,
            "detail": self.detail,
            "failed_at": self.failed_at,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        return cls(
            d["original_topic"],
            d["partition"],
            d["offset"],
            d.get("key"),
            d["value"],
            d["reason"],
            d["detail"],
            d["failed_at"],
        )


# --- Value rules: what Avro types cannot say -------------------------------------------

_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def _invalid(message: str) -> SchemaError:
    return SchemaError(message, reason="invalid-value")


MAX_TS_MS = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z: PostgreSQL and Python datetimes end there."""
MAX_ID_BYTES = 256
"""Longest id or context string, in UTF-8 bytes: PostgreSQL cannot index an id much over
2.7 KB, and the worker keeps up to 550 item ids per user in one changelog message."""
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
"""Characters no PostgreSQL text column stores: NUL, and lone UTF-16 surrogates."""


def _texts(names: tuple[str, ...], values: tuple[str | None, ...]) -> None:
    for name, value in zip(names, values, strict=True):
        if value is None:
            continue
        if UNSTORABLE.search(value):
            raise _invalid(f"{name}: contains a NUL or a lone surrogate")
        if len(value) > MAX_ID_BYTES // 4 and len(value.encode()) > MAX_ID_BYTES:
            raise _invalid(f"{name}: longer than {MAX_ID_BYTES} bytes")


def _uuid(record: dict[str, Any], name: str) -> None:
    # Canonical lowercase text is checked by regex first because it is the common case
    # and ~10x cheaper than uuid.UUID; other spellings uuid.UUID accepts (upper case,
    # braces, no hyphens) are normalised so one event has one idempotency key.
    value = record[name]
    if _CANONICAL_UUID.fullmatch(value):
        return
    try:
        record[name] = str(uuid.UUID(value))
    except ValueError:
        raise _invalid(f"{name}: {value!r} is not a UUID") from None


def _non_empty(record: Mapping[str, Any], *names: str) -> None:
    for name in names:
        if not record[name]:
            raise _invalid(f"{name}: must not be empty")


def _at_least(record: Mapping[str, Any], name: str, low: int) -> None:
    if record[name] < low:
        raise _invalid(f"{name}: {record[name]} is below {low}")


# The event rules run on every message the sink and the stream processors read, so each
# tests its values inline and calls the helpers above only to raise (in the same order, with
# the same message): a helper call per rule doubled the cost of checking a ViewEvent.


def _event(record: dict[str, Any]) -> None:
    if not _CANONICAL_UUID.fullmatch(record["event_id"]):
        _uuid(record, "event_id")
    if not record["user_id"] or record["ts"] < 0:
        _non_empty(record, "user_id")
        _at_least(record, "ts", 0)
    if record["ts"] > MAX_TS_MS:
        raise _invalid(f"ts: {record['ts']} ms is beyond year 9999")
    context = record["context"]
    _texts(
        ("user_id", "context.session_id", "context.device", "context.locale", "context.country"),
        (
            record["user_id"],
            context["session_id"],
            context["device"],
            context.get("locale"),
            context.get("country"),
        ),
    )


def _click(record: dict[str, Any]) -> None:
    _event(record)
    if not record["item_id"] or not record["surface"] or record["position"] < 0:
        _non_empty(record, "item_id", "surface")
        _at_least(record, "position", 0)
    _texts(("item_id", "surface"), (record["item_id"], record["surface"]))


def _browse(record: dict[str, Any]) -> None:
    _event(record)
    _non_empty(record, "list_id")
    if not all(record["item_ids"]):
        raise _invalid("item_ids: item ids must not be empty")
    _texts(("list_id",), (record["list_id"],))
    items = tuple(record["item_ids"])
    _texts(tuple(f"item_ids[{i}]" for i in range(len(items))), items)


def _view(record: dict[str, Any]) -> None:
    _event(record)
    if not record["item_id"] or record["duration_ms"] < 0:
        _non_empty(record, "item_id")
        _at_least(record, "duration_ms", 0)
    _texts(("item_id",), (record["item_id"],))
    # Written as `not (0 <= p <= 1)` so that NaN fails too.
    if not 0.0 <= record["progress"] <= 1.0:
        raise _invalid(f"progress: {record['progress']} is not within 0..1")
    rating = record.get("rating")
    if rating is not None and not math.isfinite(rating):
        raise _invalid(f"rating: {rating} is not a finite number")


def _recommendations(record: dict[str, Any]) -> None:
    _non_empty(record, "user_id")
    _at_least(record, "model_version", 0)
    _at_least(record, "computed_at", 0)
    seen: set[str] = set()
    for item in record["items"]:
        if not item["item_id"]:
            raise _invalid("items: item_id must not be empty")
        if item["item_id"] in seen:
            raise _invalid(f"items: {item['item_id']!r} appears twice")
        seen.add(item["item_id"])
        if not math.isfinite(item["score"]):
            raise _invalid(f"items: score of {item['item_id']!r} is not finite")
    if record.get("trigger_event_id") is not None:
        _uuid(record, "trigger_event_id")
    if record.get("cluster") is not None:
        _at_least(record, "cluster", 0)


def _sha256(record: Mapping[str, Any]) -> None:
    if not _SHA256_HEX.fullmatch(record["sha256"]):
        raise _invalid("sha256: must be 64 lowercase hex digits")


def _manifest(record: dict[str, Any]) -> None:
    _at_least(record, "version", 1)
    _sha256(record)
    _at_least(record, "total_size", 0)
    _at_least(record, "chunk_count", 1)
    _at_least(record, "created_at", 0)
    _non_empty(record, "format")
    for name, dims in record["shapes"].items():
        if any(d < 0 for d in dims):
            raise _invalid(f"shapes: {name} has a negative dimension")
    for name in ("config", "cutoff"):
        try:
            json.loads(record[name])
        except (ValueError, RecursionError):  # absurdly deep nesting is invalid too
            raise _invalid(f"{name}: not valid JSON text") from None


def _chunk(record: dict[str, Any]) -> None:
    _at_least(record, "version", 1)
    _at_least(record, "count", 1)
    if not 0 <= record["index"] < record["count"]:
        raise _invalid(f"index: {record['index']} is not within 0..{record['count'] - 1}")
    if len(record["data"]) > MAX_CHUNK_BYTES:
        raise _invalid(f"data: {len(record['data'])} bytes exceeds {MAX_CHUNK_BYTES}")
    _sha256(record)


def _dead_letter(record: dict[str, Any]) -> None:
    _non_empty(record, "original_topic", "reason")
    # -1 is what clients report when partition or offset are unknown.
    _at_least(record, "partition", -1)
    _at_least(record, "offset", -1)
    _at_least(record, "failed_at", 0)


_RULES: Mapping[str, Callable[[dict[str, Any]], None]] = {
    "ClickEvent": _click,
    "BrowseEvent": _browse,
    "ViewEvent": _view,
    "RecommendationSet": _recommendations,
    "ModelManifest": _manifest,
    "ModelChunk": _chunk,
    "DeadLetter": _dead_letter,
}


def check_values(schema: str, record: dict[str, Any]) -> dict[str, Any]:
    """Apply the value rules of ``schema`` to a type-correct ``record``, in place.

    Raises :class:`SchemaError` with reason ``invalid-value``; UUIDs in a non-canonical
    spelling are rewritten to canonical lowercase form. Schemas without rules pass.

    Example::

        check_values("ViewEvent", record)  # raises if record["progress"] == 1.5
    """
    rule = _RULES.get(schema)
    if rule is not None:
        rule(record)
    return record
