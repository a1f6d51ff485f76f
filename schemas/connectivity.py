"""Reachability checks for Kafka and PostgreSQL that fail with one clear line.

Every role calls these at start-up, so that a wrong address produces
``BrokerUnavailable: no Kafka broker answered at 127.0.0.1:1 within 5 s ...`` instead of a
client library's retry loop or traceback.

Example::

    >>> from schemas.connectivity import broker_metadata
    >>> broker_metadata({"bootstrap.servers": "127.0.0.1:19092"}, timeout=5)  # doctest: +SKIP
    BrokerInfo(cluster_id='...', brokers=1, topics=3)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from schemas.errors import BrokerUnavailable, DatabaseUnavailable
from schemas.settings import normalise_database_url

_quiet = logging.getLogger("nearline.librdkafka")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


@dataclass(frozen=True)
class BrokerInfo:
    cluster_id: str | None
    brokers: int
    topics: int


def broker_metadata(client_config: dict[str, str], timeout: float = 5.0) -> BrokerInfo:
    """Ask the cluster for its metadata, or raise :class:`BrokerUnavailable`."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    # librdkafka logs every failed connection attempt to stderr; a dead address would print
    # dozens of lines before our one clear line, so its log goes to a silent logger.
    admin = AdminClient({**client_config, "logger": _quiet})  # type: ignore[dict-item]
    try:
        meta = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        servers = client_config.get("bootstrap.servers")
        raise BrokerUnavailable(
            f"no Kafka broker answered at {servers} within {timeout:g} s "
            f"({exc.args[0].str() if exc.args else exc}); start one with `nearline dev up` "
            "or set KAFKA_BOOTSTRAP_SERVERS"
        ) from exc
    return BrokerInfo(meta.cluster_id, len(meta.brokers), len(meta.topics))


def database_version(url: str, timeout: int = 5) -> str:
    """Connect, return the server's version string, or raise :class:`DatabaseUnavailable`."""
    import sqlalchemy as sa
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

    try:
        engine = sa.create_engine(
            normalise_database_url(url), connect_args={"connect_timeout": timeout}
        )
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise DatabaseUnavailable(f"DATABASE_URL is not a usable SQLAlchemy URL: {exc}") from exc
    try:
        with engine.connect() as conn:
            return str(conn.execute(sa.text("show server_version")).scalar_one())
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        safe = engine.url.render_as_string(hide_password=True)
        raise DatabaseUnavailable(
            f"cannot connect to PostgreSQL at {safe}: {reason}; check DATABASE_URL "
            "(or unset it to use the one `nearline dev up` starts)"
        ) from exc
    finally:
        engine.dispose()
