"""A demo run's own names on the shared cluster and database, and removing them.

Every run gets a fresh id. Its topics carry the prefix ``<id>.`` (the worker's changelog
topics and consumer group too, since Faust puts the prefix in front of the app id), its
tables live in the PostgreSQL schema ``<id with underscores>``, and its sink uses its own
group. So a run never sees an earlier run's data or the user's, and :func:`remove` can
delete exactly what the run created.

Example::

    names = RunNames.new()              # prefix "demo-1a2b3c4d.", schema "demo_1a2b3c4d"
    ...
    remove(kafka, database_url, names)  # topics, consumer groups, schema
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from schemas.database import make_engine
from schemas.settings import KafkaSettings

WORKER_APP_ID = "nearline-worker"


@dataclass(frozen=True)
class RunNames:
    run_id: str

    @classmethod
    def new(cls) -> RunNames:
        return cls(f"demo-{secrets.token_hex(4)}")

    @property
    def prefix(self) -> str:
        """NEARLINE_TOPIC_PREFIX of the run."""
        return f"{self.run_id}."

    @property
    def schema(self) -> str:
        """NEARLINE_DB_SCHEMA of the run (a PostgreSQL identifier)."""
        return self.run_id.replace("-", "_")

    @property
    def worker_group(self) -> str:
        """The worker's consumer group: the prefix, then the app id (see streams.settings)."""
        return self.prefix + WORKER_APP_ID

    @property
    def sink_group(self) -> str:
        return self.prefix + "nearline-sink"


def _ours(names: RunNames, candidates: list[str]) -> list[str]:
    return sorted(n for n in candidates if n.startswith(names.prefix))


def remove(
    kafka: KafkaSettings,
    database_url: str | None,
    names: RunNames,
    warn: Callable[[str], None] = print,
    timeout: float = 30.0,
) -> list[str]:
    """Delete the run's topics, consumer groups and schema; return what was removed.

    Each step is tried even if another failed (a failure is reported through ``warn``), so
    that a broker problem never keeps the schema, or the reverse.
    """
    removed: list[str] = []
    admin = AdminClient(dict(kafka.client_config()))
    try:
        listing = admin.list_consumer_groups(request_timeout=timeout).result(timeout)
        groups = _ours(names, [g.group_id for g in listing.valid])
        for group, future in (admin.delete_consumer_groups(groups) if groups else {}).items():
            future.result(timeout)
            removed.append(f"group {group}")
    except KafkaException as exc:
        warn(f"could not delete the consumer groups of {names.run_id}: {exc}")
    try:
        topics = _ours(names, list(admin.list_topics(timeout=timeout).topics))
        futures = admin.delete_topics(topics, operation_timeout=timeout) if topics else {}
        for topic, future in futures.items():
            future.result(timeout)
            removed.append(f"topic {topic}")
    except KafkaException as exc:
        warn(f"could not delete the topics of {names.run_id}: {exc}")
    if database_url is not None:
        try:
            engine = make_engine(database_url)
            try:
                with engine.begin() as conn:
                    conn.execute(sa.text(f'drop schema if exists "{names.schema}" cascade'))
            finally:
                engine.dispose()
            removed.append(f"schema {names.schema}")
        except sa.exc.SQLAlchemyError as exc:
            warn(f"could not drop the schema {names.schema}: {exc}")
    return removed
