"""Ranking, reasons, clusters, and the recommender's choice between model and trending."""

from __future__ import annotations

import numpy as np
import pytest

from schemas.artifact import ModelArtifact
from streams.foldin import fold_in, recency_weights
from streams.model import LoadedModel, top_score_level
from streams.ranking import nearest_cluster, strongest, top_rows, unit_rows
from streams.recommender import Tuning, recommend
from streams.scoring import score_many
from streams.state import UserState


def test_top_rows_excludes_and_orders_with_stable_ties() -> None:
    scores = np.array([0.5, 0.9, 0.9, 0.1, 0.7])
    rows, top = top_rows(scores, np.array([1], np.intp), 3)
    assert rows.tolist() == [2, 4, 0] and top.tolist() == [0.9, 0.7, 0.5]
    rows, _ = top_rows(scores, np.array([0, 1, 2, 3], np.intp), 3)
    assert rows.tolist() == [4]  # fewer than asked once everything else is excluded


def test_strongest_names_the_largest_contribution() -> None:
    parts = np.array([[0.1, 0.5, -1.0], [2.0, 0.0, 0.3]])
    assert strongest(parts, ["a", "b", "c"]) == ["b", "a"]


def test_nearest_cluster_is_by_direction() -> None:
    centroids = unit_rows(np.array([[10.0, 0.0], [0.0, 0.1], [-1.0, 0.0]]))
    assert nearest_cluster(np.array([0.2, 1.0]), centroids) == 1
    assert nearest_cluster(np.array([-5.0, 0.1]), centroids) == 2
    assert nearest_cluster(np.zeros(2), centroids) is None
    assert nearest_cluster(np.ones(2), unit_rows(np.zeros((0, 2)))) is None


def model(n_items: int = 12, dim: int = 4) -> LoadedModel:
    # Items 0-5 point one way, 6-11 the other: folding in items of the first group must
    # recommend the rest of that group first.
    items = np.zeros((n_items, dim), np.float32)
    items[: n_items // 2, 0] = np.linspace(1.0, 2.0, n_items // 2)
    items[n_items // 2 :, 1] = np.linspace(1.0, 2.0, n_items // 2)
    artifact = ModelArtifact(
        version=3,
        item_ids=tuple(f"i{n}" for n in range(n_items)),
        item_embeddings=items,
        item_biases=np.zeros(n_items, np.float32),
        user_ids=("known",),
        user_embeddings=np.array([[0.0, 1.0, 0.0, 0.0]], np.float32),
        user_biases=np.zeros(1, np.float32),
        cluster_centroids=np.array([[1, 0, 0, 0], [0, 1, 0, 0]], np.float32),
        item_clusters=np.array([0] * (n_items // 2) + [1] * (n_items // 2), np.int32),
    )
    return LoadedModel.of(artifact)


def history(*items: str, kind: str = "view") -> UserState:
    recent = tuple((item, kind, 1000 + n, 1.0) for n, item in enumerate(items))
    return UserState(recent=recent, seen=items, session=("s", "tv", 1000))


def no_trending(device: str | None, n: int, exclude: set[str]) -> list[tuple[str, float]]:
    raise AssertionError("trending must not be used here")


def test_fold_in_recommends_the_same_kind_excludes_seen_and_explains() -> None:
    recs = recommend(
        "new-user", history("i0", "i2"), model(), no_trending, Tuning(top_n=4), "e1", 5
    )
    ids = [i.item_id for i in recs.items]
    assert set(ids) <= {"i1", "i3", "i4", "i5"} and len(ids) == 4
    assert ids[0] == "i5"  # the longest vector of that direction scores highest
    assert {i.reason for i in recs.items} <= {"because you watched i0", "because you watched i2"}
    assert (recs.source, recs.model_version, recs.trigger_event_id, recs.cluster) == (
        "nearline",
        3,
        "e1",
        0,
    )


def test_reason_names_the_interaction_that_contributes_most() -> None:
    state = history("i0", "i11", kind="click")
    recs = recommend("new-user", state, model(), no_trending, Tuning(top_n=10), None, 5)
    reasons = {i.item_id: i.reason for i in recs.items}
    assert reasons["i5"] == "because you clicked i0" and reasons["i10"] == "because you clicked i11"


def test_a_known_user_blends_in_the_offline_vector() -> None:
    state = history("i0")
    alone = recommend("new-user", state, model(), no_trending, Tuning(top_n=3), None, 5)
    blended = recommend(
        "known", state, model(), no_trending, Tuning(top_n=3, blend_weight=0.9), None, 5
    )
    assert alone.items[0].item_id == "i5" and blended.items[0].item_id == "i11"
    only_offline = recommend("known", UserState(), model(), no_trending, Tuning(top_n=2), None, 5)
    assert [i.item_id for i in only_offline.items] == ["i11", "i10"]
    assert only_offline.items[0].reason == "from your viewing history"


def test_trending_without_model_or_usable_history() -> None:
    calls: list[tuple[str | None, int, set[str]]] = []

    def trending(device: str | None, n: int, exclude: set[str]) -> list[tuple[str, float]]:
        calls.append((device, n, exclude))
        return [("hot", 2.0)]

    state = history("unknown-item")
    for current in (None, model()):
        recs = recommend("new-user", state, current, trending, Tuning(top_n=7), "e9", 5)
        assert (recs.source, recs.model_version, recs.trigger_event_id) == ("trending", 0, "e9")
        assert [(i.item_id, i.reason) for i in recs.items] == [("hot", "trending on tv")]
    assert calls == [("tv", 7, {"unknown-item"})] * 2


def test_target_level_is_the_mean_top_score_of_known_users() -> None:
    users = np.array([[1.0, 0.0], [0.0, 2.0]], np.float32)
    items = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    assert top_score_level(users, items, np.zeros(2, np.float32)) == 0.75  # top-2 of 2 items
    assert top_score_level(users[:0], items, np.zeros(2, np.float32)) == 1.0


def test_stacked_scoring_matches_the_one_user_reference() -> None:
    # score_many batches users with padding; fold_in / top_rows / strongest /
    # nearest_cluster are the plain one-user statement of the same maths.
    rng = np.random.default_rng(11)
    items = rng.normal(size=(30, 5)).astype(np.float32)
    artifact = ModelArtifact(
        version=1,
        item_ids=tuple(f"i{n}" for n in range(30)),
        item_embeddings=items,
        item_biases=rng.normal(size=30).astype(np.float32),
        user_ids=("known",),
        user_embeddings=rng.normal(size=(1, 5)).astype(np.float32),
        user_biases=np.zeros(1, np.float32),
        cluster_centroids=rng.normal(size=(3, 5)).astype(np.float32),
        item_clusters=np.zeros(30, np.int32),
    )
    m = LoadedModel.of(artifact)
    histories = [
        [(f"i{n}", "view", 1000 * n, 1.0) for n in range(2)],
        [(f"i{n}", "click", 5000 * n, 0.5) for n in range(3, 9)],
    ]
    seen = [[0, 1], [3, 4, 5, 6, 7, 8]]
    scored = score_many(
        m, histories, [None, None], seen, top_n=5, lam=0.1, blend=0.5, half_life_ms=3000
    )
    for history, excluded, got in zip(histories, seen, scored, strict=True):
        rows = np.array([m.item_row[i] for i, _, _, _ in history])
        weights = np.array([w for *_, w in history]) * recency_weights(
            np.array([t for _, _, t, _ in history]), 3000
        )
        fold = fold_in(m.items[rows], np.full(len(rows), m.target), weights, 0.1, m.biases[rows])
        top, values = top_rows(m.items @ fold.vector + m.biases, np.array(excluded), 5)
        assert got.rows == top.tolist()
        assert got.scores == pytest.approx(values.tolist(), rel=1e-5)
        assert got.because == strongest(fold.contributions(m.items[top]), list(range(len(rows))))
        assert got.cluster == nearest_cluster(fold.vector, m.unit_centroids)


def test_a_known_user_with_nothing_to_fold_in_is_scored_with_the_whole_offline_vector() -> None:
    # Regression: the blend weight used to apply with an empty fold-in, halving the vector,
    # which changes every score's balance between the user's taste and the item biases.
    rng = np.random.default_rng(5)
    artifact = ModelArtifact(
        version=1,
        item_ids=tuple(f"i{n}" for n in range(20)),
        item_embeddings=rng.normal(size=(20, 4)).astype(np.float32),
        item_biases=rng.normal(size=20).astype(np.float32),
        user_ids=("known",),
        user_embeddings=rng.normal(size=(1, 4)).astype(np.float32),
        user_biases=np.zeros(1, np.float32),
    )
    m = LoadedModel.of(artifact)
    (got,) = score_many(m, [[]], [0], [[]], top_n=20, lam=0.1, blend=0.5, half_life_ms=1000)
    want = m.items @ m.users[0] + m.biases
    assert got.scores == pytest.approx(np.sort(want)[::-1].tolist(), rel=1e-5)
