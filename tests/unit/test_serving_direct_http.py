"""The protocol's direct path against uvicorn's own, on real sockets: the same bytes.

Two uvicorn servers run the same app (same fakes): one with :class:`DirectHttpProtocol`,
one with uvicorn's httptools protocol. Every request goes to both, raw, and the answers
must be identical but for the ``date`` header. A counting subclass shows which requests
the direct path took, so a test cannot pass by the direct path never being used.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn

from serving.app import create_app
from serving.direct_http import DirectAnswer, DirectHttpProtocol
from serving.settings import ServingSettings
from tests.unit.test_serving_fakes import (
    FakeDatabase,
    FakeModels,
    FakeRecs,
    make_artifact,
    recs,
)

DIRECT_SENT: list[str] = []


class CountingProtocol(DirectHttpProtocol):
    def _send(self, answer: DirectAnswer, path: str, query: bytes) -> None:
        DIRECT_SENT.append(path)
        super()._send(answer, path, query)


@dataclass
class Running:
    server: uvicorn.Server
    thread: threading.Thread
    port: int
    app: Any


def _start(http: Any, database: FakeDatabase | None) -> Running:
    app = create_app(
        ServingSettings(),
        model_source=FakeModels(make_artifact(version=3)),
        recs_source=FakeRecs(recs("u1", ["7", "3", "5"], version=2), recs("42", ["9", "2"])),
        database=database,
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, loop="uvloop", http=http, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    refresher = app.state.background.refresher
    if refresher is not None:
        assert refresher.loaded.wait(5)
    return Running(server, thread, port, app)


@pytest.fixture(params=[False, True], ids=["no-database", "database"])
def servers(request: pytest.FixtureRequest) -> Iterator[tuple[Running, Running]]:
    runs = [
        _start(http, FakeDatabase() if request.param else None)
        for http in (CountingProtocol, "httptools")
    ]
    DIRECT_SENT.clear()
    yield runs[0], runs[1]
    for run in runs:
        run.server.should_exit = True
        run.thread.join(10)


def _read_answers(sock: socket.socket, count: int, bodies: bool = True) -> list[bytes]:
    """``count`` whole HTTP answers (by content-length, unless answers to HEAD have no
    ``bodies``), the date header blanked."""
    data, answers = b"", list[bytes]()
    while len(answers) < count:
        head_end = data.find(b"\r\n\r\n")
        if head_end >= 0:
            head = data[:head_end]
            length = re.search(rb"content-length: (\d+)", head)
            end = head_end + 4 + (int(length.group(1)) if length and bodies else 0)
            if len(data) >= end:
                answers.append(re.sub(rb"date: [^\r]*", b"date: -", data[:end]))
                data = data[end:]
                continue
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {len(answers)} of {count} answers"
        data += chunk
    return answers


def _exchange(
    port: int, raw: bytes, count: int, wait_close: float = 0.0
) -> tuple[list[bytes], bool]:
    """Send ``raw`` on a new connection; the answers, and whether the server closed it
    within ``wait_close`` seconds."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(raw)
        answers = _read_answers(sock, count, bodies=not raw.startswith(b"HEAD "))
        sock.settimeout(wait_close or 0.001)
        try:
            closed = sock.recv(1) == b""
        except TimeoutError:
            closed = False
    return answers, closed


def _get(path: str, *extra: str, version: str = "1.1", method: str = "GET") -> bytes:
    lines = [f"{method} {path} HTTP/{version}", "Host: test", *extra, "", ""]
    return "\r\n".join(lines).encode()


DIRECT = [
    "/v1/users/u1/recommendations",  # nearline set
    "/v1/users/u1/recommendations?k=2&exclude=7",
    "/v1/users/someone-new/recommendations?k=3",  # cold start
    "/v1/users/42/recommendations?recent=3,12&k=5",  # online fold-in
    "/health",
    "/health?x=1",
]
KNOWN_WITHOUT_A_SET = [  # users the model knows: with a database, their table row may count
    "/v1/users/u2/recommendations?k=4",
    "/v1/users/u3/recommendations?device=web&k=3",
    "/v1/users/u3/recommendations?genre=comedy&k=3&k=4",
]
UNKNOWN_GENRE = "/v1/users/u1/recommendations?genre=opera"  # 422 once item data is loaded
THROUGH_THE_APP = [
    "/v1/users/u1/recommendations?k=0",  # 422: raised, so the app answers it
    "/v1/users/u1/recommendations?k=abc",
    "/v1/users/u%201/recommendations",  # escaped path
    "/v1/users/u1/recommendations/",  # no route matches
    "/ready",
    "/v1/items/3/similar?k=2",
    "/nowhere",
]
ALL = DIRECT + KNOWN_WITHOUT_A_SET + [UNKNOWN_GENRE] + THROUGH_THE_APP


def _answered_directly(run: Running, paths: list[str]) -> list[str]:
    """Which of ``paths`` the direct path answers, without the query string."""
    with_database = run.app.state.runtime.database is not None
    direct = set(DIRECT)
    if not with_database:
        direct |= {*KNOWN_WITHOUT_A_SET, UNKNOWN_GENRE}
    return [p.split("?")[0] for p in paths if p in direct]


def test_every_answer_is_the_apps_byte_for_byte(servers: tuple[Running, Running]) -> None:
    direct, plain = servers
    for path in ALL:
        got, _ = _exchange(direct.port, _get(path), 1)
        want, _ = _exchange(plain.port, _get(path), 1)
        assert got == want, path
    assert DIRECT_SENT == _answered_directly(direct, ALL)


def test_other_methods_and_100_continue_go_through_the_app(
    servers: tuple[Running, Running],
) -> None:
    direct, plain = servers
    requests = [
        _get("/health", method="HEAD"),
        _get("/v1/users/u1/recommendations", "Content-Length: 0", method="POST"),
        _get("/health", "Expect: 100-continue", "Content-Length: 0"),
    ]
    for raw in requests:
        got, _ = _exchange(direct.port, raw, 1)
        want, _ = _exchange(plain.port, raw, 1)
        assert got == want, raw
    assert DIRECT_SENT == []


def test_pipelined_requests_keep_their_order(servers: tuple[Running, Running]) -> None:
    direct, plain = servers
    paths = [
        "/v1/users/u1/recommendations?k=1",
        "/ready",  # through the app: the next one must wait for it
        "/v1/users/42/recommendations?k=1",
        "/health",
        "/v1/users/u1/recommendations?k=zero",
        "/v1/users/u1/recommendations?k=2",
    ]
    raw = b"".join(_get(p) for p in paths)
    got, got_closed = _exchange(direct.port, raw, len(paths), 0.3)
    want, want_closed = _exchange(plain.port, raw, len(paths), 0.3)
    assert got == want
    assert not got_closed and not want_closed
    assert b'"user_id":"42"' in got[2] and b"422" in got[4].split(b"\r\n")[0]
    assert "/v1/users/u1/recommendations" in DIRECT_SENT


@pytest.mark.parametrize(
    "raw",
    [
        _get("/v1/users/u1/recommendations", version="1.0"),
        _get("/v1/users/u1/recommendations", "Connection: close"),
        _get("/health", "Connection: keep-alive", version="1.0"),
        _get("/v1/users/u1/recommendations", "Content-Length: 5") + b"hello",
    ],
    ids=["http-1.0", "connection-close", "1.0-keep-alive", "get-with-a-body"],
)
def test_connection_handling_matches_uvicorn(servers: tuple[Running, Running], raw: bytes) -> None:
    direct, plain = servers
    got, got_closed = _exchange(direct.port, raw + raw, 1, 0.3)
    want, want_closed = _exchange(plain.port, raw + raw, 1, 0.3)
    assert got == want and got_closed == want_closed
    assert DIRECT_SENT, "the direct path was not taken"


def test_direct_answers_are_timed_and_counted_like_the_apps(
    servers: tuple[Running, Running],
) -> None:
    direct, plain = servers
    paths = ALL * 3
    for run in servers:
        for path in paths:  # each on its own connection: pipelined behind the app, it waits
            _exchange(run.port, _get(path), 1)

    def figures(port: int) -> list[str]:
        (answer,), _ = _exchange(port, _get("/metrics"), 1)
        text = answer.split(b"\r\n\r\n", 1)[1].decode()
        wanted = ("_count{", "nearline_serving_fallbacks_total{")
        return sorted(line for line in text.splitlines() if any(w in line for w in wanted))

    got = figures(direct.port)
    assert got == figures(plain.port)
    assert any('endpoint="recommendations"' in line for line in got)
    assert DIRECT_SENT == _answered_directly(direct, paths)
