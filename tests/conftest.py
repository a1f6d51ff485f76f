"""Session-scoped fixtures for the real broker and database, and per-test unique names.

Where the services come from, in order:
1. ``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL``, if set;
2. testcontainers, if a Docker daemon answers a ping (a ``docker`` binary alone is not enough);
3. otherwise the local stack, started exactly as ``nearline dev up`` starts it, and stopped at
   the end of the session only if this session started it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

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
    from deploy.settings import StackSettings

    settings = StackSettings()
    endpoints = stack.up(
        settings, kafka=service == "kafka", postgres=service == "postgres", log=lambda line: None
    )
    if service in endpoints.started:
        request.addfinalizer(
            lambda: stack.down(settings, services=(service,), log=lambda line: None)
        )
    value = endpoints.kafka_bootstrap if service == "kafka" else endpoints.database_url
    assert value is not None
    return value


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
