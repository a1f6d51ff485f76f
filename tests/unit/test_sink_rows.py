"""The sink's pure parts: record -> row, COPY text, batch assembly (dedupe, dead letters,
offsets), retry backoff and settings. No broker, no database."""

from __future__ import annotations

import json
import struct
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from confluent_kafka import Message
from hypothesis import given
from hypothesis import strategies as st

from batch.sink.batches import assemble, assemble_lazily, dead_letter
from batch.sink.copy_format import CopySource, copy_chunks, copy_text, field_text, timestamp_text
from batch.sink.rows import COLUMNS, MAX_TS_MS, to_row
from batch.sink.settings import SinkSettings
from batch.sink.storage import backoff_s
from schemas.catalogue import Catalogue
from schemas.codec import MAGIC, default_codec, encode
from schemas.errors import ConfigError, SchemaError
from schemas.events import (
    MAX_DEAD_LETTER_VALUE_BYTES,
    BrowseEvent,
    ClickEvent,
    Context,
    ViewEvent,
)
from schemas.settings import load
from schemas.tables import EVENT_TABLES

EVENT_ID = "6f1c0a56-1b7c-4c7e-9d0a-1f2e3d4c5b6a"
TS = 1_700_000_000_123
CTX = Context(session_id="s-1", device="tv", locale="en-US", country=None)
CATALOGUE = Catalogue(prefix="unit.")


def _row(schema: str, record: dict[str, Any]) -> dict[str, Any]:
    return dict(zip(COLUMNS[schema], to_row(schema, record, 4, 77), strict=True))


@pytest.mark.parametrize("schema", sorted(EVENT_TABLES))
def test_columns_are_the_table_columns_but_ingested_at(schema: str) -> None:
    table_columns = [c.name for c in EVENT_TABLES[schema].columns if c.name != "ingested_at"]
    assert sorted(COLUMNS[schema]) == sorted(table_columns)


def test_view_row() -> None:
    event = ViewEvent("u1", "i9", 95_000, 0.5, CTX, rating=4.5, ts=TS, event_id=EVENT_ID)
    assert _row("ViewEvent", event.to_dict()) == {
        "event_id": EVENT_ID,
        "user_id": "u1",
        "ts": TS,
        "session_id": "s-1",
        "device": "tv",
        "locale": "en-US",
        "country": None,
        "item_id": "i9",
        "duration_ms": 95_000,
        "progress": 0.5,
        "rating": 4.5,
        "kafka_partition": 4,
        "kafka_offset": 77,
    }


def test_view_row_without_rating_and_float4_rounding() -> None:
    record = ViewEvent("u1", "i9", 0, 0.1, CTX, ts=TS, event_id=EVENT_ID).to_dict()
    row = _row("ViewEvent", record)
    assert row["rating"] is None
    assert row["progress"] == pytest.approx(0.1, rel=1e-7) and row["progress"] != 0.1
    # A JSON value that float4 cannot hold becomes 0.0 instead of an underflow error.
    assert _row("ViewEvent", {**record, "progress": 1e-50})["progress"] == 0.0


def test_click_row() -> None:
    event = ClickEvent("u2", "i3", "top-picks", 7, CTX, ts=TS, event_id=EVENT_ID)
    row = _row("ClickEvent", event.to_dict())
    assert (row["item_id"], row["surface"], row["position"]) == ("i3", "top-picks", 7)
    assert (row["ts"], row["kafka_partition"], row["kafka_offset"]) == (TS, 4, 77)


def test_browse_row_has_a_list_of_item_ids() -> None:
    event = BrowseEvent("u3", "row-7", ("i1", "i2"), CTX, ts=TS, event_id=EVENT_ID)
    row = _row("BrowseEvent", event.to_dict())
    assert (row["list_id"], row["item_ids"], row["user_id"]) == ("row-7", ["i1", "i2"], "u3")


@pytest.mark.parametrize("ts", [0, MAX_TS_MS])
def test_times_from_epoch_to_year_9999_are_kept_in_milliseconds(ts: int) -> None:
    record = ClickEvent("u", "i", "s", 0, CTX, ts=ts, event_id=EVENT_ID).to_dict()
    assert _row("ClickEvent", record)["ts"] == ts


@pytest.mark.parametrize(
    ("schema", "change"),
    [
        ("ClickEvent", {"user_id": "a\x00b"}),
        ("ClickEvent", {"surface": "\ud800"}),
        ("ClickEvent", {"context": {**CTX.to_dict(), "country": "x\x00"}}),
        ("BrowseEvent", {"item_ids": ["ok", "bad\x00"]}),
        ("ViewEvent", {"ts": MAX_TS_MS + 1}),
    ],
)
def test_values_postgres_cannot_store_are_refused(schema: str, change: dict[str, Any]) -> None:
    samples: dict[str, ClickEvent | BrowseEvent | ViewEvent] = {
        "ClickEvent": ClickEvent("u", "i", "s", 0, CTX, ts=TS, event_id=EVENT_ID),
        "BrowseEvent": BrowseEvent("u", "l", ("i",), CTX, ts=TS, event_id=EVENT_ID),
        "ViewEvent": ViewEvent("u", "i", 1, 0.5, CTX, ts=TS, event_id=EVENT_ID),
    }
    base = samples[schema].to_dict()
    with pytest.raises(SchemaError) as info:
        to_row(schema, {**base, **change}, 0, 0)
    assert info.value.reason == "invalid-value"


def test_copy_text_escapes_and_formats() -> None:
    line = copy_text([("a\tb\\c\nd\re", None, 3, 0.25, ["x", 'q"\\', "t\tab"])])
    fields = line.decode().rstrip("\n").split("\t")
    assert fields == [
        "a\\tb\\\\c\\nd\\re",
        "\\N",
        "3",
        "0.25",
        '{"x","q\\\\"\\\\\\\\","t\\tab"}',
    ]
    assert copy_text([]) == b""
    assert field_text([]) == "{}"
    with pytest.raises(TypeError):
        field_text(b"bytes")  # rows never hold bytes; failing loudly beats a wrong COPY


@given(st.integers(0, MAX_TS_MS))
def test_timestamps_are_written_as_exact_utc_text(millis: int) -> None:
    text = timestamp_text(millis)
    assert text.endswith("+00") and len(text) == 26
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=millis)
    assert datetime.fromisoformat(text) == moment


def test_copy_text_formats_timestamp_columns_and_mixed_columns() -> None:
    rows = [("a", TS, 1, None), ("b", None, "x", 2.5), ("c", 999, 3, None)]
    assert copy_text(rows, timestamps={1}).decode().splitlines() == [
        "a\t2023-11-14 22:13:20.123+00\t1\t\\N",
        "b\t\\N\tx\t2.5",
        "c\t1970-01-01 00:00:00.999+00\t3\t\\N",
    ]
    with pytest.raises(ValueError, match="outside years"):
        copy_text([(-(10**15),)], timestamps={0})
    with pytest.raises(TypeError):
        copy_text([(1.5,)], timestamps={0})


@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_float4_columns_are_written_with_the_digits_float4_reads_back(value: float) -> None:
    (text,) = copy_text([(value,)], reals={0}).decode().split()
    assert struct.unpack("<f", struct.pack("<f", float(text)))[0] == value
    assert len(text.lstrip("-").replace(".", "").split("e")[0].lstrip("0")) <= 9


def test_float4_columns_keep_nulls() -> None:
    rounded = struct.unpack("<f", struct.pack("<f", 0.1))[0]
    assert copy_text([(rounded,), (None,)], reals={0}) == b"0.100000001\n\\N\n"
    assert copy_text([(rounded,)]) == b"0.10000000149011612\n"  # other columns keep repr


def test_copy_chunks_and_copy_source_give_the_copy_text() -> None:
    rows = [(f"user\t{n}", n, n / 4) for n in range(1000)]
    expected = copy_text(rows)
    pieces = list(copy_chunks(rows, chunk_rows=300))
    assert len(pieces) == 4 and b"".join(pieces) == expected

    source = CopySource(copy_chunks(rows, chunk_rows=300))
    first = source.read(100)
    assert len(first) == 100
    assert source.payload() == expected  # what was read, then the rest
    assert first + source.read(10**6) == expected[:100]  # nothing is handed out twice

    def failing() -> Any:
        yield b"1\n"
        raise ValueError("bad row")

    broken = CopySource(failing())
    assert broken.read() == b"1\n"
    with pytest.raises(ValueError):
        broken.read()
    assert isinstance(broken.error, ValueError)


def _msg(
    topic: str, partition: int, offset: int, value: bytes | None, key: bytes | None = b"u1"
) -> Any:
    return Message(
        topic=CATALOGUE.prefix + topic, partition=partition, offset=offset, key=key, value=value
    )


def _view(event_id: str) -> bytes:
    return encode(
        "ViewEvent", ViewEvent("u1", "i9", 1, 0.5, CTX, ts=TS, event_id=event_id).to_dict()
    )


def test_assemble_sorts_rows_letters_and_offsets() -> None:
    other = "0b0c0a56-1b7c-4c7e-9d0a-1f2e3d4c5b6a"
    click = ClickEvent("u1", "i1", "row", 1, CTX, ts=TS, event_id=other).to_dict()
    messages = [
        _msg("events.view", 0, 10, _view(EVENT_ID)),
        _msg("events.view", 0, 11, b"\x00garbage"),
        _msg("events.view", 0, 12, _view(EVENT_ID)),  # a repeat within the batch
        _msg("events.view", 3, 5, _view(other)),
        _msg("events.click", 1, 0, json.dumps(click).encode()),
        _msg("events.click", 1, 1, MAGIC + b"\x01" * 8 + b"body", key=b"k9"),
        _msg("events.click", 1, 2, json.dumps({**click, "user_id": "a\u0000"}).encode()),
        _msg("events.browse", 2, 40, None),
    ]
    batch = assemble(messages, CATALOGUE, default_codec())

    assert sorted(batch.tables) == ["click_events", "view_events"]
    views = batch.tables["view_events"]
    assert [(r[0], r[-2], r[-1]) for r in views.rows] == [(EVENT_ID, 0, 10), (other, 3, 5)]
    assert [m.offset() for m in views.sources] == [10, 5]
    assert [r[0] for r in batch.tables["click_events"].rows] == [other]  # other table: no dupe
    assert batch.rows == 3 and batch.duplicates == 1 and batch.messages == 8
    assert [(x.original_topic, x.offset, x.reason) for x in batch.letters] == [
        ("unit.events.view", 11, "not-avro-or-json"),
        ("unit.events.click", 1, "unknown-fingerprint"),
        ("unit.events.click", 2, "invalid-value"),
        ("unit.events.browse", 40, "empty"),
    ]
    assert batch.letters[1].key == b"k9"
    assert batch.letters[1].value == MAGIC + b"\x01" * 8 + b"body"
    assert all(letter.detail for letter in batch.letters)
    assert [(tp.topic, tp.partition, tp.offset) for tp in batch.commit_offsets()] == [
        ("unit.events.browse", 2, 41),
        ("unit.events.click", 1, 3),
        ("unit.events.view", 0, 13),
        ("unit.events.view", 3, 6),
    ]
    assert "unit.events.view[0]@10-12" in batch.describe()


def test_a_lazy_batch_knows_its_offsets_and_tables_before_decoding() -> None:
    other = "0b0c0a56-1b7c-4c7e-9d0a-1f2e3d4c5b6a"
    click = ClickEvent("u1", "i1", "row", 1, CTX, ts=TS, event_id=other).to_dict()
    messages = [
        _msg("events.view", 0, 10, _view(EVENT_ID)),
        _msg("events.browse", 2, 40, None),  # its table will get no row
        _msg("events.view", 0, 11, _view(EVENT_ID)),
        _msg("events.click", 1, 0, json.dumps(click).encode()),
        _msg("events.view", 3, 5, _view(other)),
    ]
    lazy = assemble_lazily(messages, CATALOGUE, default_codec())
    assert lazy.messages == 5 and lazy.rows == 0 and not lazy.letters
    assert lazy.describe() == assemble(messages, CATALOGUE, default_codec()).describe()
    assert lazy.table_names() == ["browse_events", "click_events", "view_events"]

    assert lazy.assemble_more(2)  # the first view and the empty browse message
    assert (lazy.rows, len(lazy.letters)) == (1, 1)
    assert lazy.assemble_more(2)
    assert not lazy.assemble_more(2) and lazy.pending is None
    assert not lazy.assemble_more(2)
    assert lazy.table_names() == ["click_events", "view_events"]

    eager = assemble(messages, CATALOGUE, default_codec())
    assert (lazy.tables, lazy.duplicates, lazy.ranges) == (eager.tables, 1, eager.ranges)
    assert [x.offset for x in lazy.letters] == [x.offset for x in eager.letters] == [40]


def test_dead_letter_keeps_origin_and_truncates_huge_values() -> None:
    value = b"x" * (MAX_DEAD_LETTER_VALUE_BYTES + 10)
    letter = dead_letter(_msg("events.view", 5, 123, value, key=None), "oversized", "too big")
    assert (letter.original_topic, letter.partition, letter.offset) == ("unit.events.view", 5, 123)
    assert letter.key is None and letter.reason == "oversized"
    assert len(letter.value) == MAX_DEAD_LETTER_VALUE_BYTES
    assert letter.detail.startswith("too big") and "truncated" in letter.detail
    # The letter itself must be encodable, or it could never reach the DLQ topic.
    decoded = default_codec().decode("DeadLetter", encode("DeadLetter", letter.to_dict()))
    assert decoded["value"] == value[:MAX_DEAD_LETTER_VALUE_BYTES]


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_s(n, 0.5, 10) for n in range(1, 8)] == [0.5, 1, 2, 4, 8, 10, 10]
    assert backoff_s(10_000, 0.5, 10) == 10


def test_settings_read_the_shared_prefix_and_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEARLINE_TOPIC_PREFIX", "p1.")
    monkeypatch.setenv("NEARLINE_DB_SCHEMA", "tenant_a")
    monkeypatch.setenv("NEARLINE_SINK_BATCH_SIZE", "1234")
    settings = load(SinkSettings)
    assert (settings.topic_prefix, settings.db_schema, settings.batch_size) == (
        "p1.",
        "tenant_a",
        1234,
    )
    assert settings.group_id == "nearline-sink" and settings.stop_when_idle_s is None
    assert SinkSettings(topic_prefix="t.", db_schema="x").topic_prefix == "t."


def test_bad_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEARLINE_SINK_BATCH_SIZE", "0")
    with pytest.raises(ConfigError, match="NEARLINE_SINK_BATCH_SIZE"):
        load(SinkSettings)
