"""Folding a user into the model's item-factor space from their recent interactions.

The model scores ``score(u, i) = u . v_i + b_i``. Given interactions with items ``V`` (k x d),
biases ``b``, targets ``r`` and weights ``W = diag(w)``, the user vector minimising
``sum_i w_i (u . v_i + b_i - r_i)^2 + lambda |u|^2`` is::

    u = (V^T W V + lambda I)^-1 V^T W (r - b)

The bias is subtracted from the target because it is already part of the score: the vector
only has to explain what the bias does not. Writing ``C = (V^T W V + lambda I)^-1 V^T`` (d x k)
gives ``u = C s`` with ``s = w * (r - b)``, so ``u . v_j = sum_i (v_j . C_i) s_i``: the score of
any item splits exactly into one contribution per interaction, which is where a
recommendation's reason comes from (:meth:`FoldIn.contributions`).

:mod:`streams.scoring` solves the same system for many users in one stacked call; this
one-user version is the reference its tests compare against.

Example::

    fold = fold_in(vectors, targets, weights, lam=0.1, biases=biases)
    scores = item_vectors @ fold.vector + item_biases
    because = fold.contributions(item_vectors[top]).argmax(axis=1)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]


@dataclass(frozen=True, slots=True, eq=False)
class FoldIn:
    vector: Floats
    """The user vector u (d)."""
    coefficients: Floats
    """C = (V^T W V + lambda I)^-1 V^T (d x k)."""
    signal: Floats
    """s = w * (r - b) (k)."""

    def contributions(self, item_vectors: NDArray[np.floating]) -> Floats:
        """Contribution of each interaction (columns) to each item's score (rows)."""
        return np.asarray((item_vectors @ self.coefficients) * self.signal, np.float64)


def fold_in(
    vectors: NDArray[np.floating],
    targets: NDArray[np.floating],
    weights: NDArray[np.floating],
    lam: float,
    biases: NDArray[np.floating] | None = None,
) -> FoldIn:
    """Regularised weighted least squares for the user vector (see the module docstring)."""
    v = np.asarray(vectors, np.float64)
    w = np.asarray(weights, np.float64)
    residual = np.asarray(targets, np.float64)
    if biases is not None:
        residual = residual - biases
    gram = v.T @ (v * w[:, None])
    gram.flat[:: gram.shape[0] + 1] += lam  # the diagonal
    # lam > 0 makes the Gram matrix positive definite, so solve() cannot fail on it.
    coefficients = np.asarray(np.linalg.solve(gram, v.T), np.float64)
    signal = w * residual
    return FoldIn(coefficients @ signal, coefficients, signal)


def recency_weights(ts: NDArray[np.number], half_life_ms: float) -> Floats:
    """Weight halving per ``half_life_ms`` of event time before the newest interaction."""
    ts = np.asarray(ts, np.float64)
    return np.asarray(np.exp2((ts - ts.max()) / half_life_ms), np.float64)
