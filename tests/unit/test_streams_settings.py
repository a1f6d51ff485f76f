"""Worker settings: defaults, environment names, one clear line for bad values."""

from __future__ import annotations

import pytest

from schemas.errors import ConfigError
from schemas.events import RecommendationSet, RecommendedItem
from schemas.settings import load
from streams.settings import StreamsSettings
from streams.tail import describe


def test_defaults_and_the_deployment_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEARLINE_TOPIC_PREFIX", "t1.")
    monkeypatch.setenv("NEARLINE_WORKER_TOP_N", "7")
    settings = load(StreamsSettings)
    assert (settings.top_n, settings.group_id, settings.web_enabled) == (
        7,
        "t1.nearline-worker",
        False,
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("NEARLINE_WORKER_TOP_N", "0", "NEARLINE_WORKER_TOP_N: Input should be greater than"),
        ("NEARLINE_WORKER_BLEND_WEIGHT", "1.5", "NEARLINE_WORKER_BLEND_WEIGHT: Input should be"),
        ("NEARLINE_WORKER_COALESCE_IDLE_MS", "100", "NEARLINE_WORKER_COALESCE_MAX_MS: Value error"),
    ],
)
def test_bad_values_fail_with_one_line(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load(StreamsSettings)
    assert str(caught.value).startswith(f"invalid configuration: {message}")
    assert "\n" not in str(caught.value)


def test_tail_prints_a_set_readably() -> None:
    recs = RecommendationSet(
        "alice",
        (RecommendedItem("i50", 3.21449, "because you watched i172"), RecommendedItem("i7", 1.0)),
        "nearline",
        3,
        1_714_564_800_123,
        "1b2c0000-0000-4000-8000-000000000000",
        4,
    )
    assert describe(recs) == [
        "alice  nearline  model v3  2024-05-01T12:00:00.123Z  "
        "trigger 1b2c0000-0000-4000-8000-000000000000  cluster 4",
        "    1. i50     3.2145  because you watched i172",
        "    2. i7      1.0000",
    ]
    empty = RecommendationSet("bob", (), "trending", 0, 0)
    assert describe(empty)[0] == "bob  trending  no model  1970-01-01T00:00:00.000Z  trigger -"
