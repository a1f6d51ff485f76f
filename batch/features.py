"""Id maps and feature matrices of one snapshot: who and what the model can know.

Every item gets an identity feature ``item:<id>``; with ``use_item_features`` it also gets
``genre:<name>`` and a release-year bucket ``year:1990-1999``. Users get ``user:<id>`` and,
with ``use_user_features``, ``age:20-29``, ``gender:<g>``, ``occupation:<o>``. Every feature
has weight 1 unless ``normalise_features`` scales each row to sum to 1 (see the config).

Example::

    space = FeatureSpace.build(events, items, users, TrainConfig())
    space.item_feature_names[:3], space.item_features.shape
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from batch.config import TrainConfig
from schemas.errors import NearlineError


class SnapshotError(NearlineError):
    """The snapshot's frames do not have the shape the offline job needs."""


@dataclass(frozen=True)
class FeatureSpace:
    user_ids: np.ndarray
    """Row index -> user_id (str)."""
    item_ids: np.ndarray
    """Column index -> item_id (str)."""
    item_features: sp.csr_matrix
    """items x item features; LightFM's per-item vector is this row @ feature embeddings."""
    item_feature_names: np.ndarray
    user_features: sp.csr_matrix
    user_feature_names: np.ndarray

    @classmethod
    def build(
        cls, events: pd.DataFrame, items: pd.DataFrame, users: pd.DataFrame, config: TrainConfig
    ) -> FeatureSpace:
        """Catalogue order first (``items``/``users`` rows), then ids seen only in events.

        Items without events stay: their features give them a trained vector. Users without
        events stay only with user features; otherwise their vector would be LightFM's
        random start, and the worker and serving would take it for a learnt taste.
        """
        item_ids = _ids(items["item_id"] if len(items) else [], events["item_id"])
        catalogue = users["user_id"] if len(users) else pd.Series([], dtype=object)
        if not config.use_user_features:
            catalogue = catalogue[catalogue.astype(str).isin(events["user_id"].astype(str))]
        user_ids = _ids(catalogue, events["user_id"])
        item_extra: list[tuple[np.ndarray, np.ndarray]] = []
        if config.use_item_features and len(items):
            rows = pd.Index(item_ids).get_indexer(items["item_id"].astype(str))
            genres = items.assign(row=rows)[["row", "genres"]].explode("genres").dropna()
            item_extra.append((genres["row"].to_numpy(), "genre:" + genres["genres"].astype(str)))
            item_extra.append(_bucket(rows, items["year"], config.year_bucket, "year"))
        user_extra: list[tuple[np.ndarray, np.ndarray]] = []
        if config.use_user_features and len(users):
            rows = pd.Index(user_ids).get_indexer(users["user_id"].astype(str))
            user_extra.append(_bucket(rows, users["age"], 10, "age"))
            for column in ("gender", "occupation"):
                known = users[column].notna().to_numpy()
                values = f"{column}:" + users[column].astype(str)
                user_extra.append((rows[known], values.to_numpy()[known]))
        item_matrix, item_names = _matrix(item_ids, "item", item_extra, config)
        user_matrix, user_names = _matrix(user_ids, "user", user_extra, config)
        return cls(user_ids, item_ids, item_matrix, item_names, user_matrix, user_names)

    def user_index(self, user_ids: Sequence[str] | np.ndarray) -> np.ndarray:
        return _lookup(self.user_ids, user_ids, "user")

    def item_index(self, item_ids: Sequence[str] | np.ndarray) -> np.ndarray:
        return _lookup(self.item_ids, item_ids, "item")


def _ids(catalogue: Sequence[object] | pd.Series, seen: pd.Series) -> np.ndarray:
    known = pd.Index(pd.Series(catalogue, dtype=object).astype(str)).unique()
    extra = pd.Index(seen.astype(str).unique()).difference(known).sort_values()
    return np.asarray(known.append(extra), dtype=object)


def _bucket(
    rows: np.ndarray, values: pd.Series, width: int, prefix: str
) -> tuple[np.ndarray, np.ndarray]:
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    known = ~np.isnan(numbers)
    start = (numbers[known] // width * width).astype(np.int64)
    names = np.array([f"{prefix}:{s}-{s + width - 1}" for s in start], dtype=object)
    return rows[known], names


def _matrix(
    ids: np.ndarray, prefix: str, extra: list[tuple[np.ndarray, np.ndarray]], config: TrainConfig
) -> tuple[sp.csr_matrix, np.ndarray]:
    n = len(ids)
    names = [f"{prefix}:{i}" for i in ids]
    rows, cols = [np.arange(n)], [np.arange(n)]
    for extra_rows, extra_names in extra:
        # Sorted vocabulary: the same metadata always gives the same column order.
        vocabulary, codes = np.unique(np.asarray(extra_names, dtype=str), return_inverse=True)
        rows.append(np.asarray(extra_rows))
        cols.append(codes + len(names))
        names.extend(vocabulary.tolist())
    row, col = np.concatenate(rows), np.concatenate(cols)
    data = np.ones(len(row), dtype=np.float32)
    matrix = sp.csr_matrix((data, (row, col)), shape=(n, len(names)), dtype=np.float32)
    if config.normalise_features:
        sums = np.asarray(matrix.sum(axis=1)).ravel()
        matrix = sp.csr_matrix(sp.diags(1.0 / sums) @ matrix, dtype=np.float32)
    return matrix, np.asarray(names, dtype=object)


def _lookup(index: np.ndarray, ids: Sequence[str] | np.ndarray, kind: str) -> np.ndarray:
    positions = pd.Index(index).get_indexer(np.asarray(ids, dtype=object).astype(str))
    if (positions < 0).any():
        unknown = np.asarray(ids, dtype=object)[positions < 0][:5]
        raise SnapshotError(f"{kind} id(s) {list(unknown)} are not in the feature space")
    return np.asarray(positions, dtype=np.int32)
