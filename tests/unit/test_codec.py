"""The wire format: single-object encoding, fingerprints, JSON input and every error reason."""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

import fastavro
import fastavro.schema
import pytest

from schemas.codec import (
    MAGIC,
    Codec,
    SchemaRegistry,
    canonical_form,
    decode,
    decode_any,
    default_codec,
    default_registry,
    encode,
    fingerprint,
)
from schemas.errors import SchemaError
from schemas.events import (
    MAX_CHUNK_BYTES,
    BrowseEvent,
    ClickEvent,
    Context,
    DeadLetter,
    ModelChunk,
    ModelManifest,
    RecommendationSet,
    RecommendedItem,
    ViewEvent,
)

EVENT_ID = "6f1c0a56-1b7c-4c7e-9d0a-1f2e3d4c5b6a"
TS = 1_700_000_000_123
CTX = Context(session_id="s-1", device="tv", locale="en-US", country=None)

SAMPLES: dict[str, Any] = {
    "ClickEvent": ClickEvent("u1", "i9", "top-picks", 3, CTX, ts=TS, event_id=EVENT_ID),
    "BrowseEvent": BrowseEvent("u1", "row-7", ("i1", "i2", "i3"), CTX, ts=TS, event_id=EVENT_ID),
    "ViewEvent": ViewEvent("u1", "i9", 95_000, 0.5, CTX, rating=4.5, ts=TS, event_id=EVENT_ID),
    "RecommendationSet": RecommendationSet(
        "u1",
        (RecommendedItem("i1", 0.9, "because you watched i9"), RecommendedItem("i2", 0.25)),
        "nearline",
        model_version=7,
        computed_at=TS,
        trigger_event_id=EVENT_ID,
        cluster=4,
    ),
    "ModelManifest": ModelManifest(
        version=7,
        sha256="ab" * 32,
        total_size=123,
        chunk_count=1,
        format="nearline-npz/1",
        shapes={"item_embeddings": (1000, 32), "user_bias": (50,)},
        config='{"epochs": 10}',
        cutoff='{"ts": 1700000000000}',
        metrics={"precision@10": 0.21},
        created_at=TS,
    ),
    "ModelChunk": ModelChunk.of(version=7, index=0, count=1, data=b"\x00\x01binary\xff"),
    "DeadLetter": DeadLetter(
        "events.click", 2, 41, b"u1", b"\xc3\x01junk", "truncated", "body ends early", TS
    ),
}
CLICK_JSON: dict[str, Any] = {
    "event_id": EVENT_ID,
    "user_id": "u1",
    "ts": TS,
    "context": {"session_id": "s-1", "device": "tv"},
    "item_id": "i9",
    "surface": "top-picks",
    "position": 3,
}


def reason_of(schema: str, data: bytes | None, codec: Codec | None = None) -> str:
    with pytest.raises(SchemaError) as caught:
        (codec or default_codec()).decode(schema, data)
    return caught.value.reason


def as_json(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode()


# --- Fingerprints and the single-object header ------------------------------------------

# Test vectors from the Avro project's share/test/data/schema-tests.txt, published as Java
# signed longs; on the wire they are the 8 little-endian bytes of that 64-bit value.
SPEC_VECTORS = [
    ('"null"', 7195948357588979594),
    ('"boolean"', -6970731678124411036),
    ('"int"', 8247732601305521295),
    ('"string"', -8142146995180207161),
    ('{"type":"fixed","name":"foo","size":15}', 1756455273707447556),
    (
        '{"type":"record","name":"foo","fields":[{"name":"f1","type":"boolean"}]}',
        7843277075252814651,
    ),
]


@pytest.mark.parametrize(("schema", "expected"), SPEC_VECTORS)
def test_fingerprint_matches_avro_spec_vectors(schema: str, expected: int) -> None:
    assert fingerprint(json.loads(schema)) == expected.to_bytes(8, "little", signed=True)


def test_null_fingerprint_wire_bytes() -> None:
    assert fingerprint("null").hex() == "8a8f25cce724dd63"


def _rabin(data: bytes) -> int:
    """The spec's reference CRC-64-AVRO, written out independently of fastavro."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_fingerprint_of_our_schemas_matches_reference_rabin(name: str) -> None:
    version = default_registry().current(name)
    assert version.fingerprint == _rabin(version.canonical_form.encode()).to_bytes(8, "little")


def test_canonical_form_strips_annotations_and_uses_full_names() -> None:
    pcf = default_registry().current("ClickEvent").canonical_form
    assert pcf.startswith('{"name":"io.nearline.ClickEvent","type":"record","fields":[')
    assert '"name":"io.nearline.Context"' in pcf
    for dropped in ("logicalType", "doc", "default", "namespace", " "):
        assert dropped not in pcf


def test_message_starts_with_marker_and_writer_fingerprint() -> None:
    data = encode("ClickEvent", SAMPLES["ClickEvent"].to_dict())
    source = default_registry().current("ClickEvent").source
    assert data[:2] == b"\xc3\x01" == MAGIC
    assert data[2:10] == fingerprint(source)
    # The header of the "int" schema as given in the Avro project's own tests.
    assert MAGIC + fingerprint("int") == bytes.fromhex("c3018f5c393f1ad57572")


def test_each_schema_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = default_registry()
    assert default_registry() is registry and default_codec().registry is registry

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("schema parsed on the hot path")

    monkeypatch.setattr(fastavro, "parse_schema", refuse)
    monkeypatch.setattr(fastavro.schema, "parse_schema", refuse)
    record = SAMPLES["ViewEvent"].to_dict()
    assert decode("ViewEvent", encode("ViewEvent", record)) == record


# --- Round trips ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_round_trip_every_record(name: str) -> None:
    sample = SAMPLES[name]
    record = sample.to_dict()
    decoded = decode(name, encode(name, record))
    assert decoded == record
    assert type(sample).from_dict(decoded) == sample


def test_decoded_values_stay_in_wire_units() -> None:
    decoded = decode("ClickEvent", encode("ClickEvent", SAMPLES["ClickEvent"].to_dict()))
    assert decoded["ts"] == TS and type(decoded["ts"]) is int
    assert decoded["event_id"] == EVENT_ID and type(decoded["event_id"]) is str


def test_many_distinct_events_round_trip() -> None:
    rnd = random.Random(7)
    events = [
        ClickEvent(
            f"u{rnd.randrange(10**6)}", f"i{n}", "row", rnd.randrange(40), CTX, ts=TS + n
        ).to_dict()
        for n in range(2000)
    ]
    payloads = [encode("ClickEvent", e) for e in events]
    assert [decode("ClickEvent", p) for p in payloads] == events
    assert len({p[10:] for p in payloads}) == len(events)


def test_decode_accepts_memoryview_and_bytearray() -> None:
    data = encode("ViewEvent", SAMPLES["ViewEvent"].to_dict())
    assert (
        decode("ViewEvent", memoryview(data))
        == decode("ViewEvent", bytearray(data))
        == decode("ViewEvent", data)
    )


def test_decode_any_tells_manifest_from_chunk() -> None:
    allowed = ("ModelManifest", "ModelChunk")
    for name in allowed:
        schema, record = decode_any(encode(name, SAMPLES[name].to_dict()), allowed)
        assert schema == name and record == SAMPLES[name].to_dict()


def test_full_size_chunk_round_trips() -> None:
    chunk = ModelChunk.of(
        version=1, index=0, count=1, data=bytes(range(256)) * (MAX_CHUNK_BYTES // 256)
    )
    decoded = decode("ModelChunk", encode("ModelChunk", chunk.to_dict()))
    assert hashlib.sha256(decoded["data"]).hexdigest() == chunk.sha256


# --- Error reasons on decode ---------------------------------------------------------


@pytest.mark.parametrize("data", [b"", None])
def test_empty(data: bytes | None) -> None:
    assert reason_of("ClickEvent", data) == "empty"


@pytest.mark.parametrize(
    "data", [b"hello", b"\x00\x01\x02", b"[1, 2]", b'"text"', b"\xc3\x02" + bytes(20)]
)
def test_not_avro_or_json(data: bytes) -> None:
    assert reason_of("ClickEvent", data) == "not-avro-or-json"


def test_unknown_fingerprint() -> None:
    body = encode("ClickEvent", SAMPLES["ClickEvent"].to_dict())[10:]
    assert reason_of("ClickEvent", MAGIC + b"\x01" * 8 + body) == "unknown-fingerprint"


def test_known_fingerprint_of_another_type_is_refused() -> None:
    click = encode("ClickEvent", SAMPLES["ClickEvent"].to_dict())
    with pytest.raises(SchemaError, match="is a ClickEvent, expected ViewEvent") as caught:
        decode("ViewEvent", click)
    assert caught.value.reason == "unknown-fingerprint"


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_prefix_is_truncated(name: str) -> None:
    data = encode(name, SAMPLES[name].to_dict())
    for end in range(1, len(data)):
        assert reason_of(name, data[:end]) == "truncated", end


def test_trailing_bytes_are_corrupt() -> None:
    data = encode("ClickEvent", SAMPLES["ClickEvent"].to_dict())
    assert reason_of("ClickEvent", data + b"\x00") == "corrupt-avro"


def test_bad_union_branch_is_corrupt() -> None:
    record = SAMPLES["ClickEvent"].to_dict() | {"context": {"session_id": "s", "device": "tv"}}
    data = encode("ClickEvent", record)
    # "tv", then the locale's union index (0 = null); branch 4 of a two-branch union is bad.
    assert data.count(b"\x04tv\x00\x00") == 1
    assert reason_of("ClickEvent", data.replace(b"\x04tv\x00", b"\x04tv\x08")) == "corrupt-avro"


def test_invalid_utf8_is_corrupt() -> None:
    record = SAMPLES["ClickEvent"].to_dict() | {"user_id": "uX"}
    data = encode("ClickEvent", record)
    assert reason_of("ClickEvent", data.replace(b"uX", b"u\xff")) == "corrupt-avro"


def test_huge_claimed_length_does_not_allocate() -> None:
    # event_id claims ~4.6e18 bytes; only the input's few bytes may be read.
    header = default_registry().current("ClickEvent").header
    assert (
        reason_of("ClickEvent", header + b"\xfe\xff\xff\xff\xff\xff\xff\xff\x7f" + b"x" * 10)
        == "truncated"
    )
    assert (
        reason_of("BrowseEvent", default_registry().current("BrowseEvent").header + b"\x80" * 10)
        == "truncated"
    )


def test_random_bodies_only_ever_raise_schema_error() -> None:
    rnd = random.Random(20240601)
    reasons = set()
    for name in SAMPLES:
        header = default_registry().current(name).header
        for _ in range(1500):
            data = header + rnd.randbytes(rnd.randrange(0, 120))
            try:
                decode(name, data)
            except SchemaError as exc:
                reasons.add(exc.reason)
    assert reasons <= {"truncated", "corrupt-avro", "invalid-value", "oversized"}
    assert {"truncated", "corrupt-avro"} <= reasons


def test_oversized_avro_and_json() -> None:
    small = Codec(max_bytes={"BrowseEvent": 200})
    big = BrowseEvent(
        "u1", "row", tuple(f"item-{n}" for n in range(100)), CTX, ts=TS, event_id=EVENT_ID
    )
    assert (
        reason_of("BrowseEvent", default_codec().encode("BrowseEvent", big.to_dict()), small)
        == "oversized"
    )
    assert reason_of("BrowseEvent", as_json(big.to_dict()), small) == "oversized"
    assert reason_of("ClickEvent", b"{" + b" " * (64 * 1024)) == "oversized"
    assert reason_of("ClickEvent", b"junk" * (20 * 1024)) == "oversized"


def test_default_event_limit_is_64_kib() -> None:
    assert default_codec().limit("ClickEvent") == 64 * 1024
    assert default_codec().limit("ModelChunk") > MAX_CHUNK_BYTES


@pytest.mark.parametrize(
    "text",
    [
        b"{not json",
        b'{"a": 1',
        b'{"ts": NaN}',
        b'{"ts": Infinity}',
        b'{"a":' + b"[" * 20000 + b"]" * 20000 + b"}",
    ],
)
def test_invalid_json(text: bytes) -> None:
    assert reason_of("ClickEvent", text) == "invalid-json"


def test_invalid_json_encoding() -> None:
    assert reason_of("ClickEvent", b'{"user_id": "\xff\xfe"}') == "invalid-json"


@pytest.mark.parametrize(
    ("path", "field"), [((), "user_id"), ((), "event_id"), (("context",), "session_id")]
)
def test_missing_field(path: tuple[str, ...], field: str) -> None:
    obj = json.loads(json.dumps(CLICK_JSON))
    target = obj
    for key in path:
        target = target[key]
    del target[field]
    with pytest.raises(SchemaError, match=field) as caught:
        decode("ClickEvent", as_json(obj))
    assert caught.value.reason == "missing-field"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("position", "3"),
        ("position", True),
        ("position", 2.5),
        ("user_id", 17),
        ("context", "tv"),
        ("item_id", None),
        ("ts", [1]),
    ],
)
def test_wrong_type(field: str, value: Any) -> None:
    assert reason_of("ClickEvent", as_json(CLICK_JSON | {field: value})) == "wrong-type"


def test_wrong_type_in_nested_optional() -> None:
    obj = CLICK_JSON | {"context": {"session_id": "s", "device": "tv", "locale": 5}}
    with pytest.raises(SchemaError, match=r"context\.locale") as caught:
        decode("ClickEvent", as_json(obj))
    assert caught.value.reason == "wrong-type"


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("ClickEvent", {"event_id": "not-a-uuid"}),
        ("ClickEvent", {"position": -1}),
        ("ClickEvent", {"user_id": ""}),
        ("ClickEvent", {"ts": -5}),
        ("ViewEvent", {"duration_ms": -1}),
        ("ViewEvent", {"progress": 1.5}),
        ("ViewEvent", {"progress": float("nan")}),
        ("ViewEvent", {"rating": float("inf")}),
        ("RecommendationSet", {"trigger_event_id": "nope"}),
        ("ModelManifest", {"sha256": "XYZ"}),
        ("ModelManifest", {"config": "{not json"}),
        ("ModelManifest", {"version": 0}),
        ("ModelChunk", {"index": 1}),
    ],
)
def test_invalid_value(name: str, change: dict[str, Any]) -> None:
    record = SAMPLES[name].to_dict() | change
    data = encode(name, record)  # the fast path does not check values...
    assert reason_of(name, data) == "invalid-value"  # ...the reader does
    with pytest.raises(SchemaError) as caught:
        encode(name, record, validate=True)
    assert caught.value.reason == "invalid-value"


def test_int_out_of_avro_range_is_refused_when_validating() -> None:
    # fastavro's fast path would write 2**40 into a 32-bit Avro int unchecked.
    with pytest.raises(SchemaError) as caught:
        encode("ClickEvent", SAMPLES["ClickEvent"].to_dict() | {"position": 2**40}, validate=True)
    assert caught.value.reason == "invalid-value"
    assert reason_of("ClickEvent", as_json(CLICK_JSON | {"position": 2**31})) == "invalid-value"


def test_unknown_enum_symbol_is_invalid() -> None:
    record = SAMPLES["RecommendationSet"].to_dict() | {"source": "magic"}
    with pytest.raises(SchemaError) as caught:
        encode("RecommendationSet", record)
    assert caught.value.reason == "invalid-value"
    assert reason_of("RecommendationSet", as_json(record | {"items": []})) == "invalid-value"


def test_invalid_value_in_json() -> None:
    assert reason_of("ClickEvent", as_json(CLICK_JSON | {"event_id": "1234"})) == "invalid-value"
    assert (
        reason_of("ClickEvent", as_json(CLICK_JSON | {"ts": "2024-01-01T10:00:00"}))
        == "invalid-value"
    )
    assert reason_of("ClickEvent", as_json(CLICK_JSON | {"ts": "yesterday"})) == "invalid-value"


def test_duplicate_recommended_items_are_invalid() -> None:
    record = SAMPLES["RecommendationSet"].to_dict()
    record["items"] = [record["items"][0], record["items"][0]]
    assert reason_of("RecommendationSet", encode("RecommendationSet", record)) == "invalid-value"


# --- JSON input ----------------------------------------------------------------------


def test_json_decodes_to_same_record_as_avro() -> None:
    avro = decode(
        "ClickEvent",
        encode(
            "ClickEvent",
            SAMPLES["ClickEvent"].to_dict() | {"context": CTX.to_dict() | {"locale": None}},
        ),
    )
    assert decode("ClickEvent", as_json(CLICK_JSON)) == avro


def test_json_fills_defaults_and_ignores_unknown_fields() -> None:
    obj = {k: v for k, v in SAMPLES["ViewEvent"].to_dict().items() if k != "rating"} | {"extra": 1}
    decoded = decode("ViewEvent", as_json(obj))
    assert decoded["rating"] is None
    assert decoded["context"]["country"] is None
    assert "extra" not in decoded


def test_json_coercions() -> None:
    obj = CLICK_JSON | {
        "ts": "2023-11-14T22:13:20.123+00:00",
        "position": 3.0,
        "event_id": EVENT_ID.upper(),
    }
    decoded = decode("ClickEvent", b"  \n" + as_json(obj))
    assert decoded["ts"] == TS
    assert decoded["position"] == 3 and type(decoded["position"]) is int
    assert decoded["event_id"] == EVENT_ID


def test_json_z_suffix_and_integer_float_field() -> None:
    view = SAMPLES["ViewEvent"].to_dict() | {
        "ts": "2023-11-14T22:13:20.123Z",
        "progress": 1,
        "rating": 4,
    }
    decoded = decode("ViewEvent", as_json(view))
    assert decoded["ts"] == TS
    assert decoded["progress"] == 1.0 and decoded["rating"] == 4.0


def test_json_bytes_use_avro_json_code_points() -> None:
    letter = SAMPLES["DeadLetter"].to_dict() | {"key": "u1", "value": "\u00c3\u0001x"}
    decoded = decode("DeadLetter", as_json(letter))
    assert decoded["key"] == b"u1" and decoded["value"] == b"\xc3\x01x"


def test_json_not_accepted_where_the_type_is_ambiguous() -> None:
    with pytest.raises(SchemaError) as caught:
        decode_any(as_json(SAMPLES["ModelManifest"].to_dict()), ("ModelManifest", "ModelChunk"))
    assert caught.value.reason == "not-avro-or-json"


def test_avro_uuid_spelling_is_normalised() -> None:
    record = SAMPLES["ClickEvent"].to_dict() | {"event_id": "{" + EVENT_ID.upper() + "}"}
    assert decode("ClickEvent", encode("ClickEvent", record))["event_id"] == EVENT_ID


# --- Encoding ------------------------------------------------------------------------


def test_encode_missing_field() -> None:
    record = SAMPLES["ClickEvent"].to_dict()
    del record["surface"]
    with pytest.raises(SchemaError, match="surface") as caught:
        encode("ClickEvent", record)
    assert caught.value.reason == "missing-field"


def test_encode_wrong_type() -> None:
    with pytest.raises(SchemaError, match="position") as caught:
        encode("ClickEvent", SAMPLES["ClickEvent"].to_dict() | {"position": "third"})
    assert caught.value.reason == "wrong-type"
    with pytest.raises(SchemaError) as caught:
        encode("ClickEvent", SAMPLES["ClickEvent"].to_dict() | {"ts": 2**70})
    assert caught.value.reason in {"wrong-type", "invalid-value"}


def test_encode_validate_catches_what_fastavro_lets_through() -> None:
    # fastavro would write the string "abc" as the array ["a", "b", "c"].
    record = SAMPLES["BrowseEvent"].to_dict() | {"item_ids": "abc"}
    with pytest.raises(SchemaError) as caught:
        encode("BrowseEvent", record, validate=True)
    assert caught.value.reason == "wrong-type"


def test_encode_validate_coerces_like_json() -> None:
    record = SAMPLES["ClickEvent"].to_dict() | {"ts": "2023-11-14T22:13:20.123Z"}
    assert decode("ClickEvent", encode("ClickEvent", record, validate=True))["ts"] == TS


def test_encode_refuses_oversized() -> None:
    small = Codec(max_bytes={"ClickEvent": 40})
    with pytest.raises(SchemaError) as caught:
        small.encode("ClickEvent", SAMPLES["ClickEvent"].to_dict())
    assert caught.value.reason == "oversized"


def test_unknown_schema_name() -> None:
    with pytest.raises(SchemaError) as caught:
        encode("NoSuchEvent", {})
    assert caught.value.reason == "unknown-schema"


def test_registry_rejects_non_record_and_duplicate_current(tmp_path: Any) -> None:
    with pytest.raises(SchemaError):
        SchemaRegistry().add({"type": "string"})
    source = default_registry().current("ClickEvent").source
    (tmp_path / "a.avsc").write_text(json.dumps(source))
    (tmp_path / "b.avsc").write_text(json.dumps(source))
    with pytest.raises(SchemaError, match="second current schema"):
        SchemaRegistry.from_directory(tmp_path)


def test_canonical_form_is_what_is_fingerprinted() -> None:
    version = default_registry().current("ViewEvent")
    assert canonical_form(version.source) == version.canonical_form
    assert fingerprint(json.loads(version.canonical_form)) == version.fingerprint


def test_dead_letter_truncates_oversized_originals() -> None:
    letter = DeadLetter.for_message(
        "events.view", 0, 5, b"k" * 10_000, b"v" * (2 * 1024 * 1024), "oversized", "too big"
    )
    assert len(letter.value) == 512 * 1024 and len(letter.key or b"") == 4096
    assert "value truncated from 2097152 bytes" in letter.detail
    assert decode("DeadLetter", encode("DeadLetter", letter.to_dict()))["value"] == letter.value
