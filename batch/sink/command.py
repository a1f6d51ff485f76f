"""``nearline sink`` as a function: settings from the environment, SIGTERM/SIGINT to stop.

Example::

    from batch.sink import main
    main()      # runs until SIGTERM or Ctrl-C, then finishes the batch in hand
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from batch.sink.loop import run_sink
from batch.sink.settings import SinkSettings
from batch.sink.stats import SinkStats
from schemas.settings import DatabaseSettings, KafkaSettings, load

log = logging.getLogger(__name__)


def main(**overrides: object) -> SinkStats:
    """Run the sink from ``KAFKA_*``, ``DATABASE_URL`` and ``NEARLINE_SINK_*`` settings;
    ``overrides`` (field=value, e.g. ``stop_when_idle_s=5``) win over the environment.

    Bad settings raise :class:`~schemas.errors.ConfigError` (one line) before anything
    connects. Must be called from the main thread, which owns signal handlers.
    """
    kafka = load(KafkaSettings)
    url = load(DatabaseSettings).url()
    settings = load(SinkSettings, **overrides)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        # Only set a flag: the loop finishes the batch in hand, commits it and leaves the
        # group, so its partitions move to the other sinks at once.
        log.info("%s received; stopping after the current batch", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return run_sink(kafka, url, settings, stop=stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
