"""What a demo run replays: the history, the live part, and the users it shows.

ML-100K is split in time order: the first ``history_share`` is history (stored, trained on),
the rest is replayed live, capped at ``live_events``. The users shown are known to the model
(they have history) and have a few live events; they are spread over the live part, so
that their "after" appears while the replay runs, not all at its end.

Example::

    >>> import pandas as pd
    >>> ratings = pd.DataFrame({"user_id": list("aabbbcab"), "item_id": list("12345678"),
    ...                         "rating": [4.0] * 8, "ts": range(8)})
    >>> plan = make_plan(ratings, history_share=0.5, live_events=0, users=1, min_events=2)
    >>> len(plan.history), len(plan.live), plan.featured
    (4, 4, ('b',))
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from schemas.errors import ConfigError


@dataclass(frozen=True)
class Plan:
    history: pd.DataFrame
    """Ratings replayed and stored before training, in time order."""
    live: pd.DataFrame
    """Ratings replayed at the live rate, in time order."""
    featured: tuple[str, ...]
    """Users whose recommendations are shown before and after their live events."""

    def live_count(self, user: str) -> int:
        return int((self.live["user_id"] == user).sum())


def split(
    ratings: pd.DataFrame, history_share: float, live_events: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(history, live) of ratings already in time order; ``live_events`` 0 means no cap."""
    cut = int(len(ratings) * history_share)
    if cut == 0 or cut == len(ratings):
        raise ConfigError(
            f"a history share of {history_share:g} leaves no history or no live events "
            f"out of {len(ratings)} ratings"
        )
    live = ratings.iloc[cut:]
    if live_events:
        live = live.iloc[:live_events]
    return ratings.iloc[:cut].reset_index(drop=True), live.reset_index(drop=True)


def pick_featured(
    history: pd.DataFrame, live: pd.DataFrame, users: int, min_events: int = 3
) -> tuple[str, ...]:
    """Up to ``users`` users with history and at least ``min_events`` live events, chosen
    so that their last live events sit near evenly spaced points of the live part."""
    if users == 0 or live.empty:
        return ()
    known = set(history["user_id"])
    counts = live["user_id"].value_counts()
    last = live.reset_index(drop=True).groupby("user_id").tail(1)
    candidates = [
        (int(position), str(user))
        for position, user in zip(last.index, last["user_id"], strict=True)
        if user in known and counts[user] >= min_events
    ]
    chosen: list[str] = []
    for n in range(1, users + 1):
        target = len(live) * n / (users + 1)
        free = [c for c in candidates if c[1] not in chosen]
        if not free:
            break
        chosen.append(min(free, key=lambda c: (abs(c[0] - target), c[1]))[1])
    return tuple(chosen)


def make_plan(
    ratings: pd.DataFrame,
    *,
    history_share: float,
    live_events: int,
    users: int,
    min_events: int = 3,
) -> Plan:
    """The plan for ``ratings`` (ML-100K's, in time order)."""
    history, live = split(ratings, history_share, live_events)
    return Plan(history, live, pick_featured(history, live, users, min_events))
