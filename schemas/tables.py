"""The PostgreSQL tables every role shares, as versioned SQLAlchemy metadata.

- The event store: one table per event topic (the catalogue's ``table``), written by the
  sink, idempotent by ``event_id`` (the primary key).
- Data: ``items`` and ``users`` metadata.
- Batch results of the offline job: ``offline_recommendations``, ``similar_items``,
  ``item_clusters``.

Schema changes are migrations (:mod:`schemas.migrations`); this module describes the
current shape.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, UUID

metadata = sa.MetaData()


def _event_columns() -> list[sa.Column[object]]:
    """Columns common to every event table: the event's own fields, then where it came from."""
    return [
        sa.Column("event_id", UUID(as_uuid=False), primary_key=True),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("session_id", sa.Text, nullable=False),
        sa.Column("device", sa.Text, nullable=False),
        sa.Column("locale", sa.Text),
        sa.Column("country", sa.Text),
    ]


def _origin_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("kafka_partition", sa.Integer, nullable=False),
        sa.Column("kafka_offset", sa.BigInteger, nullable=False),
        sa.Column(
            "ingested_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    ]


view_events = sa.Table(
    "view_events",
    metadata,
    *_event_columns(),
    sa.Column("item_id", sa.Text, nullable=False),
    sa.Column("duration_ms", sa.BigInteger, nullable=False),
    sa.Column("progress", sa.Float(precision=24), nullable=False),
    sa.Column("rating", sa.Float(precision=24)),
    *_origin_columns(),
    sa.Index("view_events_user_ts", "user_id", "ts"),
    sa.Index("view_events_item", "item_id"),
)

click_events = sa.Table(
    "click_events",
    metadata,
    *_event_columns(),
    sa.Column("item_id", sa.Text, nullable=False),
    sa.Column("surface", sa.Text, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    *_origin_columns(),
    sa.Index("click_events_user_ts", "user_id", "ts"),
    sa.Index("click_events_item", "item_id"),
)

browse_events = sa.Table(
    "browse_events",
    metadata,
    *_event_columns(),
    sa.Column("list_id", sa.Text, nullable=False),
    sa.Column("item_ids", ARRAY(sa.Text), nullable=False),
    *_origin_columns(),
    sa.Index("browse_events_user_ts", "user_id", "ts"),
)

EVENT_TABLES: dict[str, sa.Table] = {
    "ViewEvent": view_events,
    "ClickEvent": click_events,
    "BrowseEvent": browse_events,
}
"""Event type -> its table; the catalogue names the same tables per topic."""

items = sa.Table(
    "items",
    metadata,
    sa.Column("item_id", sa.Text, primary_key=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("year", sa.Integer),
    sa.Column("genres", ARRAY(sa.Text), nullable=False, server_default="{}"),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("age", sa.Integer),
    sa.Column("gender", sa.Text),
    sa.Column("occupation", sa.Text),
    sa.Column("zip_code", sa.Text),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

offline_recommendations = sa.Table(
    "offline_recommendations",
    metadata,
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("rank", sa.SmallInteger, primary_key=True),
    sa.Column("item_id", sa.Text, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("model_version", sa.BigInteger, nullable=False),
)

similar_items = sa.Table(
    "similar_items",
    metadata,
    sa.Column("item_id", sa.Text, primary_key=True),
    sa.Column("rank", sa.SmallInteger, primary_key=True),
    sa.Column("similar_item_id", sa.Text, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("model_version", sa.BigInteger, nullable=False),
)

item_clusters = sa.Table(
    "item_clusters",
    metadata,
    sa.Column("item_id", sa.Text, primary_key=True),
    sa.Column("cluster", sa.Integer, nullable=False),
    sa.Column("model_version", sa.BigInteger, nullable=False),
)
