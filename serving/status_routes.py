"""Operational endpoints: ``/health`` (alive), ``/ready`` (can answer well), ``/metrics``
(Prometheus text) and ``/v1/models/current`` (what is in force, what was refused).

Example::

    curl -s localhost:8080/ready          # 503 until a model or popularity data is loaded
"""

from __future__ import annotations

from re import Match
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from serving.direct_http import DirectAnswer
from serving.metrics import CONTENT_TYPE
from serving.responses import CurrentModel
from serving.runtime import Runtime

router = APIRouter(tags=["status"])
HEALTHY = b'{"status":"ok"}'


@router.get("/health", response_model=dict[str, str])
async def health() -> Response:
    """Liveness: the process answers HTTP. Says nothing about the model or the data."""
    return Response(HEALTHY, media_type="application/json")


def health_now(match: Match[str], raw_query: bytes) -> DirectAnswer:
    """:func:`health`'s answer for the protocol's direct path (see serving.direct_http)."""
    return DirectAnswer(HEALTHY, None, "")


@router.get("/ready", responses={503: {"description": "Nothing to answer with yet"}})
async def ready(request: Request) -> JSONResponse:
    """Readiness: 200 once a model or a fallback (popularity data) is loaded, else 503."""
    runtime: Runtime = request.app.state.runtime
    body: dict[str, Any] = {
        "ready": runtime.ready,
        "model_version": runtime.models.version,
        "popularity_loaded": bool(runtime.data.current.popular),
        "recommendations": {
            "caught_up": runtime.store.caught_up,
            "users": len(runtime.store),
        },
        "data_error": runtime.data.last_error,
    }
    return JSONResponse(body, status_code=200 if runtime.ready else 503)


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus text format: latency per endpoint and source, model version, fallbacks."""
    runtime: Runtime = request.app.state.runtime
    return Response(runtime.metrics.render(), media_type=CONTENT_TYPE)


@router.get("/v1/models/current", response_model=CurrentModel, tags=["models"])
async def current_model(request: Request) -> JSONResponse:
    """The model in force on this replica, and the latest refusals (newest last)."""
    runtime: Runtime = request.app.state.runtime
    model = runtime.models.current
    refusals = [
        {"version": r.version, "reason": r.reason, "at": r.at} for r in runtime.models.refusals
    ]
    if model is None:
        return JSONResponse({"loaded": False, "version": 0, "refusals": refusals})
    artifact = model.artifact
    body = {
        "loaded": True,
        "version": artifact.version,
        "created_at": artifact.created_at,
        "loaded_at": model.loaded_at,
        "items": len(artifact.item_ids),
        "users": len(artifact.user_ids),
        "dim": artifact.dim,
        "metrics": dict(artifact.metrics),
        "refusals": refusals,
    }
    return JSONResponse(body)
