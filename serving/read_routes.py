"""Read endpoints: a user's recommendations and an item's similar items.

Both are ``async`` and compute in memory on the event loop (about 0.1 ms); only an
optional PostgreSQL lookup runs in a thread, bounded by a budget, and any failure there
is skipped and named in ``degraded``: reads degrade, they never answer 500.

Example::

    GET /v1/users/42/recommendations?k=10&exclude=50&recent=181,1&device=tv&genre=comedy
    GET /v1/items/50/similar?k=5
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from schemas.events import RecommendedItem
from serving.answers import Answer, Pick, Query
from serving.direct_http import DirectAnswer
from serving.errors import NotFound
from serving.query_parameters import (
    check_id,
    check_k,
    documented,
    id_list,
    parse_query,
    parse_query_string,
    query_params,
)
from serving.responses import Recommendations, Similar, item_json, recommendations_body
from serving.runtime import Runtime
from serving.similar import from_table, similar_items
from serving.sources import Database

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["recommendations"])
T = TypeVar("T")


async def _lookup(
    runtime: Runtime, step: str, call: Callable[[], T], degraded: list[str]
) -> T | None:
    """Run a database call in a thread within the budget; None (and a note) if it fails."""
    budget = runtime.settings.db_timeout_ms / 1000 * 1.5
    try:
        return await asyncio.wait_for(asyncio.to_thread(call), budget)
    except Exception as exc:  # TimeoutError, connection refused, missing table...
        log.warning("%s lookup skipped: %s: %s", step, type(exc).__name__, exc)
        degraded.append(f"{step}: database unavailable")
        runtime.metrics.degraded.labels(step).inc()
        return None


RECOMMENDATION_PARAMETERS = documented(
    ("user_id", "path", "string", "Any user id; an unknown user gets a cold-start answer."),
    ("k", "query", "integer", "How many items (default and maximum: settings)."),
    ("exclude", "query", "string", "Comma-separated item ids never to return."),
    ("recent", "query", "string", "Comma-separated items just interacted with, newest first."),
    ("device", "query", "string", "Request context: re-ranks towards what the device watches."),
    ("genre", "query", "string", "Only items of this genre (items metadata)."),
)
SIMILAR_PARAMETERS = documented(
    ("item_id", "path", "string", "The item to find neighbours of."),
    ("k", "query", "integer", "How many items."),
    ("exclude", "query", "string", "Comma-separated item ids never to return."),
)


@router.get(
    "/users/{user_id}/recommendations",
    response_model=Recommendations,
    openapi_extra=RECOMMENDATION_PARAMETERS,
)
async def recommendations(request: Request) -> Response:
    """Top-k for a user: nearline set, online fold-in, offline list, trending, fallback.

    An unknown user gets a cold-start answer (trending), never a 404.
    """
    runtime: Runtime = request.app.state.runtime
    query = parse_query(runtime, request.path_params["user_id"], query_params(request.scope))
    degraded: list[str] = []
    rows = None
    database = _offline_table(runtime, query)
    if database is not None:
        rows = await _lookup(
            runtime, "offline", lambda: database.offline(query.user_id, 100), degraded
        )
    body, source = _recommendations_body(runtime, query, rows, degraded)
    _label(request, "recommendations", source)
    return Response(body, media_type="application/json")


def recommendations_now(runtime: Runtime, user_id: str, raw_query: bytes) -> DirectAnswer | None:
    """The same answer as :func:`recommendations`, computed on the spot (the protocol's
    direct path, see :mod:`serving.direct_http`); None when the answer needs the database.
    Raises, before counting anything, on a parameter :func:`recommendations` would refuse."""
    query = parse_query(runtime, user_id, parse_query_string(raw_query))
    if _offline_table(runtime, query) is not None:
        return None
    body, source = _recommendations_body(runtime, query, None, [])
    return DirectAnswer(body, "recommendations", source)


def _offline_table(runtime: Runtime, query: Query) -> Database | None:
    """The database to read the user's offline list from, when reading it could change
    the answer (see ``Recommender.wants_offline_rows``); else None."""
    database = runtime.database
    if database is None or not runtime.recommender.wants_offline_rows(query, database=True):
        return None
    return database


def _recommendations_body(
    runtime: Runtime, query: Query, rows: list[RecommendedItem] | None, degraded: list[str]
) -> tuple[bytes, str]:
    """The response body (the bytes ``JSONResponse(recommendations_json(...))`` would send)
    and the answer's source; counts a fallback."""
    try:
        answer = runtime.recommender.recommend(query, rows, degraded)
    except Exception:
        # A bug must still not cost the caller an answer: log it loudly, serve popularity.
        log.exception("recommend failed for user %s; serving the fallback", query.user_id)
        answer = _emergency(runtime, query.user_id, query.k)
    body = recommendations_body(answer, runtime.data.current)  # may raise: count after it
    if answer.source != "nearline":
        runtime.metrics.fallback(answer.source)
    return body, answer.source


def _label(request: Request, endpoint: str, source: str) -> None:
    """Name the request for the latency middleware: ``request.state.endpoint`` and
    ``.source``, written straight into the scope's state dict that ``request.state`` wraps
    (Starlette's wrapper costs more than the write)."""
    state = request.scope.setdefault("state", {})
    state["endpoint"], state["source"] = endpoint, source


def _emergency(runtime: Runtime, user_id: str, k: int) -> Answer:
    popular = runtime.data.current.popular[:k]
    picks = tuple(Pick(i, n, "popular now", "fallback") for i, n in popular)
    return Answer(user_id, picks, "fallback", 0, runtime.models.version, ("recommender error",))


@router.get("/items/{item_id}/similar", response_model=Similar, openapi_extra=SIMILAR_PARAMETERS)
async def similar(request: Request) -> JSONResponse:
    """Items like ``item_id``: cosine of the model's item vectors, else the batch table."""
    runtime: Runtime = request.app.state.runtime
    params = query_params(request.scope)
    item_id = check_id("item_id", request.path_params["item_id"])
    count = check_k(params.get("k"), runtime.settings.default_k, runtime.settings.max_k)
    banned = frozenset(id_list("exclude", params.get("exclude")))
    data, model = runtime.data.current, runtime.models.current
    degraded: list[str] = []
    picks = None if model is None else similar_items(model, item_id, count, banned, data.title)
    source, version = "online", 0 if model is None else model.version
    database = runtime.database
    if picks is None and database is not None:
        rows = await _lookup(
            runtime, "similar", lambda: database.similar(item_id, count + len(banned)), degraded
        )
        picks = from_table(rows, item_id, count, banned, data.title) if rows else None
        source, version = "offline", 0
    if picks is None:
        known = item_id in data.titles or (model is not None and item_id in model.item_row)
        if not degraded and not known:
            raise NotFound(f"item {item_id!r} is unknown to the model and the item data")
        popular = [(i, n) for i, n in data.popular if i != item_id and i not in banned]
        picks = [Pick(i, n, "popular now", "fallback") for i, n in popular[:count]]
        source, version = "fallback", 0
    _label(request, "similar", source)
    body: dict[str, Any] = {
        "item_id": item_id,
        "source": source,
        "model_version": version,
        "items": [item_json(p, data) for p in picks],
        "degraded": degraded,
    }
    return JSONResponse(body)
