"""The compiled Avro writer: fastavro's bytes for valid records, SchemaError for the rest."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Mapping
from enum import IntEnum, StrEnum
from types import MappingProxyType
from typing import Any, cast

import fastavro
import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import schemas.codec
from schemas.avro_writer import compile_writer
from schemas.codec import Codec, SchemaVersion, default_codec, default_registry
from schemas.errors import SchemaError
from schemas.events import MAX_TS_MS

REGISTRY = default_registry()
VERSIONS = sorted(
    (v for name in REGISTRY.names() for v in REGISTRY.versions(name)),
    key=lambda v: (v.name, v.fingerprint),
)
WRITERS = {v.fingerprint: compile_writer(v.plain) for v in VERSIONS}
FLOAT_MAX = 3.4028234663852886e38


def version_id(version: SchemaVersion) -> str:
    return f"{version.name}-{version.fingerprint.hex()[:6]}"


def fastavro_bytes(schema: Any, value: Any) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, value)
    return buf.getvalue()


def error_of(write: Callable[[Any], bytes], value: Any) -> SchemaError:
    with pytest.raises(SchemaError) as caught:
        write(value)
    return caught.value


# --- Strategies: any type-valid value of a schema ----------------------------------------

# Floats for a "float" field: anything that rounds into the float range (fastavro writes
# an out-of-range double as infinity; the compiled writer refuses it), and integers.
FLOATS = (
    st.floats(width=32)
    | st.floats(min_value=-FLOAT_MAX, max_value=FLOAT_MAX)
    | st.integers(-(2**60), 2**60)
)
PRIMITIVES: dict[str, st.SearchStrategy[Any]] = {
    "null": st.none(),
    "boolean": st.booleans(),
    "int": st.integers(-(2**31), 2**31 - 1),
    "long": st.integers(-(2**63), 2**63 - 1),
    "float": FLOATS,
    "double": st.floats() | st.integers(-(2**70), 2**70),
    "bytes": st.binary(max_size=20),
    "string": st.text(max_size=20),
}


def values(
    node: Any,
    named: Mapping[str, Any],
    overrides: Mapping[str, st.SearchStrategy[Any]] | None = None,
    primitives: Mapping[str, st.SearchStrategy[Any]] = PRIMITIVES,
) -> st.SearchStrategy[Any]:
    """Values of the (fastavro-parsed) schema ``node``; ``overrides`` replace the strategy
    of a field by ``Record.field`` or ``field`` name. Optional fields are sometimes left out."""
    overrides = overrides or {}

    def of(n: Any) -> st.SearchStrategy[Any]:
        return values(n, named, overrides, primitives)

    if isinstance(node, str):
        return primitives[node] if node in primitives else of(named[node])
    if isinstance(node, list):
        return st.one_of([of(branch) for branch in node])
    kind = node["type"]
    if kind in primitives:
        return primitives[kind]
    if kind == "enum":
        return st.sampled_from(node["symbols"])
    if kind == "array":
        # Lists, not tuples: fastavro reads a tuple in a union as (branch name, value).
        return st.lists(of(node["items"]), max_size=4)
    if kind == "map":
        return st.dictionaries(st.text(max_size=8), of(node["values"]), max_size=4)
    assert kind == "record", kind
    short = node["name"].rsplit(".", 1)[-1]
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for field in node["fields"]:
        name = field["name"]
        if f"{short}.{name}" in overrides:
            strategy = overrides[f"{short}.{name}"]
        else:
            strategy = overrides[name] if name in overrides else of(field["type"])
        (optional if "default" in field else required)[name] = strategy
    return st.fixed_dictionaries(required, optional=optional)


def named_of(version: SchemaVersion) -> Mapping[str, Any]:
    named: Mapping[str, Any] = version.plain["__named_schemas"]
    return named


@pytest.mark.parametrize("version", VERSIONS, ids=version_id)
@given(data=st.data())
def test_writes_exactly_what_fastavro_writes(version: SchemaVersion, data: st.DataObject) -> None:
    record = data.draw(values(version.plain, named_of(version)))
    assert WRITERS[version.fingerprint](record) == fastavro_bytes(version.plain, record)


def test_every_registered_version_is_covered() -> None:
    # The property tests run over VERSIONS; history must be in it, not just current ones.
    assert {v.name for v in VERSIONS} == REGISTRY.names()
    assert any(v is not REGISTRY.current(v.name) for v in VERSIONS)


# --- Round trip through the codec, with records that also pass the value rules ------------

# Event ids and texts must be storable: no NUL and no lone surrogate (schemas.events).
STORABLE_CHARS = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))
NON_EMPTY = st.text(STORABLE_CHARS, min_size=1, max_size=20)
STORABLE = st.text(STORABLE_CHARS, max_size=20)
UUIDS = st.uuids().map(str)
INT32 = 2**31 - 1
INT64 = 2**63 - 1
JSON_TEXT = st.dictionaries(st.text(max_size=5), st.integers()).map(json.dumps)
RULES: dict[str, st.SearchStrategy[Any]] = {
    "event_id": UUIDS,
    "trigger_event_id": st.none() | UUIDS,
    **dict.fromkeys(["user_id", "item_id", "surface", "list_id", "format"], NON_EMPTY),
    **dict.fromkeys(["original_topic", "DeadLetter.reason"], NON_EMPTY),
    "item_ids": st.lists(NON_EMPTY, max_size=4),
    **dict.fromkeys(["session_id", "device"], STORABLE),
    **dict.fromkeys(["locale", "country"], st.none() | STORABLE),
    "ts": st.integers(0, MAX_TS_MS),
    **dict.fromkeys(["computed_at", "created_at", "failed_at"], st.integers(0, INT64)),
    **dict.fromkeys(["duration_ms", "model_version", "total_size"], st.integers(0, INT64)),
    "position": st.integers(0, INT32),
    "cluster": st.none() | st.integers(0, INT32),
    "version": st.integers(1, INT64),
    "chunk_count": st.integers(1, INT32),
    "count": st.integers(1, INT32),
    "index": st.integers(0, INT32),
    "partition": st.integers(-1, INT32),
    "offset": st.integers(-1, INT64),
    "progress": st.floats(0, 1, width=32),
    "rating": st.none() | st.floats(width=32, allow_nan=False, allow_infinity=False),
    "score": st.floats(allow_nan=False, allow_infinity=False),
    "sha256": st.text("0123456789abcdef", min_size=64, max_size=64),
    "config": JSON_TEXT,
    "cutoff": JSON_TEXT,
    "shapes": st.dictionaries(st.text(max_size=8), st.lists(st.integers(0, INT32), max_size=3)),
}
# Exact floats and no NaN, so that a decoded record compares equal to the original.
EXACT = {
    **PRIMITIVES,
    "float": st.floats(width=32, allow_nan=False),
    "double": st.floats(allow_nan=False),
}


def follow_rules(name: str, record: dict[str, Any]) -> dict[str, Any]:
    """Cross-field value rules the per-field strategies cannot express."""
    if name == "ModelChunk":
        record["index"] %= record["count"]
    if name == "RecommendationSet":
        unique = {item["item_id"]: item for item in reversed(record["items"])}
        record["items"] = [item for item in record["items"] if unique[item["item_id"]] is item]
    return record


def with_defaults(node: Any, value: Any, named: Mapping[str, Any]) -> Any:
    """``value`` with the defaults of missing record fields filled in, as a reader sees it."""
    if isinstance(node, str) and node in named:
        node = named[node]
    if not isinstance(node, dict) or node.get("type") != "record":
        if isinstance(node, dict) and node.get("type") == "array":
            return [with_defaults(node["items"], item, named) for item in value]
        return value
    return {
        f["name"]: with_defaults(f["type"], value[f["name"]], named)
        if f["name"] in value
        else f["default"]
        for f in node["fields"]
    }


@pytest.mark.parametrize("version", VERSIONS, ids=version_id)
@given(data=st.data())
def test_codec_round_trips(version: SchemaVersion, data: st.DataObject) -> None:
    strategy = values(version.plain, named_of(version), RULES, EXACT)
    record = follow_rules(version.name, data.draw(strategy))
    decoded = default_codec().decode(version.name, default_codec().encode(version, record))
    expected = with_defaults(version.plain, record, named_of(version))
    reader = REGISTRY.current(version.name)
    for field in reader.plain["fields"]:
        if field["name"] not in expected:  # a field the writer version did not have
            expected[field["name"]] = field["default"]
    assert decoded == expected


# --- Every feature, beyond what our schemas use ------------------------------------------

EVERYTHING: dict[str, Any] = {
    "type": "record",
    "name": "Everything",
    "namespace": "test.writer",
    "fields": [
        {"name": "flag", "type": "boolean"},
        {"name": "i", "type": "int"},
        {"name": "l", "type": "long"},
        {"name": "f", "type": "float"},
        {"name": "d", "type": "double"},
        {"name": "raw", "type": "bytes"},
        {"name": "s", "type": "string"},
        {"name": "nothing", "type": "null"},
        {"name": "colour", "type": {"type": "enum", "name": "Colour", "symbols": ["R", "G", "B"]}},
        {"name": "colour_again", "type": "Colour"},
        {
            "name": "pairs",
            "type": {
                "type": "array",
                "items": {
                    "type": "record",
                    "name": "Pair",
                    "fields": [
                        {"name": "k", "type": "string"},
                        {"name": "v", "type": ["null", "long"], "default": None},
                    ],
                },
            },
        },
        {"name": "pair", "type": "Pair"},
        {"name": "nested", "type": {"type": "map", "values": {"type": "array", "items": "double"}}},
        {
            "name": "any",
            "type": [
                "null",
                "Colour",
                "string",
                "int",
                "long",
                "float",
                "double",
                "boolean",
                "bytes",
                {"type": "array", "items": "int"},
                {"type": "map", "values": "string"},
            ],
        },
        {"name": "number", "type": ["float", "long"]},
        {"name": "late_null", "type": ["long", "null"]},
        {"name": "pair_or_text", "type": ["string", "Pair"]},
        {"name": "i_default", "type": "int", "default": -7},
        {"name": "s_default", "type": "string", "default": "fallback"},
        {"name": "e_default", "type": "Colour", "default": "G"},
        {"name": "a_default", "type": {"type": "array", "items": "long"}, "default": [1, 2]},
        {"name": "u_default", "type": ["long", "null"], "default": 300},
        {"name": "r_default", "type": "Pair", "default": {"k": "x"}},
    ],
}
EVERYTHING_PARSED = cast(dict[str, Any], fastavro.parse_schema(EVERYTHING))
write_everything = compile_writer(EVERYTHING)


@given(data=st.data())
@settings(max_examples=300)
def test_every_type_writes_what_fastavro_writes(data: st.DataObject) -> None:
    record = data.draw(values(EVERYTHING_PARSED, EVERYTHING_PARSED["__named_schemas"]))
    assert write_everything(record) == fastavro_bytes(EVERYTHING_PARSED, record)


def test_union_branch_choice_matches_fastavro() -> None:
    base = {
        "flag": True, "i": 1, "l": 2, "f": 1.5, "d": 2.5, "raw": b"", "s": "", "nothing": None,
        "colour": "R", "colour_again": "B", "pairs": [], "pair": {"k": "a"}, "nested": {},
        "number": 1, "late_null": None, "pair_or_text": "t", "any": None,
    }  # fmt: skip
    for value in ["G", "Q", 5, 2**40, 2**70, 1.5, True, b"x", [1], {"a": "b"}, None]:
        record = base | {"any": value}
        assert write_everything(record) == fastavro_bytes(EVERYTHING_PARSED, record), value
    for number in [5, -(2**40), 1.5]:
        record = base | {"number": number}
        assert write_everything(record) == fastavro_bytes(EVERYTHING_PARSED, record), number
    # The same Python int lands in a different branch depending on its range, and a
    # number prefers "double" even where "float" comes first.
    assert compile_writer(["int", "long"])(5)[0] == 0
    assert compile_writer(["int", "long"])(2**40)[0] == 2
    assert compile_writer(["float", "double"])(5)[0] == 2
    assert compile_writer(["boolean", "int"])(1)[0] == 2
    assert compile_writer(["boolean", "int"])(True)[0] == 0


def test_number_and_text_subclasses_are_written_like_fastavro() -> None:
    # IntEnum/StrEnum members and numpy scalars pass fastavro's validation too.
    record = VALID | {
        "i": Level.HIGH, "l": numpy.int64(-5), "f": numpy.float32(0.1), "d": numpy.float64(2),
        "s": Mode.FAST, "e": Mode.FAST, "either": numpy.int32(7),
    }  # fmt: skip
    assert write_record(record) == fastavro_bytes(fastavro.parse_schema(RECORD), record)
    assert error_of(write_record, VALID | {"l": numpy.float64(2.0)}).reason == "wrong-type"


class Level(IntEnum):
    HIGH = 3


class Mode(StrEnum):
    FAST = "B"


def test_defaults_are_written_for_missing_fields() -> None:
    write = compile_writer(
        {
            "type": "record",
            "name": "D",
            "fields": [
                {"name": "n", "type": "long", "default": -1},
                {"name": "raw", "type": "bytes", "default": "\u00ff\u0001"},
                {"name": "tag", "type": ["null", "string"], "default": None},
            ],
        }
    )
    # -1 zigzags to 1; Avro's JSON form of bytes maps code points to bytes (fastavro
    # itself cannot write this default: it passes the str on to its bytes writer).
    assert write({}) == b"\x01" + b"\x04\xff\x01" + b"\x00"
    assert write({"n": 3, "raw": b"", "tag": "x"}) == b"\x06" + b"\x00" + b"\x02\x02x"


def test_recursive_record_writes_what_fastavro_writes() -> None:
    node: dict[str, Any] = {
        "type": "record",
        "name": "Node",
        "fields": [
            {"name": "value", "type": "int"},
            {"name": "children", "type": {"type": "array", "items": "Node"}},
            {"name": "next", "type": ["null", "Node"], "default": None},
        ],
    }
    tree = {"value": 1, "children": [{"value": 2, "children": []}], "next": None}
    chain = {"value": 3, "children": [tree, tree], "next": tree}
    parsed = fastavro.parse_schema(node)
    assert compile_writer(node)(chain) == fastavro_bytes(parsed, chain)
    with pytest.raises(SchemaError, match=r"Node\.value"):
        compile_writer(node)({"value": 1, "children": [{"value": "x", "children": []}]})


@pytest.mark.parametrize("kind", ["int", "long"])
def test_varint_boundaries(kind: str) -> None:
    write = compile_writer(kind)
    top = 2 ** (63 if kind == "long" else 31)
    # Every varint length change (7-bit groups) and every lookup-table tier (14 bits).
    edges = {sign * 2**b + d for b in range(64) for d in (-1, 0, 1) for sign in (1, -1)}
    in_range = sorted(n for n in edges if -top <= n < top)
    assert in_range[0] == -top and in_range[-1] == top - 1
    for n in in_range:
        assert write(n) == fastavro_bytes(kind, n), n


def test_long_lengths_and_non_dict_inputs() -> None:
    schema = fastavro.parse_schema({"type": "array", "items": "string"})
    # Lengths past the 8192 lookup table: a 10000-byte string, a 9000-item array.
    for items in [["é" * 5000, "x"], ["x"] * 9000]:
        assert compile_writer(schema)(items) == fastavro_bytes(schema, items)
    assert compile_writer(schema)(("a", "b")) == fastavro_bytes(schema, ["a", "b"])
    view = REGISTRY.current("ViewEvent")
    record: dict[str, Any] = {
        "event_id": "e", "user_id": "u", "ts": 1, "item_id": "i", "duration_ms": 2,
        "progress": 0.5, "context": MappingProxyType({"session_id": "s", "device": "tv"}),
    }  # fmt: skip
    as_dict = record | {"context": dict(record["context"])}
    assert WRITERS[view.fingerprint](MappingProxyType(record)) == fastavro_bytes(
        view.plain, as_dict
    )


def test_prefix_is_written_first() -> None:
    assert compile_writer("long", prefix=b"\xc3\x01")(-2) == b"\xc3\x01\x03"


# --- Refusing what is not valid -------------------------------------------------------------

RECORD = {
    "type": "record",
    "name": "R",
    "fields": [
        {"name": "i", "type": "int"},
        {"name": "l", "type": "long"},
        {"name": "f", "type": "float"},
        {"name": "d", "type": "double"},
        {"name": "s", "type": "string"},
        {"name": "raw", "type": "bytes"},
        {"name": "flag", "type": "boolean"},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "counts", "type": {"type": "map", "values": "long"}},
        {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A", "B"]}},
        {"name": "maybe", "type": ["null", "string"]},
        {"name": "either", "type": ["long", "string", "null"], "default": 0},
    ],
}
VALID = {
    "i": 1, "l": 2, "f": 0.5, "d": 0.25, "s": "s", "raw": b"r", "flag": False, "tags": ["t"],
    "counts": {"c": 1}, "e": "A", "maybe": None,
}  # fmt: skip
write_record = compile_writer(RECORD)


def test_valid_record_is_written() -> None:
    # The baseline that makes the refusals below meaningful.
    assert write_record(VALID) == fastavro_bytes(fastavro.parse_schema(RECORD), VALID)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("l", 1.5),  # fastavro truncates this to 1
        ("l", 2.0),
        ("i", True),  # fastavro writes 1
        ("i", "3"),
        ("d", True),
        ("d", "0.5"),
        ("f", None),
        ("s", b"bytes"),
        ("s", 5),
        ("raw", "text"),
        ("flag", 1),  # fastavro writes any truthy value as true
        ("flag", None),
        ("tags", "abc"),  # fastavro writes ["a", "b", "c"]
        ("tags", {"a"}),
        ("tags", [1]),
        ("counts", [("c", 1)]),
        ("counts", {1: 1}),
        ("counts", {"c": 1.5}),
        ("e", 0),
        ("maybe", 5),
        ("either", 1.5),
        ("either", [1]),
    ],
)
def test_wrong_type_is_refused(field: str, value: Any) -> None:
    error = error_of(write_record, VALID | {field: value})
    assert error.reason == "wrong-type"
    assert f"R.{field}" in str(error)


def test_record_that_is_not_a_mapping_is_refused() -> None:
    assert error_of(write_record, [("i", 1)]).reason == "wrong-type"
    assert error_of(write_everything, None).reason == "wrong-type"


def test_fastavro_lets_those_through() -> None:
    # Why the refusals above matter: the same values fastavro writes without complaint.
    schema = fastavro.parse_schema(RECORD)
    assert fastavro_bytes(schema, VALID | {"l": 1.5}) == fastavro_bytes(schema, VALID | {"l": 1})
    assert fastavro_bytes(schema, VALID | {"tags": "ab"}) == fastavro_bytes(
        schema, VALID | {"tags": ["a", "b"]}
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [("i", 2**31), ("i", -(2**31) - 1), ("l", 2**63), ("l", -(2**63) - 1), ("l", 2**200)],
)
def test_integer_overflow_is_refused(field: str, value: int) -> None:
    error = error_of(write_record, VALID | {field: value})
    assert error.reason == "invalid-value"
    assert f"R.{field}" in str(error) and "does not fit" in str(error)


def test_integer_range_edges_are_accepted() -> None:
    for int_, long_ in [(2**31 - 1, 2**63 - 1), (-(2**31), -(2**63))]:
        record = VALID | {"i": int_, "l": long_}
        assert write_record(record) == fastavro_bytes(fastavro.parse_schema(RECORD), record)


def test_float_out_of_range_is_refused_but_infinity_is_not() -> None:
    assert error_of(write_record, VALID | {"f": 1e39}).reason == "invalid-value"
    assert error_of(write_record, VALID | {"d": 10**400}).reason == "invalid-value"
    record = VALID | {"f": math.inf, "d": -math.inf}
    assert write_record(record) == fastavro_bytes(fastavro.parse_schema(RECORD), record)


def test_missing_field_is_refused() -> None:
    for field in ["i", "tags", "maybe"]:
        error = error_of(write_record, {k: v for k, v in VALID.items() if k != field})
        assert error.reason == "missing-field"
        assert f"R.{field}" in str(error)
    # fastavro would write null for the nullable "maybe" that has no default.
    without = {k: v for k, v in VALID.items() if k != "maybe"}
    assert fastavro_bytes(fastavro.parse_schema(RECORD), without)


def test_unknown_union_branch_is_refused() -> None:
    error = error_of(write_record, VALID | {"either": b"bytes"})
    assert error.reason == "wrong-type" and "none of the union" in str(error)


def test_unknown_enum_symbol_is_invalid() -> None:
    error = error_of(write_record, VALID | {"e": "C"})
    assert error.reason == "invalid-value" and "'C' is not one of A, B" in str(error)


def test_text_that_is_not_utf8_is_refused() -> None:
    assert error_of(write_record, VALID | {"s": "\ud800"}).reason == "invalid-value"
    assert error_of(write_record, VALID | {"counts": {"\udfff": 1}}).reason == "invalid-value"


def record_with(*fields: dict[str, Any]) -> dict[str, Any]:
    return {"type": "record", "name": "R", "fields": list(fields)}


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "fixed", "name": "F", "size": 4}, "'fixed' is not supported"),
        (REGISTRY.current("ViewEvent").annotated, "logical type"),
        ({"type": "record", "name": "R", "fields": [{"name": "a-b", "type": "int"}]}, "a-b"),
        (
            {"type": "record", "name": "R", "fields": [{"name": "x'] or 1 #", "type": "int"}]},
            "invalid field name",
        ),
        (
            [
                {"type": "record", "name": "A", "fields": []},
                {"type": "record", "name": "B", "fields": []},
            ],
            "several record/map",
        ),
        ({"type": "map", "values": ["null", ["int"]]}, "inside a union"),
        ({"type": "array", "items": "NoSuchType"}, "NoSuchType"),
        (record_with({"name": "x", "type": "int", "default": "z"}), "Default value <z>"),
        (
            record_with(
                {
                    "name": "x",
                    "type": {"type": "enum", "name": "E", "symbols": ["A"]},
                    "default": "Z",
                }
            ),
            r"R\.x default: 'Z' is not one of A",
        ),
        (record_with({"name": "x", "type": "bytes", "default": "\u0100"}), "code points above 255"),
        (
            record_with({"name": "next", "type": ["R", "null"], "default": {"next": None}}),
            "default of a recursive type",
        ),
    ],
)
def test_unsupported_schema_fails_at_compile_time(schema: Any, message: str) -> None:
    with pytest.raises(SchemaError, match=message) as caught:
        compile_writer(schema)
    assert caught.value.reason == "invalid-schema"


# --- The codec's default path ---------------------------------------------------------------

VIEW = {
    "event_id": "6f1c0a56-1b7c-4c7e-9d0a-1f2e3d4c5b6a",
    "user_id": "u1",
    "ts": 1_700_000_000_123,
    "context": {"session_id": "s-1", "device": "tv", "locale": "en-US", "country": None},
    "item_id": "i9",
    "duration_ms": 95_000,
    "progress": 0.5,
    "rating": 4.5,
}


def test_codec_default_path_matches_validating_path() -> None:
    codec = Codec()
    assert codec.encode("ViewEvent", VIEW) == codec.encode("ViewEvent", VIEW, validate=True)


@pytest.mark.parametrize(
    ("change", "reason", "where"),
    [
        ({"duration_ms": 1.5}, "wrong-type", "ViewEvent.duration_ms"),
        ({"ts": 2**64}, "invalid-value", "ViewEvent.ts"),
        ({"context": {"session_id": "s", "device": "tv", "locale": 5}}, "wrong-type", "locale"),
        ({"context": {"device": "tv"}}, "missing-field", "ViewEvent.context.session_id"),
    ],
)
def test_codec_reports_writer_errors(change: dict[str, Any], reason: str, where: str) -> None:
    with pytest.raises(SchemaError, match=where) as caught:
        Codec().encode("ViewEvent", VIEW | change)
    assert caught.value.reason == reason
    assert str(caught.value).startswith("cannot encode ")


def test_codec_compiles_each_version_once(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled: list[str] = []

    def counting(schema: Any, *, prefix: bytes = b"") -> Callable[[Any], bytes]:
        compiled.append(schema["name"])
        return compile_writer(schema, prefix=prefix)

    monkeypatch.setattr(schemas.codec, "compile_writer", counting)
    codec = Codec()
    first = codec.encode("ViewEvent", VIEW)
    assert codec.encode("ViewEvent", VIEW) == first
    codec.encode(REGISTRY.current("ViewEvent"), VIEW)
    codec.encode("ClickEvent", VIEW | {"surface": "row", "position": 1})
    assert compiled == ["io.nearline.ViewEvent", "io.nearline.ClickEvent"]


def test_codec_checks_size_after_compiled_write() -> None:
    with pytest.raises(SchemaError) as caught:
        Codec(max_bytes={"ViewEvent": 60}).encode("ViewEvent", VIEW)
    assert caught.value.reason == "oversized"
    assert len(Codec(max_bytes={"ViewEvent": 200}).encode("ViewEvent", VIEW)) < 200
