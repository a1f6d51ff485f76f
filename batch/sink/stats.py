"""Counters of a sink run, and the periodic progress line.

Example::

    stats = run_sink(kafka, url, SinkSettings(stop_when_idle_s=5))
    stats.rows_inserted, stats.duplicates, stats.dead_letters, stats.rows_per_s
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class SinkStats:
    """What a sink did; the object passed to a progress callback is live, not a copy."""

    rows_inserted: int = 0
    duplicates: int = 0
    """Events not stored again: repeats within a batch plus event_ids already in the table."""
    dead_letters: int = 0
    batches: int = 0
    messages: int = 0
    commit_failures: int = 0
    started_at: float = field(default_factory=time.monotonic)
    """monotonic time the sink started (before migrations and joining the group)."""
    last_commit_at: float | None = None
    """monotonic time of the last committed batch: when the sink was last caught up."""

    @property
    def busy_s(self) -> float:
        """Seconds from start to the last committed batch (0 if none)."""
        return 0.0 if self.last_commit_at is None else self.last_commit_at - self.started_at

    @property
    def rows_per_s(self) -> float:
        """Rows inserted per second of :attr:`busy_s`."""
        return self.rows_inserted / self.busy_s if self.busy_s > 0 else 0.0


class ProgressLog:
    """Calls ``callback`` after every batch and logs a rate line every ``interval_s``."""

    def __init__(
        self, interval_s: float, callback: Callable[[SinkStats], None] | None = None
    ) -> None:
        self.interval_s = interval_s
        self.callback = callback
        self._at = time.monotonic()
        self._rows = 0
        self._batches = 0

    def batch_done(self, stats: SinkStats) -> None:
        if self.callback is not None:
            self.callback(stats)
        self.tick(stats)

    def tick(self, stats: SinkStats) -> None:
        """Log a line if ``interval_s`` has passed and anything happened since the last one."""
        now = time.monotonic()
        if now - self._at < self.interval_s:
            return
        new_rows = stats.rows_inserted - self._rows
        if stats.batches != self._batches:  # quiet while idle
            log.info(
                "sink: %d rows/s; %d rows, %d duplicates, %d dead letters, %d batches",
                round(new_rows / (now - self._at)),
                stats.rows_inserted,
                stats.duplicates,
                stats.dead_letters,
                stats.batches,
            )
        self._at, self._rows, self._batches = now, stats.rows_inserted, stats.batches
