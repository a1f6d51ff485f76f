"""Avro binary encoding compiled from a schema: the codec's fast write path.

:func:`compile_writer` turns a schema into a Python function that returns the same bytes
as ``fastavro.schemaless_writer`` for every valid record, about three times faster on a
ViewEvent. It generates straight-line source per schema (nested records inlined, one
``if`` per union) and ``exec``-s it once, because a pure-Python encoder spends most of its
time on calls and dispatch: a closure per field measured 1.5-2x slower on a ViewEvent.
Integers use 14-bit lookup tables, so a millisecond timestamp is three table reads
instead of a six-round varint loop.

Unlike fastavro's writer it checks types and ranges, raising :class:`SchemaError`:
``wrong-type`` for a float given for a long, a str for an array or a bool for an int (all
of which fastavro writes silently), ``invalid-value`` for an int outside 32/64 bits, a
float beyond the float range or an unknown enum symbol, ``missing-field`` for an absent
field without default (fastavro writes null into a nullable one). It does not apply the
value rules of :func:`schemas.events.check_values`.

Example::

    from schemas.avro_writer import compile_writer
    from schemas.codec import default_registry

    write = compile_writer(default_registry().current("ViewEvent").plain)
    body = write(view.to_dict())  # == fastavro.schemaless_writer's output
"""

from __future__ import annotations

import operator
import re
import struct
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from itertools import count
from numbers import Integral, Real
from typing import Any, cast

import fastavro

from schemas.avro_defaults import default_value
from schemas.errors import SchemaError

Writer = Callable[[Any], bytes]
"""A compiled writer: a record (or value) in, its Avro binary encoding out."""

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FULL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def compile_writer(schema: Any, *, prefix: bytes = b"") -> Writer:
    """Compile ``schema`` (a plain Avro schema: no logical types, parsed by fastavro or
    not) into a function writing ``prefix`` then the schemaless Avro body of a value.

    Supports record, enum, array, map, union and every primitive type; anything else
    (fixed, logical types, a union of several record/map branches) raises
    ``SchemaError(reason="invalid-schema")`` here rather than when writing.

    Example::

        write = compile_writer({"type": "record", "name": "P", "fields": [
            {"name": "x", "type": "long"}, {"name": "tag", "type": ["null", "string"],
            "default": None}]})
        write({"x": 1}) == b"\\x02\\x00"
    """
    if isinstance(schema, Mapping) and "__named_schemas" in schema:
        parsed: Any = schema
        named: dict[str, Any] = dict(schema["__named_schemas"])
    else:
        named = {}
        try:
            parsed = fastavro.parse_schema(
                dict(schema) if isinstance(schema, Mapping) else schema, named_schemas=named
            )
        except Exception as exc:
            raise _bad_schema(f"invalid Avro schema: {exc}") from exc
    return _Compiler(named, set()).build(parsed, prefix)


# --- What the generated code calls ---------------------------------------------------


def _varint(n: int) -> bytes:
    """The base-128 varint of ``n`` >= 0 (a zigzag-encoded int or a length)."""
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


# _V14[n] is the complete varint of n < 2**14; _C14[n] the two 7-bit groups of n with the
# continuation bit set on both, for the low bits of a larger number (about 1 MB in all).
_V14 = [_varint(n) for n in range(1 << 14)]
_C14 = [bytes(((n & 0x7F) | 0x80, (n >> 7) | 0x80)) for n in range(1 << 14)]
_LENGTH = _V14[::2]
"""_LENGTH[n]: the encoded length n < 8192 of a string, bytes, array or map (2n zigzagged)."""


def _tail(n: int, bits: int, path: str, kind: str) -> bytes:
    """The varint of a large zigzag value, refusing one that does not fit ``bits``."""
    if n >> bits:
        value = (n >> 1) ^ -(n & 1)
        raise _invalid(path, f"{value} does not fit an Avro {kind}")
    return _varint(n)


def _as_int(value: Any, path: str) -> int:
    # Reached for anything but an exact int: int subclasses (IntEnum) and numpy integers
    # pass, as they do fastavro's validation; bool, float and str do not.
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise _wrong(path, "an integer", value)
    return operator.index(value)


def _as_real(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise _wrong(path, "a number", value)
    try:
        return float(value)
    except OverflowError:
        raise _invalid(path, f"{value} does not fit an Avro double") from None


def _is_int(value: Any) -> bool:
    return _is_integer(value) and -(2**31) <= value < 2**31


def _is_long(value: Any) -> bool:
    return _is_integer(value) and -(2**63) <= value < 2**63


def _is_integer(value: Any) -> bool:
    return type(value) is int or (isinstance(value, Integral) and not isinstance(value, bool))


def _is_real(value: Any) -> bool:
    return type(value) is float or (isinstance(value, Real) and not isinstance(value, bool))


def _wrong(path: str, expected: str, value: Any) -> SchemaError:
    return SchemaError(
        f"{path}: expected {expected}, got {type(value).__name__}", reason="wrong-type"
    )


def _missing(path: str) -> SchemaError:
    return SchemaError(f"{path}: required field is missing", reason="missing-field")


def _invalid(path: str, message: str) -> SchemaError:
    return SchemaError(f"{path}: {message}", reason="invalid-value")


def _float_overflow(path: str, value: float) -> SchemaError:
    return _invalid(path, f"{value} does not fit an Avro float")


def _not_utf8(path: str) -> SchemaError:
    return _invalid(path, "text with lone surrogates cannot be written as UTF-8")


def _bad_symbol(path: str, value: Any, symbols: Mapping[str, bytes]) -> SchemaError:
    if not isinstance(value, str):
        return _wrong(path, "an enum symbol (str)", value)
    return _invalid(path, f"{value!r} is not one of {', '.join(symbols)}")


def _no_branch(path: str, value: Any) -> SchemaError:
    return SchemaError(
        f"{path}: {type(value).__name__} matches none of the union's types", reason="wrong-type"
    )


def _bad_schema(message: str) -> SchemaError:
    return SchemaError(f"cannot compile an Avro writer: {message}", reason="invalid-schema")


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()

_RUNTIME: dict[str, Any] = {
    "_V14": _V14,
    "_C14": _C14,
    "_LENGTH": _LENGTH,
    "_varint": _varint,
    "_tail": _tail,
    "_pack_f": struct.Struct("<f").pack,
    "_pack_d": struct.Struct("<d").pack,
    "_as_int": _as_int,
    "_as_real": _as_real,
    "_is_int": _is_int,
    "_is_long": _is_long,
    "_is_real": _is_real,
    "_wrong": _wrong,
    "_missing": _missing,
    "_float_overflow": _float_overflow,
    "_not_utf8": _not_utf8,
    "_bad_symbol": _bad_symbol,
    "_no_branch": _no_branch,
    "_Mapping": Mapping,
    "_MISSING": _MISSING,
}


# --- The code generator ------------------------------------------------------------------


class _Compiler:
    """Emits the source of one writer. Every schema-derived text that reaches the source
    is either a validated Avro name inside ``repr`` or a constant in the namespace."""

    def __init__(self, named: Mapping[str, Any], defaults_in_progress: set[str]) -> None:
        self._named = named
        self._defaults_in_progress = defaults_in_progress
        self._lines: list[str] = []
        self._depth = 0
        self._ids = count()
        self._consts: dict[str, Any] = {}
        self._inlining: list[str] = []
        self._functions: dict[str, str] = {}
        self._pending: list[str] = []

    def build(self, schema: Any, prefix: bytes, path: str | None = None) -> Writer:
        root = _short(schema["name"]) if isinstance(schema, Mapping) and "name" in schema else ""
        with self._block(f"def write_{root or 'value'}(r):"):
            self._line("out = bytearray()")
            self._write(schema, "r", path or root or "value")
            # bytes + bytearray is one copy; bytearray(prefix) then bytes(out) is two.
            self._line("return _PREFIX + out" if prefix else "return bytes(out)")
        while self._pending:
            # Records that contain themselves are written by a function of their own.
            name = self._pending.pop()
            with self._block(f"def {self._functions[name]}(r, out):"):
                self._inlining = [name]
                self._record_body(self._named[name], "r", _short(name))
        source = "\n".join(self._lines) + "\n"
        namespace = {**_RUNTIME, **self._consts, "_PREFIX": bytes(prefix)}
        # Generated from a schema whose names were validated and are quoted with repr.
        exec(compile(source, f"<avro writer {root or 'value'}>", "exec"), namespace)  # noqa: S102
        return cast(Writer, namespace[f"write_{root or 'value'}"])

    # -- emitting -------------------------------------------------------------------

    def _line(self, text: str) -> None:
        self._lines.append("    " * self._depth + text)

    @contextmanager
    def _block(self, header: str) -> Iterator[None]:
        self._line(header)
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1

    def _var(self, hint: str) -> str:
        return f"{hint}{next(self._ids)}"

    def _const(self, value: Any, hint: str) -> str:
        name = f"_{hint}{next(self._ids)}"
        self._consts[name] = value
        return name

    def _resolve(self, node: Any, path: str) -> Any:
        if isinstance(node, str) and node not in _PRIMITIVES:
            if node not in self._named:
                raise _bad_schema(f"{path}: unknown type {node!r}")
            return self._named[node]
        return node

    def _kind(self, node: Any, path: str) -> str:
        node = self._resolve(node, path)
        if isinstance(node, str):
            return node
        if isinstance(node, list):
            raise _bad_schema(f"{path}: a union directly inside a union")
        if isinstance(node, Mapping) and isinstance(node.get("type"), str):
            if "logicalType" in node:
                raise _bad_schema(
                    f"{path}: logical type {node['logicalType']!r}; compile the plain schema"
                )
            return str(node["type"])
        raise _bad_schema(f"{path}: not an Avro schema: {node!r}")

    # -- one value --------------------------------------------------------------------

    def _write(self, node: Any, var: str, path: str) -> None:
        """Emit code appending the encoding of the value in ``var`` to ``out``."""
        if isinstance(node, list):
            self._union(node, var, path)
            return
        kind = self._kind(node, path)
        node = self._resolve(node, path)
        if kind in _PRIMITIVES:
            getattr(self, f"_write_{kind}")(var, path)
        elif kind == "record":
            self._record(node, var, path)
        elif kind == "enum":
            self._enum(node, var, path)
        elif kind == "array":
            self._array(node, var, path)
        elif kind == "map":
            self._map(node, var, path)
        else:
            raise _bad_schema(f"{path}: type {kind!r} is not supported")

    def _write_null(self, var: str, path: str) -> None:
        with self._block(f"if {var} is not None:"):
            self._line(f"raise _wrong({path!r}, 'null', {var})")

    def _write_boolean(self, var: str, path: str) -> None:
        with self._block(f"if {var} is True:"):
            self._line("out += b'\\x01'")
        with self._block(f"elif {var} is False:"):
            self._line("out += b'\\x00'")
        with self._block("else:"):
            self._line(f"raise _wrong({path!r}, 'a boolean', {var})")

    def _write_int(self, var: str, path: str) -> None:
        self._integer(var, path, "int", 32)

    def _write_long(self, var: str, path: str) -> None:
        self._integer(var, path, "long", 64)

    def _integer(self, var: str, path: str, kind: str, bits: int) -> None:
        with self._block(f"if type({var}) is not int:"):
            self._line(f"{var} = _as_int({var}, {path!r})")
        # Zigzag that stays correct outside the 64-bit range, so _tail can refuse it.
        self._line(f"n = {var} << 1 if {var} >= 0 else ~{var} << 1 | 1")
        with self._block("if n < 16384:"):
            self._line("out += _V14[n]")
        with self._block("elif n < 268435456:"):
            self._line("out += _C14[n & 16383]")
            self._line("out += _V14[n >> 14]")
        if bits == 64:
            # Millisecond timestamps until 2039 zigzag to under 2**42.
            with self._block("elif n < 4398046511104:"):
                self._line("out += _C14[n & 16383]")
                self._line("out += _C14[n >> 14 & 16383]")
                self._line("out += _V14[n >> 28]")
        with self._block("else:"):
            self._line(f"out += _tail(n, {bits}, {path!r}, {kind!r})")

    def _write_float(self, var: str, path: str) -> None:
        with self._block(f"if type({var}) is not float:"):
            self._line(f"{var} = _as_real({var}, {path!r})")
        with self._block("try:"):
            self._line(f"out += _pack_f({var})")
        with self._block("except OverflowError:"):
            self._line(f"raise _float_overflow({path!r}, {var}) from None")

    def _write_double(self, var: str, path: str) -> None:
        with self._block(f"if type({var}) is not float:"):
            self._line(f"{var} = _as_real({var}, {path!r})")
        self._line(f"out += _pack_d({var})")

    def _write_string(self, var: str, path: str) -> None:
        with self._block(f"if type({var}) is not str and not isinstance({var}, str):"):
            self._line(f"raise _wrong({path!r}, 'a string', {var})")
        self._utf8(var, path)

    def _utf8(self, var: str, path: str) -> None:
        with self._block("try:"):
            self._line(f"b = {var}.encode()")
        with self._block("except UnicodeEncodeError:"):
            self._line(f"raise _not_utf8({path!r}) from None")
        self._length("len(b)")
        self._line("out += b")

    def _write_bytes(self, var: str, path: str) -> None:
        with self._block(
            f"if type({var}) is not bytes and not isinstance({var}, (bytes, bytearray)):"
        ):
            self._line(f"raise _wrong({path!r}, 'bytes', {var})")
        self._length(f"len({var})")
        self._line(f"out += {var}")

    def _length(self, expr: str) -> None:
        self._line(f"n = {expr}")
        self._line("out += _LENGTH[n] if n < 8192 else _varint(n + n)")

    # -- complex types ------------------------------------------------------------------

    def _record(self, node: Mapping[str, Any], var: str, path: str) -> None:
        name = str(node["name"])
        if name in self._inlining:
            if name not in self._functions:
                self._functions[name] = self._var("_write_record")
                self._pending.append(name)
            self._line(f"{self._functions[name]}({var}, out)")
            return
        self._inlining.append(name)
        try:
            self._record_body(node, var, path)
        finally:
            self._inlining.pop()

    def _record_body(self, node: Mapping[str, Any], var: str, path: str) -> None:
        if not _FULL_NAME.fullmatch(str(node.get("name"))):
            raise _bad_schema(f"{path}: invalid record name {node.get('name')!r}")
        with self._block(f"if type({var}) is not dict and not isinstance({var}, _Mapping):"):
            self._line(f"raise _wrong({path!r}, 'a record (mapping)', {var})")
        for field in node["fields"]:
            name = field["name"]
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                raise _bad_schema(f"{path}: invalid field name {name!r}")
            field_path = f"{path}.{name}"
            value = self._var("v")
            if "default" not in field:
                with self._block("try:"):
                    self._line(f"{value} = {var}[{name!r}]")
                with self._block("except KeyError:"):
                    self._line(f"raise _missing({field_path!r}) from None")
                self._write(field["type"], value, field_path)
            elif field["default"] is None:
                # Writing None is writing the default, so no missing-check is needed.
                self._line(f"{value} = {var}.get({name!r})")
                self._write(field["type"], value, field_path)
            else:
                default_bytes = self._default_bytes(node["name"], field, field_path)
                default = self._const(default_bytes, "default")
                self._line(f"{value} = {var}.get({name!r}, _MISSING)")
                with self._block(f"if {value} is _MISSING:"):
                    self._line(f"out += {default}")
                with self._block("else:"):
                    self._write(field["type"], value, field_path)

    def _default_bytes(self, record: str, field: Mapping[str, Any], path: str) -> bytes:
        # Compiling a default compiles its type, which may hold the same default again.
        key = f"{record}.{field['name']}"
        if key in self._defaults_in_progress:
            raise _bad_schema(f"{path}: a default of a recursive type is not supported")
        self._defaults_in_progress.add(key)
        try:
            compiler = _Compiler(self._named, self._defaults_in_progress)
            write = compiler.build(field["type"], b"", f"{path} default")
            value = default_value(field["type"], field["default"], self._named)
            return write(value)
        except SchemaError as exc:
            if exc.reason == "invalid-schema":
                raise
            raise _bad_schema(f"default does not match the type: {exc}") from exc
        finally:
            self._defaults_in_progress.discard(key)

    def _enum(self, node: Mapping[str, Any], var: str, path: str) -> None:
        table = self._const(_enum_table(node, path), "enum")
        with self._block("try:"):
            self._line(f"out += {table}[{var}]")
        with self._block("except (KeyError, TypeError):"):
            self._line(f"raise _bad_symbol({path!r}, {var}, {table}) from None")

    def _array(self, node: Mapping[str, Any], var: str, path: str) -> None:
        # list or tuple only: a str or bytes is a Sequence too, and fastavro writes it as
        # an array of characters/ints.
        with self._block(f"if type({var}) is not list and not isinstance({var}, (list, tuple)):"):
            self._line(f"raise _wrong({path!r}, 'an array (list or tuple)', {var})")
        # One block of len() items, then the empty block that ends the array.
        with self._block(f"if {var}:"):
            self._length(f"len({var})")
            item = self._var("i")
            with self._block(f"for {item} in {var}:"):
                self._write(node["items"], item, f"{path}[]")
        self._line("out += b'\\x00'")

    def _map(self, node: Mapping[str, Any], var: str, path: str) -> None:
        with self._block(f"if type({var}) is not dict and not isinstance({var}, _Mapping):"):
            self._line(f"raise _wrong({path!r}, 'a map (mapping)', {var})")
        with self._block(f"if {var}:"):
            self._length(f"len({var})")
            key, value = self._var("k"), self._var("i")
            with self._block(f"for {key}, {value} in {var}.items():"):
                with self._block(f"if type({key}) is not str and not isinstance({key}, str):"):
                    self._line(f"raise _wrong({path + ' key'!r}, 'a string', {key})")
                self._utf8(key, f"{path} key")
                self._write(node["values"], value, f"{path}[]")
        self._line("out += b'\\x00'")

    def _union(self, branches: list[Any], var: str, path: str) -> None:
        if not branches:
            raise _bad_schema(f"{path}: an empty union")
        kinds = [self._kind(branch, path) for branch in branches]
        tags = [repr(_varint(2 * i)) for i in range(len(branches))]
        if len(branches) == 2 and "null" in kinds:
            # Our optional fields: no need to test the other branch's type before writing
            # it, since writing it checks the type (and names the expected one).
            null = kinds.index("null")
            with self._block(f"if {var} is None:"):
                self._line(f"out += {tags[null]}")
            with self._block("else:"):
                self._line(f"out += {tags[1 - null]}")
                self._write(branches[1 - null], var, path)
            return
        if sum(kind in ("record", "map") for kind in kinds) > 1:
            # fastavro decides between those by counting matching fields; not worth it.
            raise _bad_schema(f"{path}: a union of several record/map types is not supported")
        # Otherwise fastavro takes the first branch whose type the value matches, except
        # that a number matching "float" goes to a "double" branch if there is one.
        chosen = list(range(len(branches)))
        if "float" in kinds and "double" in kinds:
            chosen[kinds.index("float")] = kinds.index("double")
        keyword = "if"
        written: set[int] = set()
        for i, kind in enumerate(kinds):
            target = chosen[i]
            if target in written:
                continue
            written.add(target)
            with self._block(f"{keyword} {self._matches(kind, branches[i], var, path)}:"):
                self._line(f"out += {tags[target]}")
                self._write(branches[target], var, path)
            keyword = "elif"
        with self._block("else:"):
            self._line(f"raise _no_branch({path!r}, {var})")

    def _matches(self, kind: str, branch: Any, var: str, path: str) -> str:
        """A Python condition: does the value in ``var`` belong to this union branch?"""
        simple = {
            "null": f"{var} is None",
            "boolean": f"type({var}) is bool",
            "int": f"_is_int({var})",
            "long": f"_is_long({var})",
            "float": f"_is_real({var})",
            "double": f"_is_real({var})",
            "string": f"isinstance({var}, str)",
            "bytes": f"isinstance({var}, (bytes, bytearray))",
            "array": f"isinstance({var}, (list, tuple))",
            "map": f"isinstance({var}, _Mapping)",
            "record": f"isinstance({var}, _Mapping)",
        }
        if kind == "enum":
            symbols = self._const(frozenset(_enum_table(self._resolve(branch, path), path)), "sym")
            return f"isinstance({var}, str) and {var} in {symbols}"
        if kind not in simple:
            raise _bad_schema(f"{path}: type {kind!r} is not supported")
        return simple[kind]


def _short(name: Any) -> str:
    short = str(name).rsplit(".", 1)[-1]
    if not _NAME.fullmatch(short):
        raise _bad_schema(f"invalid name {name!r}")
    return short


def _enum_table(node: Mapping[str, Any], path: str) -> dict[str, bytes]:
    symbols = node.get("symbols")
    if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
        raise _bad_schema(f"{path}: enum symbols must be a list of strings")
    return {symbol: _varint(2 * i) for i, symbol in enumerate(symbols)}
