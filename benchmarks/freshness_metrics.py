"""Hit-rate@k and NDCG@k of a next-event target, and their averages per event and per user.

With one relevant item (the target), the ideal DCG is 1, so NDCG@k is ``1 / log2(rank + 2)``
for a 0-based rank below k and 0 otherwise; hit-rate@k is 1 when the rank is below k.
Two averages are reported, because a few heavy users own most of ML-100K's events:

- **per event**: the mean over all targets (heavy users weigh most);
- **per user**: each user's mean over their targets, then the mean over users (each user
  weighs the same).

Example::

    rank = rank_of(["i3", "i7", "i1"], "i7")          # 1
    hit_at(rank, 10), ndcg_at(rank, 10)               # (1.0, 0.6309...)
    averages(["u1", "u1", "u2"], [1.0, 0.0, 0.0])     # (0.3333..., 0.25)
    frame = scored(walk, lists, k=10)                 # one row per target
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from benchmarks.freshness_protocol import Step

COLUMNS = ("user", "known", "since", "rating", "hit", "ndcg")


def rank_of(ranked: Sequence[str], target: str) -> int | None:
    """0-based position of ``target`` in ``ranked``, or None if absent."""
    try:
        return list(ranked).index(target)
    except ValueError:
        return None


def hit_at(rank: int | None, k: int) -> float:
    return 1.0 if rank is not None and rank < k else 0.0


def ndcg_at(rank: int | None, k: int) -> float:
    return 1.0 / math.log2(rank + 2) if rank is not None and rank < k else 0.0


def averages(users: Sequence[str], values: Sequence[float]) -> tuple[float, float]:
    """(per-event mean, per-user mean) of ``values``, one per target of ``users[i]``."""
    if len(users) != len(values):
        raise ValueError("one user per value")
    if not len(values):
        return math.nan, math.nan
    frame = pd.DataFrame({"user": list(users), "value": np.asarray(values, np.float64)})
    per_user = frame.groupby("user", sort=False)["value"].mean()
    return float(frame["value"].mean()), float(per_user.mean())


def scored(walk: Sequence[Step], lists: Sequence[Sequence[str]], k: int) -> pd.DataFrame:
    """One row per target of each step: its user, whether the model knew them, the events
    since training, the target's rating, and hit-rate@k and NDCG@k of the step's list."""
    if len(walk) != len(lists):
        raise ValueError("one list per step")
    rows = []
    for step, ranked in zip(walk, lists, strict=True):
        top = list(ranked)[:k]
        for item, rating in zip(step.targets, step.ratings, strict=True):
            rank = rank_of(top, item)
            rows.append(
                (step.user_id, step.known, step.since, rating, hit_at(rank, k), ndcg_at(rank, k))
            )
    return pd.DataFrame(rows, columns=list(COLUMNS))
