"""Ranking, reasons and clusters for one user: the plain statement of what
:mod:`streams.scoring` computes for many users at once (its tests compare the two).

Example::

    rows, scores = top_rows(item_vectors @ u + item_biases, exclude=seen_rows, n=20)
    because = strongest(fold.contributions(item_vectors[rows]), labels)
    cluster = nearest_cluster(u, unit_rows(centroids))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.floating]
Rows = NDArray[np.intp]
T = TypeVar("T")


def top_rows(scores: Floats, exclude: Rows, n: int) -> tuple[Rows, Floats]:
    """Rows of the ``n`` highest scores outside ``exclude`` (distinct rows), best first
    (ties: lower row)."""
    masked = np.array(scores, np.float64)
    masked[exclude] = -np.inf
    allowed = masked.size - exclude.size
    n = min(n, allowed)
    if n <= 0:
        return np.zeros(0, np.intp), np.zeros(0, np.float64)
    # argpartition is O(items); only the n winners are sorted.
    candidates = np.argpartition(-masked, n - 1)[:n] if n < masked.size else np.arange(n)
    order = np.lexsort((candidates, -masked[candidates]))
    rows = candidates[order].astype(np.intp)
    return rows, masked[rows]


def strongest(contributions: Floats, labels: Sequence[T]) -> list[T]:
    """For each row, the label of the column contributing most (``labels`` per column)."""
    if contributions.shape[1] == 0:
        return []
    return [labels[int(j)] for j in np.argmax(contributions, axis=1)]


def unit_rows(vectors: Floats) -> NDArray[np.float64]:
    """Rows scaled to length 1 (zero rows stay zero)."""
    v = np.asarray(vectors, np.float64)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return np.asarray(np.divide(v, norms, out=np.zeros_like(v), where=norms > 0), np.float64)


def nearest_cluster(vector: Floats, unit_centroids: NDArray[np.float64]) -> int | None:
    """The cluster whose centroid points most nearly the way ``vector`` does.

    Cosine, not Euclidean: centroids average item vectors while a user vector's length
    reflects how much history it has, so only directions are comparable.
    """
    if unit_centroids.shape[0] == 0 or not np.any(vector):
        return None
    return int(np.argmax(unit_centroids @ np.asarray(vector, np.float64)))
