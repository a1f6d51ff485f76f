"""A consistent snapshot of the event store and the metadata, cut at a recorded point.

All reads happen in one REPEATABLE READ, read-only transaction, so the events, items and
users belong to the same instant even while the sink keeps writing. The cut-off (time taken,
newest event time, row counts and, per event table, the highest Kafka offset stored per
partition) travels in the model manifest: it says exactly which data a model has seen.

Example::

    snapshot = read_snapshot(engine)
    snapshot.cutoff["events"], len(snapshot.items)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa

from schemas.events import now_ms

# Browse impressions are unnested into one row per shown item; their weight (0 by default)
# decides whether they count as positives.
_EVENTS_SQL = """
select user_id, item_id, 'view' as event_type,
       (extract(epoch from ts) * 1000)::bigint as ts, duration_ms, rating
  from view_events
union all
select user_id, item_id, 'click', (extract(epoch from ts) * 1000)::bigint, null, null
  from click_events
union all
select user_id, unnest(item_ids), 'browse_impression',
       (extract(epoch from ts) * 1000)::bigint, null, null
  from browse_events
"""

_OFFSETS_SQL = """
select '{table}' as tbl, kafka_partition, max(kafka_offset) as last_offset, count(*) as n
  from {table} group by kafka_partition
"""


@dataclass(frozen=True)
class Snapshot:
    events: pd.DataFrame
    """user_id, item_id, event_type (view/click/browse_impression), ts (ms), duration_ms,
    rating."""
    items: pd.DataFrame
    users: pd.DataFrame
    cutoff: dict[str, Any]


def read_snapshot(engine: sa.Engine) -> Snapshot:
    """Read events, items and users as of one instant."""
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            taken_at = now_ms()
            events = pd.read_sql_query(sa.text(_EVENTS_SQL), conn)
            items = pd.read_sql_query(
                sa.text("select item_id, title, year, genres from items"), conn
            )
            users = pd.read_sql_query(
                sa.text("select user_id, age, gender, occupation, zip_code from users"), conn
            )
            offsets = pd.concat(
                [
                    pd.read_sql_query(sa.text(_OFFSETS_SQL.format(table=t)), conn)
                    for t in ("view_events", "click_events", "browse_events")
                ]
            )
    cutoff: dict[str, Any] = {
        "taken_at": taken_at,
        "max_event_ts": int(events["ts"].max()) if len(events) else None,
        "events": len(events),
        "items": len(items),
        "users": len(users),
        "offsets": {
            table: {
                str(int(p)): int(o)
                for p, o in zip(group["kafka_partition"], group["last_offset"], strict=True)
            }
            for table, group in offsets.groupby("tbl")
        },
    }
    items["year"] = items["year"].astype("Int64")
    users["age"] = users["age"].astype("Int64")
    return Snapshot(events=events, items=items, users=users, cutoff=cutoff)
