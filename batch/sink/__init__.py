"""The event store's data path: consume the event topics, write PostgreSQL in batches.

Each batch is written in one transaction (COPY straight into the tables; a table whose
COPY meets an event_id already stored is merged with ``INSERT ... ON CONFLICT (event_id)
DO NOTHING`` instead), malformed messages go to ``events.dlq`` with a reason, and offsets
are committed only once both are durable. Sinks in the same consumer group split the
partitions.

Example::

    from batch.sink import SinkSettings, run_sink
    from schemas.settings import KafkaSettings

    stats = run_sink(KafkaSettings(), "postgresql://...", SinkSettings(stop_when_idle_s=5))
    print(stats.rows_inserted, stats.dead_letters)
"""

from batch.sink.command import main
from batch.sink.loop import run_sink
from batch.sink.settings import SinkSettings
from batch.sink.stats import SinkStats

__all__ = ["SinkSettings", "SinkStats", "main", "run_sink"]
