"""Versioned schema migrations for the shared PostgreSQL tables.

Each migration has a number and runs once, in order, inside one transaction with the
version row it records; an advisory lock serialises concurrent callers (two sinks starting
together). Every role calls :func:`migrate` at start-up, so the schema is never behind.

Example::

    from schemas.database import make_engine
    from schemas.migrations import migrate

    applied = migrate(make_engine(url))   # [] when already current
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from schemas import tables

# Any constant works; it only has to be the same for every process of this project.
_LOCK_ID = 0x6E6561726C696E65  # "nearline"

versions = sa.Table(
    "schema_migrations",
    sa.MetaData(),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column(
        "applied_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)


def _v1_initial(conn: sa.Connection) -> None:
    tables.metadata.create_all(
        conn,
        tables=[
            tables.view_events,
            tables.click_events,
            tables.browse_events,
            tables.items,
            tables.users,
            tables.offline_recommendations,
            tables.similar_items,
            tables.item_clusters,
        ],
    )


MIGRATIONS: list[tuple[int, str, Callable[[sa.Connection], None]]] = [
    (1, "initial: event store, metadata, batch results", _v1_initial),
]


def current_version(conn: sa.Connection) -> int:
    if not sa.inspect(conn).has_table("schema_migrations"):
        return 0
    return int(
        conn.execute(sa.select(sa.func.coalesce(sa.func.max(versions.c.version), 0))).scalar_one()
    )


def migrate(engine: sa.Engine) -> list[int]:
    """Apply the migrations not applied yet; return their numbers."""
    applied = []
    with engine.begin() as conn:
        conn.execute(sa.text("select pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
        versions.create(conn, checkfirst=True)
        have = current_version(conn)
        for number, name, step in MIGRATIONS:
            if number > have:
                step(conn)
                conn.execute(versions.insert().values(version=number, name=name))
                applied.append(number)
    return applied
