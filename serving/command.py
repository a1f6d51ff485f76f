"""``nearline serve`` as a function: settings from the environment, then uvicorn.

Settings are validated before anything starts (a bad value is one
:class:`~schemas.errors.ConfigError` line). A broker or database that does not answer yet
is only a warning: the server starts, answers from what it has (fallbacks), and its
readers connect when they can; ``/ready`` says when it has something to serve.

Example::

    from serving.command import main
    main()          # serves on NEARLINE_SERVING_HOST:NEARLINE_SERVING_PORT until Ctrl-C
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI

from schemas.connectivity import broker_metadata
from schemas.errors import BrokerUnavailable, ConfigError
from schemas.settings import DatabaseSettings, KafkaSettings, load
from serving.app import create_app
from serving.direct_http import DirectHttpProtocol
from serving.settings import ServingSettings

log = logging.getLogger(__name__)


def _database_url() -> str | None:
    try:
        return load(DatabaseSettings).url()
    except ConfigError as exc:
        if "DATABASE_URL is not set" not in str(exc):
            raise
        log.warning("DATABASE_URL is not set: no popularity data, no batch-table lookups")
        return None


def app_from_env() -> FastAPI:
    """The app configured from the environment (uvicorn's factory, one per worker)."""
    return create_app(
        load(ServingSettings), kafka=load(KafkaSettings), database_url=_database_url()
    )


def main() -> None:
    """Run the server from ``KAFKA_*``, ``DATABASE_URL`` and ``NEARLINE_SERVING_*``."""
    import uvicorn

    settings = load(ServingSettings)
    kafka = load(KafkaSettings)
    _database_url()  # validate it now: a malformed URL must fail before the server starts
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(message)s"
        )
    try:
        broker_metadata(kafka.client_config(), timeout=5)
    except BrokerUnavailable as exc:
        log.warning("%s; starting anyway, serving fallbacks until it answers", exc)
    if settings.api_token is None:
        log.warning("NEARLINE_SERVING_API_TOKEN is not set: POST /v1/events is open to anyone")
    http: Any = settings.http
    if settings.direct and settings.http != "h11" and not settings.opentelemetry:
        # httptools' protocol with the direct path (which FastAPI's tracing would not see)
        http = DirectHttpProtocol
    uvicorn.run(
        "serving.command:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        access_log=settings.access_log,  # off by default: a line costs more than a request
        loop=settings.loop,
        http=http,
    )
