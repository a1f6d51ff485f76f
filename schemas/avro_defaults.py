"""Avro field defaults: from the JSON a schema declares them in to the Python values they
stand for. Shared by the compiled writer (a missing field takes its default) and the
compiled reader (a field the writer lacked takes the reader's default).

Example::

    >>> default_value("bytes", "\\u00ff", {})
    b'\\xff'
    >>> default_value(["null", "string"], None, {})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.errors import SchemaError


def default_value(node: Any, value: Any, named: Mapping[str, Any]) -> Any:
    """A field default (JSON, as declared) as the Python value it stands for."""
    if isinstance(node, str) and node in named:
        node = named[node]
    if isinstance(node, list):
        # The Avro spec: a union's default belongs to its first branch.
        return default_value(node[0], value, named) if node else value
    kind = node.get("type") if isinstance(node, Mapping) else node
    if kind == "bytes" and isinstance(value, str):
        # Avro's JSON form of bytes: one character per byte, code points 0-255.
        try:
            return value.encode("latin-1")
        except UnicodeEncodeError:
            raise SchemaError(
                f"bytes default {value!r} has code points above 255", reason="invalid-schema"
            ) from None
    if kind == "record" and isinstance(value, Mapping):
        types = {f["name"]: f["type"] for f in node["fields"]}
        return {k: default_value(types[k], v, named) if k in types else v for k, v in value.items()}
    if kind == "array" and isinstance(value, list):
        return [default_value(node["items"], item, named) for item in value]
    if kind == "map" and isinstance(value, Mapping):
        return {k: default_value(node["values"], v, named) for k, v in value.items()}
    return value
