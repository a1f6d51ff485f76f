"""Fold-in math: recovers a known user vector, and splits scores into contributions."""

from __future__ import annotations

import numpy as np
import pytest

from streams.foldin import fold_in, recency_weights


def test_fold_in_recovers_a_known_user_vector() -> None:
    rng = np.random.default_rng(7)
    items, biases = rng.normal(size=(40, 8)), rng.normal(size=40)
    user = rng.normal(size=8)
    targets = items @ user + biases  # what the model would score
    weights = rng.uniform(0.5, 2.0, size=40)
    fold = fold_in(items, targets, weights, lam=1e-9, biases=biases)
    assert np.allclose(fold.vector, user, atol=1e-6)


def test_regularisation_shrinks_towards_zero() -> None:
    rng = np.random.default_rng(1)
    items = rng.normal(size=(5, 8))
    loose = fold_in(items, np.ones(5), np.ones(5), lam=0.01)
    tight = fold_in(items, np.ones(5), np.ones(5), lam=100.0)
    assert np.linalg.norm(tight.vector) < 0.1 * np.linalg.norm(loose.vector)


def test_it_matches_the_closed_form() -> None:
    rng = np.random.default_rng(3)
    v, r, w, b = (
        rng.normal(size=(6, 4)),
        rng.normal(size=6),
        rng.uniform(size=6),
        rng.normal(size=6),
    )
    expected = np.linalg.inv(v.T @ np.diag(w) @ v + 0.3 * np.eye(4)) @ v.T @ np.diag(w) @ (r - b)
    assert np.allclose(fold_in(v, r, w, 0.3, b).vector, expected)


def test_contributions_add_up_to_the_score() -> None:
    rng = np.random.default_rng(5)
    history, catalogue = rng.normal(size=(4, 6)), rng.normal(size=(30, 6))
    fold = fold_in(history, np.full(4, 2.0), rng.uniform(size=4), 0.5)
    parts = fold.contributions(catalogue)
    assert parts.shape == (30, 4)
    assert np.allclose(parts.sum(axis=1), catalogue @ fold.vector)


def test_recency_halves_weight_per_half_life() -> None:
    weights = recency_weights(np.array([0, 1000, 2000]), half_life_ms=1000)
    assert weights == pytest.approx([0.25, 0.5, 1.0])
