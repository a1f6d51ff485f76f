"""Replays ML-100K through the worker's own per-user state and trending, pausing at each step.

Every rating becomes the ViewEvent the project's replay produces
(:func:`schemas.movielens.view_events`), then the worker's :class:`~streams.signals.Signal`,
and is applied, in time order, with :func:`streams.state.applied` and recorded on a
:class:`~streams.trending_board.TrendingBoard`: exactly what the worker does per event.
Before the ratings of a step's second are applied, the replay stops and keeps:

- the user's :class:`~streams.state.UserState` (every rating strictly before the step: the
  training ratings and the ``since`` ratings);
- each board's top-n at that moment, excluding what the user has seen.

One board share holds every event: a worker that holds all partitions sums their shares,
which is the same ranking. The board's cache is off (``refresh_s=0``): the live worker
caches for one wall-clock second, and a replay runs thousands of event-seconds per second.
The worker asks for the user's device ranking topped up from the overall one; every ML-100K
event has the device ``web``, so the two rankings are the same numbers and the replay asks
for the overall one only, which halves its cost (checked: no other device is ever counted).

Example::

    moments = replay(ratings, walk, {"trending": 3_600_000.0}, Limits(seen=10_000), n=10)
    moments[0].state.recent, moments[0].boards["trending"]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from benchmarks.freshness_protocol import Step
from schemas import movielens
from streams.signals import Weights, signal_of
from streams.state import Limits, UserState, applied
from streams.trending import OVERALL, DecayedCounts
from streams.trending_board import TrendingBoard


@dataclass(frozen=True, slots=True)
class Moment:
    step: Step
    state: UserState
    """The worker's state of the user just before the step."""
    boards: Mapping[str, tuple[str, ...]]
    """Per board, its top-n at that moment, the user's seen items excluded."""


def _board(half_life_ms: float, cap: int, devices: int) -> TrendingBoard:
    def make() -> DecayedCounts:
        return DecayedCounts(half_life_ms, cap, devices)

    return TrendingBoard({}, make, lambda: {0}, refresh_s=0.0)


def replay(
    ratings: pd.DataFrame,
    walk: Sequence[Step],
    boards: Mapping[str, float],
    limits: Limits,
    n: int,
    *,
    weights: Weights | None = None,
    cap: int = 1000,
    devices: int = 8,
) -> list[Moment]:
    """One :class:`Moment` per step of ``walk`` (in ``walk``'s order, which must be by time).

    ``boards`` names the trending boards to keep, by their half-life in milliseconds.
    """
    if any(a.ts > b.ts for a, b in zip(walk, walk[1:], strict=False)):
        raise ValueError("the walk must be in time order")
    weights = weights or Weights()
    live = {name: _board(half_life, cap, devices) for name, half_life in boards.items()}
    states: dict[str, UserState] = {}
    events = movielens.view_events(movielens.in_time_order(ratings))
    pending = next(events, None)
    moments: list[Moment] = []
    for step in walk:
        # Apply every event strictly before this step's second, and nothing else.
        while pending is not None and pending["ts"] < step.ts * 1000:
            signal = signal_of("ViewEvent", pending, weights)
            after = applied(states.get(signal.user_id, UserState()), signal, -1, limits)
            if after is not None:
                states[signal.user_id] = after
                for board in live.values():
                    board.record(0, signal)
            pending = next(events, None)
        state = states.get(step.user_id, UserState())
        seen = set(state.seen)
        tops = {name: tuple(i for i, _ in b.top(None, n, seen)) for name, b in live.items()}
        moments.append(Moment(step, state, tops))
    for board in live.values():
        scopes = {scope for share in board.shares.values() for scope in share.scopes}
        if len(scopes - {OVERALL}) > 1:
            raise ValueError(f"several devices {sorted(scopes)}: ask each user's device")
    return moments
