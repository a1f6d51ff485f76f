"""Batch results into PostgreSQL: each table replaced whole, in one transaction.

Readers (serving) see either the previous model's results or the new ones, never a mix,
because the delete and the COPY commit together.

Example::

    store_results(engine, {"offline_recommendations": recs, "similar_items": similar,
                           "item_clusters": clusters})
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping

import pandas as pd
import sqlalchemy as sa

from schemas import tables

_TABLES = {
    t.name: t for t in (tables.offline_recommendations, tables.similar_items, tables.item_clusters)
}


def store_results(engine: sa.Engine, frames: Mapping[str, pd.DataFrame]) -> dict[str, int]:
    """Replace each named batch-result table with its frame; returns rows per table."""
    written = {}
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        try:
            for name, frame in frames.items():
                table = _TABLES[name]  # only our own tables: the names go into SQL
                columns = [c.name for c in table.columns]
                buffer = io.StringIO()
                frame[columns].to_csv(
                    buffer, index=False, header=False, quoting=csv.QUOTE_MINIMAL, na_rep=""
                )
                buffer.seek(0)
                cur.execute(f"delete from {name}")  # noqa: S608
                cur.copy_expert(f"copy {name} ({', '.join(columns)}) from stdin with csv", buffer)
                written[name] = len(frame)
        finally:
            cur.close()
        raw.commit()
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()
    return written
