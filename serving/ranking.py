"""The numeric part of the online computation: a user vector from recent items, and the
best rows of a score vector.

Fold-in here is the cheap kind, sized for a request's budget: the user vector is the
recency-weighted mean of the recent items' vectors (newest weighs 1, each older one half
the one before), rescaled to the median length of the trained user vectors so that it
weighs against the item biases as a trained user would. Because ``u . v_j`` is then a
weighted sum of ``v_i . v_j`` over the recent items, each item's reason is the recent item
contributing most to its score. (The nearline worker solves a regularised least squares
per event instead; it has the time.)

Example::

    fold = fold_in(model, rows=np.array([49, 180]))
    scores = model.vectors @ fold.vector + model.biases
    top = best_rows(scores, k=10, banned=np.array([49, 180]))
    because = fold.strongest(model.vectors[top])     # index into rows, per top item
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from serving.served_model import ServedModel

Floats = NDArray[np.float32]
Rows = NDArray[np.intp]


@dataclass(frozen=True, slots=True, eq=False)
class FoldIn:
    vector: Floats
    """The user vector (d)."""
    parts: Floats
    """Weighted vectors of the recent items (k x d): their sum is ``vector`` up to scale."""

    def strongest(self, item_vectors: Floats) -> Rows:
        """For each item (rows of ``item_vectors``), the recent item adding most to its score."""
        if len(self.parts) == 1:  # one recent item is every item's strongest: no product
            return np.zeros(len(item_vectors), np.intp)
        return np.asarray(np.argmax(item_vectors @ self.parts.T, axis=1), np.intp)


# Normalised weights for 1..FOLD_IN_MAX recent items, computed once: per request the few
# numpy calls on tiny arrays cost more than the arithmetic.
FOLD_IN_MAX = 32
_WEIGHTS = [
    (w / w.sum()).astype(np.float32)
    for w in (0.5 ** np.arange(n, dtype=np.float64) for n in range(FOLD_IN_MAX + 1))
]


def fold_in(model: ServedModel, rows: Rows) -> FoldIn:
    """Fold in the items at ``rows`` (newest first, at most FOLD_IN_MAX) into a user vector."""
    weights = _WEIGHTS[len(rows)]
    recent = model.vectors[rows]
    # One item weighs exactly 1: its vector is the weighted mean, without the product.
    vector = recent[0].copy() if len(rows) == 1 else weights @ recent
    length = float(np.sqrt(np.dot(vector, vector)))
    if length > 0 and model.user_norm > 0:
        vector *= np.float32(model.user_norm / length)
    # Unscaled parts: a positive scale cannot change which part is strongest. One item
    # weighs exactly 1, so its part is its vector (and never compared: see strongest).
    return FoldIn(vector, recent if len(rows) == 1 else recent * weights[:, None])


def best_rows(scores: Floats, k: int, banned: Rows | None = None) -> Rows:
    """The ``k`` rows with the highest scores, best first, never a ``banned`` row."""
    n = len(scores)
    k = min(k, n)
    if k <= 0:
        return np.zeros(0, np.intp)
    # One negated copy serves as the scratch array (banned rows pushed to +inf, i.e. -inf
    # scores) and as the sort key: the same values as negating a banned copy each time.
    negated = np.negative(scores)
    if banned is not None and len(banned):
        negated[banned] = np.inf
    top = np.argpartition(negated, k - 1)[:k] if k < n else np.arange(n)
    keys = negated[top]
    order = np.argsort(keys, kind="stable")
    # Sorted, -inf comes first and inf and NaN last: finite ends, all finite.
    if math.isfinite(keys[order[0]]) and math.isfinite(keys[order[-1]]):
        return top[order]
    return top[order][np.isfinite(keys[order])]


def ranked(
    scores: Floats, want: int, banned: Rows | None, allows: Callable[[int], bool]
) -> list[int]:
    """Rows best first that pass ``allows``: ``want`` of them, or all there are.

    A partial sort of ``want`` plus the banned count is usually enough; when filters reject
    more than that (a narrow genre) it goes on through a full sort.
    """
    first = best_rows(scores, want + (0 if banned is None else len(banned)), banned).tolist()
    rows = [row for row in first if allows(row)]
    if len(rows) >= want or len(first) >= len(scores):
        return rows[:want]
    done = set(first)
    rest = best_rows(scores, len(scores), banned).tolist()
    rows += [row for row in rest if row not in done and allows(row)]
    return rows[:want]
