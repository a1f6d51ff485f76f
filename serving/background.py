"""The app's background work, started and stopped by its lifespan.

- the model source (verified models swapped in, refusals recorded);
- the recommendations source (the in-memory store);
- the data refresher (popularity and item metadata from PostgreSQL);
- the event producer's delivery reports, served by a small thread so that failures are
  logged as they happen rather than at the next flush.

Example::

    background = Background(runtime, model_source, recs_source, producer)
    background.start()
    ...
    background.stop()
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from schemas.artifact import ModelArtifact
from serving.data_refresher import DataRefresher
from serving.runtime import Runtime
from serving.sources import ModelSource, RecommendationsSource

log = logging.getLogger(__name__)


class Background:
    def __init__(
        self,
        runtime: Runtime,
        model_source: ModelSource | None,
        recs_source: RecommendationsSource | None,
        producer: Any = None,
    ) -> None:
        self.runtime = runtime
        self.model_source, self.recs_source, self.producer = model_source, recs_source, producer
        self.refresher: DataRefresher | None = None
        self._stopping = threading.Event()
        self._poller: threading.Thread | None = None

    def on_model(self, artifact: ModelArtifact) -> None:
        if self.runtime.models.swap(artifact) is not None:
            self.runtime.metrics.model_version.set(artifact.version)
            log.info("serving model v%d", artifact.version)

    def on_refused(self, version: int | None, reason: str) -> None:
        self.runtime.models.refuse(version, reason)
        self.runtime.metrics.refusals.inc()
        log.warning("model v%s refused; still serving v%d: %s", version, self.version, reason)

    @property
    def version(self) -> int:
        return self.runtime.models.version

    def start(self) -> None:
        if self.model_source is not None:
            self.model_source.start(self.on_model, self.on_refused)
        if self.recs_source is not None:
            self.recs_source.start(self.runtime.store)
        database = self.runtime.database
        if database is not None:
            interval = self.runtime.settings.data_refresh_s
            self.refresher = DataRefresher(database.item_data, self.runtime.data, interval=interval)
            self.refresher.start()
        if self.producer is not None and hasattr(self.producer, "poll"):
            self._poller = threading.Thread(
                target=self._poll, name="nearline-serving-deliveries", daemon=True
            )
            self._poller.start()

    def _poll(self) -> None:
        while not self._stopping.is_set():
            self.producer.poll(0.2)

    def stop(self) -> None:
        self._stopping.set()
        for part in (self.model_source, self.recs_source, self.refresher):
            if part is not None:
                try:
                    part.stop()
                except Exception:
                    log.exception("stopping %s failed", type(part).__name__)
        if self._poller is not None:
            self._poller.join(5)
        if self.producer is not None and hasattr(self.producer, "flush"):
            try:
                self.producer.flush(10)
            except Exception:
                # Events accepted with 202 but not delivered: say so loudly, it is data loss.
                log.exception("events queued for the broker were not all delivered")
        if self.runtime.database is not None:
            self.runtime.database.dispose()
