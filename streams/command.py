"""``nearline worker`` as a function: settings from the environment, SIGTERM/SIGINT to stop.

Example::

    from streams.command import main
    raise SystemExit(main())     # runs until SIGTERM or Ctrl-C; 0 after a clean stop
"""

from __future__ import annotations

import logging

import faust
from aiokafka.codec import has_lz4

from schemas.admin import ensure_topics
from schemas.catalogue import EVENT_PARTITIONS, Catalogue, Topic
from schemas.connectivity import broker_metadata
from schemas.errors import ConfigError
from schemas.settings import KafkaSettings, load
from streams.app import create_app
from streams.settings import StreamsSettings

log = logging.getLogger(__name__)


def main() -> int:
    """Run the worker from ``KAFKA_*``, ``NEARLINE_TOPIC_PREFIX`` and ``NEARLINE_WORKER_*``.

    Bad settings raise :class:`~schemas.errors.ConfigError` and an unreachable broker
    :class:`~schemas.errors.BrokerUnavailable` (one line each) before the worker starts.
    Returns the exit status: 0 after SIGTERM or SIGINT (pending sets are published and
    offsets committed), non-zero after a crash, so that a supervisor restarts the worker.
    Must be called from the main thread, which owns signal handlers.
    """
    kafka = load(KafkaSettings)
    settings = load(StreamsSettings)
    if not has_lz4():
        # Our producers compress with lz4; without it the first fetch would crash the worker.
        raise ConfigError(
            "aiokafka cannot read lz4-compressed events; install `aiokafka[lz4]` (cramjam)"
        )
    cluster = broker_metadata(kafka.client_config(), timeout=10)
    # Faust does not create the topics it reads; the catalogue declares them, once.
    ensure_topics(kafka, Catalogue(settings.topic_prefix))
    replication = min(3, cluster.brokers)
    _ensure_changelogs(kafka, settings, replication)
    app = create_app(settings, kafka, replication=replication)
    worker = faust.Worker(app, loglevel=settings.loglevel, redirect_stdouts=False)
    # Faust's terminal spinner sets the root logger to DEBUG (at loglevel warn and above) so
    # that every library debug line turns it: measured, that cost more than the events.
    worker.spinner = None
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:  # mode's worker always leaves through sys.exit
        return exc.code if isinstance(exc.code, int) else 1
    return 0


def _ensure_changelogs(kafka: KafkaSettings, settings: StreamsSettings, replication: int) -> None:
    """Create the tables' changelog topics before Faust subscribes to them.

    Faust creates them itself, moments before its consumer takes the metadata snapshot that
    its tables check partition counts against. On a fresh deployment that snapshot can say
    0 partitions, and until aiokafka refreshes it (5 min) every write to the trending table
    raises PartitionsMismatch, and the event is dead-lettered as processing-failed.
    """
    changelogs = [
        Topic(
            base=f"{settings.group_id}-{table}-changelog",
            key=key,
            value_schemas=(),
            partitions=EVENT_PARTITIONS,
            cleanup_policy="compact",
            retention_ms=-1,
        )
        for table, key in (("user_state", "user_id"), ("trending", "p<partition>"))
    ]
    ensure_topics(kafka, changelogs, replication=replication)
