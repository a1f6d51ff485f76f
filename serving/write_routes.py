"""Write endpoint: ``POST /v1/events``, behind the API token when one is configured.

Example::

    curl -X POST localhost:8080/v1/events -H 'Authorization: Bearer s3cret' \\
         -d '{"type": "view", "user_id": "42", "item_id": "50", "duration_ms": 60000,
              "progress": 0.5, "context": {"session_id": "s1", "device": "tv"}}'
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from serving.errors import Unauthorized, Unavailable
from serving.responses import EventsAccepted, EventsRejected
from serving.runtime import Runtime

router = APIRouter(prefix="/v1", tags=["events"])
bearer = HTTPBearer(auto_error=False, description="NEARLINE_SERVING_API_TOKEN")

EXAMPLE = {
    "type": "view",
    "user_id": "42",
    "item_id": "50",
    "duration_ms": 5_400_000,
    "progress": 0.9,
    "context": {"session_id": "s1", "device": "tv"},
}


def require_token(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    """Let the request through if no token is configured or it carries the right one."""
    token = request.app.state.runtime.settings.api_token
    if token is None:
        return
    given = credentials.credentials if credentials is not None else ""
    # compare_digest: the time taken must not reveal how much of the token matched.
    if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
        raise Unauthorized("a valid bearer token is required (Authorization: Bearer <token>)")


def _queued(sink: Any) -> int:
    """Events queued for the broker but not yet acknowledged (EventProducer's bookkeeping)."""
    try:
        return int(sink.sent - sink.failed - sink.delivered)
    except AttributeError:  # a sink without the bookkeeping (a test fake) queues nothing
        return 0


@router.post(
    "/events",
    status_code=202,
    response_model=EventsAccepted,
    responses={422: {"model": EventsRejected}, 401: {}, 503: {}},
    dependencies=[Depends(require_token)],
)
async def post_events(
    request: Request,
    body: Annotated[dict[str, Any] | list[Any], Body(examples=[EXAMPLE, [EXAMPLE]])],
) -> JSONResponse:
    """Produce one or many events (``type``: click, browse or view) to their topics.

    All or nothing: if any event is invalid, none is produced and the 422 lists each
    invalid one by index with its reason. 202 means queued for the broker (idempotent
    producer, acks=all); a missing ``event_id`` or ``ts`` is filled in and returned.
    """
    runtime: Runtime = request.app.state.runtime
    intake = runtime.intake
    if intake is None:
        raise Unavailable("events cannot be accepted: this replica has no broker configured")
    pending = _queued(intake.sink)
    if pending > runtime.settings.max_pending_events:
        raise Unavailable(f"{pending} events are waiting for the broker; retry later")
    size = len(body) if isinstance(body, list) else 1
    try:
        accepted = intake.take(body, limit=runtime.settings.max_events_per_request)
    except Exception:
        runtime.metrics.events.labels("rejected").inc(size)
        raise
    runtime.metrics.events.labels("accepted").inc(len(accepted.event_ids))
    request.state.endpoint, request.state.source = "events", "kafka"
    content = {
        "accepted": len(accepted.event_ids),
        "by_type": accepted.counts,
        "event_ids": accepted.event_ids,
    }
    return JSONResponse(content, status_code=202)
