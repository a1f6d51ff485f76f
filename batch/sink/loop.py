"""The sink's main loop: consume a batch, store it, then commit its offsets.

Per batch, in this order: the rows are written in one PostgreSQL transaction; the dead
letters are queued and flushed (acknowledged by the broker); only then are the offsets
committed. A crash anywhere before the commit redelivers the batch, and the tables ignore
event_ids they already hold, so nothing is lost and nothing is stored twice.

Batches are stored synchronously, between two consume() calls. Within a batch, decoding
overlaps the database: the batch is assembled lazily, as the writer's COPY asks for rows
(:mod:`batch.sink.writer`). Overlapping the decoding of batch N+1 with the database write
of batch N (a writer thread) was tried and measured: no gain on a 2-vCPU host, where
PostgreSQL, the broker and the sink already share both cores; run more sinks in the group
instead.

Example::

    stats = run_sink(KafkaSettings(), url, SinkSettings(stop_when_idle_s=5))
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from batch.sink.batches import SinkBatch, assemble_lazily
from batch.sink.consumer import SinkConsumer
from batch.sink.settings import SinkSettings
from batch.sink.stats import ProgressLog, SinkStats
from batch.sink.storage import store
from batch.sink.writer import EventWriter, WriteResult
from schemas.catalogue import Catalogue
from schemas.codec import default_codec
from schemas.connectivity import broker_metadata, database_version
from schemas.database import make_engine
from schemas.dead_letters import DeadLetterWriter
from schemas.migrations import migrate
from schemas.settings import KafkaSettings

log = logging.getLogger(__name__)


def run_sink(
    kafka: KafkaSettings,
    database_url: str,
    settings: SinkSettings,
    *,
    stop: threading.Event | None = None,
    progress: Callable[[SinkStats], None] | None = None,
) -> SinkStats:
    """Copy the catalogue's event topics into their tables until ``stop`` is set (or, with
    ``settings.stop_when_idle_s``, until caught up). Returns what was done.

    Raises :class:`~schemas.errors.BrokerUnavailable` or
    :class:`~schemas.errors.DatabaseUnavailable` at start-up if either does not answer;
    afterwards outages are waited out.

    Example::

        stop = threading.Event()
        threading.Thread(target=run_sink, args=(kafka, url, SinkSettings()),
                         kwargs={"stop": stop}).start()
        ...
        stop.set()
    """
    stop = stop or threading.Event()
    stats = SinkStats()
    catalogue = Catalogue(settings.topic_prefix)
    broker_metadata(kafka.client_config())
    database_version(database_url)
    engine = make_engine(database_url, db_schema=settings.db_schema, pool_size=1)
    try:
        migrate(engine)
        _consume(kafka, catalogue, EventWriter(engine), settings, stop, stats, progress)
    finally:
        engine.dispose()
    log.info(
        "sink stopped: %d rows, %d duplicates, %d dead letters in %d batches",
        stats.rows_inserted,
        stats.duplicates,
        stats.dead_letters,
        stats.batches,
    )
    return stats


def _consume(
    kafka: KafkaSettings,
    catalogue: Catalogue,
    writer: EventWriter,
    settings: SinkSettings,
    stop: threading.Event,
    stats: SinkStats,
    progress: Callable[[SinkStats], None] | None,
) -> None:
    codec = default_codec()
    letters = DeadLetterWriter(kafka, catalogue, codec)
    reporter = ProgressLog(settings.progress_interval_s, progress)
    in_hand: list[SinkBatch] = []  # the batch being stored, if any

    def before_revoke() -> None:
        # Batches are stored synchronously between consume() calls, and rebalance callbacks
        # only run inside consume(), so this cannot happen; if it ever does, say so.
        if in_hand:
            log.error("partitions revoked while %s was being stored", in_hand[0].describe())

    topics = [t.name for t in catalogue.event_topics]
    consumer = SinkConsumer(kafka, settings, topics, before_revoke=before_revoke)
    last_message = time.monotonic()
    try:
        while not stop.is_set():
            messages = consumer.consume(settings.batch_size, settings.poll_timeout_s)
            if not messages:
                reporter.tick(stats)
                if _caught_up(settings, consumer, last_message):
                    return
                continue
            last_message = time.monotonic()
            batch = assemble_lazily(messages, catalogue, codec)
            in_hand.append(batch)
            result = store(batch, writer, letters, settings, stop)
            if result is None:
                log.info("stopped before %s was stored; it will be redelivered", batch.describe())
                return
            consumer.commit(batch.commit_offsets())
            stats.commit_failures = consumer.commit_failures
            in_hand.clear()
            _count(stats, batch, result)
            reporter.batch_done(stats)
    finally:
        in_hand.clear()  # given up (stop or crash): redelivered after the restart
        consumer.close()
        letters.close()


def _count(stats: SinkStats, batch: SinkBatch, result: WriteResult) -> None:
    stats.rows_inserted += result.inserted
    stats.duplicates += batch.duplicates + result.duplicates
    stats.dead_letters += len(batch.letters) + len(result.rejected)
    stats.messages += batch.messages
    stats.batches += 1
    stats.last_commit_at = time.monotonic()


def _caught_up(settings: SinkSettings, consumer: SinkConsumer, last_message: float) -> bool:
    if settings.stop_when_idle_s is None or consumer.assigned_at is None:
        return False  # before the group assigned partitions, quiet means nothing
    quiet_since = max(last_message, consumer.assigned_at)
    return time.monotonic() - quiet_since >= settings.stop_when_idle_s
