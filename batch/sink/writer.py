"""Write a batch's rows to the event tables in one transaction, idempotent by ``event_id``.

Each table's rows are COPYed straight into the table, ``ts`` as ``timestamptz`` text: COPY
is the fastest way in, and a batch of new events (nearly every batch) costs PostgreSQL
nothing else. ``event_id`` is the primary key, so a batch holding an event that is already
stored (a redelivery after a crash or a rebalance, or a producer's retry) fails that COPY
with a unique violation (SQLSTATE 23505) and stores nothing. Only then is the table's COPY
rolled back to a savepoint and redone as a merge: the same text COPYed into a
session-local staging table, then ``INSERT ... SELECT ... ON CONFLICT (event_id) DO
NOTHING``, which skips the stored ones. The merge costs PostgreSQL some 20% more per row
than the plain COPY, and the old path (staging ``ts`` as epoch milliseconds, converted
by the INSERT) about 30% more; measured on the ViewEvent table with its indexes.

The COPY text is made while it is sent, from a batch that is decoded as it goes
(:func:`~batch.sink.batches.assemble_lazily`): PostgreSQL stores one chunk of rows while
Python decodes and formats the next.

If PostgreSQL refuses the batch's *data* (SQLSTATE classes 22 and 23, a unique violation
aside), retrying would fail forever, so the same transaction is rewritten row by row under
savepoints and the refused rows are returned for the dead-letter topic.
:mod:`batch.sink.rows` already refuses every value we know PostgreSQL cannot store, so
this is a safety net.

Example::

    writer = EventWriter(make_engine(url))
    result = writer.write(assemble(messages, catalogue, codec))
    result.inserted, result.duplicates, result.rejected
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg2
import sqlalchemy as sa
from confluent_kafka import Message
from sqlalchemy.dialects import postgresql

from batch.sink.batches import SinkBatch, TableRows
from batch.sink.copy_format import CopySource, copy_chunks
from batch.sink.rows import COLUMNS
from schemas.tables import EVENT_TABLES

log = logging.getLogger(__name__)

_DATA_ERRORS = (psycopg2.DataError, psycopg2.IntegrityError, psycopg2.errors.ProgramLimitExceeded)
"""Errors of the data, not of the database: retrying cannot help, so the bad rows are
isolated and dead-lettered. (ProgramLimitExceeded, e.g. an index row too large, is an
OperationalError to psycopg2, which would otherwise retry it for ever.)"""
_TABLES = {table.name: table for table in EVENT_TABLES.values()}
_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]
# Exact integer arithmetic; to_timestamp(ms / 1000.0) would go through a double.
_TS_FROM_MS = "timestamptz 'epoch' + {} * interval '1 millisecond'"
_COLUMNS = {EVENT_TABLES[schema].name: columns for schema, columns in COLUMNS.items()}
_CHUNK_MESSAGES = 512
"""Messages decoded per chunk of a streamed COPY (about 60 KB of ViewEvent text)."""
_FIRST_CHUNK_MESSAGES = 64
"""The first chunks are smaller: PostgreSQL has nothing to do until the first arrives."""


def _is_real(kind: Any) -> bool:
    """Is this a float4 column? (PostgreSQL's float(p) is real for p up to 24.)"""
    return isinstance(kind, sa.Float) and kind.precision is not None and kind.precision <= 24


def _stage_columns(table: str, columns: tuple[str, ...]) -> str:
    types = _TABLES[table].c
    return ", ".join(f"{c} {types[c].type.compile(_DIALECT)}" for c in columns)


def _converted(columns: tuple[str, ...], value: str) -> str:
    """``value`` placeholders for ``columns``, with ``ts`` (epoch ms) made timestamptz."""
    return ", ".join(_TS_FROM_MS.format(value) if c == "ts" else value for c in columns)


@dataclass
class WriteResult:
    inserted: int = 0
    duplicates: int = 0
    """Rows already stored (redelivered events)."""
    rejected: list[tuple[Message, str]] = field(default_factory=list)
    """Messages whose row PostgreSQL refused, with its error message."""
    merged_tables: int = 0
    """Tables whose COPY hit a stored event_id and were merged with ON CONFLICT instead."""


class EventWriter:
    """Writes :class:`SinkBatch` rows through one pooled connection of ``engine``."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def write(self, batch: SinkBatch) -> WriteResult:
        """Store every row of ``batch`` in one transaction; raises on database failure.

        A batch from :func:`~batch.sink.batches.assemble_lazily` is assembled while its
        first table is COPYed, and is complete when this returns or raises.
        """
        names = batch.table_names()  # sorted: a stable lock order across sinks
        if not names:
            batch.assemble_rest()  # its messages are all dead letters
            return WriteResult()
        conn: Any = self.engine.raw_connection()
        try:
            try:
                result = WriteResult()
                for name in names:
                    _copy(conn, batch, name, result)
                conn.commit()
            except (*_DATA_ERRORS, ValueError) as exc:  # ValueError: a value COPY text refuses
                conn.rollback()
                log.warning(
                    "PostgreSQL refused a batch (%s); isolating the bad rows", _first_line(exc)
                )
                batch.assemble_rest()
                result = WriteResult()
                for name in sorted(batch.tables):
                    _row_by_row(conn, batch.tables[name], result)
                conn.commit()
            result.duplicates = batch.rows - result.inserted - len(result.rejected)
            return result
        except BaseException:
            _rollback_quietly(conn)
            raise
        finally:
            conn.close()  # back to the pool
            batch.assemble_rest()  # a retry or the caller may need all of it


def _payload(batch: SinkBatch, name: str, columns: tuple[str, ...]) -> Iterator[bytes]:
    """The COPY text of ``name``'s rows, assembling ``batch`` a chunk at a time: PostgreSQL
    stores one chunk while Python decodes and formats the next."""
    timestamps = [i for i, c in enumerate(columns) if c == "ts"]  # epoch ms in rows
    reals = [i for i, c in enumerate(columns) if _is_real(_TABLES[name].c[c].type)]
    sent, chunk = 0, _FIRST_CHUNK_MESSAGES
    while True:
        more = batch.assemble_more(chunk)
        rows = batch.tables.get(name)
        if rows is not None and len(rows.rows) > sent:
            yield from copy_chunks(rows.rows[sent:], timestamps=timestamps, reals=reals)
            sent = len(rows.rows)
        if not more:
            return
        chunk = min(2 * chunk, _CHUNK_MESSAGES)


def _copy(conn: Any, batch: SinkBatch, name: str, result: WriteResult) -> None:
    columns = batch.tables[name].columns if name in batch.tables else _COLUMNS[name]
    source = CopySource(_payload(batch, name, columns))
    names = ", ".join(columns)
    with conn.cursor() as cur:
        # The savepoint lets a unique violation undo this table's COPY alone; the other
        # tables of the batch stay written.
        cur.execute("savepoint sink_copy")
        try:
            cur.copy_expert(f"copy {name} ({names}) from stdin", source, size=CopySource.READ_SIZE)
        except psycopg2.errors.UniqueViolation as exc:
            cur.execute("rollback to savepoint sink_copy")
            log.info(
                "%s: some events of %s are already stored (%s); merging with ON CONFLICT",
                name,
                batch.describe(),
                _first_line(exc),
            )
            result.inserted += _merge(cur, name, columns, source.payload())
            result.merged_tables += 1
            return
        except psycopg2.Error as exc:
            # psycopg2 reports an exception raised while reading the source as a cancelled
            # query; the exception itself is what matters.
            if source.error is not None:
                raise source.error from exc
            raise
        cur.execute("release savepoint sink_copy")
    rows = batch.tables.get(name)
    result.inserted += 0 if rows is None else len(rows.rows)


def _merge(cur: Any, table: str, columns: tuple[str, ...], payload: bytes) -> int:
    """Insert the rows of ``payload`` whose event_id is not stored yet; returns how many."""
    stage = f"sink_stage_{table}"
    names = ", ".join(columns)
    # One staging table per session, emptied at each commit: creating one per batch
    # would churn the system catalogue of a sink that runs for months.
    cur.execute(
        f"create temp table if not exists {stage} ({_stage_columns(table, columns)}) "
        "on commit delete rows"
    )
    cur.copy_expert(f"copy {stage} ({names}) from stdin", io.BytesIO(payload))
    cur.execute(
        f"insert into {table} ({names}) "  # noqa: S608 (names are our constants)
        f"select {names} from {stage} "
        "on conflict (event_id) do nothing"
    )
    inserted: int = cur.rowcount
    return inserted


def _row_by_row(conn: Any, rows: TableRows, result: WriteResult) -> None:
    columns = ", ".join(rows.columns)
    sql = (
        f"insert into {rows.table} ({columns}) "  # noqa: S608
        f"values ({_converted(rows.columns, '%s')}) on conflict (event_id) do nothing"
    )
    with conn.cursor() as cur:
        for row, source in zip(rows.rows, rows.sources, strict=True):
            cur.execute("savepoint sink_row")
            try:
                cur.execute(sql, row)
            except (*_DATA_ERRORS, ValueError) as exc:  # ValueError: psycopg2 refuses NUL
                cur.execute("rollback to savepoint sink_row")
                result.rejected.append((source, _first_line(exc)))
                continue
            result.inserted += cur.rowcount
            cur.execute("release savepoint sink_row")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _rollback_quietly(conn: Any) -> None:
    try:
        conn.rollback()
    except Exception as exc:  # the connection is likely gone; the original error matters
        log.debug("rollback failed too: %s", exc)
