"""uvicorn's httptools protocol, answering the hot GETs inside the protocol itself.

For every request, uvicorn builds an ASGI cycle and starts an asyncio task that runs the
app; the task only starts once the event loop has read every other socket that was ready,
and the response goes out in two writes. Measured on the 2-core machine at about 1,000
requests/s (wrk), with a constant body: 298 µs of CPU per request through uvicorn's
ASGI path, 170 µs through this protocol, and p99 4.2-5.9 ms against 1.9 ms. The
recommendation itself then costs less than the HTTP around it did.

:class:`DirectHttpProtocol` answers a request on the spot, in one write, when it is a GET
on a :class:`DirectRoute` whose handler gives an answer. Everything else takes uvicorn's
own path unchanged: other methods and paths, ``Expect: 100-continue``, upgrades, escaped
paths, a ``root_path``, a request behind one still running on the same connection
(pipelining keeps its order), a client that is not reading its answers (uvicorn's write
flow control applies), the concurrency limit. A handler returns None to decline (it needs
I/O, such as a database lookup), and any exception it raises also sends the request
through the app, which answers it as before (a 422 for a bad parameter, say): the
handlers must not change anything before they return an answer.

An answer is the bytes FastAPI would have sent for the same request (tested byte for
byte): a 200 with ``content-type: application/json``, after uvicorn's default headers.
It is timed into the same latency histogram as the app's requests (from the end of the
headers to the write, where the app's middleware times the app alone), and written to
uvicorn's access log when that is on. A request pipelined behind an answer that closed the
connection is not run, as in uvicorn.

The app hands its routes over in its lifespan state (``{DIRECT_ROUTES: DirectRoutes}``),
which uvicorn passes to each connection's protocol; without them, this protocol is
uvicorn's.

Example::

    routes = DirectRoutes((DirectRoute(re.compile("^/health$"), health_now),), observe)
    # in the app's lifespan: yield {DIRECT_ROUTES: routes}
    uvicorn.run(app, http=DirectHttpProtocol)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from re import Match, Pattern
from typing import NamedTuple

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

log = logging.getLogger(__name__)

DIRECT_ROUTES = "nearline.direct_routes"
"""The lifespan state key under which the app hands its :class:`DirectRoutes` over."""


class DirectAnswer(NamedTuple):
    """A 200 JSON answer, and the labels it is timed under (not timed without an endpoint,
    as in the app, where only labelled requests are)."""

    body: bytes
    endpoint: str | None
    source: str


Handler = Callable[[Match[str], bytes], DirectAnswer | None]
"""``(path match, raw query string) -> answer``, or None to leave it to the app."""


@dataclass(frozen=True, slots=True)
class DirectRoute:
    pattern: Pattern[str]
    handler: Handler


@dataclass(frozen=True, slots=True)
class DirectRoutes:
    routes: Sequence[DirectRoute]
    observe: Callable[[str, str, float], None]
    """``(endpoint, source, seconds)``: the app's latency histogram."""


class DirectHttpProtocol(HttpToolsProtocol):
    """See the module docstring."""

    _direct = False
    """Whether the current request was answered here (its body, if any, is ignored)."""

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._direct = False
        # A direct answer armed the keep-alive timer; uvicorn cancels it only when data
        # arrives, and this request may have come in the same read: no timer while it runs.
        self._unset_keepalive_if_required()

    def on_headers_complete(self) -> None:
        if self.transport.is_closing():
            # Pipelined behind an answer that closed the connection (HTTP/1.0 keep-alive,
            # say): uvicorn never runs such a request, so neither does this protocol.
            self._direct = True
            return
        start = time.perf_counter()
        direct = self.app_state.get(DIRECT_ROUTES)
        if direct is not None and self._may_answer():
            url = httptools.parse_url(self.url)
            path = url.path.decode("ascii")
            query = url.query or b""
            for route in direct.routes:
                match = route.pattern.match(path)
                if match is not None:
                    try:
                        answer = route.handler(match, query)
                    except Exception as exc:  # the app answers it: 422, 500, whatever it would
                        log.debug("%s goes through the app: %r", path, exc)
                        answer = None
                    if answer is not None:
                        self._send(answer, path, query)
                        if answer.endpoint is not None:
                            seconds = time.perf_counter() - start
                            direct.observe(answer.endpoint, answer.source, seconds)
                        return
                    break
        super().on_headers_complete()

    def _may_answer(self) -> bool:
        parser = self.parser
        cycle = self.cycle
        limit = self.limit_concurrency
        return (
            parser.get_method() == b"GET"
            and not self.expect_100_continue
            and not parser.should_upgrade()
            and not self.root_path
            and b"%" not in self.url
            and (cycle is None or cycle.response_complete)
            and not self.pipeline
            and not self.flow.write_paused
            and (limit is None or (len(self.connections) < limit and len(self.tasks) < limit))
        )

    def _send(self, answer: DirectAnswer, path: str, query: bytes) -> None:
        """Write the answer as uvicorn's cycle would, then finish the request as it does."""
        self._direct = True
        version = self.parser.get_http_version()
        keep_alive = version != "1.0" and self.parser.should_keep_alive()
        body = answer.body
        content = [STATUS_LINE[200]]
        for name, value in self.server_state.default_headers:
            content += (name, b": ", value, b"\r\n")
        content += (b"content-length: ", b"%d" % len(body), b"\r\n")
        content.append(b"content-type: application/json\r\n")
        if not keep_alive:
            content.append(b"connection: close\r\n")
        content += (b"\r\n", body)
        self.transport.write(b"".join(content))
        if self.access_log:
            scope = self.scope
            scope["path"], scope["query_string"] = path, query
            self.access_logger.info(
                '%s - "%s %s HTTP/%s" %d',
                get_client_addr(scope),
                "GET",
                get_path_with_query_string(scope),
                version,
                200,
            )
        if not keep_alive:
            self.transport.close()
        self.on_response_complete()

    def on_body(self, body: bytes) -> None:
        if not self._direct:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._direct:
            super().on_message_complete()
