"""Ranking metrics of a trained model on held-out interactions, and the promotion gate.

Every test user with at least one held-out positive is scored against every item, in
chunks of users (``user_embeddings @ item_embeddings.T + biases``). Items the user has in
``train`` are removed from the ranking first, as ``lightfm.evaluation`` does when given
``train_interactions``; LightFM's published example passes none, so both are supported.

Example::

    metrics = evaluate(model, test.csr(), train.csr(), k=10)
    verdict = compare(metrics, current_metrics, tolerance=0.03)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp

from batch.training import TrainedModel

PUBLISHED_UA = {"precision": 0.11, "auc": 0.90}
"""LightFM's ``movielens`` example, WARP, test set of the ua split (train items not excluded)."""


@dataclass(frozen=True)
class Metrics:
    precision: float
    recall: float
    ndcg: float
    auc: float
    coverage: float
    """Share of the catalogue that appears in at least one evaluated user's top k."""
    k: int
    users: int

    def as_dict(self) -> dict[str, float]:
        return {key: float(value) for key, value in asdict(self).items()}


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reasons: tuple[str, ...]


def evaluate(
    model: TrainedModel,
    test: sp.csr_matrix,
    train: sp.csr_matrix | None = None,
    k: int = 10,
    chunk: int = 512,
) -> Metrics:
    """precision@k, recall@k, NDCG@k, AUC (each a mean over test users) and coverage@k."""
    test = sp.csr_matrix(test, dtype=np.float32)
    if train is not None:
        # A pair in both sets would be excluded and counted at once; keep it out of test.
        test = test - test.multiply(sp.csr_matrix(train) > 0)
        test.eliminate_zeros()
    users = np.flatnonzero(test.getnnz(axis=1))
    sums = np.zeros(4)
    shown = np.zeros(test.shape[1], dtype=bool)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    for start in range(0, len(users), chunk):
        rows = users[start : start + chunk]
        scores = model.scores(rows).astype(np.float64)
        truth = test[rows].toarray() > 0
        excluded = np.zeros_like(truth)
        if train is not None:
            excluded = train[rows].toarray() > 0
            scores[excluded] = -np.inf
        top = top_k(scores, k)
        shown[top.ravel()] = True
        hits = np.take_along_axis(truth, top, axis=1)
        positives = truth.sum(axis=1)
        ideal = np.cumsum(discounts)[np.minimum(positives, k) - 1]
        sums[0] += (hits.sum(axis=1) / k).sum()
        sums[1] += (hits.sum(axis=1) / positives).sum()
        sums[2] += ((hits @ discounts) / ideal).sum()
        sums[3] += _auc(scores, truth, excluded).sum()
    n = max(len(users), 1)
    precision, recall, ndcg, auc = (float(s / n) for s in sums)
    coverage = float(shown.mean()) if len(users) else 0.0
    return Metrics(precision, recall, ndcg, auc, coverage, k, len(users))


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's k best scores, best first."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def _auc(scores: np.ndarray, truth: np.ndarray, excluded: np.ndarray) -> np.ndarray:
    """Per-row ROC AUC of positives vs the non-excluded negatives; ties count one half.

    One sort of the whole chunk: each row is shifted by ``row * span`` so rows do not
    overlap and a single ``searchsorted`` counts, per positive, the items below it and
    those tied with it. Its wins over negatives are those less the positives below it
    (P(P-1)/2 in all, ties halved) and the excluded items (put below everything).
    """
    finite = scores[~excluded & np.isfinite(scores)]
    low = float(finite.min()) - 1.0 if finite.size else 0.0
    span = (float(finite.max()) if finite.size else 0.0) - low + 1.0
    shifted = np.where(excluded, low, scores) + np.arange(len(scores))[:, None] * span
    rows, cols = np.nonzero(truth)
    values = shifted[rows, cols]
    flat = np.sort(shifted, axis=1).ravel()
    base = rows * scores.shape[1]
    below = np.searchsorted(flat, values, "left") - base
    ties = np.searchsorted(flat, values, "right") - base - below - 1  # not itself
    positives = truth.sum(axis=1)
    dropped = excluded.sum(axis=1)
    negatives = scores.shape[1] - positives - dropped
    wins = np.bincount(rows, weights=below + ties / 2, minlength=len(scores))
    wins -= positives * (positives - 1) / 2 + positives * dropped
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(negatives > 0, wins / (positives * negatives), 1.0)


def compare(
    candidate: Metrics,
    current: Metrics | None,
    tolerance: float = 0.03,
    metrics: Sequence[str] = ("precision", "auc"),
) -> Verdict:
    """Pass unless the candidate is worse than ``current`` by more than ``tolerance`` (relative)
    on any of ``metrics``. Defaults: precision@k (the top of the list, what users see) and AUC
    (the whole ranking). With no current model, the candidate passes.
    """
    if current is None:
        return Verdict(True, ("no current model",))
    reasons, passed = [], True
    for name in metrics:
        new, old = getattr(candidate, name), getattr(current, name)
        floor = old * (1 - tolerance)
        ok = bool(new >= floor)
        passed &= ok
        reasons.append(
            f"{name}: {new:.4f} {'>=' if ok else '<'} {floor:.4f} ({old:.4f} - {tolerance:.0%})"
        )
    return Verdict(passed, tuple(reasons))
