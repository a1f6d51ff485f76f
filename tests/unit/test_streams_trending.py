"""Trending: event-time decay, bounds, per-device rankings and merging partition shares."""

from __future__ import annotations

import math

import pytest

from streams.trending import OVERALL, DecayedCounts, merged_top

HOUR = 3_600_000
T0 = 1_700_000_000_000


def test_a_count_halves_per_half_life_of_event_time() -> None:
    counts = DecayedCounts(HOUR)
    counts.add("a", "tv", T0, 1.0)
    counts.add("b", "tv", T0 + 2 * HOUR, 1.0)
    scores = counts.scores_at(OVERALL, T0 + 2 * HOUR)
    assert scores["a"] == pytest.approx(0.25) and scores["b"] == pytest.approx(1.0)


def test_recent_events_outrank_more_numerous_old_ones() -> None:
    counts = DecayedCounts(HOUR)
    for _ in range(3):
        counts.add("old", "tv", T0, 1.0)
    counts.add("new", "tv", T0 + 2 * HOUR, 1.0)
    counts.add("new", "tv", T0 + 2 * HOUR, 1.0)
    assert [i for i, _ in merged_top([counts], None, 2, set())] == ["new", "old"]


def test_out_of_order_events_and_rebasing_keep_exact_scores() -> None:
    counts = DecayedCounts(HOUR)
    counts.add("a", "tv", T0 + 10 * HOUR, 1.0)
    counts.add("a", "tv", T0, 1.0)  # late event
    far = T0 + 100 * HOUR  # past REBASE_AFTER half-lives: the origin moves
    counts.add("b", "tv", far, 1.0)
    assert counts.origin == far
    assert counts.scores_at(OVERALL, far)["a"] == pytest.approx(2**-90 + 2**-100)
    assert all(math.isfinite(v) for v in counts.scopes[OVERALL].values())


def test_items_and_devices_are_bounded() -> None:
    counts = DecayedCounts(HOUR, cap=10, devices=2)
    for n in range(100):
        counts.add(f"i{n}", f"dev{n % 4}", T0 + n, float(n))
    assert all(len(scores) <= 20 for scores in counts.scopes.values())
    assert set(counts.scopes) == {OVERALL, "dev0", "dev1"}
    assert "i99" in counts.scopes[OVERALL]  # the strongest survive pruning


def test_device_ranking_first_then_overall_top_up_excluding_seen() -> None:
    counts = DecayedCounts(HOUR)
    counts.add("tv-hit", "tv", T0, 1.0)
    for _ in range(5):
        counts.add("phone-hit", "phone", T0, 1.0)
    counts.add("seen", "tv", T0, 9.0)
    top = merged_top([counts], "tv", 3, {"seen"})
    assert [i for i, _ in top] == ["tv-hit", "phone-hit"]
    scores = [s for _, s in top]
    assert scores == sorted(scores, reverse=True)  # top-ups never outrank the device's own


def test_partition_shares_sum_when_merged() -> None:
    one, two = DecayedCounts(HOUR), DecayedCounts(HOUR)
    one.add("a", "tv", T0, 1.0)
    two.add("a", "tv", T0 + HOUR, 1.0)
    two.add("b", "tv", T0 + HOUR, 1.5)
    top = dict(merged_top([one, two], None, 5, set()))
    assert top["a"] == pytest.approx(1.5) and top["b"] == pytest.approx(1.5)


def test_wire_form_round_trips() -> None:
    counts = DecayedCounts(HOUR, cap=7, devices=3)
    counts.add("a", "tv", T0, 1.0)
    again = DecayedCounts.from_bytes(counts.to_bytes())
    assert (again.scopes, again.origin, again.cap, again.devices) == (counts.scopes, T0, 7, 3)
