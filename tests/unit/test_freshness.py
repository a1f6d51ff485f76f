"""The freshness experiment's metrics, time split, no-leak walk and paired gains, on
hand-made cases."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from benchmarks.freshness_metrics import averages, hit_at, ndcg_at, rank_of, scored
from benchmarks.freshness_protocol import Step, spread, steps, time_split
from benchmarks.freshness_replay import replay
from benchmarks.freshness_report import ALL, KNOWN, differences
from streams.state import Limits


def ratings(rows: list[tuple[str, str, float, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "ts"])


# u1 rates before and after T=100; u2 only after (new); u3 only before. u1 rates i4 and i5
# in the same second (110): they are one step, and neither is history for the other.
FRAME = ratings(
    [
        ("u1", "i1", 5.0, 10),
        ("u3", "i2", 3.0, 20),
        ("u1", "i2", 4.0, 50),
        ("u3", "i9", 1.0, 99),
        ("u1", "i3", 2.0, 100),
        ("u2", "i1", 4.0, 105),
        ("u1", "i4", 5.0, 110),
        ("u1", "i5", 1.0, 110),
        ("u2", "i3", 3.0, 120),
        ("u1", "i6", 4.0, 130),
    ]
)


def test_rank_hit_and_ndcg_on_hand_computed_cases() -> None:
    ranked = ["a", "b", "c", "d"]
    assert rank_of(ranked, "a") == 0
    assert rank_of(ranked, "d") == 3
    assert rank_of(ranked, "z") is None
    assert hit_at(0, 10) == 1.0 and ndcg_at(0, 10) == 1.0
    assert ndcg_at(1, 10) == pytest.approx(1 / math.log2(3))  # 0.6309
    assert ndcg_at(3, 10) == pytest.approx(1 / math.log2(5))  # 0.4307
    assert hit_at(3, 3) == 0.0 and ndcg_at(3, 3) == 0.0  # rank 3 is 4th: outside the top 3
    assert hit_at(None, 10) == 0.0 and ndcg_at(None, 10) == 0.0


def test_per_user_average_weighs_each_user_once() -> None:
    # u1: 3 targets, 3 hits; u2: 1 target, 0 hits.
    per_event, per_user = averages(["u1", "u1", "u1", "u2"], [1.0, 1.0, 1.0, 0.0])
    assert per_event == pytest.approx(0.75)
    assert per_user == pytest.approx(0.5)
    with pytest.raises(ValueError):
        averages(["u1"], [1.0, 0.0])


def test_time_split_cuts_at_the_quantile_and_keeps_time_order() -> None:
    split = time_split(FRAME, 0.4)  # the 40 % quantile of the 10 times is 99.6 -> 99
    assert split.cutoff == 99
    assert (split.train["ts"] < 99).all()
    assert (split.test["ts"] >= 99).all()
    assert len(split.train) + len(split.test) == len(FRAME)
    assert split.test["ts"].is_monotonic_increasing
    with pytest.raises(ValueError):
        time_split(FRAME, 1.0)


def test_steps_group_a_second_and_count_only_earlier_events_as_history() -> None:
    split = time_split(FRAME, 0.45)  # T = 100: u3's last rating (99) is training data
    assert split.cutoff == 100
    walk = steps(split)
    assert [(s.user_id, s.ts, s.targets, s.since, s.known) for s in walk] == [
        ("u1", 100, ("i3",), 0, True),
        ("u2", 105, ("i1",), 0, False),
        ("u1", 110, ("i4", "i5"), 1, True),
        ("u2", 120, ("i3",), 1, False),
        ("u1", 130, ("i6",), 3, True),
    ]
    assert walk[2].ratings == (5.0, 1.0)


def test_no_step_sees_its_own_second_or_later() -> None:
    split = time_split(FRAME, 0.45)
    walk = steps(split)
    moments = replay(FRAME, walk, {"trending": 3_600_000.0}, Limits(seen=10_000), n=10)
    for moment in moments:
        step, state = moment.step, moment.state
        assert all(ts < step.ts * 1000 for _, _, ts, _ in state.recent)
        assert not set(step.targets) & set(state.seen)
        # Trending counts only what anybody rated before the step.
        assert set(moment.boards["trending"]) <= set(FRAME.loc[FRAME["ts"] < step.ts, "item_id"])
        # Everything the user did before the step is there: training and since-T ratings.
        earlier = FRAME.loc[(FRAME["user_id"] == step.user_id) & (FRAME["ts"] < step.ts)]
        assert set(state.seen) == set(earlier["item_id"])
        assert len(state.recent) == len(earlier)
    # u1 at 130 has i4 and i5 (same second, 110) as history, and never i6.
    last = moments[-1]
    assert [r[0] for r in last.state.recent] == ["i1", "i2", "i3", "i4", "i5"]
    # trending at u2's first step (105) has only counted events before 105, u2's excluded.
    first_u2 = moments[1]
    assert set(first_u2.boards["trending"]) == {"i1", "i2", "i3", "i9"}
    assert first_u2.state.seen == ()


def test_replay_refuses_a_walk_out_of_time_order() -> None:
    walk = steps(time_split(FRAME, 0.45))
    with pytest.raises(ValueError):
        replay(FRAME, list(reversed(walk)), {}, Limits(), n=10)


def test_scored_rows_per_target() -> None:
    walk = [
        Step("u1", 110, ("i4", "i5"), (5.0, 1.0), 1, True),
        Step("u2", 120, ("i3",), (3.0,), 1, False),
    ]
    frame = scored(walk, [["i5", "i9", "i4"], ["i1"]], k=2)
    assert frame["hit"].tolist() == [0.0, 1.0, 0.0]  # i4 is 3rd: outside the top 2
    assert frame["ndcg"].tolist() == [0.0, 1.0, 0.0]
    assert frame["user"].tolist() == ["u1", "u1", "u2"]
    assert frame["known"].tolist() == [True, True, False]
    with pytest.raises(ValueError):
        scored(walk, [["i1"]], k=2)


def test_spread_keeps_first_and_last_and_at_most_n_per_user() -> None:
    walk = [Step("u1", t, ("i",), (1.0,), t, True) for t in range(20)]
    walk += [Step("u2", 100 + t, ("i",), (1.0,), t, False) for t in range(3)]
    kept = spread(walk, 5)
    u1 = [s.ts for s in kept if s.user_id == "u1"]
    assert u1 == [0, 5, 10, 14, 19]
    assert [s.ts for s in kept if s.user_id == "u2"] == [100, 101, 102]
    assert spread(walk, 0) == walk


def test_differences_pair_each_seed_and_user() -> None:
    def frame(hits: list[float]) -> pd.DataFrame:
        # u1 (known) has two targets, u2 (new) one.
        return pd.DataFrame({"user": ["u1", "u1", "u2"], "known": [True, True, False], "hit": hits})

    results = {
        "x": [frame([0.0, 0.0, 0.0]), frame([1.0, 0.0, 0.0])],  # a model: one frame per seed
        "y": [frame([1.0, 1.0, 1.0])],  # no model: paired with every seed
    }
    lines: list[str] = []
    found = differences(results, [("x", "y")], lines.append, draws=50)
    # Seed 0: u1 +1, u2 +1; seed 1: u1 +0.5, u2 +1. Over seeds: u1 +0.75, u2 +1.
    assert found[(ALL, "x", "y")][0] == pytest.approx(0.875)
    gain, low, high = found[(KNOWN, "x", "y")]
    assert (gain, low, high) == pytest.approx((0.75, 0.75, 0.75))  # one user: no spread
    assert 0.75 <= found[(ALL, "x", "y")][1] <= found[(ALL, "x", "y")][2] <= 1.0
    assert any("per seed +1.0000 +0.7500" in line for line in lines)
