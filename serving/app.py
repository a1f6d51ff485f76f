"""The HTTP app factory: ``create_app(settings, ...)`` builds a FastAPI app whose lifespan
starts and stops its background readers (models, recommendations, item data, deliveries).

Given ``kafka``, the app follows the ``models`` topic, reads ``recommendations`` and
produces events; given ``database_url``, it loads popularity and item data and may read the
batch tables. Tests pass fakes instead (``model_source=``, ``recs_source=``,
``event_producer=``). Nothing connects before the lifespan starts. Several replicas can run
side by side: each rebuilds its state from the compacted topics.

Example::

    app = create_app(load(ServingSettings), kafka=load(KafkaSettings),
                     database_url=load(DatabaseSettings).url())
    uvicorn.run(app, host="127.0.0.1", port=8080)

    with TestClient(create_app(ServingSettings(), model_source=FakeModels())) as client:
        client.get("/v1/users/42/recommendations?k=5").json()["source"]
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from re import Match
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from schemas.catalogue import Catalogue
from schemas.settings import KafkaSettings
from serving import read_routes, status_routes, write_routes
from serving.background import Background
from serving.database_reader import DatabaseReader
from serving.direct_http import DIRECT_ROUTES, DirectAnswer, DirectRoute, DirectRoutes
from serving.errors import ServingError
from serving.event_intake import EventIntake, EventSink
from serving.fast_routes import FastRoutes, fast_routes
from serving.metrics import ServingMetrics
from serving.runtime import Runtime
from serving.settings import ServingSettings
from serving.sources import (
    Database,
    ModelSource,
    RecommendationsSource,
    TopicModelSource,
    TopicRecommendationsSource,
)


class Latency:
    """Pure ASGI middleware timing each request into the histogram, labelled with the
    endpoint and source the handler put in ``request.state`` (unlabelled requests, such as
    /health and /metrics, are not recorded). Pure ASGI because Starlette's
    BaseHTTPMiddleware costs more per request than a recommendation does."""

    def __init__(self, app: ASGIApp, metrics: ServingMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            state = scope.get("state") or {}
            endpoint = state.get("endpoint")
            if endpoint is not None:
                elapsed = time.perf_counter() - start
                self.metrics.observe(endpoint, state.get("source", "none"), elapsed)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("query", "path"))
        parts.append(f"{where}: {error.get('msg')}")
    return "; ".join(parts) or "invalid request"


def _path_regex(router: APIRouter, endpoint: Callable[..., Any]) -> Any:
    """The compiled path pattern FastAPI matches ``endpoint``'s route with."""
    for route in router.routes:
        if isinstance(route, APIRoute) and route.endpoint is endpoint:
            return route.path_regex
    raise LookupError(f"{endpoint.__qualname__} is not a route of {router!r}")


def direct_routes(runtime: Runtime) -> DirectRoutes:
    """The GETs uvicorn's protocol may answer without the app (see serving.direct_http):
    a user's recommendations (the hot path) and /health (its reference, the HTTP cost)."""
    users = _path_regex(read_routes.router, read_routes.recommendations)
    health = _path_regex(status_routes.router, status_routes.health)

    def recommendations(match: Match[str], raw_query: bytes) -> DirectAnswer | None:
        return read_routes.recommendations_now(runtime, match["user_id"], raw_query)

    routes = (DirectRoute(users, recommendations), DirectRoute(health, status_routes.health_now))
    return DirectRoutes(routes, runtime.metrics.observe)


def create_app(
    settings: ServingSettings,
    *,
    kafka: KafkaSettings | None = None,
    database_url: str | None = None,
    model_source: ModelSource | None = None,
    recs_source: RecommendationsSource | None = None,
    event_producer: EventSink | None = None,
    database: Database | None = None,
) -> FastAPI:
    """Build the app; its lifespan runs the background readers. See the module docstring."""
    if database is None and database_url is not None:
        database = DatabaseReader(
            database_url,
            db_schema=settings.db_schema,
            window_days=settings.trending_window_days,
            timeout_ms=settings.db_timeout_ms,
        )
    runtime = Runtime.build(settings, database)
    catalogue = Catalogue(settings.topic_prefix)
    if kafka is not None:
        model_source = model_source or TopicModelSource(kafka, catalogue)
        recs_source = recs_source or TopicRecommendationsSource(kafka, catalogue)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        producer = event_producer
        if producer is None and kafka is not None:
            from schemas.producer import EventProducer

            producer = EventProducer(kafka, catalogue)
        if producer is not None:
            runtime.intake = EventIntake(producer, runtime.signals)
        background = Background(runtime, model_source, recs_source, producer)
        background.start()
        app.state.background = background
        try:
            # uvicorn hands its lifespan state to each connection's protocol.
            yield {DIRECT_ROUTES: direct_routes(runtime)}
        finally:
            background.stop()

    app = FastAPI(
        title="nearline serving",
        summary="Online recommendations: nearline sets, fold-in, offline lists and fallbacks.",
        version="1",
        lifespan=lifespan,
        # Off, FastAPI answers without looking up the OpenTelemetry providers per request
        # (10-18 µs measured here, under load); on, it traces as it does by default.
        telemetry=None
        if settings.opentelemetry
        else {"tracing": False, "metrics": False, "logs": False},
    )
    app.state.runtime = runtime
    app.include_router(read_routes.router)
    app.include_router(write_routes.router)
    app.include_router(status_routes.router)
    # Innermost first: the read and status GETs skip FastAPI's routing (see fast_routes),
    # inside the latency middleware so that they are still timed.
    app.add_middleware(
        FastRoutes,
        routes=fast_routes(read_routes.router, status_routes.router),
        exception_handlers=app.exception_handlers,
    )
    app.add_middleware(Latency, metrics=runtime.metrics)

    @app.exception_handler(ServingError)
    async def serving_error(request: Request, exc: ServingError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        body: dict[str, Any] = {"detail": str(exc), **exc.extra}
        return JSONResponse(body, status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        body = {"detail": _validation_message(exc), "errors": jsonable_encoder(exc.errors())}
        return JSONResponse(body, status_code=422)

    return app
