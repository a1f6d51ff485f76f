"""The small parts: the store's freshness rule, recent items, ranking, rules, settings."""

from __future__ import annotations

import numpy as np
import pytest

from schemas.errors import ConfigError
from schemas.settings import load
from serving.answers import Pick
from serving.item_data import ItemData
from serving.ranking import best_rows, fold_in, ranked
from serving.recent_items import RecentItems
from serving.recommendation_store import RecommendationStore
from serving.rules import Rules, rerank_for_device
from serving.served_model import ServedModel
from serving.settings import ServingSettings
from tests.unit.test_serving_fakes import make_artifact, make_data, recs


def test_the_store_keeps_the_newest_set_per_source_and_ignores_older_arrivals() -> None:
    store = RecommendationStore()
    assert store.put(recs("u", ["1"], at=2000))
    assert not store.put(recs("u", ["2"], at=1000)), "an older set never replaces a newer one"
    assert not store.put(recs("u", ["3"], source="online"))
    nearline = store.nearline("u")
    assert nearline is not None and nearline.items[0].item_id == "1"
    store.put(recs("u", ["4"], source="offline", at=3000))
    assert store.nearline("u") is None, "superseded by a later offline set"
    store.put(recs("u", ["5"], at=4000))
    assert store.nearline("u") is not None and store.offline("u") is not None
    store.remove("u")
    assert store.nearline("u") is None and not store.has_any("u") and len(store) == 0


def test_recent_items_are_newest_first_distinct_and_bounded() -> None:
    recent = RecentItems(per_user=3, users=2)
    for item in ["1", "2", "1", "3", "4"]:
        recent.add("a", item)
    assert recent.get("a") == ("4", "3", "1")
    recent.add("b", "9")
    recent.add("c", "9")  # the least recently active user goes
    assert recent.get("a") == () and len(recent) == 2


def test_best_rows_are_sorted_and_skip_banned_rows() -> None:
    scores = np.array([0.1, 0.9, 0.5, 0.7, -1.0], np.float32)
    assert best_rows(scores, 3).tolist() == [1, 3, 2]
    assert best_rows(scores, 3, np.array([1, 3])).tolist() == [2, 0, 4]
    assert best_rows(scores, 10, np.array([0, 1, 2, 3, 4])).tolist() == []


def test_ranked_goes_past_the_partial_sort_when_filters_reject_many() -> None:
    scores = np.arange(100, dtype=np.float32)
    rows = list(ranked(scores, 3, None, lambda r: r % 10 == 0))
    assert rows[:3] == [90, 80, 70]


def test_fold_in_points_at_the_recent_items_group_and_names_the_strongest() -> None:
    model = ServedModel.of(make_artifact())
    fold = fold_in(model, np.array([14, 2]))  # rows of items "15" (group B) and "3" (A)
    assert np.linalg.norm(fold.vector) == pytest.approx(model.user_norm, rel=1e-5)
    # Item 16 is in the newest item's group (B), item 5 in the older one's (A).
    assert float(model.vectors[15] @ fold.vector) > 0 > float(model.vectors[4] @ fold.vector)
    assert fold.strongest(model.vectors[[16, 4]]).tolist() == [0, 1]
    assert np.allclose(
        fold.parts.sum(axis=0) * model.user_norm / np.linalg.norm(fold.parts.sum(axis=0)),
        fold.vector,
        atol=1e-5,
    )


def test_rules_and_the_device_re_rank() -> None:
    data = make_data({"1": 100, "2": 50}, device="tv")
    rules = Rules(frozenset({"3"}), "comedy", data)
    assert rules.allows("1") and not rules.allows("3") and not rules.allows("15")
    picks = [Pick(i, 0.0, "r", "online") for i in ["2", "5", "1"]]
    assert [p.item_id for p in rerank_for_device(picks, "tv", data, 0.0)] == ["2", "5", "1"]
    assert [p.item_id for p in rerank_for_device(picks, "tv", data, 0.8)] == ["1", "2", "5"]
    assert rerank_for_device(picks, "radio", data, 0.8) == picks


def test_item_data_orders_popularity_and_shares_per_device() -> None:
    data = ItemData.build(
        [("1", "A", ["Comedy"]), ("2", "B", [])], [("1", "tv", 5), ("2", "web", 9), ("1", "web", 3)]
    )
    assert data.popular == (("2", 9.0), ("1", 8.0))
    assert data.device_share["web"] == {"2": 1.0, "1": pytest.approx(1 / 3)}
    assert data.known_genres == {"comedy"} and data.title("3") == "3"


def test_settings_defaults_and_one_line_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = ServingSettings()
    assert (settings.host, settings.port, settings.api_token) == ("127.0.0.1", 8080, None)
    monkeypatch.setenv("NEARLINE_SERVING_PORT", "70000")
    with pytest.raises(ConfigError, match="NEARLINE_SERVING_PORT: Input should be less than"):
        load(ServingSettings)
    monkeypatch.delenv("NEARLINE_SERVING_PORT")
    monkeypatch.setenv("NEARLINE_SERVING_API_TOKEN", "s3cret")
    monkeypatch.setenv("NEARLINE_TOPIC_PREFIX", "t1.")
    loaded = load(ServingSettings)
    assert loaded.api_token is not None and loaded.api_token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(loaded) and loaded.topic_prefix == "t1."
    with pytest.raises(ConfigError, match="NEARLINE_SERVING_BOGUS"):
        load(ServingSettings, bogus=1)
    with pytest.raises(ConfigError, match="default_k"):
        load(ServingSettings, default_k=50, max_k=10)
