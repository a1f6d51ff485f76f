"""Schema evolution: old writers read by new readers and the reverse, by fingerprint."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from schemas.codec import AVRO_DIR, Codec, SchemaRegistry, default_registry
from schemas.errors import SchemaError

EVENT_ID = "0b5f3b3e-8a33-4c1e-9a52-2b1b0c6f4e11"
V1_RECORD: dict[str, Any] = {
    "event_id": EVENT_ID,
    "user_id": "u1",
    "ts": 1_700_000_000_000,
    "context": {"session_id": "s", "device": "phone", "locale": None, "country": "NL"},
    "item_id": "i9",
    "duration_ms": 60_000,
    "progress": 0.25,
}


def load(path: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((AVRO_DIR / path).read_text())
    return loaded


def test_both_view_event_versions_are_registered() -> None:
    versions = default_registry().versions("ViewEvent")
    fields = sorted(len(v.source["fields"]) for v in versions)
    assert fields == [7, 8]
    assert len({v.fingerprint for v in versions}) == 2
    assert default_registry().current("ViewEvent").source == load("ViewEvent.avsc")


def test_old_writer_new_reader_fills_default() -> None:
    codec = Codec()
    v1 = codec.registry.add(load("history/ViewEvent.v1.avsc"))
    data = codec.encode(v1, V1_RECORD)
    assert data[2:10] == v1.fingerprint != codec.registry.current("ViewEvent").fingerprint
    assert codec.decode("ViewEvent", data) == V1_RECORD | {"rating": None}


def test_new_writer_old_reader_drops_new_field() -> None:
    # An old reader: v1 is its current version; it has been told about v2 as a writer.
    old = SchemaRegistry()
    old.add(load("history/ViewEvent.v1.avsc"), current=True)
    v2 = old.add(load("ViewEvent.avsc"))
    data = Codec(old).encode(v2, V1_RECORD | {"rating": 3.5})
    assert Codec(old).decode("ViewEvent", data) == V1_RECORD


def test_reader_that_never_saw_the_writer_refuses_by_fingerprint() -> None:
    # Single-object encoding carries no schema: readers must learn a version before any
    # writer uses it. Until then the message is refused, never misread.
    old = SchemaRegistry()
    old.add(load("history/ViewEvent.v1.avsc"), current=True)
    data = Codec().encode("ViewEvent", V1_RECORD | {"rating": 3.5})
    with pytest.raises(SchemaError) as caught:
        Codec(old).decode("ViewEvent", data)
    assert caught.value.reason == "unknown-fingerprint"


def test_incompatible_writer_is_refused_not_misread() -> None:
    broken = copy.deepcopy(load("ViewEvent.avsc"))
    for field in broken["fields"]:
        if field["name"] == "progress":
            field["type"] = "string"
    registry = SchemaRegistry.from_directory()
    codec = Codec(registry)
    data = codec.encode(registry.add(broken), V1_RECORD | {"progress": "half"})
    with pytest.raises(SchemaError) as caught:
        codec.decode("ViewEvent", data)
    assert caught.value.reason == "wrong-type"


def test_doc_changes_do_not_change_the_fingerprint() -> None:
    edited = copy.deepcopy(load("ViewEvent.avsc"))
    edited["doc"] = "reworded"
    assert (
        SchemaRegistry().add(edited).fingerprint
        == default_registry().current("ViewEvent").fingerprint
    )


def test_context_is_defined_identically_in_every_event_schema() -> None:
    # Each .avsc is standalone, so Context is inlined three times; this keeps them equal.
    contexts = []
    for name in ("ClickEvent", "BrowseEvent", "ViewEvent"):
        (field,) = [f for f in load(f"{name}.avsc")["fields"] if f["name"] == "context"]
        contexts.append(field["type"])
    assert contexts[0]["name"] == "Context"
    assert contexts[0] == contexts[1] == contexts[2]


def test_every_history_schema_is_an_older_version_of_a_current_one() -> None:
    registry = default_registry()
    for path in sorted((AVRO_DIR / "history").glob("*.avsc")):
        version = registry.add(json.loads(path.read_text()))
        assert version.name in registry.names(), path
        assert version is not registry.current(version.name), path
