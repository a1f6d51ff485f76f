r"""Rows as PostgreSQL ``COPY ... FROM STDIN`` text format (tab-separated, ``\N`` for NULL).

Text format rather than binary: it is what PostgreSQL parses fastest after binary, and
unlike binary it needs no per-type encoders (uuid, float4, arrays) on our side.

Example::

    copy_text([("a\tb", None, 3)])   # b"a\\tb\t\\N\t3\n"
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NEEDS_ESCAPE = re.compile(r"[\\\t\n\r]")


def _escape(text: str) -> str:
    # Most values need no escaping; the search is cheaper than an unconditional translate.
    return text.translate(_ESCAPES) if _NEEDS_ESCAPE.search(text) else text


def _array_element(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def field_text(value: Any) -> str:
    """One value in COPY text form; raises TypeError for a type rows never hold."""
    kind = type(value)
    if value is None:
        return "\\N"
    if kind is str:
        return _escape(value)
    if kind is int or kind is float:
        # repr keeps every digit of a float; PostgreSQL parses it exactly.
        return repr(value)
    if kind is list:
        # An array literal ({"a","b"}) whose elements are always quoted, then escaped
        # again as one COPY field.
        return _escape("{" + ",".join(_array_element(item) for item in value) + "}")
    raise TypeError(f"cannot write a {kind.__name__} with COPY")


def copy_text(rows: Iterable[tuple[Any, ...]]) -> bytes:
    """``rows`` as one COPY text payload, UTF-8 encoded."""
    lines = ["\t".join([field_text(value) for value in row]) for row in rows]
    lines.append("")
    return "\n".join(lines).encode("utf-8")
