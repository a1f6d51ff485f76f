"""Batch results: top-N without seen items, similar items without self, k-means."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from batch.clusters import kmeans
from batch.results import item_clusters, recommendations, similar_items, unit_rows
from batch.training import TrainedModel

RNG = np.random.default_rng(3)
SCORES = RNG.normal(size=(6, 12))


def test_top_n_never_recommends_a_seen_item_and_explains_with_one() -> None:
    # Random item vectors so the "reason" has a real nearest seen item to find.
    model = TrainedModel.without_features(RNG.normal(size=(6, 4)), RNG.normal(size=(12, 4)))
    mask = RNG.random((6, 12)) < 0.4
    mask[0, :9] = True  # only three unseen items left: fewer than n
    mask[5] = False  # no history: recommendations, but no reason
    seen = sp.csr_matrix(mask.astype(np.float32))
    recs = recommendations(model, seen, n=5, model_version=9)
    assert list(recs.columns) == ["user_id", "rank", "item_id", "score", "reason", "model_version"]
    unit = unit_rows(model.item_embeddings)
    for user, rows in recs.groupby("user_id"):
        row = int(str(user)[1:])
        history = set(seen[row].indices)
        items = [int(i[1:]) for i in rows.item_id]
        assert not history & set(items)
        assert rows["rank"].tolist() == list(range(1, len(items) + 1))
        assert rows.score.is_monotonic_decreasing
        assert len(items) == min(5, 12 - len(history))
        if not history:
            assert rows.reason.isna().all()
            continue
        for item, reason in zip(items, rows.reason, strict=True):
            best = max(history, key=lambda h: float(unit[item] @ unit[h]))
            assert reason == f"i{best}"
    assert (recs.model_version == 9).all()


def test_similar_items_exclude_the_item_itself_and_are_ranked_by_cosine() -> None:
    model = TrainedModel.without_features(RNG.normal(size=(6, 3)), RNG.normal(size=(12, 3)))
    sims = similar_items(model, k=4, model_version=2)
    assert len(sims) == 12 * 4
    assert (sims.item_id != sims.similar_item_id).all()
    unit = unit_rows(model.item_embeddings)
    cosine = unit @ unit.T
    np.fill_diagonal(cosine, -np.inf)
    for item, rows in sims.groupby("item_id"):
        index = int(str(item)[1:])
        expected = np.argsort(-cosine[index])[:4]
        assert [int(i[1:]) for i in rows.similar_item_id] == expected.tolist()
        assert np.allclose(rows.score, cosine[index, expected])


def test_kmeans_is_deterministic_and_finds_separated_blobs() -> None:
    centres = np.array([[0, 0], [10, 0], [0, 10]], dtype=float)
    points = np.concatenate([c + RNG.normal(scale=0.5, size=(30, 2)) for c in centres])
    first = kmeans(points, k=3, seed=5)
    again = kmeans(points, k=3, seed=5)
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    labels = first[1]
    assert [len(set(labels[i * 30 : (i + 1) * 30])) for i in range(3)] == [1, 1, 1]
    assert len(set(labels)) == 3
    found = first[0][labels[[0, 30, 60]]]
    assert np.allclose(found, centres, atol=0.5)


def test_item_clusters_frame_matches_the_model() -> None:
    model = TrainedModel.without_features(SCORES, np.eye(12))
    frame = item_clusters(model, model_version=4)
    assert frame.item_id.tolist() == model.item_ids.tolist()
    assert (frame.cluster == 0).all() and (frame.model_version == 4).all()
