"""Which events a model is evaluated on.

- ``recent``: each user's most recent N distinct items, by time (any data set).
- ``ua``: MovieLens-100K's classic split, each user's first 10 ratings in the data set's file
  order, so our figures compare with LightFM's published ones. The snapshot comes from
  PostgreSQL (replayed through Kafka, in time order), so the split is defined by the
  (user, item) pairs of the original file, read with :mod:`schemas.movielens`.

Example::

    train, test = split(snapshot.events, "recent", n=10)
"""

from __future__ import annotations

from typing import Literal

import pandas as pd

from batch.features import SnapshotError
from batch.splits import recent_split, ua_split
from schemas import movielens

Holdout = Literal["recent", "ua"]


def split(events: pd.DataFrame, holdout: Holdout, n: int = 10) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) events for the chosen holdout."""
    if holdout == "recent":
        return recent_split(events, n=n)
    _, file_test = ua_split(movielens.load().ratings, n=n)
    pairs = pd.MultiIndex.from_frame(file_test[["user_id", "item_id"]].astype(str))
    key = pd.MultiIndex.from_frame(events[["user_id", "item_id"]].astype(str))
    in_test = key.isin(pairs)
    if not in_test.any():
        raise SnapshotError(
            "the ua holdout needs MovieLens-100K events (replay them with "
            "`nearline events replay movielens`); use --holdout recent for other data"
        )
    return events.loc[~in_test], events.loc[in_test]
