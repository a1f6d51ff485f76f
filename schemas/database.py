"""Engines for the shared PostgreSQL database.

``db_schema`` puts every table in a PostgreSQL schema of its own (created on first use), so
that tests, or two deployments sharing one server, never see each other's rows.

Example::

    engine = make_engine(DatabaseSettings().url(), db_schema="tenant_a")
"""

from __future__ import annotations

import re

import sqlalchemy as sa

from schemas.errors import ConfigError
from schemas.settings import normalise_database_url

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def make_engine(url: str, *, db_schema: str | None = None, pool_size: int = 5) -> sa.Engine:
    """An engine whose connections use ``db_schema`` (if given) as their search path."""
    connect_args: dict[str, object] = {"connect_timeout": 10}
    if db_schema is not None:
        if not _IDENTIFIER.fullmatch(db_schema):
            raise ConfigError(
                f"database schema {db_schema!r} must be a lower-case identifier "
                "(letters, digits, underscores)"
            )
        connect_args["options"] = f"-csearch_path={db_schema}"
    engine = sa.create_engine(
        normalise_database_url(url),
        connect_args=connect_args,
        pool_size=pool_size,
        pool_pre_ping=True,
    )
    if db_schema is not None:
        with engine.begin() as conn:
            conn.execute(sa.text(f'create schema if not exists "{db_schema}"'))
    return engine
