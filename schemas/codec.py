"""The wire format: Avro single-object encoding, plus JSON objects from any Kafka client.

An Avro message is the marker ``C3 01``, the 8-byte little-endian CRC-64-AVRO fingerprint
of the writer schema's Parsing Canonical Form, then the schemaless Avro body. The
fingerprint names the writer schema, so a reader looks it up in its
:class:`SchemaRegistry` (current schemas from ``schemas/avro/*.avsc`` and older versions
from ``schemas/avro/history/``) and resolves it against its own, current, version. Bodies
are written and read by code compiled once per schema (:mod:`schemas.avro_writer`) and per
(writer, reader) pair (:mod:`schemas.avro_reader`).

A value whose first non-blank byte is ``{`` is read as a JSON object and checked against
the same current schema, so kcat or a console producer can feed the platform. Omitted
fields take their Avro default, timestamps may be epoch milliseconds or ISO-8601 text.

Decoded records are plain dicts in wire units: ``ts`` is epoch milliseconds (``int``) and
``event_id`` a ``str``. Every failure is a :class:`SchemaError` whose ``reason`` is one of
``empty``, ``not-avro-or-json``, ``unknown-fingerprint``, ``truncated``, ``corrupt-avro``,
``invalid-json``, ``missing-field``, ``wrong-type``, ``invalid-value`` or ``oversized``.

Example::

    from schemas.codec import decode, encode

    payload = encode("ClickEvent", click.to_dict())
    record = decode("ClickEvent", payload)   # also accepts b'{"event_id": ...}'
"""

from __future__ import annotations

import copy
import functools
import io
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple, cast

import fastavro
from fastavro.schema import fingerprint as _fastavro_fingerprint
from fastavro.schema import to_parsing_canonical_form

from schemas.avro_reader import Reader, compile_reader
from schemas.avro_writer import Writer, compile_writer
from schemas.errors import SchemaError
from schemas.events import (
    MAX_CHUNK_BYTES,
    MAX_DEAD_LETTER_KEY_BYTES,
    MAX_DEAD_LETTER_VALUE_BYTES,
    check_values,
)

AVRO_DIR = Path(__file__).resolve().parent / "avro"
MAGIC = b"\xc3\x01"
HEADER_SIZE = len(MAGIC) + 8

KiB = 1024
EVENT_MAX_BYTES = 64 * KiB
DEFAULT_MAX_BYTES: Mapping[str, int] = {
    "ClickEvent": EVENT_MAX_BYTES,
    "BrowseEvent": EVENT_MAX_BYTES,
    "ViewEvent": EVENT_MAX_BYTES,
    "RecommendationSet": 256 * KiB,
    "ModelManifest": 256 * KiB,
    # Room for the other fields and the header around a full chunk / truncated letter.
    "ModelChunk": MAX_CHUNK_BYTES + 64 * KiB,
    "DeadLetter": MAX_DEAD_LETTER_VALUE_BYTES + MAX_DEAD_LETTER_KEY_BYTES + 64 * KiB,
}
"""Largest accepted message per schema; schemas not listed get :data:`EVENT_MAX_BYTES`."""

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


def canonical_form(schema: Mapping[str, Any] | str) -> str:
    """The Parsing Canonical Form of ``schema`` (Avro spec), the text that is fingerprinted."""
    return str(to_parsing_canonical_form(dict(schema) if isinstance(schema, Mapping) else schema))


def fingerprint(schema: Mapping[str, Any] | str) -> bytes:
    """The CRC-64-AVRO fingerprint of ``schema`` as the 8 little-endian bytes sent on the wire.

    Example::

        fingerprint("null").hex() == "8a8f25cce724dd63"
    """
    # fastavro returns the hex of the little-endian bytes, i.e. already in wire order.
    return bytes.fromhex(_fastavro_fingerprint(canonical_form(schema), "CRC-64-AVRO"))


def _without_logical_types(node: Any) -> Any:
    """A copy of a schema node with ``logicalType`` annotations removed.

    The codec reads and writes with this form so that values stay in wire units (int
    millis, str uuids) instead of fastavro's datetime/UUID conversions: cheaper, and equal
    to what the JSON path yields. Canonical form drops logical types anyway, so the
    fingerprint is unchanged.
    """
    if isinstance(node, list):
        return [_without_logical_types(branch) for branch in node]
    if not isinstance(node, dict):
        return node
    if "logicalType" in node and node.get("type") in _PRIMITIVES:
        return node["type"]
    out = {key: value for key, value in node.items() if key != "logicalType"}
    if "fields" in out:
        out["fields"] = [{**f, "type": _without_logical_types(f["type"])} for f in out["fields"]]
    for key in ("items", "values"):
        if key in out:
            out[key] = _without_logical_types(out[key])
    return out


@dataclass(frozen=True, slots=True, eq=False)
class SchemaVersion:
    """One version of a named record schema, parsed once at registration."""

    name: str
    """Short record name, e.g. ``ViewEvent`` (ours all live in namespace ``io.nearline``)."""
    fingerprint: bytes
    canonical_form: str
    source: Mapping[str, Any]
    """The schema as declared, with docs and logical types."""
    annotated: dict[str, Any]
    """fastavro-parsed ``source``: walked to check and coerce JSON input."""
    plain: dict[str, Any]
    """fastavro-parsed ``source`` without logical types: the schema bodies are read/written with."""
    header: bytes
    """The 10 bytes that start every message written with this version (marker + fingerprint)."""


class SchemaRegistry:
    """Schemas by name (the current version: writer for encoding, reader for decoding) and
    every known version by fingerprint (writers the codec can read).

    Example::

        registry = SchemaRegistry.from_directory()          # schemas/avro + history
        registry.current("ViewEvent").fingerprint.hex()
        registry.add(newer_view_schema)                     # readable, not current
    """

    def __init__(self) -> None:
        self._current: dict[str, SchemaVersion] = {}
        self._by_fingerprint: dict[bytes, SchemaVersion] = {}
        self.changes = 0
        """Bumped by every :meth:`add`; what a cache of resolved versions compares."""

    @classmethod
    def from_directory(cls, directory: Path = AVRO_DIR) -> SchemaRegistry:
        """Load ``directory/*.avsc`` as current versions, ``directory/history/*.avsc`` as older."""
        registry = cls()
        for path in sorted(directory.glob("*.avsc")):
            schema = _load_json(path)
            if str(schema.get("name", "")).rsplit(".", 1)[-1] in registry._current:
                raise SchemaError(
                    f"{path}: a second current schema named {schema['name']}",
                    reason="invalid-schema",
                )
            registry.add(schema, current=True)
        for path in sorted((directory / "history").glob("*.avsc")):
            registry.add(_load_json(path))
        return registry

    def add(self, schema: Mapping[str, Any], *, current: bool = False) -> SchemaVersion:
        """Register a record schema (idempotent); ``current=True`` makes it the version used
        for encoding and as reader. Returns the registered version."""
        if not isinstance(schema, Mapping) or schema.get("type") != "record":
            raise SchemaError(
                "only named record schemas can be registered", reason="invalid-schema"
            )
        try:
            pcf = canonical_form(schema)
            fp = fingerprint(schema)
            annotated = cast(dict[str, Any], fastavro.parse_schema(dict(schema)))
            plain = cast(
                dict[str, Any], fastavro.parse_schema(_without_logical_types(dict(schema)))
            )
        except Exception as exc:
            raise SchemaError(
                f"invalid schema {schema.get('name')!r}: {exc}", reason="invalid-schema"
            ) from exc
        name = str(schema["name"]).rsplit(".", 1)[-1]
        known = self._by_fingerprint.get(fp)
        if known is not None and known.canonical_form != pcf:
            # A 64-bit collision is astronomically unlikely, but silently decoding with the
            # wrong schema would be far worse than refusing to start.
            raise SchemaError(
                f"fingerprint collision between {known.name} and {name}", reason="invalid-schema"
            )
        version = known or SchemaVersion(name, fp, pcf, schema, annotated, plain, MAGIC + fp)
        self._by_fingerprint[fp] = version
        if current:
            self._current[name] = version
        self.changes += 1
        return version

    def current(self, name: str) -> SchemaVersion:
        """The current version of ``name``; raises SchemaError(reason="unknown-schema")."""
        try:
            return self._current[name]
        except KeyError:
            known = ", ".join(sorted(self._current))
            raise SchemaError(
                f"unknown schema {name!r} (known: {known})", reason="unknown-schema"
            ) from None

    def by_fingerprint(self, fp: bytes) -> SchemaVersion | None:
        return self._by_fingerprint.get(fp)

    def names(self) -> frozenset[str]:
        return frozenset(self._current)

    def versions(self, name: str) -> list[SchemaVersion]:
        """Every registered version of ``name``, current or not."""
        return [v for v in self._by_fingerprint.values() if v.name == name]


def _load_json(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as f:
        loaded: dict[str, Any] = json.load(f)
    return loaded


class Decoded(NamedTuple):
    schema: str
    """Short name of the record type that was decoded."""
    record: dict[str, Any]


class Codec:
    """Encodes and decodes records of a :class:`SchemaRegistry` (default: ``schemas/avro``).

    ``max_bytes`` overrides :data:`DEFAULT_MAX_BYTES` per schema name.

    Example::

        codec = Codec(max_bytes={"ClickEvent": 4096})
        data = codec.encode("ClickEvent", record)
        schema, record = codec.decode_any(data, ("ModelManifest", "ModelChunk"))
    """

    def __init__(
        self, registry: SchemaRegistry | None = None, *, max_bytes: Mapping[str, int] | None = None
    ) -> None:
        self.registry = registry if registry is not None else default_registry()
        self._limits = {**DEFAULT_MAX_BYTES, **(max_bytes or {})}
        # Compiled on first use. Keyed by the version object, not its fingerprint: field
        # defaults are not part of the canonical form, so two registries could hold
        # versions with one fingerprint that write different bytes for a missing field.
        self._writers: dict[SchemaVersion, tuple[Writer, int]] = {}
        # Writer fingerprint -> (name, size limit, compiled reader, registry.changes when
        # compiled): one dict lookup per message instead of registry and limit lookups.
        self._readers: dict[bytes, tuple[str, int, Reader, int]] = {}
        self._largest: dict[tuple[str, ...], int] = {}

    def limit(self, schema: str) -> int:
        """Largest accepted message of ``schema``, in bytes."""
        return self._limits.get(schema, EVENT_MAX_BYTES)

    def encode(
        self, schema: str | SchemaVersion, record: Mapping[str, Any], *, validate: bool = False
    ) -> bytes:
        """Serialise ``record`` with the current version of ``schema`` (or the given version).

        The default path writes with a writer compiled from the schema
        (:mod:`schemas.avro_writer`): it checks types, int/long ranges and required fields
        (a ``float`` for a ``long`` is ``wrong-type``, 2**40 for an ``int`` is
        ``invalid-value``) but not the value rules. ``validate=True`` first applies the
        JSON-path checks and coercions and the value rules, for records from untrusted
        sources, and writes with fastavro.
        """
        version = schema if isinstance(schema, SchemaVersion) else self.registry.current(schema)
        if validate:
            record = check_values(version.name, _coerce_record(version, record))
            buf = io.BytesIO()
            buf.write(version.header)
            try:
                fastavro.schemaless_writer(buf, version.plain, record)
            except Exception as exc:
                raise _explain_write_failure(version, record, exc) from exc
            data = buf.getvalue()
            limit = self.limit(version.name)
        else:
            write, limit = self._writers.get(version) or self._compile(version)
            try:
                data = write(record)
            except SchemaError as exc:
                # The compiled writer already names the field and the reason.
                raise SchemaError(f"cannot encode {exc}", reason=exc.reason) from exc
            except Exception as exc:
                raise _explain_write_failure(version, record, exc) from exc
        if len(data) > limit:
            raise SchemaError(
                f"{version.name} encodes to {len(data)} bytes, over the {limit} byte limit",
                reason="oversized",
            )
        return data

    def _compile(self, version: SchemaVersion) -> tuple[Writer, int]:
        compiled = compile_writer(version.plain, prefix=version.header), self.limit(version.name)
        self._writers[version] = compiled
        return compiled

    def _reader_for(self, data: bytes) -> tuple[str, int, Reader, int]:
        """The compiled reader of the writer ``data`` names, resolved against the current
        version; raises for a short header or an unknown fingerprint."""
        if len(data) < HEADER_SIZE:
            raise SchemaError(
                f"{len(data)} bytes is shorter than the Avro header", reason="truncated"
            )
        fp = data[2:HEADER_SIZE]
        writer = self.registry.by_fingerprint(fp)
        if writer is None:
            raise SchemaError(
                f"no known writer schema has fingerprint {fp.hex()}", reason="unknown-fingerprint"
            )
        reader = self.registry.current(writer.name)
        read = compile_reader(writer.plain, None if writer is reader else reader.plain)
        entry = writer.name, self.limit(writer.name), read, self.registry.changes
        self._readers[fp] = entry
        return entry

    def decode(self, schema: str, data: bytes | bytearray | memoryview | None) -> dict[str, Any]:
        """Decode a message that must be a ``schema`` record (any known version, or JSON)."""
        return self.decode_any(data, (schema,)).record

    def decode_any(
        self, data: bytes | bytearray | memoryview | None, schemas: Iterable[str]
    ) -> Decoded:
        """Decode a message that may be any of ``schemas`` (a topic's value schemas).

        Avro messages are told apart by fingerprint; JSON is only accepted when exactly
        one schema is allowed, since a bare object does not say what it is.
        """
        allowed = tuple(schemas)
        if not allowed:
            raise SchemaError("no schema given to decode with", reason="unknown-schema")
        if not data:
            raise SchemaError("empty message (a tombstone or zero-length value)", reason="empty")
        if isinstance(data, memoryview):
            data = data.tobytes()
        largest = self._largest.get(allowed)
        if largest is None:
            largest = self._largest[allowed] = max(self.limit(name) for name in allowed)
        if len(data) > largest:
            raise SchemaError(
                f"message of {len(data)} bytes exceeds the {largest} byte limit", reason="oversized"
            )
        if data[:2] == MAGIC or data == MAGIC[:1]:
            return self._decode_avro(data if type(data) is bytes else bytes(data), allowed)
        if _JSON_START.match(data):
            if len(allowed) != 1:
                raise SchemaError(
                    f"JSON is not accepted where several schemas may appear ({', '.join(allowed)})",
                    reason="not-avro-or-json",
                )
            return self._decode_json(data, allowed[0])
        raise SchemaError(
            f"message starts with {bytes(data[:2]).hex()}: neither the Avro marker c301 nor JSON",
            reason="not-avro-or-json",
        )

    def _decode_avro(self, data: bytes, allowed: tuple[str, ...]) -> Decoded:
        entry = self._readers.get(data[2:HEADER_SIZE])
        if entry is None or entry[3] != self.registry.changes:
            entry = self._reader_for(data)
        name, limit, read, _ = entry
        if name not in allowed:
            raise SchemaError(
                f"fingerprint {data[2:HEADER_SIZE].hex()} is a {name}, "
                f"expected {' or '.join(allowed)}",
                reason="unknown-fingerprint",
            )
        if len(data) > limit:
            raise SchemaError(
                f"{name} of {len(data)} bytes exceeds the {limit} byte limit", reason="oversized"
            )
        # The compiled reader (schemas.avro_reader) raises only SchemaError: truncated,
        # corrupt-avro, or wrong-type where the writer cannot be read as the reader. Every
        # length it reads is checked against the (already size-checked) input first.
        record, end = read(data, HEADER_SIZE)
        if end != len(data):
            raise SchemaError(
                f"{len(data) - end} unread bytes after the {name} body", reason="corrupt-avro"
            )
        return Decoded(name, check_values(name, record))

    def _decode_json(self, data: bytes | bytearray, schema: str) -> Decoded:
        version = self.registry.current(schema)
        try:
            obj = json.loads(data, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            # ValueError covers JSONDecodeError and UnicodeDecodeError; RecursionError is
            # what deeply nested input raises.
            raise SchemaError(f"invalid JSON: {exc}", reason="invalid-json") from exc
        if not isinstance(obj, dict):
            raise SchemaError("JSON value is not an object", reason="invalid-json")
        return Decoded(version.name, check_values(version.name, _coerce_record(version, obj)))


_JSON_START = re.compile(rb"[ \t\r\n]*\{")


def _reject_constant(name: str) -> Any:
    # json accepts NaN/Infinity by default; they are not JSON and no field wants them.
    raise ValueError(f"{name} is not valid JSON")


def _explain_write_failure(
    version: SchemaVersion, record: Mapping[str, Any], exc: Exception
) -> SchemaError:
    """Turn a fastavro write error into a SchemaError naming the field, where we can."""
    try:
        _coerce_record(version, record)
    except SchemaError as precise:
        return SchemaError(f"cannot encode {precise}", reason=precise.reason)
    return SchemaError(
        f"cannot encode {version.name}: {type(exc).__name__}: {exc}", reason="wrong-type"
    )


# --- Checking and coercing JSON (and untrusted dicts) against a schema ---------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INT_RANGE = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}


def _coerce_record(version: SchemaVersion, value: Mapping[str, Any]) -> dict[str, Any]:
    named = version.annotated.get("__named_schemas", {})
    out: dict[str, Any] = _coerce(version.annotated, value, version.name, named)
    return out


def _fail(path: str, reason: str, message: str) -> SchemaError:
    return SchemaError(f"{path}: {message}", reason=reason)


def _coerce(node: Any, value: Any, path: str, named: Mapping[str, Any]) -> Any:
    if isinstance(node, str):
        if node in _PRIMITIVES:
            return _coerce_primitive(node, None, value, path)
        return _coerce(named[node], value, path, named)
    if isinstance(node, list):
        return _coerce_union(node, value, path, named)
    kind = node["type"]
    if kind == "record":
        if not isinstance(value, Mapping):
            raise _fail(path, "wrong-type", f"expected an object, got {type(value).__name__}")
        out = {}
        for f in node["fields"]:
            name = f["name"]
            if name in value:
                out[name] = _coerce(f["type"], value[name], f"{path}.{name}", named)
            elif "default" in f:
                out[name] = copy.deepcopy(f["default"])
            else:
                raise _fail(f"{path}.{name}", "missing-field", "required field is missing")
        return out
    if kind == "array":
        if not isinstance(value, list | tuple):
            raise _fail(path, "wrong-type", f"expected an array, got {type(value).__name__}")
        return [_coerce(node["items"], item, f"{path}[{i}]", named) for i, item in enumerate(value)]
    if kind == "map":
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise _fail(
                path,
                "wrong-type",
                f"expected an object with string keys, got {type(value).__name__}",
            )
        return {k: _coerce(node["values"], v, f"{path}[{k!r}]", named) for k, v in value.items()}
    if kind == "enum":
        if not isinstance(value, str):
            raise _fail(path, "wrong-type", f"expected a string, got {type(value).__name__}")
        if value not in node["symbols"]:
            raise _fail(
                path, "invalid-value", f"{value!r} is not one of {', '.join(node['symbols'])}"
            )
        return value
    if kind == "fixed":
        data = _coerce_primitive("bytes", None, value, path)
        if len(data) != node["size"]:
            raise _fail(
                path, "invalid-value", f"expected exactly {node['size']} bytes, got {len(data)}"
            )
        return data
    return _coerce_primitive(kind, node.get("logicalType"), value, path)


def _coerce_union(branches: list[Any], value: Any, path: str, named: Mapping[str, Any]) -> Any:
    # JSON from console producers carries plain values, not Avro-JSON's {"type": value}
    # wrappers, so the branch is chosen by trying each in declaration order.
    if value is None:
        if "null" in branches:
            return None
        raise _fail(path, "wrong-type", "must not be null")
    candidates = [b for b in branches if b != "null"]
    errors: list[SchemaError] = []
    for branch in candidates:
        try:
            return _coerce(branch, value, path, named)
        except SchemaError as exc:
            errors.append(exc)
    if len(errors) == 1:
        raise errors[0]
    raise _fail(path, "wrong-type", f"{type(value).__name__} matches none of the union's types")


def _coerce_primitive(kind: str, logical: str | None, value: Any, path: str) -> Any:
    if kind in _INT_RANGE:
        if isinstance(value, bool):
            raise _fail(path, "wrong-type", f"expected {kind}, got bool")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        elif isinstance(value, str) and logical == "timestamp-millis":
            value = _iso_to_millis(value, path)
        if not isinstance(value, int):
            raise _fail(path, "wrong-type", f"expected {kind}, got {type(value).__name__}")
        low, high = _INT_RANGE[kind]
        if not low <= value <= high:
            raise _fail(path, "invalid-value", f"{value} does not fit an Avro {kind}")
        return value
    if kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(path, "wrong-type", f"expected a number, got {type(value).__name__}")
        value = float(value)
        if kind == "float" and math.isfinite(value) and abs(value) > 3.4028234663852886e38:
            raise _fail(path, "invalid-value", f"{value} does not fit an Avro float")
        return value
    if kind == "string":
        if not isinstance(value, str):
            raise _fail(path, "wrong-type", f"expected a string, got {type(value).__name__}")
        return value
    if kind == "bytes":
        if isinstance(value, bytes | bytearray):
            return bytes(value)
        if isinstance(value, str):
            # Avro's JSON encoding maps each code point 0-255 to one byte.
            try:
                return value.encode("latin-1")
            except UnicodeEncodeError:
                raise _fail(
                    path, "invalid-value", "bytes given as a string must use code points 0-255"
                ) from None
        raise _fail(path, "wrong-type", f"expected bytes, got {type(value).__name__}")
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _fail(path, "wrong-type", f"expected a boolean, got {type(value).__name__}")
        return value
    if kind == "null":
        if value is not None:
            raise _fail(path, "wrong-type", f"expected null, got {type(value).__name__}")
        return None
    raise _fail(path, "wrong-type", f"unsupported schema type {kind!r}")


def _iso_to_millis(text: str, path: str) -> int:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _fail(
            path, "invalid-value", f"{text!r} is neither epoch milliseconds nor an ISO-8601 time"
        ) from None
    if moment.tzinfo is None:
        # A time without an offset is ambiguous; guessing UTC would silently shift events.
        raise _fail(path, "invalid-value", f"{text!r} has no UTC offset (add Z or +00:00)")
    # Integer arithmetic: float seconds * 1000 can land one millisecond low.
    return (moment - _EPOCH) // timedelta(milliseconds=1)


# --- Process-wide defaults ------------------------------------------------------------


@functools.cache
def default_registry() -> SchemaRegistry:
    """The registry of ``schemas/avro``, loaded and parsed once per process."""
    return SchemaRegistry.from_directory()


@functools.cache
def default_codec() -> Codec:
    """A :class:`Codec` over :func:`default_registry` with the default size limits."""
    return Codec()


def encode(schema: str, record: Mapping[str, Any], *, validate: bool = False) -> bytes:
    """:meth:`Codec.encode` with the default codec."""
    return default_codec().encode(schema, record, validate=validate)


def decode(schema: str, data: bytes | bytearray | memoryview | None) -> dict[str, Any]:
    """:meth:`Codec.decode` with the default codec."""
    return default_codec().decode(schema, data)


def decode_any(data: bytes | bytearray | memoryview | None, schemas: Iterable[str]) -> Decoded:
    """:meth:`Codec.decode_any` with the default codec."""
    return default_codec().decode_any(data, schemas)
