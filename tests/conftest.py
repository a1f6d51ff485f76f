"""Session-scoped fixtures for the real broker and database, and per-test unique names.

Where the services come from, in order:
1. ``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL``, if set;
2. testcontainers, if a Docker daemon answers a ping (a ``docker`` binary alone is not enough);
3. otherwise the local stack, started exactly as ``nearline dev up`` starts it, and stopped at
   the end of the session only if this session started it (the topics it created deleted
   first).
"""

from __future__ import annotations

import os
import re
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest
from hypothesis import settings

# Hypothesis fails an example slower than 200 ms by default: a timed assertion, which flakes
# on these shared 2-core machines (seen: 385 ms under load). Correctness only, no deadline.
settings.register_profile("nearline", deadline=None)
settings.load_profile("nearline")


def _docker_answers() -> bool:
    try:
        import docker

        return bool(docker.from_env(timeout=3).ping())
    except Exception:  # no socket, no permission, no daemon: all mean "no Docker here"
        return False


@pytest.fixture(scope="session")
def docker_available() -> bool:
    return _docker_answers()


def _local_stack(service: str, request: pytest.FixtureRequest) -> str:
    from deploy import stack
    from deploy.broker import BrokerPaths
    from deploy.settings import StackSettings

    settings = StackSettings()
    endpoints = stack.up(
        settings, kafka=service == "kafka", postgres=service == "postgres", log=lambda line: None
    )
    value = endpoints.kafka_bootstrap if service == "kafka" else endpoints.database_url
    assert value is not None
    if service in endpoints.started:
        request.addfinalizer(
            lambda: stack.down(settings, services=(service,), log=lambda line: None)
        )
        if service == "kafka":  # finalizers run last first: this one before the stop
            data = BrokerPaths(settings.state_dir / "kafka").data
            request.addfinalizer(partial(_delete_new_topics, value, _topics(value), data))
    return value


def _topics(bootstrap: str) -> set[str]:
    from confluent_kafka.admin import AdminClient

    return set(AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=30).topics)


def _delete_new_topics(bootstrap: str, before: set[str], data: Path) -> None:
    """Delete the topics created since the session started the broker (a run makes about
    140, with 560 partitions; a broker with thousands starts slowly), Kafka's own aside,
    and wait until their logs in ``data`` are gone. Best effort: a topic left behind is
    harmless, so nothing here fails the session."""
    from confluent_kafka.admin import AdminClient

    from schemas.admin import wait_until_unlisted

    try:
        admin = AdminClient({"bootstrap.servers": bootstrap})  # kept: the futures need it
        listed = set(admin.list_topics(timeout=30).topics)
        new = sorted(t for t in listed - before if not t.startswith("__"))
        if not new:
            return
        for future in admin.delete_topics(new, operation_timeout=60).values():
            future.exception(timeout=90)
        wait_until_unlisted(admin, new)
        # Just after that, the broker sets their logs aside (renamed), and removes them
        # after log.segment.delete.delay.ms (deploy/kafka/server.properties).
        deadline = time.monotonic() + 30
        while _logs_of(data, new) and time.monotonic() < deadline:
            time.sleep(0.2)
    except Exception as exc:  # the broker may be gone: the session's result stands
        warnings.warn(f"could not delete the session's topics: {exc}", stacklevel=1)


def _logs_of(data: Path, topics: list[str]) -> bool:
    """Whether ``data`` still holds a log of ``topics``: ``topic-N``, or set aside for
    deletion as ``topic-N.<id>-delete``."""
    names = set(topics)
    logs = (re.fullmatch(r"(.+)-\d+(?:\.[0-9a-f]+-delete)?", p.name) for p in data.iterdir())
    return any(log is not None and log[1] in names for log in logs)


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest, docker_available: bool) -> Iterator[str]:
    """host:port of a real Apache Kafka broker."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    elif docker_available:
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer("apache/kafka:3.9.1") as container:
            yield container.get_bootstrap_server()
    else:
        yield _local_stack("kafka", request)


@pytest.fixture(scope="session")
def database_url(request: pytest.FixtureRequest, docker_available: bool) -> Iterator[str]:
    """SQLAlchemy URL of a real PostgreSQL database."""
    if os.environ.get("DATABASE_URL"):
        from schemas.settings import normalise_database_url

        yield normalise_database_url(os.environ["DATABASE_URL"])
    elif docker_available:
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16", driver="psycopg2") as container:
            yield container.get_connection_url()
    else:
        yield _local_stack("postgres", request)


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Names no other test uses: ``unique("orders")`` -> ``"orders-3f9a0c1b2d"``."""
    token = uuid.uuid4().hex[:10]
    return lambda base: f"{base}-{token}"


@pytest.fixture
def create_topic(kafka_bootstrap: str) -> Callable[..., str]:
    """Create a topic and wait until it exists; returns its name."""
    from confluent_kafka.admin import AdminClient, NewTopic

    from schemas.admin import wait_until_listed

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})

    def create(name: str, partitions: int = 1, config: dict[str, str] | None = None) -> str:
        futures = admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
            operation_timeout=30,
        )
        futures[name].result(timeout=30)
        wait_until_listed(admin, [name])
        return name

    return create
