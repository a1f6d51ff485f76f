"""A small seeded k-means (k-means++ start, Lloyd steps) for clustering item embeddings.

Written in numpy rather than taken from scikit-learn, which is not a runtime dependency;
the catalogue is thousands of rows, so a few dense passes cost milliseconds.

Example::

    centroids, labels = kmeans(model.item_embeddings, k=24, seed=42)
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def kmeans(
    points: np.ndarray, k: int, seed: int, iterations: int = 100, restarts: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Centroids (k x d, float32) and each point's cluster (int32), best of ``restarts`` runs.

    The same points and seed always give the same answer. ``k`` larger than the number of
    distinct points yields empty clusters whose centroids repeat an existing point.
    """
    if k <= 0 or len(points) == 0:
        raise ValueError("k-means needs k > 0 and at least one point")
    data = np.asarray(points, dtype=np.float64)
    rng = np.random.default_rng(seed)
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for _ in range(restarts):
        centroids = _plus_plus(data, k, rng)
        labels, inertia = _assign(data, centroids)
        for _ in range(iterations):
            centroids = _update(data, labels, centroids)
            new_labels, inertia = _assign(data, centroids)
            if np.array_equal(new_labels, labels):
                break
            labels = new_labels
        if best is None or inertia < best[0]:
            best = (inertia, centroids, labels)
    if best is None:
        raise ValueError("k-means needs restarts >= 1")
    return best[1].astype(np.float32), best[2].astype(np.int32)


def _plus_plus(data: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    # k-means++: each new centre is drawn in proportion to the squared distance to the
    # nearest chosen one, which avoids the poor local optima of a uniform start.
    centroids = [data[rng.integers(len(data))]]
    nearest = ((data - centroids[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        total = nearest.sum()
        if total <= 0:  # fewer distinct points than k
            index = int(rng.integers(len(data)))
        else:
            index = int(rng.choice(len(data), p=nearest / total))
        centroids.append(data[index])
        nearest = np.minimum(nearest, ((data - data[index]) ** 2).sum(axis=1))
    return np.stack(centroids)


def _assign(data: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, float]:
    distances = (
        (data**2).sum(axis=1)[:, None] - 2 * data @ centroids.T + (centroids**2).sum(axis=1)[None]
    )
    labels = distances.argmin(axis=1)
    inertia = float(np.maximum(distances[np.arange(len(data)), labels], 0).sum())
    return labels, inertia


def _update(data: np.ndarray, labels: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    k = len(centroids)
    # A one-hot (k x n) product sums each cluster's points far faster than np.add.at.
    members = sp.csr_matrix(
        (np.ones(len(labels)), (labels, np.arange(len(labels)))), (k, len(labels))
    )
    sums = np.asarray(members @ data)
    counts = np.bincount(labels, minlength=k)[:, None]
    # An empty cluster keeps its old centre rather than becoming NaN.
    return np.where(counts > 0, sums / np.maximum(counts, 1), centroids)
