"""Fold-in, scoring, ranking and explanation for many users at once, as stacked arrays.

The per-user maths is that of :mod:`streams.foldin` and :mod:`streams.ranking`; here the B
users whose bursts end together are padded to a common history length K and solved in
one stacked call, because with 32-wide vectors the cost of a recomputation is numpy's
per-call overhead, not arithmetic: one call for B users instead of B calls.

Padding carries zero weight, so it changes no solution; its contributions are masked
before the strongest one is picked.

Example::

    scored = score_many(model, histories, known_rows, seen_rows, tuning)
    scored[0].rows, scored[0].because    # top rows; per row, the history index or None
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from streams.model import LoadedModel

Interaction = tuple[str, str, int, float]


@dataclass(frozen=True, slots=True)
class Scored:
    rows: list[int]
    scores: list[float]
    because: list[int | None]
    """Per row, the index in the user's history contributing most (None: offline only)."""
    cluster: int | None


def score_many(
    model: LoadedModel,
    histories: Sequence[Sequence[Interaction]],
    known: Sequence[int | None],
    seen: Sequence[Sequence[int]],
    *,
    top_n: int,
    lam: float,
    blend: float,
    half_life_ms: float,
) -> list[Scored]:
    """Top ``top_n`` rows per user; histories hold only items the model knows."""
    users, dim, n_items = len(histories), model.items.shape[1], model.items.shape[0]
    lengths = np.fromiter((len(h) for h in histories), np.intp, users)
    k = max(1, int(lengths.max()))
    filled = np.arange(k) < lengths[:, None]  # (B, K): row-major order = history order
    flat = [x for h in histories for x in h]
    rows = np.zeros((users, k), np.intp)
    ts = np.zeros((users, k))
    base = np.zeros((users, k))
    if flat:
        item_row = model.item_row
        rows[filled] = [item_row[i] for i, _, _, _ in flat]
        ts[filled] = [t for _, _, t, _ in flat]
        base[filled] = [w for _, _, _, w in flat]
    valid = base > 0
    any_valid = np.asarray(valid.any(axis=1), np.bool_)
    has_history: list[bool] = any_valid.tolist()
    newest = np.where(valid, ts, -np.inf).max(axis=1, keepdims=True)
    newest[~any_valid] = 0.0  # users without history
    weights = np.where(valid, base * np.exp2((ts - newest) / half_life_ms), 0.0)
    vectors = model.items[rows].astype(np.float64)  # (B, K, d)
    signal = weights * (model.target - model.biases[rows])  # w * (r - b)
    # Batched matmul, not einsum: numpy's einsum of three operands is a naive loop, 20x
    # slower here than V^T (W V) through BLAS.
    transposed = vectors.transpose(0, 2, 1)  # (B, d, K)
    gram = transposed @ (vectors * weights[:, :, None])
    gram += lam * np.eye(dim)
    coefficients = np.linalg.solve(gram, transposed)  # (B, d, K)
    folded = (coefficients @ signal[:, :, None])[:, :, 0]

    offline = np.zeros((users, dim))
    share = np.zeros((users, 1))
    for b, row in enumerate(known):
        if row is not None:
            # With nothing to fold in, the offline vector alone (not half of it).
            offline[b], share[b] = model.users[row], blend if has_history[b] else 1.0
    vector = share * offline + (1.0 - share) * folded
    scores = vector.astype(np.float32) @ model.items.T + model.biases  # (B, n)
    excluded = [b * n_items + r for b, rs in enumerate(seen) for r in rs]
    scores.ravel()[np.array(excluded, np.intp)] = -np.inf

    n = min(top_n, n_items)
    if n < n_items:
        candidates = np.argpartition(-scores, n - 1, axis=1)[:, :n]
    else:
        candidates = np.tile(np.arange(n_items), (users, 1))
    candidates.sort(axis=1)  # ascending rows, so that the stable sort breaks ties by row
    values = np.take_along_axis(scores, candidates, 1)
    order = np.argsort(-values, axis=1, kind="stable")
    top = np.take_along_axis(candidates, order, 1)
    values = np.take_along_axis(values, order, 1)

    parts = model.items[top].astype(np.float64) @ coefficients  # (B, n, K)
    parts *= signal[:, None, :]
    parts[~np.broadcast_to(valid[:, None, :], parts.shape)] = -np.inf
    strongest = parts.argmax(axis=2)

    clusters: list[int | None] = [None] * users
    if model.unit_centroids.shape[0]:
        nearest = (vector @ model.unit_centroids.T).argmax(axis=1).tolist()
        clusters = [c if v else None for c, v in zip(nearest, vector.any(axis=1), strict=True)]
    # One conversion to lists for all users; seen items excluded past the end of the
    # catalogue leave -inf scores, dropped per user.
    finite = np.isfinite(values)
    top_rows, top_scores = top.tolist(), values.astype(np.float64).tolist()
    reasons = strongest.tolist()
    out = []
    for b in range(users):
        because: list[int | None] = reasons[b] if has_history[b] else [None] * n
        if finite[b].all():
            out.append(Scored(top_rows[b], top_scores[b], because, clusters[b]))
        else:
            keep = finite[b].tolist()
            out.append(
                Scored(
                    [r for r, ok in zip(top_rows[b], keep, strict=True) if ok],
                    [v for v, ok in zip(top_scores[b], keep, strict=True) if ok],
                    [c for c, ok in zip(because, keep, strict=True) if ok],
                    clusters[b],
                )
            )
    return out
