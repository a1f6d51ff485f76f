"""The demo's plan (80/20 split, featured users) and its options (``--quick``)."""

from __future__ import annotations

import pandas as pd
import pytest

from deploy.demo.plan import make_plan, pick_featured, split
from deploy.demo.settings import QUICK, DemoSettings, with_quick
from schemas import movielens
from schemas.errors import ConfigError
from schemas.settings import load


def ratings(users: str) -> pd.DataFrame:
    """One rating per character of ``users``, at times 0, 1, 2, ..."""
    n = len(users)
    return pd.DataFrame(
        {
            "user_id": list(users),
            "item_id": [str(i) for i in range(n)],
            "rating": [4.0] * n,
            "ts": range(n),
        }
    )


def test_split_keeps_time_order_and_caps_the_live_part() -> None:
    frame = ratings("abcdefghij")
    history, live = split(frame, 0.8, 0)
    assert list(history.user_id) == list("abcdefgh") and list(live.user_id) == ["i", "j"]
    _, capped = split(frame, 0.5, 2)
    assert list(capped.user_id) == ["f", "g"]


@pytest.mark.parametrize("share", [0.01, 0.05])
def test_a_share_leaving_no_history_is_refused(share: float) -> None:
    with pytest.raises(ConfigError, match="no history or no live"):
        split(ratings("abcdefghij"), share, 0)


def test_featured_users_have_history_enough_live_events_and_are_spread() -> None:
    history = ratings("abcdx")
    # a: 3 live events ending early; b: 3 ending late; c: 4 in the middle; n: new user;
    # d: known but only 2 live events.
    live = ratings("aaaccnnnccddbbb")
    assert pick_featured(history, live, users=1) == ("c",)
    assert set(pick_featured(history, live, users=3)) == {"a", "b", "c"}
    assert pick_featured(history, live, users=5, min_events=2) == ("a", "c", "d", "b")
    assert pick_featured(history, live, users=0) == ()


def test_on_ml100k_the_plan_is_80_20_with_known_active_users() -> None:
    ordered = movielens.in_time_order(movielens.load().ratings)
    plan = make_plan(ordered, history_share=0.8, live_events=3000, users=3)
    assert len(plan.history) == 80_000 and len(plan.live) == 3000
    assert plan.history.ts.max() <= plan.live.ts.min()
    assert len(plan.featured) == 3 and len(set(plan.featured)) == 3
    known = set(plan.history.user_id)
    for user in plan.featured:
        assert user in known and plan.live_count(user) >= 3


def test_quick_fills_only_what_was_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    quick = with_quick(DemoSettings())
    assert {k: getattr(quick, k) for k in QUICK} == QUICK
    assert quick.live_events != DemoSettings().live_events  # --quick changes something
    assert with_quick(DemoSettings(users=7)).users == 7
    monkeypatch.setenv("NEARLINE_DEMO_LIVE_EVENTS", "500")
    from_env = with_quick(load(DemoSettings))
    assert from_env.live_events == 500 and from_env.users == QUICK["users"]


def test_bad_settings_are_one_line_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEARLINE_DEMO_RATE", "-3")
    with pytest.raises(ConfigError, match="NEARLINE_DEMO_RATE"):
        load(DemoSettings)


def test_a_given_broker_is_used_as_is_and_never_started(monkeypatch: pytest.MonkeyPatch) -> None:
    from deploy.demo.services import uses_local_kafka
    from schemas.settings import KafkaSettings

    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    assert uses_local_kafka(load(KafkaSettings))
    # Docker Compose's broker listens where the local one would: still not ours to start.
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    assert not uses_local_kafka(load(KafkaSettings))
