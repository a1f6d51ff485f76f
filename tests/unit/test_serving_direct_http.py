"""The protocol's direct path against uvicorn's own, on real sockets: the same bytes.

Two uvicorn servers run the same app (same fakes): one with :class:`DirectHttpProtocol`,
one with uvicorn's httptools protocol. Every request goes to both, raw, and the answers
must be identical but for the ``date`` header. A counting subclass shows which requests
the direct path took, so a test cannot pass by the direct path never being used.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn

from schemas.events import RecommendedItem
from serving import command
from serving.app import create_app
from serving.direct_http import DirectAnswer, DirectHttpProtocol
from serving.settings import ServingSettings
from tests.unit.test_serving_fakes import (
    FakeDatabase,
    FakeModels,
    FakeProducer,
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
    producer: FakeProducer


class SlowDatabase(FakeDatabase):
    """Item data at once; a user's offline rows after ``delay`` seconds."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def offline(self, user_id: str, limit: int) -> list[RecommendedItem]:
        time.sleep(self.delay)
        return super().offline(user_id, limit)


def _start(
    http: Any, database: FakeDatabase | None, *, uvicorn_options: Any = None, **settings: Any
) -> Running:
    producer = FakeProducer()
    app = create_app(
        ServingSettings(**settings),
        model_source=FakeModels(make_artifact(version=3)),
        recs_source=FakeRecs(recs("u1", ["7", "3", "5"], version=2), recs("42", ["9", "2"])),
        database=database,
        event_producer=producer,
    )
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,  # the kernel's choice, bound at once: no window for another socket to take it
        loop="uvloop",
        http=http,
        log_level="warning",
        **(uvicorn_options or {}),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    refresher = app.state.background.refresher
    if refresher is not None:
        assert refresher.loaded.wait(5)
    return Running(server, thread, port, app, producer)


Pair = Callable[..., tuple[Running, Running]]


@pytest.fixture
def pair() -> Iterator[Pair]:
    """Start the direct server and the plain one, with the same arguments to ``_start``."""
    runs: list[Running] = []

    def start(
        database: Callable[[], FakeDatabase | None] = lambda: None, **options: Any
    ) -> tuple[Running, Running]:
        direct = _start(CountingProtocol, database(), **options)
        plain = _start("httptools", database(), **options)
        runs.extend((direct, plain))
        DIRECT_SENT.clear()
        return direct, plain

    yield start
    for run in runs:
        run.server.should_exit = True
        run.thread.join(10)


@pytest.fixture(params=[False, True], ids=["no-database", "database"])
def servers(request: pytest.FixtureRequest, pair: Pair) -> tuple[Running, Running]:
    return pair(FakeDatabase if request.param else lambda: None)


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


def test_an_app_request_behind_a_direct_answer_runs_without_the_keep_alive_timer(
    pair: Pair,
) -> None:
    # u2 has no set and the model knows them: the app looks the table up (0.8 s), longer
    # than the keep-alive timeout the direct answer before it would have armed (0.3 s).
    direct, plain = pair(
        lambda: SlowDatabase(0.8), uvicorn_options={"timeout_keep_alive": 0.3}, db_timeout_ms=2000
    )
    raw = _get("/health") + _get("/v1/users/u2/recommendations?k=4")
    got, _ = _exchange(direct.port, raw, 2)
    want, _ = _exchange(plain.port, raw, 2)
    assert got == want
    assert DIRECT_SENT == ["/health"]


def test_requests_behind_an_answer_that_closes_are_not_run(pair: Pair) -> None:
    direct, plain = pair()
    event = b'{"type":"view","user_id":"9","item_id":"5","duration_ms":1000,"progress":0.5}'
    raw = (
        _get("/health", "Connection: keep-alive", version="1.0")
        + _get("/v1/users/u1/recommendations")
        + _get("/v1/events", f"Content-Length: {len(event)}", method="POST")
        + event
    )
    got, got_closed = _exchange(direct.port, raw, 1, 0.3)
    want, want_closed = _exchange(plain.port, raw, 1, 0.3)
    assert got == want and got_closed and want_closed
    assert DIRECT_SENT == ["/health"]
    assert direct.producer.sent == plain.producer.sent == []


def test_a_failure_after_the_answer_is_computed_is_counted_once(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> bytes:
        raise ValueError("cannot encode")

    monkeypatch.setattr("serving.read_routes.recommendations_body", broken)
    direct, plain = pair()
    for run in (direct, plain):
        (answer,), _ = _exchange(run.port, _get("/v1/users/someone-new/recommendations"), 1)
        assert answer.startswith(b"HTTP/1.1 500 ")

    def fallbacks(port: int) -> list[str]:
        (answer,), _ = _exchange(port, _get("/metrics"), 1)
        text = answer.split(b"\r\n\r\n", 1)[1].decode()
        return [line for line in text.splitlines() if line.startswith("nearline_serving_fall")]

    assert fallbacks(direct.port) == fallbacks(plain.port)
    assert DIRECT_SENT == []


def test_over_the_concurrency_limit_uvicorn_answers(pair: Pair) -> None:
    direct, plain = pair(uvicorn_options={"limit_concurrency": 1})
    for path in ("/health", "/v1/users/u1/recommendations"):
        got, _ = _exchange(direct.port, _get(path), 1)
        want, _ = _exchange(plain.port, _get(path), 1)
        assert got == want and got[0].startswith(b"HTTP/1.1 503 ")
    assert DIRECT_SENT == []


def test_access_log_lines_are_uvicorns(pair: Pair, caplog: pytest.LogCaptureFixture) -> None:
    direct, plain = pair()
    # uvicorn's logging config, applied as the servers started: its own handler, no
    # propagation, the level of log_level. Each connection checks for handlers anew.
    access = logging.getLogger("uvicorn.access")
    access.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    lines = []
    for run in (direct, plain):
        caplog.clear()
        _exchange(run.port, _get("/v1/users/u1/recommendations?k=2") + _get("/health"), 2)
        logged = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
        lines.append([re.sub(r":\d+ - ", ":port - ", line) for line in logged])
    access.removeHandler(caplog.handler)
    assert lines[0] == lines[1] and len(lines[0]) == 2
    assert DIRECT_SENT == ["/v1/users/u1/recommendations", "/health"]


@pytest.mark.parametrize(
    ("env", "protocol"),
    [
        ({}, DirectHttpProtocol),
        ({"NEARLINE_SERVING_DIRECT": "false"}, "httptools"),
        ({"NEARLINE_SERVING_OPENTELEMETRY": "true"}, "httptools"),  # every request traced
        ({"NEARLINE_SERVING_HTTP": "h11"}, "h11"),
        ({"NEARLINE_SERVING_HTTP": "auto"}, DirectHttpProtocol),
    ],
)
def test_nearline_serve_picks_the_protocol(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], protocol: Any
) -> None:
    ran: dict[str, Any] = {}
    monkeypatch.setattr("uvicorn.run", lambda app, **kwargs: ran.update(kwargs))
    monkeypatch.setattr(command, "broker_metadata", lambda *a, **k: None)
    monkeypatch.setenv("NEARLINE_SERVING_API_TOKEN", "t")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    command.main()
    assert ran["http"] == protocol


def test_a_client_not_reading_gets_uvicorns_flow_control(pair: Pair) -> None:
    # Thousands of pipelined GETs (7 MB of answers), nothing read at first, a small receive
    # buffer: the server's write buffer passes its high-water mark, and from there the
    # requests go through the app, which waits for the client (uvicorn's write flow
    # control), instead of piling answers up in memory. Every answer still comes, in order.
    direct, plain = pair()
    count = 3000
    raw = b"".join(_get(f"/v1/users/u{1 + n % 5}/recommendations?k=20") for n in range(count))
    answers = []
    for run in (direct, plain):
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(10)
            sock.connect(("127.0.0.1", run.port))
            sender = threading.Thread(target=sock.sendall, args=(raw,))
            sender.start()
            # Nothing read until the server stops answering directly: a full socket.
            seen, deadline = -1, time.monotonic() + 10
            while len(DIRECT_SENT) != seen and time.monotonic() < deadline:
                seen = len(DIRECT_SENT)
                time.sleep(0.3)
            answers.append(_read_answers(sock, count))
            sender.join(10)
    assert answers[0] == answers[1]
    assert sum(map(len, answers[1])) > 4_194_304 + 65_536  # the kernel's most, and then some
    assert 0 < len(DIRECT_SENT) < count
