"""Talking to the demo's server over HTTP, timing every request.

:class:`ServerClient` keeps one connection alive (like any real client would) and records
the wall time of each request, sent to answer read. A client is not thread-safe: each
thread gets its own, and they share the list of timings. :class:`RequestLoop` asks for
recommendations at a steady rate, so that the serve latency reflects the live phase, not
only the few requests the showcase makes.

Example::

    client = ServerClient(8080)
    body = client.get_json("/v1/users/42/recommendations?k=5")
    client.timings[-1]          # seconds
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Sequence
from typing import Any

from schemas.errors import NearlineError


class ServerError(NearlineError):
    """The demo's server answered with an unexpected status."""


class ServerClient:
    def __init__(self, port: int, timings: list[float] | None = None, timeout: float = 5.0):
        self.port, self.timeout = port, timeout
        self.timings: list[float] = [] if timings is None else timings
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def get(self, path: str) -> tuple[int, Any]:
        """(status, decoded JSON body); reconnects once if the kept connection was closed."""
        try:
            return self._timed_get(path)
        except (ConnectionError, http.client.HTTPException):
            self._conn.close()  # the server closed the kept connection: open a new one
            return self._timed_get(path)

    def _timed_get(self, path: str) -> tuple[int, Any]:
        started = time.perf_counter()
        self._conn.request("GET", path)
        response = self._conn.getresponse()
        body = response.read()
        self.timings.append(time.perf_counter() - started)
        return response.status, json.loads(body) if body else None

    def get_json(self, path: str) -> Any:
        status, body = self.get(path)
        if status != 200:
            raise ServerError(f"GET {path} answered {status}: {body}")
        return body

    def recommendations(self, user: str, k: int = 5) -> dict[str, Any]:
        return dict(self.get_json(f"/v1/users/{user}/recommendations?k={k}"))

    def close(self) -> None:
        self._conn.close()


class RequestLoop(threading.Thread):
    """Recommendations for ``users`` in turn, ``rate`` requests per second, until stopped."""

    def __init__(self, port: int, users: Sequence[str], rate: float, timings: list[float]) -> None:
        super().__init__(name="demo-requests", daemon=True)
        self.client = ServerClient(port, timings)
        self.users, self.rate = list(users), rate
        self.stop_event = threading.Event()
        self.errors = 0

    def run(self) -> None:
        if not self.users or not self.rate:
            return
        interval, n = 1.0 / self.rate, 0
        start = time.monotonic()
        while not self.stop_event.wait(max(0.0, start + n * interval - time.monotonic())):
            try:
                self.client.recommendations(self.users[n % len(self.users)], k=10)
            except (OSError, http.client.HTTPException, ServerError, ValueError):
                self.errors += 1
            n += 1
        self.client.close()

    def stop(self) -> None:
        self.stop_event.set()
        self.join(10)
