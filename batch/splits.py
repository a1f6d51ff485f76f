"""Hold-out splits of an event frame into (train, test) event frames.

- :func:`ua_split`: GroupLens's ``ua`` split of ML-100K: each user's first ``n`` rows in
  the frame's order (file order for ``movielens.load().ratings``) are the test set. LightFM's
  published ``movielens`` example uses exactly this split, so our figures compare with it.
- :func:`recent_split`: each user's ``n`` most recently touched items are the test set,
  which is how the live system is used: predict what comes next from what came before.

Example::

    train_events, test_events = ua_split(events)
    train_events, test_events = recent_split(events, n=5)
"""

from __future__ import annotations

import pandas as pd

from batch.interactions import normalise_events


def ua_split(events: pd.DataFrame, n: int = 10) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each user's first ``n`` rows (in the given order) -> test; the rest -> train."""
    position = events.groupby("user_id", sort=False).cumcount().to_numpy()
    test = position < n
    return events.loc[~test], events.loc[test]


def recent_split(
    events: pd.DataFrame, n: int = 10, min_train: int = 1
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each user's ``n`` most recent distinct items -> test, with all their events.

    Splitting by (user, item) rather than by event keeps a re-watched item out of train
    when it is in test, so the model is never scored on what it was shown. Users with
    fewer than ``n + min_train`` distinct items stay wholly in train.
    """
    frame = normalise_events(events)
    last = frame.groupby(["user_id", "item_id"], sort=False)["ts"].max().reset_index()
    # Ties on time: the larger item id counts as later, so the split is deterministic.
    last = last.sort_values(["user_id", "ts", "item_id"], ascending=[True, False, False])
    last["recency"] = last.groupby("user_id", sort=False).cumcount()
    distinct = last.groupby("user_id", sort=False)["item_id"].transform("size")
    held = last.loc[(last["recency"] < n) & (distinct >= n + min_train), ["user_id", "item_id"]]
    key = pd.MultiIndex.from_frame(frame[["user_id", "item_id"]])
    test = key.isin(pd.MultiIndex.from_frame(held))
    return events.loc[~test], events.loc[test]
