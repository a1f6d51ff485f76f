"""Decoded event records as rows of their PostgreSQL tables (:mod:`schemas.tables`).

A row is a tuple in :data:`COLUMNS` order holding plain Python values in wire units: ``ts``
stays epoch milliseconds (the writer turns it into ``timestamptz`` in SQL, which costs
PostgreSQL nothing and spares Python a datetime per row), a browse's ``item_ids`` is a
``list[str]``, and the Kafka partition and offset the event was read from are appended.
``ingested_at`` is left to its server default.

The codec accepts some values PostgreSQL cannot store: text with a NUL character or a lone
surrogate (legal in JSON), times past year 9999, floats that underflow ``real``. They are
refused here with a :class:`~schemas.errors.SchemaError`, so they become dead letters
instead of a batch the database rejects on every retry.

Example::

    decoded = codec.decode_any(msg.value(), ("ViewEvent",))
    row = to_row(decoded.schema, decoded.record, msg.partition(), msg.offset())
    dict(zip(COLUMNS["ViewEvent"], row))["kafka_offset"]   # msg.offset()
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from typing import Any

from schemas.errors import SchemaError
from schemas.events import MAX_TS_MS, UNSTORABLE

Row = tuple[Any, ...]

_COMMON = ("event_id", "user_id", "ts", "session_id", "device", "locale", "country")
_ORIGIN = ("kafka_partition", "kafka_offset")

COLUMNS: Mapping[str, tuple[str, ...]] = {
    "ViewEvent": (*_COMMON, "item_id", "duration_ms", "progress", "rating", *_ORIGIN),
    "ClickEvent": (*_COMMON, "item_id", "surface", "position", *_ORIGIN),
    "BrowseEvent": (*_COMMON, "list_id", "item_ids", *_ORIGIN),
}
"""Columns the sink writes, per event type (every column but ``ingested_at``)."""

_FLOAT32 = struct.Struct("<f")
_TWO_FLOAT32 = struct.Struct("<ff")


def _invalid(field: str, message: str) -> SchemaError:
    return SchemaError(f"{field}: {message}", reason="invalid-value")


def _text(field: str, value: str) -> str:
    if UNSTORABLE.search(value):
        # NUL cannot be stored in PostgreSQL text; a lone surrogate cannot be encoded as UTF-8.
        raise _invalid(field, "contains a NUL or lone surrogate, which PostgreSQL cannot store")
    return value


def _optional_text(field: str, value: str | None) -> str | None:
    return None if value is None else _text(field, value)


def _timestamp(millis: int) -> int:
    if millis > MAX_TS_MS:  # the codec already refuses negative times
        raise _invalid("ts", f"{millis} ms is beyond year 9999")
    return millis


def _real(field: str, value: float) -> float:
    # The columns are float4. Rounding here means PostgreSQL never sees a value it would
    # reject as underflow (1e-50 from JSON), and Avro floats pass unchanged.
    try:
        rounded: float = _FLOAT32.unpack(_FLOAT32.pack(value))[0]
    except OverflowError:
        raise _invalid(field, f"{value} does not fit a float4 column") from None
    return rounded


def _common(record: Mapping[str, Any]) -> Row:
    context = record["context"]
    return (
        record["event_id"],
        _text("user_id", record["user_id"]),
        _timestamp(record["ts"]),
        _text("context.session_id", context["session_id"]),
        _text("context.device", context["device"]),
        _optional_text("context.locale", context.get("locale")),
        _optional_text("context.country", context.get("country")),
    )


def _view(record: Mapping[str, Any]) -> Row:
    rating = record.get("rating")
    return (
        _text("item_id", record["item_id"]),
        record["duration_ms"],
        _real("progress", record["progress"]),
        None if rating is None else _real("rating", rating),
    )


def _click(record: Mapping[str, Any]) -> Row:
    return (
        _text("item_id", record["item_id"]),
        _text("surface", record["surface"]),
        record["position"],
    )


def _browse(record: Mapping[str, Any]) -> Row:
    return (
        _text("list_id", record["list_id"]),
        [_text(f"item_ids[{i}]", item) for i, item in enumerate(record["item_ids"])],
    )


_SPECIFIC: Mapping[str, Callable[[Mapping[str, Any]], Row]] = {
    "ViewEvent": _view,
    "ClickEvent": _click,
    "BrowseEvent": _browse,
}


def _checked(schema: str, record: Mapping[str, Any], partition: int, offset: int) -> Row:
    """The row, every field checked on its own: the slow path, which names the field a
    refusal is about."""
    return _common(record) + _SPECIFIC[schema](record) + (partition, offset)


# The sink's hot path: one search over a row's text instead of one per field. A row it
# flags (or a time past year 9999, or a float beyond float4) goes through _checked, which
# raises naming the field.


def _view_row(record: Mapping[str, Any], partition: int, offset: int) -> Row:
    context = record["context"]
    user_id, session_id, device = record["user_id"], context["session_id"], context["device"]
    locale, country, item_id = context.get("locale"), context.get("country"), record["item_id"]
    ts, progress, rating = record["ts"], record["progress"], record.get("rating")
    text = f"{user_id}{session_id}{device}{locale or ''}{country or ''}{item_id}"
    if UNSTORABLE.search(text) or ts > MAX_TS_MS:
        return _checked("ViewEvent", record, partition, offset)
    try:  # rounded to float4 as _real does, both at once
        if rating is None:
            (progress,) = _FLOAT32.unpack(_FLOAT32.pack(progress))
        else:
            progress, rating = _TWO_FLOAT32.unpack(_TWO_FLOAT32.pack(progress, rating))
    except OverflowError:
        return _checked("ViewEvent", record, partition, offset)
    return (
        record["event_id"],
        user_id,
        ts,
        session_id,
        device,
        locale,
        country,
        item_id,
        record["duration_ms"],
        progress,
        rating,
        partition,
        offset,
    )


def _click_row(record: Mapping[str, Any], partition: int, offset: int) -> Row:
    context = record["context"]
    user_id, session_id, device = record["user_id"], context["session_id"], context["device"]
    locale, country, item_id = context.get("locale"), context.get("country"), record["item_id"]
    ts, surface = record["ts"], record["surface"]
    text = f"{user_id}{session_id}{device}{locale or ''}{country or ''}{item_id}{surface}"
    if UNSTORABLE.search(text) or ts > MAX_TS_MS:
        return _checked("ClickEvent", record, partition, offset)
    return (
        record["event_id"],
        user_id,
        ts,
        session_id,
        device,
        locale,
        country,
        item_id,
        surface,
        record["position"],
        partition,
        offset,
    )


def _browse_row(record: Mapping[str, Any], partition: int, offset: int) -> Row:
    context = record["context"]
    user_id, session_id, device = record["user_id"], context["session_id"], context["device"]
    locale, country, list_id = context.get("locale"), context.get("country"), record["list_id"]
    ts, item_ids = record["ts"], record["item_ids"]
    text = f"{user_id}{session_id}{device}{locale or ''}{country or ''}{list_id}"
    if UNSTORABLE.search(text + "".join(item_ids)) or ts > MAX_TS_MS:
        return _checked("BrowseEvent", record, partition, offset)
    return (
        record["event_id"],
        user_id,
        ts,
        session_id,
        device,
        locale,
        country,
        list_id,
        list(item_ids),
        partition,
        offset,
    )


_ROWS: Mapping[str, Callable[[Mapping[str, Any], int, int], Row]] = {
    "ViewEvent": _view_row,
    "ClickEvent": _click_row,
    "BrowseEvent": _browse_row,
}


def to_row(schema: str, record: Mapping[str, Any], partition: int, offset: int) -> Row:
    """The row of ``record``, a decoded ``schema`` event read at ``partition``/``offset``.

    Raises :class:`SchemaError` (reason ``invalid-value``) for values PostgreSQL cannot
    store, and ``KeyError`` for a schema that is not an event type.
    """
    return _ROWS[schema](record, partition, offset)
