"""A byte container for named numeric arrays plus a JSON header; no pickle, no code.

Layout (all integers little-endian; ``docs/model-artifact.md`` is the full description)::

    0      8   magic  89 4E 4C 4D 4F 44 45 4C  ("\\x89NLMODEL")
    8      4   container version, uint32 (1)
    12     4   header length H, uint32
    16     H   header: a UTF-8 JSON object; its "arrays" list gives each array's
               name, dtype, shape and offset
    16+H   ..  zero bytes up to the next multiple of 64: the data region starts there
    ..         the arrays' raw bytes, C order, in header order, each at a multiple of
               64 from the data region start, zero padding between, nothing after

Reading is bounded by the input: every size a header claims is checked against the bytes
actually present before anything is touched, and arrays are views of the input
(``np.frombuffer``), so a hostile header cannot make the reader allocate.

Example::

    data = pack({"note": "hi"}, [("w", np.zeros((2, 3), "<f4"))])
    header, arrays = unpack(data, {"w": ("<f4", 2)})
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

MAGIC = b"\x89NLMODEL"
CONTAINER_VERSION = 1
PREAMBLE = struct.Struct("<8sII")
ALIGNMENT = 64
ALLOWED_DTYPES = frozenset({"<f4", "<f8", "<i4", "<i8", "|u1"})
"""Numeric, fixed-size, little-endian dtypes only: object, string and void dtypes are
what pickle-based formats smuggle code or unbounded data through."""

_ARRAY_KEYS = frozenset({"name", "dtype", "shape", "offset"})


class MalformedContainer(ValueError):
    """The bytes are not a well-formed container (the message says where)."""


def _aligned(n: int) -> int:
    return -(-n // ALIGNMENT) * ALIGNMENT


def pack(header: Mapping[str, Any], arrays: Sequence[tuple[str, NDArray[Any]]]) -> bytes:
    """Serialise ``arrays`` (name, array) after a JSON ``header`` (which must not hold "arrays")."""
    if "arrays" in header:
        raise MalformedContainer('the header key "arrays" is reserved')
    described, blobs, offset = [], [], 0
    for name, array in arrays:
        dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
        if dtype.str not in ALLOWED_DTYPES:
            raise MalformedContainer(f"{name}: dtype {array.dtype} is not allowed")
        blob = np.ascontiguousarray(array, dtype=dtype).tobytes()
        offset = _aligned(offset)
        described.append(
            {"name": name, "dtype": dtype.str, "shape": list(array.shape), "offset": offset}
        )
        blobs.append((offset, blob))
        offset += len(blob)
    text = json.dumps(
        {**header, "arrays": described}, allow_nan=False, sort_keys=True, separators=(",", ":")
    )
    head = text.encode("utf-8")
    start = _aligned(PREAMBLE.size + len(head))
    out = bytearray(start + offset)
    out[: PREAMBLE.size] = PREAMBLE.pack(MAGIC, CONTAINER_VERSION, len(head))
    out[PREAMBLE.size : PREAMBLE.size + len(head)] = head
    for at, blob in blobs:
        out[start + at : start + at + len(blob)] = blob
    return bytes(out)


def _reject_constant(name: str) -> Any:
    raise MalformedContainer(f"header holds {name}, which JSON does not allow")


def _read_header(data: bytes) -> tuple[dict[str, Any], int]:
    """The parsed header and where the data region starts."""
    if len(data) < PREAMBLE.size:
        raise MalformedContainer(f"{len(data)} bytes is shorter than the 16-byte preamble")
    magic, version, length = PREAMBLE.unpack_from(data)
    if magic != MAGIC:
        raise MalformedContainer(f"bad magic {magic.hex()}, expected {MAGIC.hex()}")
    if version != CONTAINER_VERSION:
        raise MalformedContainer(f"container version {version} is not {CONTAINER_VERSION}")
    if PREAMBLE.size + length > len(data):
        raise MalformedContainer(f"header of {length} bytes runs past the end ({len(data)} bytes)")
    try:
        header = json.loads(
            data[PREAMBLE.size : PREAMBLE.size + length].decode("utf-8"),
            parse_constant=_reject_constant,
        )
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as exc:
        # ValueError also covers integers longer than Python's digit limit.
        raise MalformedContainer(f"header is not valid JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise MalformedContainer("header is not a JSON object")
    start = _aligned(PREAMBLE.size + length)
    # Zero padding is checked so that one model has exactly one byte form.
    if any(data[PREAMBLE.size + length : start]):
        raise MalformedContainer("non-zero padding after the header")
    return header, start


def _check_entry(
    entry: Any, allowed: Mapping[str, tuple[str, int]]
) -> tuple[str, str, tuple[int, ...], int]:
    if not isinstance(entry, dict) or set(entry) != _ARRAY_KEYS:
        raise MalformedContainer(
            f"array entry {entry!r:.80} must have exactly {sorted(_ARRAY_KEYS)}"
        )
    name, dtype, shape, offset = entry["name"], entry["dtype"], entry["shape"], entry["offset"]
    if name not in allowed:
        raise MalformedContainer(f"unexpected array {name!r:.80}")
    want_dtype, want_ndim = allowed[name]
    if dtype != want_dtype:
        raise MalformedContainer(f"{name}: dtype {dtype!r:.20} is not {want_dtype}")
    if (
        not isinstance(shape, list)
        or len(shape) != want_ndim
        or not all(type(d) is int and d >= 0 for d in shape)
    ):
        raise MalformedContainer(f"{name}: shape {shape!r:.80} is not {want_ndim} sizes >= 0")
    if type(offset) is not int or offset < 0 or offset % ALIGNMENT:
        raise MalformedContainer(f"{name}: offset {offset!r:.40} is not a multiple of {ALIGNMENT}")
    return name, dtype, tuple(shape), offset


def unpack(
    data: bytes, allowed: Mapping[str, tuple[str, int]]
) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
    """Read a container; ``allowed`` maps each permitted array name to (dtype, ndim).

    Returns the header (without "arrays") and read-only arrays viewing ``data``. Raises
    :class:`MalformedContainer` for anything that is not exactly as :func:`pack` writes.
    """
    header, start = _read_header(data)
    entries = header.pop("arrays", None)
    if not isinstance(entries, list):
        raise MalformedContainer('header has no "arrays" list')
    arrays: dict[str, NDArray[Any]] = {}
    expected = 0
    for entry in entries:
        name, dtype, shape, offset = _check_entry(entry, allowed)
        if name in arrays:
            raise MalformedContainer(f"array {name} appears twice")
        # Python ints: a hostile shape cannot overflow, and is compared with the real size
        # before numpy sees it.
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize
        if offset != _aligned(expected):
            raise MalformedContainer(f"{name}: offset {offset} is not the next aligned position")
        end = start + offset + nbytes
        if end > len(data):
            raise MalformedContainer(
                f"{name} {list(shape)} needs bytes up to {end}, but there are {len(data)}"
            )
        if any(data[start + expected : start + offset]):
            raise MalformedContainer(f"non-zero padding before {name}")
        flat = np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=start + offset)
        arrays[name] = flat.reshape(shape)
        expected = offset + nbytes
    if start + expected != len(data):
        raise MalformedContainer(
            f"{len(data) - start - expected} unexpected bytes after the last array"
        )
    return header, arrays
