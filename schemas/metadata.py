"""Item and user metadata in PostgreSQL: the "data" that algorithms combine with models and
signals. Upserts, so that loading the same catalogue twice leaves one row per id.

Example::

    from schemas.metadata import upsert_items
    upsert_items(engine, [{"item_id": "1", "title": "Toy Story", "year": 1995,
                           "genres": ["Animation"]}])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from schemas import tables


def _upsert(engine: sa.Engine, table: sa.Table, rows: Iterable[Mapping[str, Any]]) -> int:
    batch = [dict(r) for r in rows]
    if not batch:
        return 0
    key = [c.name for c in table.primary_key.columns]
    statement = insert(table)
    updates: dict[str, Any] = {
        c.name: statement.excluded[c.name]
        for c in table.columns
        if c.name not in key and c.name in batch[0]
    }
    updates["updated_at"] = sa.func.now()
    with engine.begin() as conn:
        conn.execute(statement.on_conflict_do_update(index_elements=key, set_=updates), batch)
    return len(batch)


def upsert_items(engine: sa.Engine, rows: Iterable[Mapping[str, Any]]) -> int:
    """Insert or update items (item_id, title, year, genres); returns the row count."""
    return _upsert(engine, tables.items, rows)


def upsert_users(engine: sa.Engine, rows: Iterable[Mapping[str, Any]]) -> int:
    """Insert or update users (user_id, age, gender, occupation, zip_code)."""
    return _upsert(engine, tables.users, rows)
