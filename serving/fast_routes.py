"""The read and status endpoints, answered without FastAPI's per-request machinery.

FastAPI 0.165 spends more on a GET than a recommendation costs: matching the request
against each included router's "effective" routes, solving the endpoint's (empty)
dependencies, and three nested wrappers (exception handling, exit stacks, the endpoint's
request/response adapter). Measured in process on this (loaded) machine, ``GET /health``
took 150-300 µs through the app's FastAPI stack, 15-35 µs through this middleware, and 30 µs
as a plain Starlette route; ``recommend()`` itself takes 30-200 µs.

The hot endpoints already take nothing but the ``Request`` (they read their own query
parameters, see :mod:`serving.query_parameters`) and return a ready ``Response``, so
:class:`FastRoutes`, a pure ASGI middleware, matches a GET's path with each route's own
compiled pattern and calls the endpoint directly. Exceptions go to the app's exception
handlers, found the way Starlette finds them (by status for an ``HTTPException``, else by
class along the MRO); anything unhandled propagates to FastAPI's 500 handler as before.
Everything else goes through FastAPI unchanged: other methods (HEAD, POST: a 405 or the
write endpoint), ``/docs`` and ``/openapi.json``, unknown paths, requests under a
``root_path``. The routes stay declared on their FastAPI routers, so OpenAPI documents
them exactly as before.

Only routes FastAPI would answer the same way can be taken: an ``async`` endpoint whose
only parameter is the request (or none), with no dependencies, annotated to return a
``Response``. :func:`fast_routes` refuses anything else when the app is built, so a
parameter added to a hot endpoint fails loudly instead of being silently skipped.

Example::

    app.add_middleware(FastRoutes, routes=fast_routes(read_routes.router),
                       exception_handlers=app.exception_handlers)
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from re import Pattern
from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send


@dataclass(frozen=True, slots=True)
class FastRoute:
    """One GET route: its compiled path pattern and an endpoint taking the request (or not)."""

    route: APIRoute
    pattern: Pattern[str]
    convertors: Mapping[str, Convertor[Any]]
    endpoint: Callable[..., Awaitable[Response]]
    takes_request: bool


def fast_routes(*routers: APIRouter) -> tuple[FastRoute, ...]:
    """Every route of ``routers``, each checked to be answerable without FastAPI.

    Raises ``TypeError`` naming the route when one is not: not GET-only, not ``async``,
    declares parameters or dependencies FastAPI would have to solve, or is not annotated
    to return a ``Response``.
    """
    taken = []
    for router in routers:
        for route in router.routes:
            if not isinstance(route, APIRoute):
                raise TypeError(f"{route!r} is not an APIRoute")
            taken.append(_checked(route))
    return tuple(taken)


def _checked(route: APIRoute) -> FastRoute:
    where = f"route {route.path} ({route.endpoint.__qualname__})"
    if route.methods != {"GET"}:
        raise TypeError(f"{where}: only GET routes can be answered directly")
    if not inspect.iscoroutinefunction(route.endpoint):
        raise TypeError(f"{where}: the endpoint must be async")
    dependant = route.dependant
    solved = (
        dependant.path_params,
        dependant.query_params,
        dependant.header_params,
        dependant.cookie_params,
        dependant.body_params,
        dependant.dependencies,
    )
    if any(solved):
        raise TypeError(f"{where}: FastAPI would solve its parameters or dependencies")
    parameters = list(inspect.signature(route.endpoint).parameters)
    request_name = dependant.request_param_name
    if parameters not in ([], [request_name]):
        raise TypeError(f"{where}: the endpoint may take only the Request")
    returns = typing.get_type_hints(route.endpoint).get("return")
    if not (isinstance(returns, type) and issubclass(returns, Response)):
        raise TypeError(f"{where}: the endpoint must be annotated to return a Response")
    return FastRoute(
        route, route.path_regex, route.param_convertors, route.endpoint, bool(parameters)
    )


class FastRoutes:
    """Pure ASGI middleware answering GETs on ``routes`` directly (see the module doc)."""

    def __init__(
        self,
        app: ASGIApp,
        routes: Sequence[FastRoute],
        exception_handlers: Mapping[Any, Callable[..., Any]],
    ) -> None:
        self.app = app
        self.routes = tuple(routes)
        # Read when the middleware stack is built (first request), after registration.
        self.by_status = {k: v for k, v in exception_handlers.items() if isinstance(k, int)}
        self.by_class = {k: v for k, v in exception_handlers.items() if isinstance(k, type)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not scope.get("root_path"):
            path = scope["path"]
            for fast in self.routes:
                match = fast.pattern.match(path)
                if match is not None:
                    await self._answer(fast, match.groupdict(), scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _answer(
        self, fast: FastRoute, values: dict[str, str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        convertors = fast.convertors
        scope["path_params"] = {k: convertors[k].convert(v) for k, v in values.items()}
        scope["endpoint"], scope["route"] = fast.endpoint, fast.route
        request = Request(scope, receive, send)
        try:
            response = await (fast.endpoint(request) if fast.takes_request else fast.endpoint())
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            if inspect.iscoroutinefunction(handler):
                response = await handler(request, exc)
            else:
                response = await run_in_threadpool(handler, request, exc)
            exc.__traceback__ = None  # as Starlette does: reused exceptions keep no frames
        await response(scope, receive, send)

    def _handler(self, exc: Exception) -> Callable[..., Any] | None:
        """The handler Starlette's ExceptionMiddleware would pick for ``exc``."""
        if isinstance(exc, HTTPException) and exc.status_code in self.by_status:
            return self.by_status[exc.status_code]
        for cls in type(exc).__mro__:
            if cls in self.by_class:
                return self.by_class[cls]
        return None
