"""Events -> interactions and weights; metadata -> feature matrices and id maps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from batch.config import TrainConfig
from batch.features import FeatureSpace, SnapshotError
from batch.interactions import normalise_events, to_interactions

ITEMS = pd.DataFrame(
    {
        "item_id": ["a", "b", "c"],
        "title": ["A", "B", "C"],
        "year": pd.array([1995, 1987, None], dtype="Int64"),
        "genres": [["Comedy", "Drama"], ["Drama"], []],
    }
)
USERS = pd.DataFrame(
    {
        "user_id": ["u1", "u2"],
        "age": pd.array([24, None], dtype="Int64"),
        "gender": ["F", "M"],
        "occupation": ["writer", None],
        "zip_code": ["1", "2"],
    }
)


def events(*rows: tuple[str, str, str, float, float]) -> pd.DataFrame:
    return pd.DataFrame(
        rows, columns=["user_id", "item_id", "event_type", "duration_ms", "rating"]
    ).assign(ts=1_000)


def weights_of(frame: pd.DataFrame, config: TrainConfig) -> dict[tuple[str, str], float]:
    space = FeatureSpace.build(frame, ITEMS, USERS, config)
    data = to_interactions(frame, space, config)
    assert np.array_equal(data.matrix.row, data.weights.row)  # LightFM needs the same order
    assert np.array_equal(data.matrix.col, data.weights.col)
    assert set(data.matrix.data) <= {1.0}
    pairs = zip(data.weights.row, data.weights.col, data.weights.data, strict=True)
    return {(space.user_ids[u], space.item_ids[i]): float(w) for u, i, w in pairs}


def test_event_types_are_weighted_summed_and_impressions_dropped() -> None:
    frame = events(
        ("u1", "a", "view", np.nan, np.nan),
        ("u1", "a", "click", np.nan, np.nan),
        ("u1", "b", "browse_impression", np.nan, np.nan),
        ("u2", "b", "click", np.nan, np.nan),
    )
    assert weights_of(frame, TrainConfig()) == {("u1", "a"): 1.5, ("u2", "b"): 0.5}


def test_rating_duration_and_cap_change_the_weight() -> None:
    frame = events(
        ("u1", "a", "view", 450_000, 4.0),  # a quarter of a full view
        ("u1", "b", "view", 0, 2.0),  # unknown duration: full weight
        ("u2", "a", "view", np.nan, np.nan),
        ("u2", "a", "view", np.nan, np.nan),
        ("u2", "a", "view", np.nan, np.nan),
    )
    config = TrainConfig(rating_scaling=True, duration_full_ms=1_800_000, max_weight=2.0)
    assert weights_of(frame, config) == pytest.approx(
        {("u1", "a"): 0.25 * 0.8, ("u1", "b"): 0.4, ("u2", "a"): 2.0}
    )
    dropped = weights_of(frame, config.model_copy(update={"min_rating": 3.0}))
    assert ("u1", "b") not in dropped and ("u1", "a") in dropped


def test_reproduction_config_counts_every_rating_once() -> None:
    frame = events(("u1", "a", "view", 0, 1.0), ("u1", "b", "view", 0, 5.0))
    config = TrainConfig.lightfm_movielens_implicit()
    assert weights_of(frame, config) == {("u1", "a"): 1.0, ("u1", "b"): 1.0}


def test_unknown_event_types_and_missing_columns_are_clear_errors() -> None:
    frame = events(("u1", "a", "purchase", np.nan, np.nan))
    with pytest.raises(SnapshotError, match="purchase"):
        weights_of(frame, TrainConfig())
    with pytest.raises(SnapshotError, match="event_type"):
        normalise_events(frame.drop(columns="event_type"))


def test_timestamps_in_milliseconds_or_datetimes_agree() -> None:
    when = pd.Timestamp("2024-01-02T03:04:05.678Z")
    frame = events(("u1", "a", "view", np.nan, np.nan)).assign(ts=[when])
    assert normalise_events(frame)["ts"].tolist() == [int(when.timestamp() * 1000)]
    assert normalise_events(frame.assign(ts=[17]))["ts"].tolist() == [17]


def test_item_and_user_features_and_id_maps() -> None:
    frame = events(("u3", "z", "view", np.nan, np.nan))  # ids with no metadata
    space = FeatureSpace.build(frame, ITEMS, USERS, TrainConfig(use_user_features=True))
    assert space.item_ids.tolist() == ["a", "b", "c", "z"]
    assert space.user_ids.tolist() == ["u1", "u2", "u3"]
    names = space.item_feature_names
    a_features = names[space.item_features[0].indices].tolist()
    assert sorted(a_features) == ["genre:Comedy", "genre:Drama", "item:a", "year:1990-1999"]
    assert names[space.item_features[3].indices].tolist() == ["item:z"]
    u1 = space.user_feature_names[space.user_features[0].indices].tolist()
    assert sorted(u1) == ["age:20-29", "gender:F", "occupation:writer", "user:u1"]
    assert space.item_features.sum() == len(a_features) + 3 + 1 + 1  # b: 3, c: 1, z: 1
    bare = FeatureSpace.build(frame, ITEMS, USERS, TrainConfig(use_item_features=False))
    # Without user features, u1 and u2 (no events) would only have a random, untrained vector.
    assert bare.user_ids.tolist() == ["u3"]
    assert bare.item_features.shape == (4, 4) and bare.user_features.shape == (1, 1)
    normalised = FeatureSpace.build(frame, ITEMS, USERS, TrainConfig(normalise_features=True))
    assert np.allclose(normalised.item_features.sum(axis=1), 1.0)
    with pytest.raises(SnapshotError, match="nobody"):
        space.user_index(["nobody"])
