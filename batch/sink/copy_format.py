r"""Rows as PostgreSQL ``COPY ... FROM STDIN`` text format (tab-separated, ``\N`` for NULL).

Text format rather than binary: it is what PostgreSQL parses fastest after binary, and
unlike binary it needs no per-type encoders (uuid, float4, arrays) on our side.

A batch is formatted column by column: one column of a batch nearly always holds one type
(text, optional text, int, float), so each column is converted with C-level ``map`` or a
single escape check over the whole column, and the lines are joined last. A Python call
per field took 1.7 times as long on ViewEvent rows.

Timestamp columns hold epoch milliseconds; they are written as UTC text
(``2023-11-14 22:13:20.123+00``) so that rows can be COPYed straight into a
``timestamptz`` column. float4 columns get the 9 significant digits float4 needs.

Example::

    copy_text([("a\tb", None, 3)])   # b"a\\tb\t\\N\t3\n"
    copy_text([("e1", 1_700_000_000_123)], timestamps={1})
    # b"e1\t2023-11-14 22:13:20.123+00\n"
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NEEDS_ESCAPE = re.compile(r"[\\\t\n\r]")
_NULL = "\\N"
_EPOCH = datetime(1970, 1, 1)
_REAL = "%.9g"
"""float4 values (already rounded to float4, see rows.py) need 9 significant digits to read
back exactly; repr's 17 for the double cost twice as much to write, and to parse."""
_MILLIS = [f".{n:03d}+00" for n in range(1000)]
"""_MILLIS[n]: the fraction and zone suffix of a time n ms past a whole second."""


def _escape(text: str) -> str:
    # Most values need no escaping; the search is cheaper than an unconditional translate.
    return text.translate(_ESCAPES) if _NEEDS_ESCAPE.search(text) else text


def _array_element(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def field_text(value: Any) -> str:
    """One value in COPY text form; raises TypeError for a type rows never hold."""
    kind = type(value)
    if value is None:
        return _NULL
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


def _whole_seconds(seconds: int) -> str:
    try:
        return (_EPOCH + timedelta(seconds=seconds)).isoformat(" ")
    except OverflowError:
        raise ValueError(f"{seconds} s since the epoch is outside years 1-9999") from None


def timestamp_text(millis: int) -> str:
    """Epoch milliseconds as a UTC ``timestamptz`` literal that PostgreSQL parses exactly.

    Raises ValueError outside years 1-9999 (the sink never holds those) and TypeError for
    anything but an int.
    """
    if type(millis) is not int:
        raise TypeError(f"a timestamp must be int milliseconds, not {type(millis).__name__}")
    seconds, fraction = divmod(millis, 1000)
    return _whole_seconds(seconds) + _MILLIS[fraction]


def _timestamp_column(column: Sequence[Any]) -> list[str]:
    # Events of one batch share seconds, so the text of each whole second is made once:
    # a dict lookup instead of a datetime per value.
    seconds_text: dict[int, str] = {}
    out = []
    for millis in column:
        if type(millis) is not int:
            out.append(_NULL if millis is None else timestamp_text(millis))
            continue
        seconds, fraction = divmod(millis, 1000)
        text = seconds_text.get(seconds)
        if text is None:
            text = seconds_text[seconds] = _whole_seconds(seconds)
        out.append(text + _MILLIS[fraction])
    return out


def _column_text(column: Sequence[Any], real: bool) -> Iterable[str]:
    """The COPY text of every value of one column, converted by the column's type."""
    kinds = set(map(type, column))
    if real and kinds <= {float, type(None)}:
        if kinds == {float}:
            return map(_REAL.__mod__, column)
        return [_NULL if value is None else _REAL % value for value in column]
    if kinds == {str}:
        # One search over the whole column; escaping is the rare case.
        if _NEEDS_ESCAPE.search("".join(column)):
            return [value.translate(_ESCAPES) for value in column]
        return column
    if kinds == {str, type(None)}:
        present = [value for value in column if value is not None]
        if _NEEDS_ESCAPE.search("".join(present)):
            return [_NULL if value is None else value.translate(_ESCAPES) for value in column]
        return [_NULL if value is None else value for value in column]
    if kinds == {int} or kinds == {float}:
        return map(repr, column)
    if kinds <= {int, float, type(None)}:
        return [_NULL if value is None else repr(value) for value in column]
    return map(field_text, column)


def copy_chunks(
    rows: Sequence[tuple[Any, ...]],
    *,
    timestamps: Collection[int] = (),
    reals: Collection[int] = (),
    chunk_rows: int = 512,
) -> Iterator[bytes]:
    """``rows`` as COPY text, ``chunk_rows`` rows per yielded piece, formatted as they are
    asked for: a COPY fed from this overlaps PostgreSQL parsing one piece with Python
    formatting the next. ``timestamps`` and ``reals`` as for :func:`copy_text`."""
    for start in range(0, len(rows), chunk_rows):
        columns = list(zip(*rows[start : start + chunk_rows], strict=True))
        texts = [
            _timestamp_column(column) if i in timestamps else _column_text(column, i in reals)
            for i, column in enumerate(columns)
        ]
        lines = list(map("\t".join, zip(*texts, strict=True)))
        lines.append("")
        yield "\n".join(lines).encode("utf-8")


def copy_text(
    rows: Iterable[tuple[Any, ...]],
    *,
    timestamps: Collection[int] = (),
    reals: Collection[int] = (),
) -> bytes:
    """``rows`` as one COPY text payload, UTF-8 encoded. The columns at positions
    ``timestamps`` hold epoch milliseconds and are written as ``timestamptz`` text; those at
    ``reals`` are ``real`` (float4) columns, written with the 9 digits float4 needs.

    Raises TypeError for a value type rows never hold (bytes, say) and ValueError for a
    timestamp outside years 1-9999.
    """
    return b"".join(copy_chunks(list(rows), timestamps=timestamps, reals=reals))


class CopySource:
    """A file-like ``read()`` over :func:`copy_chunks` for ``cursor.copy_expert``, keeping
    what it handed out so the same payload can be sent again.

    Example::

        source = CopySource(copy_chunks(rows))
        cursor.copy_expert("copy t from stdin", source, size=CopySource.READ_SIZE)
        source.payload()     # everything, also after a COPY that failed half-way
    """

    READ_SIZE = 1 << 20
    """The read size to give copy_expert: above any chunk, so chunks go through whole."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._sent: list[bytes] = []
        self._pending = b""
        self.error: Exception | None = None
        """What making a chunk raised, if anything (psycopg2 reports it as QueryCanceled)."""

    def read(self, size: int = -1) -> bytes:
        if not self._pending:
            try:
                self._pending = next(self._chunks, b"")
            except Exception as exc:
                self.error = exc
                raise
        if 0 <= size < len(self._pending):
            piece, self._pending = self._pending[:size], self._pending[size:]
        else:
            piece, self._pending = self._pending, b""
        self._sent.append(piece)
        return piece

    def payload(self) -> bytes:
        """The whole payload: what was read, then what was not (formatted now)."""
        self._sent += [self._pending, *self._chunks]
        self._pending = b""
        return b"".join(self._sent)
