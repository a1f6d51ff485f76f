"""Where the demo's Kafka and PostgreSQL are, starting the local stack when needed.

Kafka: ``KAFKA_BOOTSTRAP_SERVERS`` if set, else the local broker (``nearline dev up``'s),
started if it is not running. PostgreSQL likewise: ``DATABASE_URL`` if set, else the local
cluster. Given addresses are only checked, never started: they may be anyone's (Docker
Compose's, say, on the same ports). :attr:`Services.started` lists what this call
started, so the demo stops exactly that at the end and leaves the rest running.

Example::

    services = bring_up(StackSettings(), load(KafkaSettings), load(DatabaseSettings))
    ...
    stack.down(StackSettings(), services=tuple(services.started))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from deploy import stack
from deploy.settings import StackSettings
from schemas.connectivity import broker_metadata, database_version
from schemas.settings import DatabaseSettings, KafkaSettings


@dataclass
class Services:
    kafka: KafkaSettings
    database_url: str
    started: list[str] = field(default_factory=list)


def uses_local_kafka(kafka: KafkaSettings) -> bool:
    """True unless KAFKA_BOOTSTRAP_SERVERS was set."""
    return "bootstrap_servers" not in kafka.model_fields_set


def bring_up(
    settings: StackSettings,
    kafka: KafkaSettings,
    database: DatabaseSettings,
    log: Callable[[str], None] = print,
) -> Services:
    """Start what the demo needs and is not running; check what it was given."""
    local_kafka = uses_local_kafka(kafka)
    external_url = database.url() if database.database_url is not None else None
    if external_url is not None:  # check it first: a wrong URL should not leave a broker up
        database_version(external_url)
    started: list[str] = []
    try:
        # One service per call, so that a failure to start PostgreSQL still tells us
        # whether this call started Kafka, which is then stopped again.
        if local_kafka:
            started += stack.up(settings, kafka=True, postgres=False, log=log).started
            kafka = kafka.model_copy(update={"bootstrap_servers": settings.kafka_bootstrap})
        url = external_url
        if url is None:
            endpoints = stack.up(settings, kafka=False, postgres=True, log=log)
            started += endpoints.started
            url = endpoints.database_url
        broker_metadata(kafka.client_config(), timeout=10)
    except BaseException:
        if started:
            stack.down(settings, services=tuple(started), log=log)
        raise
    if url is None:  # stack.up always reports the database it runs
        raise RuntimeError("the local stack reported no database URL")
    return Services(kafka, url, started)
