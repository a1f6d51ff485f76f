"""What serving reads from PostgreSQL: item data for the refresher, and request-time lookups
of the batch results (``offline_recommendations``, ``similar_items``).

Request-time lookups run under a short statement timeout; the caller treats any error as
"unavailable" and falls back, so a slow or absent database costs at most that timeout.

The engine is made on first use, not at start: a replica must start (and serve fallbacks)
while PostgreSQL is down, and ``make_engine`` connects when given a schema.

Example::

    reader = DatabaseReader(url, db_schema="public", window_days=7)
    data = reader.item_data()                     # ItemData, or raises
    reader.offline("42", limit=50)                # [RecommendedItem, ...]
"""

from __future__ import annotations

import threading

import sqlalchemy as sa

from schemas import tables
from schemas.database import make_engine
from schemas.events import RecommendedItem
from serving.item_data import ItemData


class DatabaseReader:
    """Queries of the shared tables; every method may raise SQLAlchemy errors."""

    def __init__(
        self,
        url: str,
        *,
        db_schema: str | None = None,
        window_days: float = 7.0,
        timeout_ms: int = 200,
    ) -> None:
        self.url, self.db_schema = url, db_schema
        self.window_days = window_days
        self.timeout_ms = timeout_ms
        self._engine: sa.Engine | None = None
        self._lock = threading.Lock()

    @property
    def engine(self) -> sa.Engine:
        """The engine, made on first use (raises while the database is unreachable)."""
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    self._engine = make_engine(self.url, db_schema=self.db_schema, pool_size=4)
        return self._engine

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    def item_data(self) -> ItemData:
        """Items and views per (item, device) within the trending window.

        The window ends at the newest view, not at now: a replayed data set (ML-100K is from
        1998) must still have a "popular now".
        """
        items = tables.items
        views = tables.view_events
        newest = sa.select(sa.func.max(views.c.ts)).scalar_subquery()
        since = newest - sa.func.make_interval(0, 0, 0, 0, 0, 0, self.window_days * 86400)
        counts = (
            sa.select(views.c.item_id, views.c.device, sa.func.count())
            .where(views.c.ts > since)
            .group_by(views.c.item_id, views.c.device)
        )
        with self.engine.connect() as conn:
            item_rows = conn.execute(sa.select(items.c.item_id, items.c.title, items.c.genres))
            item_list = [(str(i), str(t), tuple(g or ())) for i, t, g in item_rows]
            view_list = [(str(i), str(d), int(n)) for i, d, n in conn.execute(counts)]
        return ItemData.build(item_list, view_list)

    def _timed(self, conn: sa.Connection) -> None:
        # SET LOCAL lasts for the transaction only, so pooled connections keep their default.
        conn.execute(sa.text(f"set local statement_timeout = {int(self.timeout_ms)}"))

    def offline(self, user_id: str, limit: int) -> list[RecommendedItem]:
        """The user's offline top-N, best first (empty if the job has none for them)."""
        t = tables.offline_recommendations
        query = (
            sa.select(t.c.item_id, t.c.score, t.c.reason)
            .where(t.c.user_id == user_id)
            .order_by(t.c.rank)
            .limit(limit)
        )
        with self.engine.begin() as conn:
            self._timed(conn)
            rows = conn.execute(query).all()
        return [RecommendedItem(str(i), float(s), r) for i, s, r in rows]

    def similar(self, item_id: str, limit: int) -> list[tuple[str, float]]:
        """Precomputed neighbours of ``item_id``, best first (empty if unknown)."""
        t = tables.similar_items
        query = (
            sa.select(t.c.similar_item_id, t.c.score)
            .where(t.c.item_id == item_id)
            .order_by(t.c.rank)
            .limit(limit)
        )
        with self.engine.begin() as conn:
            self._timed(conn)
            return [(str(i), float(s)) for i, s in conn.execute(query)]
