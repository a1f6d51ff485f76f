"""Step 2 of the demo: replay the history as events and let the sink store it.

The item and user metadata go to PostgreSQL first (serving shows titles from it). The
history is produced in time order as fast as the producer goes, then the sink runs in this
process until it has consumed every history event, with a progress bar over the rows.

Example::

    stored = store_history(kafka, database_url, names, plan.history, ml)
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pandas as pd
from tqdm import tqdm

from batch.sink.loop import run_sink
from batch.sink.settings import SinkSettings
from batch.sink.stats import SinkStats
from deploy.demo.namespace import RunNames
from deploy.replay import replay
from schemas import movielens
from schemas.catalogue import Catalogue
from schemas.database import make_engine
from schemas.errors import NearlineError
from schemas.metadata import upsert_items, upsert_users
from schemas.migrations import migrate
from schemas.producer import EventProducer
from schemas.settings import KafkaSettings

# Waiting this long with nothing new to read means the sink has read what there is.
SINK_IDLE_S = 20.0


@dataclass(frozen=True)
class HistoryResult:
    events: int
    stored: int
    replay_s: float
    sink_s: float


def load_metadata(database_url: str, schema: str, data: movielens.MovieLens) -> None:
    engine = make_engine(database_url, db_schema=schema)
    try:
        migrate(engine)
        items = data.items.astype(object).where(data.items.notna(), None)
        upsert_items(engine, items.to_dict("records"))
        users = data.users.astype(object).where(data.users.notna(), None)
        upsert_users(engine, users.to_dict("records"))
    finally:
        engine.dispose()


def store_history(
    kafka: KafkaSettings,
    database_url: str,
    names: RunNames,
    history: pd.DataFrame,
    data: movielens.MovieLens,
) -> HistoryResult:
    """Replay ``history`` to the run's topics and store it; raise if events went missing."""
    load_metadata(database_url, names.schema, data)
    started = time.monotonic()
    with EventProducer(kafka, Catalogue(names.prefix)) as producer:
        sent = replay(producer, "ViewEvent", movielens.view_events(history), total=len(history))
    replayed = time.monotonic()
    stats = _sink(kafka, database_url, names, sent)
    if stats.messages < sent:
        raise NearlineError(
            f"the sink read {stats.messages} of the {sent} history events before going idle "
            f"for {SINK_IDLE_S:g} s; is the broker overloaded?"
        )
    return HistoryResult(sent, stats.rows_inserted, replayed - started, time.monotonic() - replayed)


def _sink(kafka: KafkaSettings, database_url: str, names: RunNames, expected: int) -> SinkStats:
    settings = SinkSettings(
        topic_prefix=names.prefix,
        db_schema=names.schema,
        group_id=names.sink_group,
        stop_when_idle_s=SINK_IDLE_S,
        progress_interval_s=3600,  # the bar below shows progress; no log lines
    )
    stop = threading.Event()
    with tqdm(total=expected, unit="ev", desc="sink → PostgreSQL", mininterval=0.5) as bar:

        def progress(stats: SinkStats) -> None:
            bar.update(stats.messages - bar.n)
            if stats.messages >= expected:
                stop.set()

        return run_sink(kafka, database_url, settings, stop=stop, progress=progress)
