"""Batch results of a trained model, as frames shaped like their PostgreSQL tables.

- :func:`recommendations` -> ``offline_recommendations`` (user_id, rank, item_id, score,
  reason, model_version): each user's top N unseen items; the reason is the seen item most
  like the recommended one (cosine of item vectors), i.e. "because you watched X".
- :func:`similar_items` -> ``similar_items`` (item_id, rank, similar_item_id, score,
  model_version): cosine neighbours of each item, itself excluded.
- :func:`item_clusters` -> ``item_clusters`` (item_id, cluster, model_version).

Ranks start at 1. Example::

    recs = recommendations(model, seen=train.csr(), n=50, model_version=7)
    sims = similar_items(model, k=20, model_version=7)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from batch.evaluation import top_k
from batch.training import TrainedModel


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (a zero row stays zero), so a dot product is a cosine."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.asarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def recommendations(
    model: TrainedModel, seen: sp.csr_matrix, n: int, model_version: int, chunk: int = 512
) -> pd.DataFrame:
    """Top ``n`` items per user (every user of the model), never an item in ``seen``."""
    seen = sp.csr_matrix(seen)
    unit = unit_rows(model.item_embeddings)
    n = min(n, len(model.item_ids))
    users, items, scores, reasons = [], [], [], []
    for start in range(0, len(model.user_ids), chunk):
        rows = np.arange(start, min(start + chunk, len(model.user_ids)))
        score = model.scores(rows).astype(np.float64)
        block = seen[rows]
        mask = block.toarray() > 0
        score[mask] = -np.inf
        top = top_k(score, n)
        for offset, row in enumerate(rows):
            picked = top[offset]
            keep = np.isfinite(score[offset, picked])  # fewer than n unseen items left
            picked = picked[keep]
            history = block.indices[block.indptr[offset] : block.indptr[offset + 1]]
            if len(history):
                closest = history[np.argmax(unit[picked] @ unit[history].T, axis=1)]
                reasons.append(model.item_ids[closest])
            else:
                reasons.append(np.full(len(picked), None, dtype=object))
            users.append(np.full(len(picked), row))
            items.append(picked)
            scores.append(score[offset, picked])
    user_rows = np.concatenate(users) if users else np.zeros(0, dtype=np.int64)
    frame = pd.DataFrame(
        {
            "user_id": model.user_ids[user_rows],
            "item_id": model.item_ids[np.concatenate(items)] if items else [],
            "score": np.concatenate(scores) if scores else [],
            "reason": np.concatenate(reasons) if reasons else [],
        }
    )
    frame.insert(1, "rank", frame.groupby("user_id", sort=False).cumcount() + 1)
    frame["model_version"] = model_version
    return frame


def similar_items(
    model: TrainedModel, k: int, model_version: int, chunk: int = 1024
) -> pd.DataFrame:
    """The ``k`` items with the highest cosine to each item, the item itself excluded."""
    unit = unit_rows(model.item_embeddings)
    count = len(unit)
    k = min(k, count - 1)
    if k <= 0:  # a catalogue of one item has no neighbours
        return pd.DataFrame(
            columns=["item_id", "rank", "similar_item_id", "score", "model_version"]
        )
    sources, targets, scores = [], [], []
    for start in range(0, count, chunk):
        rows = np.arange(start, min(start + chunk, count))
        cosine = (unit[rows] @ unit.T).astype(np.float64)
        cosine[np.arange(len(rows)), rows] = -np.inf
        top = top_k(cosine, k)
        sources.append(np.repeat(rows, k))
        targets.append(top.ravel())
        scores.append(np.take_along_axis(cosine, top, axis=1).ravel())
    source = np.concatenate(sources)
    return pd.DataFrame(
        {
            "item_id": model.item_ids[source],
            "rank": np.tile(np.arange(1, k + 1), count),
            "similar_item_id": model.item_ids[np.concatenate(targets)],
            "score": np.concatenate(scores),
            "model_version": model_version,
        }
    )


def item_clusters(model: TrainedModel, model_version: int) -> pd.DataFrame:
    """Each item's k-means cluster (computed at training time, see :mod:`batch.clusters`)."""
    return pd.DataFrame(
        {
            "item_id": model.item_ids,
            "cluster": model.item_clusters.astype(np.int64),
            "model_version": model_version,
        }
    )
