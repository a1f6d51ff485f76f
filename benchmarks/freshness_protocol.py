"""The freshness experiment's time split: what a model trained at time T is asked, and when.

Every rating before the cut-off ``T`` trains the offline model. After ``T``, each user's
ratings are walked in time order, one **step** per distinct timestamp: the step's targets
are the items the user rated at that second, and what the user did before it since ``T``
(``since`` ratings) is all a nearline worker may know beyond the model. ML-100K times are
whole seconds and users rate in bursts, so ratings sharing a second have no order: they are
all targets of the same step and none of them is history for another. Nothing at or after
a step's time reaches its history: that is the no-leak rule, tested in
``tests/unit/test_freshness.py``.

Example::

    split = time_split(ratings, quantile=0.8)
    walk = spread(steps(split), per_user=10)
    walk[0].targets, walk[0].since, walk[0].known
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True, slots=True)
class Split:
    cutoff: int
    """T, epoch seconds: ratings with ts < T train; the others are walked."""
    train: pd.DataFrame
    test: pd.DataFrame
    """Ratings with ts >= T, in time order (ties: the frame's order)."""


@dataclass(frozen=True, slots=True)
class Step:
    user_id: str
    ts: int
    """Epoch seconds of the targets; the history is everything strictly before it."""
    targets: tuple[str, ...]
    """Items the user rated at ``ts``: each one is a "next event" to predict."""
    ratings: tuple[float, ...]
    """The rating of each target."""
    since: int
    """Ratings of the user in [T, ts): the events since training."""
    known: bool
    """Whether the user rated anything before T (so the offline model has a vector)."""


def time_split(ratings: pd.DataFrame, quantile: float) -> Split:
    """Cut ``ratings`` (user_id, item_id, rating, ts) at the ``quantile`` of their times."""
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be in (0, 1), not {quantile}")
    ordered = ratings.sort_values("ts", kind="stable").reset_index(drop=True)
    cutoff = int(np.quantile(ordered["ts"].to_numpy(), quantile))
    before = ordered["ts"].to_numpy() < cutoff
    return Split(cutoff, ordered.loc[before], ordered.loc[~before].reset_index(drop=True))


def steps(split: Split) -> list[Step]:
    """Every (user, timestamp) of the walked ratings, in time order (ties: by user id)."""
    known = set(split.train["user_id"])
    test = split.test.sort_values(["user_id", "ts"], kind="stable")
    out: list[Step] = []
    for user, rows in test.groupby("user_id", sort=True):
        since = 0
        for ts, group in rows.groupby("ts", sort=True):
            items = tuple(str(i) for i in group["item_id"])
            ratings = tuple(float(r) for r in group["rating"])
            out.append(Step(str(user), int(ts), items, ratings, since, str(user) in known))
            since += len(items)
    out.sort(key=lambda step: (step.ts, step.user_id))
    return out


def spread(walk: Sequence[Step], per_user: int) -> list[Step]:
    """At most ``per_user`` steps of each user, evenly spaced over their walk (their first
    and last step included), in ``walk``'s order; 0 keeps every step.

    Heavy users have up to 175 steps here: spacing keeps every stage of a user's walk (few
    and many events since training) while bounding their weight and the run time.
    """
    if per_user < 0:
        raise ValueError("per_user must be >= 0")
    if per_user == 0:
        return list(walk)
    by_user: dict[str, list[int]] = {}
    for position, step in enumerate(walk):
        by_user.setdefault(step.user_id, []).append(position)
    kept: set[int] = set()
    for positions in by_user.values():
        if len(positions) <= per_user:
            kept.update(positions)
        else:
            picks = np.unique(np.linspace(0, len(positions) - 1, per_user).round().astype(int))
            kept.update(positions[i] for i in picks)
    return [step for position, step in enumerate(walk) if position in kept]
