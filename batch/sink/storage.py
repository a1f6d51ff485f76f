"""Making one batch durable, whatever it takes: rows committed, dead letters acknowledged.

Database and broker failures are retried with capped exponential backoff until they pass
or the sink is asked to stop; a batch is never dropped.

Example::

    result = store(batch, EventWriter(engine), DeadLetterWriter(kafka, catalogue),
                   settings, stop)
    if result is None: ...      # stop was set first; the batch will be redelivered
"""

from __future__ import annotations

import logging
import threading

import psycopg2
import sqlalchemy as sa

from batch.sink.batches import SinkBatch, dead_letter
from batch.sink.settings import SinkSettings
from batch.sink.writer import EventWriter, WriteResult
from schemas.dead_letters import DeadLetterWriter
from schemas.producer import DeliveryError

log = logging.getLogger(__name__)

_RETRIED = (psycopg2.Error, sa.exc.SQLAlchemyError, DeliveryError)


def backoff_s(attempt: int, low: float, high: float) -> float:
    """Wait before retry ``attempt`` (1-based): ``low``, doubling each time, at most ``high``."""
    return min(high, low * 2.0 ** min(attempt - 1, 30))


def store(
    batch: SinkBatch,
    writer: EventWriter,
    letters: DeadLetterWriter,
    settings: SinkSettings,
    stop: threading.Event,
) -> WriteResult | None:
    """Make ``batch`` durable: rows committed and dead letters acknowledged. Retries with
    capped exponential backoff until done, or returns None once ``stop`` is set.

    The consumer is not polled while retrying. Polling with the partitions paused would
    keep the group membership through a long outage, but would also run rebalance
    callbacks with this batch still unstored. Not polling keeps "a revocation finds nothing
    pending" true; the price is that an outage longer than max.poll.interval.ms (300 s)
    makes librdkafka leave the group, the commit then fails, and the batch is redelivered
    - which the event_id primary keys make harmless.
    """
    result: WriteResult | None = None
    queued = False
    attempt = 0
    while True:
        try:
            if result is None:
                # Also assembles a lazily assembled batch: its dead letters are known after.
                result = writer.write(batch)
            if not queued:
                for letter in batch.letters:
                    letters.send(letter)
                for msg, error in result.rejected:
                    letters.send(dead_letter(msg, "rejected-by-database", error))
                queued = True
            if batch.letters or result.rejected:
                letters.flush(settings.dlq_timeout_s)
            return result
        except _RETRIED as exc:
            attempt += 1
            delay = backoff_s(attempt, settings.min_backoff_s, settings.max_backoff_s)
            log.warning(
                "storing %s failed (attempt %d: %s: %s); retrying in %.1f s",
                batch.describe(),
                attempt,
                type(exc).__name__,
                _first_line(exc),
                delay,
            )
            if stop.wait(delay):
                return None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else ""
