"""Events of a snapshot -> LightFM's interactions matrix and sample weights.

An event frame has the columns ``user_id, item_id, event_type, ts`` (epoch ms or datetimes)
and optionally ``duration_ms`` and ``rating`` (nullable). Each event gets a weight from
:class:`~batch.config.TrainConfig` (event type, rating, watch time); events of one
(user, item) are summed and capped, and every pair with a positive weight is a positive.

Example::

    space = FeatureSpace.build(events, items, users, config)
    data = to_interactions(events, space, config)
    data.matrix.shape  # (len(space.user_ids), len(space.item_ids))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from batch.config import TrainConfig
from batch.features import FeatureSpace, SnapshotError

REQUIRED = ("user_id", "item_id", "event_type", "ts")
__all__ = ["Interactions", "SnapshotError", "event_weights", "normalise_events", "to_interactions"]


@dataclass(frozen=True)
class Interactions:
    """Positives (1.0) and their summed weights, users x items, in the same COO order."""

    matrix: sp.coo_matrix
    weights: sp.coo_matrix

    def csr(self) -> sp.csr_matrix:
        return sp.csr_matrix(self.matrix)

    def __len__(self) -> int:
        return int(self.matrix.nnz)


def normalise_events(events: pd.DataFrame) -> pd.DataFrame:
    """A copy with string ids, ``ts`` as int64 epoch ms and the optional columns present."""
    missing = [c for c in REQUIRED if c not in events.columns]
    if missing:
        raise SnapshotError(f"events lack column(s) {', '.join(missing)}")
    frame = events.copy()
    frame["user_id"] = frame["user_id"].astype(str)
    frame["item_id"] = frame["item_id"].astype(str)
    ts = frame["ts"]
    if pd.api.types.is_datetime64_any_dtype(ts):
        # Any unit or time zone: go through UTC nanoseconds, then down to milliseconds.
        as_utc = pd.to_datetime(ts, utc=True).dt.as_unit("ns")
        frame["ts"] = as_utc.astype("int64") // 1_000_000
    else:
        frame["ts"] = pd.to_numeric(ts).astype("int64")
    for column in ("duration_ms", "rating"):
        if column not in frame.columns:
            frame[column] = np.nan
        frame[column] = pd.to_numeric(frame[column]).astype("float64")
    return frame


def event_weights(events: pd.DataFrame, config: TrainConfig) -> np.ndarray:
    """The weight of each (normalised) event; <= 0 means "not a positive"."""
    unknown = set(events["event_type"].unique()) - set(config.event_weights)
    if unknown:
        raise SnapshotError(
            f"no weight for event type(s) {sorted(unknown)}; set TrainConfig.event_weights"
        )
    weight = events["event_type"].map(config.event_weights).to_numpy(dtype="float64")
    rating = events["rating"].to_numpy(dtype="float64")
    rated = ~np.isnan(rating)
    if config.rating_scaling:
        weight = np.where(rated, weight * rating / config.rating_max, weight)
    if config.min_rating is not None:
        weight = np.where(rated & (rating < config.min_rating), 0.0, weight)
    if config.duration_full_ms is not None:
        duration = events["duration_ms"].to_numpy(dtype="float64")
        known = ~np.isnan(duration) & (duration > 0)
        share = np.clip(np.nan_to_num(duration) / config.duration_full_ms, config.duration_floor, 1)
        weight = np.where(known, weight * share, weight)
    return np.asarray(weight, dtype=np.float64)


def to_interactions(events: pd.DataFrame, space: FeatureSpace, config: TrainConfig) -> Interactions:
    """Sum each (user, item)'s event weights (capped at ``max_weight``) into LightFM's inputs.

    Users and items outside ``space`` are an error: the space is built from the whole
    snapshot, so a split of it always fits.
    """
    frame = normalise_events(events)
    weight = event_weights(frame, config)
    keep = weight > 0
    users = space.user_index(frame["user_id"].to_numpy()[keep])
    items = space.item_index(frame["item_id"].to_numpy()[keep])
    shape = (len(space.user_ids), len(space.item_ids))
    summed = sp.coo_matrix((weight[keep], (users, items)), shape=shape).tocsr()
    summed.sum_duplicates()
    summed = summed.tocoo()
    data = np.minimum(summed.data, config.max_weight).astype(np.float32)
    weights = sp.coo_matrix((data, (summed.row, summed.col)), shape=shape)
    ones = np.ones_like(data)
    matrix = sp.coo_matrix((ones, (summed.row.copy(), summed.col.copy())), shape=shape)
    return Interactions(matrix=matrix, weights=weights)
