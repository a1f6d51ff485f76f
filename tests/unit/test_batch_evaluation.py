"""Ranking metrics on hand-made cases, agreement with lightfm.evaluation, and the gate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from lightfm import LightFM
from lightfm.evaluation import auc_score, precision_at_k

from batch.config import TrainConfig
from batch.evaluation import Metrics, compare, evaluate
from batch.features import FeatureSpace
from batch.interactions import to_interactions
from batch.splits import ua_split
from batch.training import TrainedModel
from schemas import movielens


def model_from_scores(scores: np.ndarray) -> TrainedModel:
    """A model whose user x item scores are exactly ``scores`` (identity item vectors)."""
    return TrainedModel.without_features(scores, np.eye(scores.shape[1]))


def matrix(rows: list[list[int]], items: int) -> sp.csr_matrix:
    dense = np.zeros((len(rows), items), np.float32)
    for user, row in enumerate(rows):
        dense[user, row] = 1
    return sp.csr_matrix(dense)


SCORES = np.array([[0.9, 0.8, 0.7, 0.6, 0.5], [0.1, 0.2, 0.3, 0.4, 0.5], [0, 0, 0, 0, 1.0]])
TEST = matrix([[1, 3], [4], []], 5)  # the third user has nothing held out: not evaluated


def test_metrics_on_a_hand_made_ranking() -> None:
    metrics = evaluate(model_from_scores(SCORES), TEST, k=2)
    # user 0: top-2 [0, 1], one hit of two at rank 2; AUC: 1 beats {2, 4}, 3 beats {4} -> 3/6.
    # user 1: top-2 [4, 3], its only positive first; AUC 4/4.
    idcg = 1 + 1 / np.log2(3)
    assert metrics.users == 2
    assert metrics.precision == pytest.approx((0.5 + 0.5) / 2)
    assert metrics.recall == pytest.approx((0.5 + 1.0) / 2)
    assert metrics.ndcg == pytest.approx(((1 / np.log2(3)) / idcg + 1.0) / 2)
    assert metrics.auc == pytest.approx((0.5 + 1.0) / 2)
    assert metrics.coverage == pytest.approx(4 / 5)  # items 0, 1, 3, 4


def test_train_items_are_removed_from_the_ranking() -> None:
    train = matrix([[0], [], []], 5)
    metrics = evaluate(model_from_scores(SCORES[:1]), TEST[:1], train[:1], k=2)
    # Without item 0: top-2 [1, 2], hit first; AUC: 1 beats {2, 4}, 3 beats {4} -> 3/4.
    assert metrics.precision == pytest.approx(0.5)
    assert metrics.ndcg == pytest.approx(1 / (1 + 1 / np.log2(3)))
    assert metrics.auc == pytest.approx(0.75)


def test_tied_scores_count_half_in_auc() -> None:
    metrics = evaluate(model_from_scores(np.array([[1.0, 1.0, 0.0]])), matrix([[0]], 3), k=1)
    assert metrics.auc == pytest.approx((0.5 + 1) / 2)


def test_metrics_agree_with_lightfm_evaluation_on_a_real_model() -> None:
    ml = movielens.load()
    events = ml.ratings.assign(event_type="view", ts=ml.ratings.ts * 1000)
    config = TrainConfig.lightfm_movielens_implicit()
    space = FeatureSpace.build(events, ml.items, pd.DataFrame({"user_id": []}), config)
    train_events, test_events = ua_split(events)
    train, test = (to_interactions(e, space, config).csr() for e in (train_events, test_events))
    lightfm = LightFM(no_components=10, loss="warp", random_state=7)
    lightfm.fit(train, epochs=2)
    # LightFM's own arrays in our model: with no metadata every feature is an identity.
    ours = TrainedModel.without_features(
        lightfm.user_embeddings, lightfm.item_embeddings, lightfm.user_biases, lightfm.item_biases
    )
    for exclude in (None, train):
        metrics = evaluate(ours, test, exclude, k=10)
        expected_p = precision_at_k(lightfm, test, exclude, k=10).mean()
        expected_auc = auc_score(lightfm, test, exclude).mean()
        assert metrics.precision == pytest.approx(expected_p, abs=2e-3)
        assert metrics.auc == pytest.approx(expected_auc, abs=2e-3)


def metrics(precision: float, auc: float) -> Metrics:
    return Metrics(precision, 0.2, 0.3, auc, 0.5, 10, 943)


def test_gate_allows_a_small_relative_loss_only() -> None:
    current = metrics(0.20, 0.90)
    assert compare(metrics(0.195, 0.90), current, tolerance=0.03).passed  # -2.5 %
    failed = compare(metrics(0.19, 0.90), current, tolerance=0.03)  # -5 %
    assert not failed.passed and failed.reasons[0].startswith("precision")
    assert not compare(metrics(0.30, 0.85), current, tolerance=0.03).passed  # AUC lost
    assert compare(metrics(0.30, 0.85), current, 0.03, metrics=("precision",)).passed
    assert compare(metrics(0.0, 0.0), None).passed  # the first model has nothing to beat
