"""The fast path for the read and status GETs answers exactly as FastAPI would.

Each request goes to two apps built alike: the real one, and one whose ``FastRoutes``
middleware is removed so that FastAPI routes everything. Status, content type and body must
match, and the real app must have answered the hot GETs itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from schemas.events import RecommendedItem
from serving import command
from serving.app import create_app
from serving.fast_routes import FastRoutes, fast_routes
from serving.settings import ServingSettings
from tests.unit.test_serving_fakes import FakeDatabase, FakeModels, FakeRecs, make_artifact, recs

ARTIFACT = make_artifact(version=3)


def _app(fast: bool) -> FastAPI:
    database = FakeDatabase(offline={"u2": [RecommendedItem("4", 1.0, "3")]})
    app = create_app(
        ServingSettings(),
        model_source=FakeModels(ARTIFACT),
        recs_source=FakeRecs(recs("42", ["7", "8"])),
        database=database,
    )
    if not fast:  # the stack is built at the first request: drop the middleware before it
        app.user_middleware = [m for m in app.user_middleware if m.cls is not FastRoutes]
    return app


@pytest.fixture
def clients() -> Iterator[tuple[TestClient, TestClient]]:
    with TestClient(_app(fast=True)) as fast, TestClient(_app(fast=False)) as plain:
        for client in (fast, plain):
            refresher = client.app.state.background.refresher  # type: ignore[attr-defined]
            assert refresher.loaded.wait(5)
        yield fast, plain


REQUESTS = [
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/v1/models/current"),
    ("GET", "/v1/users/42/recommendations"),
    ("GET", "/v1/users/42/recommendations?k=3&exclude=7"),
    ("GET", "/v1/users/stranger/recommendations?device=web&genre=drama"),
    ("GET", "/v1/users/nobody/recommendations?recent=12,13&k=5"),
    ("GET", "/v1/users/u1/recommendations"),
    ("GET", "/v1/users/u2/recommendations"),
    ("GET", "/v1/users/a%20b/recommendations"),
    ("GET", "/v1/users/42/recommendations?k=0"),
    ("GET", "/v1/users/42/recommendations?k=ten"),
    ("GET", "/v1/users/42/recommendations?genre=western"),
    ("GET", "/v1/users/%20/recommendations"),
    ("GET", "/v1/items/3/similar?k=4&exclude=1"),
    ("GET", "/v1/items/999/similar"),
    ("GET", "/v1/items/3/similar?k=1000"),
    # Not taken by the fast path: FastAPI answers both apps.
    ("HEAD", "/health"),
    ("POST", "/health"),
    ("GET", "/health/"),
    ("GET", "/v1/users//recommendations"),
    ("GET", "/v1/users/42/recommendations/"),
    ("GET", "/nowhere"),
]


@pytest.mark.parametrize(("method", "path"), REQUESTS)
def test_the_fast_path_answers_like_fastapi(
    clients: tuple[TestClient, TestClient], method: str, path: str
) -> None:
    fast, plain = clients
    a = fast.request(method, path, follow_redirects=False)
    b = plain.request(method, path, follow_redirects=False)
    assert (a.status_code, a.headers.get("content-type"), _body(a)) == (
        b.status_code,
        b.headers.get("content-type"),
        _body(b),
    ), path
    assert a.headers.get("allow") == b.headers.get("allow")
    if path != "/v1/models/current":
        assert a.headers.get("content-length") == b.headers.get("content-length")


def _body(response: Any) -> Any:
    if response.request.url.path == "/v1/models/current":  # each app loaded it at its time
        return {k: v for k, v in response.json().items() if k != "loaded_at"}
    return response.content


def test_the_hot_gets_skip_fastapi_routing(
    clients: tuple[TestClient, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, _ = clients
    answered: list[str] = []
    original = FastRoutes._answer

    async def spy(self: FastRoutes, route: Any, *args: Any) -> None:
        answered.append(route.route.path)
        await original(self, route, *args)

    monkeypatch.setattr(FastRoutes, "_answer", spy)
    for path in ("/health", "/metrics", "/v1/users/42/recommendations", "/v1/items/3/similar"):
        assert fast.get(path).status_code == 200
    assert fast.post("/v1/events", json=[]).status_code in (202, 422, 503)
    assert fast.get("/openapi.json").status_code == 200
    assert answered == [
        "/health",
        "/metrics",
        "/v1/users/{user_id}/recommendations",
        "/v1/items/{item_id}/similar",
    ]
    # Still timed by the latency middleware around it, labelled by the handler.
    text = fast.get("/metrics").text
    assert 'nearline_serving_request_seconds_count{endpoint="similar",source="online"}' in text


def test_an_unhandled_error_is_still_a_500(
    clients: tuple[TestClient, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    def bug(*args: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("serving.read_routes.similar_items", bug)
    for client in clients:
        answer = TestClient(client.app, raise_server_exceptions=False).get("/v1/items/3/similar")
        assert (answer.status_code, answer.text) == (500, "Internal Server Error")
        with pytest.raises(RuntimeError, match="a bug"):
            client.get("/v1/items/3/similar")


def _router(endpoint: Any, method: str = "GET", **extra: Any) -> APIRouter:
    router = APIRouter()
    router.add_api_route("/x/{name}", endpoint, methods=[method], **extra)
    return router


async def _takes_request(request: Request) -> JSONResponse:
    return JSONResponse({})


async def _takes_a_query_parameter(k: int) -> JSONResponse:
    return JSONResponse({})


async def _returns_a_dict(request: Request) -> dict[str, Any]:
    return {}


def _sync(request: Request) -> Response:
    return Response()


def test_routes_fastapi_would_have_to_solve_are_refused_when_the_app_is_built() -> None:
    assert len(fast_routes(_router(_takes_request))) == 1
    with pytest.raises(TypeError, match="only GET"):
        fast_routes(_router(_takes_request, method="POST"))
    with pytest.raises(TypeError, match="solve its parameters"):
        fast_routes(_router(_takes_a_query_parameter))
    with pytest.raises(TypeError, match="return a Response"):
        fast_routes(_router(_returns_a_dict))
    with pytest.raises(TypeError, match="async"):
        fast_routes(_router(_sync))


def test_uvicorn_runs_with_uvloop_httptools_and_no_access_log_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = ServingSettings()
    assert (settings.loop, settings.http, settings.access_log) == ("uvloop", "httptools", False)
    assert settings.opentelemetry is False
    ran: dict[str, Any] = {}
    monkeypatch.setattr("uvicorn.run", lambda app, **kwargs: ran.update(kwargs))
    monkeypatch.setattr(command, "broker_metadata", lambda *a, **k: None)
    monkeypatch.setenv("NEARLINE_SERVING_API_TOKEN", "t")
    monkeypatch.setenv("NEARLINE_SERVING_ACCESS_LOG", "true")
    monkeypatch.setenv("NEARLINE_SERVING_LOOP", "asyncio")
    monkeypatch.setenv("NEARLINE_SERVING_HTTP", "h11")
    command.main()
    assert (ran["loop"], ran["http"], ran["access_log"]) == ("asyncio", "h11", True)
