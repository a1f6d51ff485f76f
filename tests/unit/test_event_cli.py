"""Parsing `nearline events produce` lines and pacing replays."""

from __future__ import annotations

import time

import pytest

from deploy.cli.events import parse_line
from deploy.replay import RateLimiter
from schemas.errors import SchemaError


def test_parse_line_fills_id_and_time() -> None:
    schema, record = parse_line('{"type": "click", "user_id": "u1", "item_id": "i1"}')
    assert schema == "ClickEvent"
    assert len(record["event_id"]) == 36 and record["ts"] > 1_700_000_000_000
    assert "type" not in record


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{not json", "invalid-json"),
        ("[1, 2]", "wrong-type"),
        ('{"user_id": "u1"}', "missing-field"),
        ('{"type": "purchase", "user_id": "u1"}', "invalid-value"),
    ],
)
def test_parse_line_rejects_with_a_reason(line: str, reason: str) -> None:
    with pytest.raises(SchemaError) as info:
        parse_line(line)
    assert info.value.reason == reason


def test_rate_limiter_paces_to_the_rate() -> None:
    limiter = RateLimiter(2000)
    start = time.monotonic()
    for _ in range(400):
        limiter.wait()
    # 400 calls at 2000/s cannot finish before 0.2 s (lower bound only: never flaky).
    assert time.monotonic() - start >= 0.199


def test_rate_limiter_without_rate_never_sleeps() -> None:
    limiter = RateLimiter(None)
    for _ in range(10_000):
        limiter.wait()
    assert limiter.count == 0
