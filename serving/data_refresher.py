"""Keeps the in-memory :class:`~serving.item_data.ItemData` fresh from PostgreSQL.

Loads at start, then every ``interval`` seconds. A failed load is logged and counted and
the previous data keeps serving; while nothing has loaded yet it retries sooner, since a
replica without data can only answer from the model.

Example::

    refresher = DataRefresher(reader.item_data, slot, interval=300)
    refresher.start()
    refresher.loaded.wait(10)
    refresher.stop()
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from serving.item_data import DataSlot, ItemData

log = logging.getLogger(__name__)

RETRY_S = 5.0


class DataRefresher:
    """A background thread putting ``load()``'s result in ``slot`` periodically."""

    def __init__(self, load: Callable[[], ItemData], slot: DataSlot, *, interval: float) -> None:
        self._load, self.slot, self.interval = load, slot, interval
        self.loaded = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name="nearline-data-refresher", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def refresh(self) -> bool:
        """Load once; returns whether it worked (the slot is only replaced if so)."""
        try:
            data = self._load()
        except Exception as exc:
            self.slot.failures += 1
            self.slot.last_error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
            log.warning("item data not refreshed, keeping the previous: %s", self.slot.last_error)
            return False
        self.slot.current = data
        self.slot.last_error = None
        self.loaded.set()
        log.info("item data: %d items, %d with views", len(data.titles), len(data.popular))
        return True

    def _run(self) -> None:
        while not self._stopping.is_set():
            ok = self.refresh()
            wait = self.interval if ok or self.loaded.is_set() else min(RETRY_S, self.interval)
            self._stopping.wait(wait)
