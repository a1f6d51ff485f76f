"""The compiled Avro reader: fastavro's records for valid bodies, SchemaError for the rest."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from typing import Any

import fastavro
import pytest
from fastavro.read import SchemaResolutionError
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.avro_reader import Reader, compile_reader
from schemas.codec import Codec, SchemaRegistry, SchemaVersion, default_codec, default_registry
from schemas.errors import SchemaError

REGISTRY = default_registry()
VERSIONS = sorted(
    (v for name in REGISTRY.names() for v in REGISTRY.versions(name)),
    key=lambda v: (v.name, v.fingerprint),
)
PAIRS = [(w, r) for w in VERSIONS for r in VERSIONS if w.name == r.name]
READERS = {(w.fingerprint, r.fingerprint): compile_reader(w.plain, r.plain) for w, r in PAIRS}
PLAIN = {v.fingerprint: compile_reader(v.plain) for v in VERSIONS}
BODY_REASONS = {"truncated", "corrupt-avro"}


def version_id(version: SchemaVersion) -> str:
    return f"{version.name}-{version.fingerprint.hex()[:6]}"


def pair_id(pair: tuple[SchemaVersion, SchemaVersion]) -> str:
    return f"{version_id(pair[0])}-as-{pair[1].fingerprint.hex()[:6]}"


def fastavro_bytes(schema: Any, value: Any) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, value)
    return buf.getvalue()


def fastavro_read(data: bytes, writer: Any, reader: Any = None) -> tuple[Any, int]:
    buf = io.BytesIO(data)
    value = fastavro.schemaless_reader(buf, writer, reader)
    return value, buf.tell()


def same(a: Any, b: Any) -> bool:
    """Equal values of equal types, NaN equal to NaN, dict keys in the same order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(same, a, b))
    return bool(a == b)


def error_of(read: Reader, data: bytes) -> SchemaError:
    with pytest.raises(SchemaError) as caught:
        read(data, 0)
    return caught.value


# --- Strategies: any value fastavro writes for a schema ----------------------------------

PRIMITIVES: dict[str, st.SearchStrategy[Any]] = {
    "null": st.none(),
    "boolean": st.booleans(),
    "int": st.integers(-(2**31), 2**31 - 1),
    "long": st.integers(-(2**63), 2**63 - 1),
    "float": st.floats(width=32),
    "double": st.floats(),
    "bytes": st.binary(max_size=20),
    "string": st.text(max_size=20),
}


def values(node: Any, named: Mapping[str, Any]) -> st.SearchStrategy[Any]:
    if isinstance(node, str):
        return PRIMITIVES[node] if node in PRIMITIVES else values(named[node], named)
    if isinstance(node, list):
        return st.one_of([values(branch, named) for branch in node])
    kind = node["type"]
    if kind in PRIMITIVES:
        return PRIMITIVES[kind]
    if kind == "enum":
        return st.sampled_from(node["symbols"])
    if kind == "array":
        return st.lists(values(node["items"], named), max_size=4)
    if kind == "map":
        return st.dictionaries(st.text(max_size=8), values(node["values"], named), max_size=4)
    assert kind == "record", kind
    return st.fixed_dictionaries({f["name"]: values(f["type"], named) for f in node["fields"]})


def records(version: SchemaVersion) -> st.SearchStrategy[Any]:
    return values(version.plain, version.plain["__named_schemas"])


# --- Property tests over every registered schema --------------------------------------


def test_every_version_and_both_view_event_directions_are_covered() -> None:
    assert {v.name for v in VERSIONS} == REGISTRY.names()
    views = [(w, r) for w, r in PAIRS if w.name == "ViewEvent" and w is not r]
    assert len(views) == 2  # v1 read as v2 and v2 read as v1


@pytest.mark.parametrize("version", VERSIONS, ids=version_id)
@given(data=st.data())
def test_reads_what_fastavro_reads(version: SchemaVersion, data: st.DataObject) -> None:
    body = fastavro_bytes(version.plain, data.draw(records(version)))
    expected, end = fastavro_read(body, version.plain)
    value, stop = PLAIN[version.fingerprint](body, 0)
    assert same(value, expected) and stop == end == len(body)


@pytest.mark.parametrize("pair", PAIRS, ids=pair_id)
@given(data=st.data())
def test_resolves_as_fastavro_resolves(
    pair: tuple[SchemaVersion, SchemaVersion], data: st.DataObject
) -> None:
    writer, reader = pair
    body = fastavro_bytes(writer.plain, data.draw(records(writer)))
    expected, end = fastavro_read(body, writer.plain, reader.plain)
    value, stop = READERS[(writer.fingerprint, reader.fingerprint)](body, 0)
    assert same(value, expected) and stop == end == len(body)


def mutated(data: st.DataObject, body: bytes) -> bytes:
    """``body`` with one random edit: a byte changed, bytes inserted or removed, or cut."""
    edit = data.draw(st.sampled_from(["set", "insert", "delete", "cut"]))
    at = data.draw(st.integers(0, len(body)))
    if edit == "set" and at < len(body):
        return body[:at] + bytes([data.draw(st.integers(0, 255))]) + body[at + 1 :]
    if edit == "insert":
        return body[:at] + data.draw(st.binary(min_size=1, max_size=12)) + body[at:]
    if edit == "delete":
        return body[:at] + body[at + data.draw(st.integers(1, 12)) :]
    return body[:at]


@pytest.mark.parametrize("pair", PAIRS, ids=pair_id)
@settings(max_examples=200)
@given(data=st.data())
def test_mutated_bodies_raise_only_schema_error(
    pair: tuple[SchemaVersion, SchemaVersion], data: st.DataObject
) -> None:
    writer, reader = pair
    body = mutated(data, fastavro_bytes(writer.plain, data.draw(records(writer))))
    try:
        value, stop = READERS[(writer.fingerprint, reader.fingerprint)](body, 0)
    except SchemaError as exc:
        assert exc.reason in BODY_REASONS, exc
        return
    # Whatever the reader accepts, fastavro reads the same way (the reverse does not hold:
    # the reader refuses some malformed input fastavro accepts, see the module docstring).
    expected, end = fastavro_read(body, writer.plain, reader.plain)
    assert same(value, expected) and stop == end


@pytest.mark.parametrize("version", VERSIONS, ids=version_id)
@settings(max_examples=200)
@given(data=st.data())
def test_the_codec_raises_only_schema_error_on_mutated_messages(
    version: SchemaVersion, data: st.DataObject
) -> None:
    body = mutated(data, fastavro_bytes(version.plain, data.draw(records(version))))
    try:
        default_codec().decode(version.name, version.header + body)
    except SchemaError as exc:
        assert exc.reason in BODY_REASONS | {"invalid-value"}, exc


@pytest.mark.parametrize("version", VERSIONS, ids=version_id)
@given(data=st.data())
def test_every_prefix_is_truncated(version: SchemaVersion, data: st.DataObject) -> None:
    body = fastavro_bytes(version.plain, data.draw(records(version)))
    read = PLAIN[version.fingerprint]
    for end in range(len(body)):
        assert error_of(read, body[:end]).reason == "truncated", end


# --- The wire format, one rule at a time ----------------------------------------------


def record_of(*fields: tuple[str, Any]) -> dict[str, Any]:
    return {"type": "record", "name": "R", "fields": [{"name": n, "type": t} for n, t in fields]}


LONG = compile_reader(record_of(("x", "long")))
INT = compile_reader(record_of(("x", "int")))


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (b"\x00", 0),
        (b"\x01", -1),
        (b"\x02", 1),
        (b"\x80\x01", 64),
        (b"\x80\x80\x00", 0),  # not the shortest encoding, still valid
        (b"\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x01", 2**63 - 1),
        (b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", -(2**63)),
    ],
)
def test_long_zigzag_varints(data: bytes, value: int) -> None:
    assert LONG(data, 0) == ({"x": value}, len(data))


def test_varints_beyond_their_type_are_corrupt_unless_cut_short() -> None:
    assert error_of(LONG, b"\xff" * 9 + b"\x02").reason == "corrupt-avro"  # bit 64
    assert error_of(LONG, b"\x80" * 10 + b"\x00").reason == "corrupt-avro"  # 11 bytes
    assert error_of(LONG, b"\x80" * 12).reason == "truncated"
    assert INT(b"\xfe\xff\xff\xff\x0f", 0) == ({"x": 2**31 - 1}, 5)
    assert error_of(INT, b"\x80\x80\x80\x80\x10").reason == "corrupt-avro"  # 2**32
    assert error_of(INT, b"\x80\x80\x80\x80\x80").reason == "truncated"


def test_floats_doubles_booleans_and_null() -> None:
    schema = record_of(("f", "float"), ("d", "double"), ("b", "boolean"), ("n", "null"))
    read = compile_reader(schema)
    body = fastavro_bytes(
        fastavro.parse_schema(schema), {"f": 1.5, "d": -0.1, "b": True, "n": None}
    )
    assert read(body, 0) == ({"f": 1.5, "d": -0.1, "b": True, "n": None}, len(body))
    # fastavro reads any non-zero byte as true; so does the reader.
    assert read(body[:-1] + b"\x07", 0)[0]["b"] is True
    for end in range(len(body)):
        assert error_of(read, body[:end]).reason == "truncated"


def test_reads_start_at_the_given_offset_and_return_where_they_stop() -> None:
    assert LONG(b"header\x04trailer", 6) == ({"x": 2}, 7)


def test_strings_and_bytes() -> None:
    read = compile_reader(record_of(("s", "string"), ("b", "bytes")))
    assert read(b"\x06h\xc3\xa9\x04\x00\xff", 0) == ({"s": "hé", "b": b"\x00\xff"}, 7)
    assert error_of(read, b"\x06h\xc3\xa9\x06\x00\xff").reason == "truncated"
    assert error_of(read, b"\x04\xff\xfe\x00").reason == "corrupt-avro"  # not UTF-8
    assert error_of(read, b"\x03ab\x00").reason == "corrupt-avro"  # length -2


def test_huge_lengths_and_counts_are_bounded_by_the_input() -> None:
    read = compile_reader(record_of(("s", "string")))
    assert error_of(read, b"\xfe\xff\xff\xff\xff\xff\xff\xff\x7f" + b"x" * 10).reason == (
        "truncated"
    )
    strings = compile_reader(record_of(("a", {"type": "array", "items": "string"})))
    assert error_of(strings, b"\xfe\xff\xff\xff\x0f\x02a").reason == "truncated"
    # Items that take no bytes: the count alone could make billions of them.
    # Items that take no bytes: a count alone could make billions of them, so a body may
    # hold as many of them as it has bytes, however they are nested or split into blocks.
    nulls = {"type": "array", "items": "null"}
    flat = compile_reader(record_of(("a", nulls), ("s", "string")))
    assert flat(b"\x06\x00\x04ab", 0) == ({"a": [None] * 3, "s": "ab"}, 5)
    assert error_of(flat, b"\xfe\xff\xff\xff\x0f\x00\x00").reason == "corrupt-avro"
    nested = compile_reader(record_of(("a", {"type": "array", "items": nulls})))
    assert nested(b"\x04\x04\x00\x02\x00\x00", 0) == ({"a": [[None] * 2, [None]]}, 6)
    assert error_of(nested, b"\x04\x08\x00\x08\x00\x00").reason == "corrupt-avro"
    skipped = compile_reader(record_of(("a", nulls)), record_of())
    assert error_of(skipped, b"\xfe\xff\xff\xff\xff\xff\xff\xff\x7f\x00").reason == "corrupt-avro"


def test_arrays_and_maps_in_several_blocks_with_negative_counts() -> None:
    longs = compile_reader(record_of(("a", {"type": "array", "items": "long"})))
    # Two items; then -2 items with their size in bytes (2); then the end.
    assert longs(b"\x04\x02\x04\x03\x04\x06\x08\x00", 0) == ({"a": [1, 2, 3, 4]}, 8)
    assert error_of(longs, b"\x03\x03\x06\x08\x00").reason == "corrupt-avro"  # size -2
    maps = compile_reader(record_of(("m", {"type": "map", "values": "int"})))
    body = b"\x02\x02a\x02\x01\x06\x02b\x04\x00"  # {"a": 1}, then -1 entry of 3 bytes
    assert maps(body, 0) == ({"m": {"a": 1, "b": 2}}, len(body))
    schema = fastavro.parse_schema(record_of(("m", {"type": "map", "values": "int"})))
    assert fastavro_read(body, schema) == ({"m": {"a": 1, "b": 2}}, len(body))


def test_union_and_enum_indexes_out_of_range_are_corrupt() -> None:
    union = compile_reader(record_of(("u", ["null", "long"])))
    assert union(b"\x02\x04", 0) == ({"u": 2}, 2)
    assert union(b"\x80\x00", 0) == ({"u": None}, 2)  # index 0, not the shortest encoding
    assert error_of(union, b"\x04").reason == "corrupt-avro"
    assert error_of(union, b"\x01").reason == "corrupt-avro"  # index -1
    enum = compile_reader(record_of(("e", {"type": "enum", "name": "E", "symbols": ["a", "b"]})))
    assert enum(b"\x02", 0) == ({"e": "b"}, 1)
    assert error_of(enum, b"\x04").reason == "corrupt-avro"
    assert error_of(enum, b"\x01").reason == "corrupt-avro"  # fastavro would read "b"


def test_fixed_and_recursive_records() -> None:
    node = {
        "type": "record",
        "name": "Node",
        "fields": [
            {"name": "id", "type": {"type": "fixed", "name": "Id", "size": 2}},
            {"name": "next", "type": ["null", "Node"]},
        ],
    }
    read = compile_reader(node)
    value = {"id": b"ab", "next": {"id": b"cd", "next": None}}
    body = fastavro_bytes(fastavro.parse_schema(node), value)
    assert read(body, 0) == (value, len(body))
    assert error_of(read, body[:-1]).reason == "truncated"
    deep = b"ab\x02" * 5000 + b"ab\x00"
    assert error_of(read, deep).reason == "corrupt-avro"  # nested too deeply for Python


# --- Schema resolution ------------------------------------------------------------------


def resolve(
    writer: dict[str, Any], reader: dict[str, Any], value: Any, *, like_fastavro: bool = True
) -> Any:
    """What the compiled reader makes of ``value`` written as ``writer``, read as ``reader``
    (and, unless told otherwise, what fastavro makes of it too)."""
    w, r = fastavro.parse_schema(writer), fastavro.parse_schema(reader)
    body = fastavro_bytes(w, value)
    result, stop = compile_reader(writer, reader)(body, 0)
    assert stop == len(body)
    if like_fastavro:
        assert same(result, fastavro_read(body, w, r)[0])
    return result


def test_promotions() -> None:
    writer = record_of(("i", "int"), ("l", "long"), ("f", "float"), ("s", "string"), ("b", "bytes"))
    reader = record_of(
        ("i", "double"), ("l", "float"), ("f", "double"), ("s", "bytes"), ("b", "string")
    )
    value = {"i": 3, "l": -4, "f": 0.5, "s": "é", "b": b"ok"}
    expected = {"i": 3.0, "l": -4.0, "f": 0.5, "s": "é".encode(), "b": "ok"}
    assert same(resolve(writer, reader, value), expected)


def test_fields_are_matched_by_name_dropped_or_defaulted() -> None:
    writer = record_of(
        ("a", "long"), ("gone", {"type": "map", "values": "string"}), ("b", "string")
    )
    reader = {
        "type": "record",
        "name": "R",
        "fields": [
            {"name": "b", "type": "string"},
            {"name": "new", "type": "bytes", "default": "\u00ff"},
            {"name": "list", "type": {"type": "array", "items": "int"}, "default": [1]},
            {"name": "renamed", "aliases": ["a"], "type": "long"},
        ],
    }
    got = resolve(writer, reader, {"a": 1, "gone": {"k": "v"}, "b": "x"}, like_fastavro=False)
    # Bytes defaults follow the Avro spec (fastavro would return the str "\xff").
    assert got == {"renamed": 1, "b": "x", "new": b"\xff", "list": [1]}
    again = resolve(writer, reader, {"a": 1, "gone": {}, "b": "x"}, like_fastavro=False)
    assert again["list"] is not got["list"]  # a mutable default is not shared


def test_unions_resolve_branch_by_branch() -> None:
    writer = record_of(("u", ["null", "string", "long"]))
    reader = record_of(("u", ["double", "null", "string"]))
    assert resolve(writer, reader, {"u": 5}) == {"u": 5.0}
    assert resolve(writer, reader, {"u": None}) == {"u": None}
    narrow = record_of(("u", "string"))
    assert resolve(writer, narrow, {"u": "s"}) == {"u": "s"}
    body = fastavro_bytes(fastavro.parse_schema(writer), {"u": None})
    assert error_of(compile_reader(writer, narrow), body).reason == "wrong-type"


def test_enum_symbols_unknown_to_the_reader() -> None:
    writer = record_of(("e", {"type": "enum", "name": "E", "symbols": ["a", "b", "c"]}))
    strict = record_of(("e", {"type": "enum", "name": "E", "symbols": ["a", "b"]}))
    lenient = record_of(("e", {"type": "enum", "name": "E", "symbols": ["a", "b"], "default": "a"}))
    assert resolve(writer, strict, {"e": "b"}) == {"e": "b"}
    assert resolve(writer, lenient, {"e": "c"}) == {"e": "a"}
    body = fastavro_bytes(fastavro.parse_schema(writer), {"e": "c"})
    assert error_of(compile_reader(writer, strict), body).reason == "wrong-type"
    assert error_of(compile_reader(writer, strict), b"\x06").reason == "corrupt-avro"


@pytest.mark.parametrize(
    ("writer", "reader"),
    [
        (record_of(("x", "string")), record_of(("x", "long"))),
        (record_of(("x", "long")), record_of(("x", "int"))),  # no demotion
        (record_of(("x", "long")), record_of(("x", "long"), ("y", "long"))),  # no default
        (record_of(("x", "long")), {**record_of(("x", "long")), "name": "Other"}),
    ],
)
def test_unreadable_pairs_raise_wrong_type_where_the_data_meets_them(
    writer: dict[str, Any], reader: dict[str, Any]
) -> None:
    read = compile_reader(writer, reader)
    assert error_of(read, b"\x02\x02").reason == "wrong-type"
    with pytest.raises(SchemaResolutionError):
        fastavro_read(b"\x02\x02", fastavro.parse_schema(writer), fastavro.parse_schema(reader))


def test_schemas_the_reader_cannot_compile() -> None:
    with pytest.raises(SchemaError) as caught:
        compile_reader({"type": "record", "name": "R", "fields": [{"name": "x", "type": "nope"}]})
    assert caught.value.reason == "invalid-schema"
    with pytest.raises(SchemaError) as caught:
        compile_reader(record_of(("x", {"type": "long", "logicalType": "timestamp-millis"})))
    assert caught.value.reason == "invalid-schema"


# --- In the codec ---------------------------------------------------------------------


def test_the_codec_follows_a_change_of_current_version() -> None:
    registry = SchemaRegistry.from_directory()
    codec = Codec(registry)
    record = {
        "event_id": "6f1c0a56-1b7c-4c7e-9d0a-1f2e3d4c5b6a",
        "user_id": "u",
        "ts": 1,
        "context": {"session_id": "s", "device": "tv", "locale": None, "country": None},
        "item_id": "i",
        "duration_ms": 1,
        "progress": 0.5,
        "rating": 4.0,
    }
    data = codec.encode("ViewEvent", record)
    assert codec.decode("ViewEvent", data)["rating"] == 4.0
    v1 = next(v for v in registry.versions("ViewEvent") if len(v.source["fields"]) == 7)
    registry.add(dict(v1.source), current=True)  # the reader is v1 from now on
    assert "rating" not in codec.decode("ViewEvent", data)
