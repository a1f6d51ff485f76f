"""Write a batch's rows to the event tables in one transaction, idempotent by ``event_id``.

Each table's rows are COPYed into a session-local staging table, then moved with
``INSERT ... SELECT ... ON CONFLICT (event_id) DO NOTHING``: COPY is the fastest way in,
and the conflict clause makes a redelivered event a no-op instead of a second row. The
staging table holds ``ts`` in epoch milliseconds, as rows carry it; the SELECT converts.

If PostgreSQL refuses the batch's *data* (SQLSTATE classes 22 and 23), retrying would fail
forever, so the same transaction is rewritten row by row under savepoints and the refused
rows are returned for the dead-letter topic. :mod:`batch.sink.rows` already refuses every
value we know PostgreSQL cannot store, so this is a safety net.

Example::

    writer = EventWriter(make_engine(url))
    result = writer.write(assemble(messages, catalogue, codec))
    result.inserted, result.duplicates, result.rejected
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from typing import Any

import psycopg2
import sqlalchemy as sa
from confluent_kafka import Message
from sqlalchemy.dialects import postgresql

from batch.sink.batches import SinkBatch, TableRows
from batch.sink.copy_format import copy_text
from schemas.tables import EVENT_TABLES

log = logging.getLogger(__name__)

_DATA_ERRORS = (psycopg2.DataError, psycopg2.IntegrityError)
_TABLES = {table.name: table for table in EVENT_TABLES.values()}
_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]
# Exact integer arithmetic; to_timestamp(ms / 1000.0) would go through a double.
_TS_FROM_MS = "timestamptz 'epoch' + {} * interval '1 millisecond'"


def _stage_columns(rows: TableRows) -> str:
    table = _TABLES[rows.table]
    types = {c: "bigint" if c == "ts" else table.c[c].type.compile(_DIALECT) for c in rows.columns}
    return ", ".join(f"{c} {types[c]}" for c in rows.columns)


def _converted(columns: tuple[str, ...], value: str | None = None) -> str:
    """Column expressions (``value`` as a placeholder if given) with ``ts`` made timestamptz."""
    exprs = [value or c for c in columns]
    return ", ".join(
        _TS_FROM_MS.format(e) if c == "ts" else e for c, e in zip(columns, exprs, strict=True)
    )


@dataclass
class WriteResult:
    inserted: int = 0
    duplicates: int = 0
    """Rows already stored (redelivered events)."""
    rejected: list[tuple[Message, str]] = field(default_factory=list)
    """Messages whose row PostgreSQL refused, with its error message."""


class EventWriter:
    """Writes :class:`SinkBatch` rows through one pooled connection of ``engine``."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def write(self, batch: SinkBatch) -> WriteResult:
        """Store every row of ``batch`` in one transaction; raises on database failure."""
        tables = [batch.tables[name] for name in sorted(batch.tables)]  # stable lock order
        if not tables:
            return WriteResult()
        conn: Any = self.engine.raw_connection()
        try:
            try:
                result = WriteResult()
                for rows in tables:
                    result.inserted += _copy(conn, rows)
                conn.commit()
            except _DATA_ERRORS as exc:
                conn.rollback()
                log.warning(
                    "PostgreSQL refused a batch (%s); isolating the bad rows", _first_line(exc)
                )
                result = WriteResult()
                for rows in tables:
                    _row_by_row(conn, rows, result)
                conn.commit()
            result.duplicates = batch.rows - result.inserted - len(result.rejected)
            return result
        except BaseException:
            _rollback_quietly(conn)
            raise
        finally:
            conn.close()  # back to the pool


def _copy(conn: Any, rows: TableRows) -> int:
    stage = f"sink_stage_{rows.table}"
    columns = ", ".join(rows.columns)
    with conn.cursor() as cur:
        # One staging table per session, emptied at each commit: creating one per batch
        # would churn the system catalogue of a sink that runs for months.
        cur.execute(
            f"create temp table if not exists {stage} ({_stage_columns(rows)}) "
            "on commit delete rows"
        )
        cur.copy_expert(f"copy {stage} ({columns}) from stdin", io.BytesIO(copy_text(rows.rows)))
        cur.execute(
            f"insert into {rows.table} ({columns}) "  # noqa: S608 (names are our constants)
            f"select {_converted(rows.columns)} from {stage} "
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
